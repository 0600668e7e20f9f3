"""Inputs built to break things (issue 14): integers that overflow the compiled kernels'
checks, lengths that wrap around their dtype, layers used before ``initialize``, and
gradients of another dtype through ``array_getitem``."""
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest

from thinc_trf_layers.backends import pooling

HERE = Path(__file__).resolve().parent


# ----------------------------------------------------------- 1. the compiled kernels
@pytest.mark.skipif(pooling.COMPILED is None, reason="compiled kernels not built")
@pytest.mark.parametrize("kernel", ["segment_sum", "segment_max", "segment_fill", "concat_rows"])
def test_kernels_refuse_extreme_integers_without_crashing(kernel: str) -> None:
    """Every entry point, called with starts, lengths, blocks and shapes from 0, -1,
    2**31 +- 1, 2**62, 2**63 - 1, -2**63 ... (pairs whose int64 sum or product wraps to a
    small number included): a valid call returns the reference result, every other call
    raises ValueError. The calls run in a child process, so that a crash (a read or
    write out of bounds) fails this test and names the call instead of killing pytest."""
    proc = subprocess.run(
        [sys.executable, str(HERE / "kernel_fuzz_cases.py"), kernel],
        capture_output=True, text=True, timeout=300, cwd=str(HERE),
    )
    lines: List[Dict[str, Any]] = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    started = [d for d in lines if "start" in d]
    answers = [d for d in lines if "got" in d]
    if proc.returncode != 0:
        last = started[-1]["case"] if started else "(before the first case)"
        pytest.fail(
            f"{kernel}: the child process died (exit status {proc.returncode}) in the call "
            f"{last!r}\n{proc.stderr[-2000:]}"
        )
    assert len(started) == len(answers) > 100
    wrong = [
        d for d in answers
        if not (d["got"] == d["want"] or (d["want"] == "ValueError" and d["got"].startswith("ValueError: ")))
    ]
    assert not wrong, f"{len(wrong)} of {len(answers)} calls misbehaved, e.g.:\n" + "\n".join(
        f"  {d['case']}: got {d['got']}, expected {d['want']}" for d in wrong[:10]
    )
    # both kinds of case are there: valid calls computed, and refused ones
    assert {d["want"] for d in answers} == {"ok", "ValueError"}
