"""Thinc's own layer tests, run on our layers.

The Thinc wheel ships its test suite (``thinc/tests``). This runs the modules that build
``reduce_first/last/max/mean/sum``, ``map_list`` and ``array_getitem`` (through
``Embed``/``HashEmbed`` with ``column``, which use ``ints_getitem``) from the installed
package, in a child pytest process with ``swap_thinc_layers.py`` as a plugin: it puts
our layers in place of Thinc's before the modules are imported (nothing is copied from
Thinc; its files are run where they are installed). Upstream tests that need spaCy,
PyTorch or TensorFlow skip themselves where those are missing (the Thinc 9.1 venv).
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest
import thinc

HERE = Path(__file__).resolve().parent
UPSTREAM = Path(thinc.__file__).resolve().parent / "tests"

#: The upstream modules that exercise the layers we swap in.
MODULES: List[str] = [
    "layers/test_reduce.py",  # reduce_first/last/max/mean/sum, gradient shape errors
    "layers/test_layers_api.py",  # the registry table: reduce_*.v1, data validation, dropout
    "layers/test_combinators.py",  # map_list
    "layers/test_uniqued.py",  # Embed(column=0): ints_getitem, an int32 gradient for uint64 ids
    "layers/test_basic_tagger.py",  # HashEmbed(column=0) in a trained tagger
    "model/test_validation.py",  # reduce_max / reduce_sum in chains with data validation
]

#: Upstream tests deselected because our layers deliberately behave otherwise, with the
#: reason (node id relative to Thinc's ``tests`` folder -> reason). None at present: every
#: selected upstream test passes on our layers, on Thinc 8.3 and 9.1.
DESELECTED: Dict[str, str] = {}

#: Every swapped creation function these modules must have called at least once.
MUST_CALL = ["reduce_first", "reduce_last", "reduce_max", "reduce_mean", "reduce_sum", "map_list", "ints_getitem"]


@pytest.mark.skipif(not (UPSTREAM / "layers" / "test_reduce.py").exists(), reason="this Thinc ships without its tests")
def test_thincs_own_layer_tests_pass_on_our_layers(tmp_path: Path) -> None:
    report = tmp_path / "swap.json"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # write nothing into site-packages
    env["TTL_SWAP_REPORT"] = str(report)
    cmd = [
        sys.executable, "-m", "pytest", "-q", "-rfE",
        "-p", "no:cacheprovider", "-p", "swap_thinc_layers",
        "-c", os.devnull, "--rootdir", str(UPSTREAM),
        *[str(UPSTREAM / m) for m in MODULES],
    ]
    for node in DESELECTED:
        cmd += ["--deselect", str(UPSTREAM / node)]
    proc = subprocess.run(cmd, cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"Thinc's tests failed on our layers (exit {proc.returncode}):\n{out[-6000:]}"
    passed = re.search(r"(\d+) passed", out)
    assert passed and int(passed.group(1)) >= 500, out[-3000:]
    # the upstream tests really built our layers, not Thinc's
    swap = json.loads(report.read_text())
    missing = [name for name in MUST_CALL if not swap["calls"].get(name)]
    assert not missing, f"never called: {missing}; calls: {swap['calls']}"
    assert all(n >= 1 for n in swap["patched"].values()), swap["patched"]


def test_the_swap_plugin_swaps_ours_in() -> None:
    """The plugin itself, in a child process: after ``pytest_configure``, the names in
    ``thinc.api``, ``thinc.layers``, Embed's module and the registry build our layers."""
    code = (
        "import swap_thinc_layers as s, thinc.api, thinc.layers, sys\n"
        "s.pytest_configure(None)\n"
        "from thinc.api import registry\n"
        "assert thinc.api.reduce_max().name == 'reduce_max'\n"
        "ours = lambda m: m._func.__module__.startswith('thinc_trf_layers.')\n"
        "assert ours(registry.layers.get('reduce_mean.v1')())\n"
        "assert ours(thinc.layers.reduce_first())\n"
        "m = sys.modules['thinc.layers.embed'].ints_getitem((slice(0, None), 0))\n"
        "assert m.name.startswith('array_getitem['), m.name\n"
        "assert thinc.api.map_list(thinc.api.reduce_sum()).name == 'map_list(reduce_sum)'\n"
        "print(sorted(s.CALLS.items()))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(HERE))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "('ints_getitem', 1)" in proc.stdout and "('reduce_mean', 1)" in proc.stdout
