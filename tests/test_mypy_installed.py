"""mypy sees the installed package from code outside the repository.

``tests/test_typing.py`` points ``MYPYPATH`` at the checkout; a user's project does not.
Here mypy checks a module in a temporary directory, with nothing but the environment
this test runs in: it must find ``thinc_trf_layers`` there and flag a wrong ``chain``
with Thinc's plugin. This fails for setuptools' editable install alone (an import hook
that mypy cannot follow: every layer becomes ``Any``); the Makefile adds a ``.pth`` file
naming the checkout beside it. An install without ``-e`` passes as it is.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mypy")

MODULE = """\
from thinc.api import Linear, Model, chain
from thinc.types import Floats2d, Ragged
from thinc_trf_layers import reduce_mean

pool: Model[Ragged, Floats2d] = reduce_mean()
model = chain(Linear(nO=4, nI=8), reduce_mean())
"""
CONFIG = """\
[mypy]
plugins = thinc.mypy
strict = True
show_error_codes = True
"""


def test_mypy_follows_the_installed_package(tmp_path: Path) -> None:
    (tmp_path / "user_model.py").write_text(MODULE)
    (tmp_path / "mypy.ini").write_text(CONFIG)
    env = {k: v for k, v in os.environ.items() if k != "MYPYPATH"}
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "mypy.ini",
         "--cache-dir", str(tmp_path / ".mypy_cache"), "user_model.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    out = result.stdout + result.stderr
    assert 'module named "thinc_trf_layers"' not in out, (
        "mypy cannot find the installed thinc_trf_layers (setuptools' editable install, an "
        "import hook, without the .pth file the Makefile writes? rebuild the venv with make):\n"
        + out
    )
    errors = [line for line in out.splitlines() if ": error:" in line]
    # the assignment on line 5 type-checks; line 6 feeds Linear's Floats2d to reduce_mean
    assert not [e for e in errors if "user_model.py:5:" in e], out
    assert any("user_model.py:6:" in e and "[layer-mismatch-output]" in e for e in errors), out
    assert result.returncode == 1, out
