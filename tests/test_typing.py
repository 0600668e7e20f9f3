"""Typing tests: mypy with Thinc's plugin on the modules in ``typing_tests/modules``.

Each module is checked with the config named in ``CASES`` (``typing_tests/configs``) and
its messages (revealed types, errors) must equal ``typing_tests/outputs/<module>.txt``.
The expected files hold ``LINE: severity: message  [code]`` lines, without paths.

Besides the comparison, two checks do not depend on the expected files, so that a careless
regeneration cannot bless a wrong result:

- a ``success_*`` module has no ``error:`` at all, every ``reveal_type`` line has its
  ``Revealed type`` note, and no revealed type contains ``Any`` unless its line says
  why with a trailing ``# reveals Any: <reason>``;
- a ``fail_*`` module marks each line that must be flagged with a trailing comment
  ``# E: <code>[, <code>...]`` (e.g. ``# E: layer-mismatch-output``); each of those
  codes must be reported on that line, and no line without a marker may have an error.

mypy runs once per config over all of that config's modules, in a subprocess with its
own cache directory under pytest's tmp path, from a temporary working directory (so no
project config is picked up), with ``MYPYPATH`` pointing at the repository root (an
editable install's import hook is invisible to mypy).

To regenerate the expected outputs after a deliberate change: run
``TTL_REGENERATE_TYPING=1 .venv/bin/python -m pytest tests/test_typing.py`` (or set
``REGENERATE = True`` below), review the diff of ``typing_tests/outputs``, and run again
without it. While regeneration is on, ``test_regeneration_is_off`` fails.
"""
import difflib
import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Set, Tuple, Union

import pytest

pytest.importorskip("mypy")

ROOT = Path(__file__).resolve().parent.parent
TYPING_DIR = ROOT / "typing_tests"
CONFIG_DIR = TYPING_DIR / "configs"
MODULE_DIR = TYPING_DIR / "modules"
OUTPUT_DIR = TYPING_DIR / "outputs"

#: Rewrite ``typing_tests/outputs`` from mypy's current output instead of comparing.
#: Keep False in committed code; the environment variable below does the same.
REGENERATE = False
REGENERATE_ENV = "TTL_REGENERATE_TYPING"

#: module (in ``typing_tests/modules``, without ``.py``) -> config it is checked with.
CASES: Dict[str, str] = {
    "success_combinators": "mypy-plugin.ini",
    "fail_combinators": "mypy-plugin.ini",
    "success_pooling": "mypy-plugin.ini",
    "fail_pooling": "mypy-plugin.ini",
    "success_mixing": "mypy-plugin.ini",
    "success_trf": "mypy-plugin.ini",
    "fail_trf": "mypy-plugin.ini",
    "fail_no_plugin": "mypy-no-plugin.ini",
}

_MESSAGE = re.compile(
    r"^(?P<path>.*?)(?P<module>[A-Za-z_][A-Za-z0-9_]*)\.py:(?P<line>\d+): (?P<rest>.*)$"
)
_MARKER = re.compile(r"#\s*E:\s*(?P<codes>[a-z0-9-]+(?:\s*,\s*[a-z0-9-]+)*)\s*$")
_CODE = re.compile(r"\[(?P<code>[a-z0-9-]+)\]\s*$")
_INFER = r"Cannot infer type argument of \1"
#: mypy's wording and spelling that changed between versions, mapped to one form.
_NOISE: List[Tuple["re.Pattern[str]", Union[str, Callable[["re.Match[str]"], str]]]] = [
    (re.compile(r"Cannot infer type argument \d+ of (\"\w+\")"), _INFER),
    (re.compile(r"Cannot infer value of type parameter \"\w+\" of (\"\w+\")"), _INFER),
    (re.compile(r"\bbuiltins\.(list|tuple|dict|set|int|str|float|bool|object)\b"), r"\1"),
    (re.compile(r"\b(?:typing\.)?(List|Tuple|Dict|Set)\["), lambda m: m.group(1).lower() + "["),
    (re.compile(r"<nothing>|\bNoReturn\b"), "Never"),
    (re.compile(r"[ \t]+$"), ""),
]
#: Lines that carry no information about our types (summaries, links to mypy's docs).
_DROP = re.compile(r"^(Found \d+ errors? in|Success: no issues found|.*: note: See https?://)")


def regenerating() -> bool:
    return REGENERATE or os.environ.get(REGENERATE_ENV, "") not in ("", "0")


def normalise(message: str) -> str:
    """One mypy message (without the path) in a form that does not depend on mypy's version."""
    for pattern, repl in _NOISE:
        message = pattern.sub(repl, message)
    return _pep604(message)


_UNION_START = re.compile(r"\b(?:typing\.)?(Union|Optional)\[")


def _pep604(text: str) -> str:
    """``Union[A, B]`` as ``A | B`` and ``Optional[A]`` as ``A | None`` (older mypy's spelling)."""
    while True:
        match = _UNION_START.search(text)
        if match is None:
            return text
        depth, start, items, end = 0, match.end(), [], None
        for pos in range(match.end(), len(text)):
            char = text[pos]
            if char == "[":
                depth += 1
            elif char == "]" and depth:
                depth -= 1
            elif char == "]":
                items.append(text[start:pos].strip())
                end = pos
                break
            elif char == "," and not depth:
                items.append(text[start:pos].strip())
                start = pos + 1
        if end is None:
            return text
        if match.group(1) == "Optional":
            items.append("None")
        text = text[: match.start()] + " | ".join(items) + text[end + 1 :]


def _mypy_env() -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MYPY")}
    env["MYPYPATH"] = str(ROOT)
    env["NO_COLOR"] = "1"
    return env


#: mypy's messages grouped by module, its stderr and its exit status.
MypyResult = Tuple[Dict[str, List[str]], str, int]


def run_mypy(config: str, modules: List[str], workdir: Path) -> MypyResult:
    """Run mypy once on ``modules`` with ``config``; messages grouped by module."""
    workdir.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "mypy",
        "--config-file",
        str(CONFIG_DIR / config),
        "--cache-dir",
        str(workdir / ".mypy_cache"),
        "--show-error-codes",
        "--no-error-summary",
        "--hide-error-context",
        "--no-pretty",
        "--no-color-output",
        *[str(MODULE_DIR / f"{name}.py") for name in modules],
    ]
    proc = subprocess.run(
        command, cwd=str(workdir), env=_mypy_env(), capture_output=True, text=True, timeout=900
    )
    by_module: Dict[str, List[Tuple[int, str]]] = defaultdict(list)
    for raw in proc.stdout.splitlines():
        if not raw.strip() or _DROP.match(raw):
            continue
        match = _MESSAGE.match(raw)
        if match is None:
            by_module["<unparsed>"].append((0, raw))
            continue
        key = match.group("module")
        if key not in modules:
            key = match.group("path") + key
        by_module[key].append((int(match.group("line")), normalise(match.group("rest"))))
    # Sort by line only (stable): messages of one line keep mypy's order.
    result = {
        key: [f"{line}: {text}" for line, text in sorted(items, key=lambda item: item[0])]
        for key, items in by_module.items()
    }
    return result, proc.stderr, proc.returncode


@pytest.fixture(scope="session")
def mypy_results(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, MypyResult]:
    results = {}
    for config in sorted(set(CASES.values())):
        modules = sorted(name for name, cfg in CASES.items() if cfg == config)
        workdir = tmp_path_factory.mktemp(f"mypy-{config[:-4]}")
        results[config] = run_mypy(config, modules, workdir)
    return results


def _marked_lines(module: str) -> Dict[int, Set[str]]:
    marks: Dict[int, Set[str]] = {}
    source = (MODULE_DIR / f"{module}.py").read_text().splitlines()
    for number, text in enumerate(source, start=1):
        match = _MARKER.search(text)
        if match:
            marks[number] = {code.strip() for code in match.group("codes").split(",")}
    return marks


def _reveal_lines(module: str) -> Iterator[int]:
    source = (MODULE_DIR / f"{module}.py").read_text().splitlines()
    for number, text in enumerate(source, start=1):
        if re.match(r"\s*reveal_type\(", text):
            yield number


def _parse(lines: List[str]) -> List[Tuple[int, str, str]]:
    """(line, severity, code) of each message."""
    parsed = []
    for text in lines:
        number, severity, rest = text.split(": ", 2)
        code_match = _CODE.search(rest)
        parsed.append((int(number), severity, code_match.group("code") if code_match else ""))
    return parsed


@pytest.mark.parametrize("module", sorted(CASES))
def test_mypy_output_matches_expected(
    module: str, mypy_results: Dict[str, MypyResult]
) -> None:
    by_module, stderr, returncode = mypy_results[CASES[module]]
    assert returncode in (0, 1), f"mypy crashed (exit {returncode}):\n{stderr}"
    assert stderr == "", stderr
    actual = by_module.get(module, [])
    expected_path = OUTPUT_DIR / f"{module}.txt"
    if regenerating():
        expected_path.write_text("".join(f"{line}\n" for line in actual))
    expected = [line for line in expected_path.read_text().splitlines() if line.strip()]
    diff = "\n".join(
        difflib.unified_diff(
            expected, actual, f"expected {expected_path.name}", "mypy", lineterm=""
        )
    )
    assert actual == expected, f"mypy output for {module}.py differs from the expected one:\n{diff}"


@pytest.mark.parametrize("module", sorted(m for m in CASES if m.startswith("success_")))
def test_success_modules_have_no_errors_and_reveal_every_type(
    module: str, mypy_results: Dict[str, MypyResult]
) -> None:
    messages = mypy_results[CASES[module]][0].get(module, [])
    errors = [text for text in messages if ": error: " in text]
    assert not errors, "\n".join(errors)
    revealed = {line for line, severity, _ in _parse(messages) if severity == "note"}
    missing = [line for line in _reveal_lines(module) if line not in revealed]
    assert not missing, f"reveal_type on lines {missing} of {module}.py revealed nothing"
    # Precise types: a revealed type with Any in it must be marked as expected in the source
    # (a trailing "# reveals Any: <why>"), e.g. a documented limit of Thinc's chain().
    source = (MODULE_DIR / f"{module}.py").read_text().splitlines()
    for text in messages:
        number, severity, rest = text.split(": ", 2)
        if severity == "note" and re.search(r"\bAny\b", rest):
            assert "# reveals Any:" in source[int(number) - 1], f"{module}.py:{text}"


@pytest.mark.parametrize("module", sorted(m for m in CASES if m.startswith("fail_")))
def test_fail_modules_are_flagged_where_marked(
    module: str, mypy_results: Dict[str, MypyResult]
) -> None:
    messages = mypy_results[CASES[module]][0].get(module, [])
    marks = _marked_lines(module)
    assert marks, f"{module}.py marks no line with '# E: <code>'"
    reported: Dict[int, Set[str]] = defaultdict(set)
    for line, severity, code in _parse(messages):
        if severity == "error":
            reported[line].add(code)
    for line, codes in sorted(marks.items()):
        missing = codes - reported.get(line, set())
        got = sorted(reported.get(line, set()))
        assert not missing, f"{module}.py:{line}: expected {sorted(missing)}, mypy reported {got}"
    unmarked = sorted(set(reported) - set(marks))
    assert not unmarked, f"{module}.py: errors on unmarked lines {unmarked}: {messages}"


def test_no_messages_outside_the_modules(
    mypy_results: Dict[str, MypyResult]
) -> None:
    stray = {
        key: lines
        for by_module, _, _ in mypy_results.values()
        for key, lines in by_module.items()
        if key not in CASES
    }
    assert not stray, stray


def _public_constructors() -> List[str]:
    """The names in ``thinc_trf_layers.__all__`` that are functions returning a Model."""
    import inspect

    import thinc_trf_layers
    from thinc.api import Model

    names = []
    for name in thinc_trf_layers.__all__:
        obj = getattr(thinc_trf_layers, name)
        if not inspect.isfunction(obj):
            continue
        returns = inspect.signature(obj, eval_str=True).return_annotation
        if getattr(returns, "__origin__", returns) is Model:
            names.append(name)
    return names


def test_every_public_constructor_is_revealed() -> None:
    """Each public layer's type is pinned by a ``reveal_type(name(...))`` in a success module."""
    constructors = _public_constructors()
    assert "select_token" in constructors and "map_list" in constructors
    sources = "\n".join(
        (MODULE_DIR / f"{module}.py").read_text()
        for module in CASES
        if module.startswith("success_")
    )
    missing = [name for name in constructors if not re.search(rf"reveal_type\({name}\(", sources)]
    assert not missing, f"no reveal_type(<name>(...)) in modules/success_*.py for {missing}"


def test_every_module_has_a_case_and_an_output() -> None:
    modules = {path.stem for path in MODULE_DIR.glob("*.py")}
    outputs = {path.stem for path in OUTPUT_DIR.glob("*.txt")}
    configs = {path.name for path in CONFIG_DIR.glob("*.ini")}
    assert modules == set(CASES), "every module needs an entry in CASES, and only those"
    assert outputs == set(CASES), "every module needs an expected output, and only those"
    assert set(CASES.values()) <= configs
    assert all(m.startswith(("success_", "fail_")) for m in CASES)


@pytest.mark.parametrize(
    "message,expected",
    [
        (
            'error: Cannot infer type argument 2 of "chain"  [misc]',
            'error: Cannot infer type argument of "chain"  [misc]',
        ),
        (
            'error: Cannot infer value of type parameter "MidT" of "chain"  [misc]',
            'error: Cannot infer type argument of "chain"  [misc]',
        ),
        (
            'note: Revealed type is "thinc.model.Model[builtins.list[Floats3d], <nothing>]"',
            'note: Revealed type is "thinc.model.Model[list[Floats3d], Never]"',
        ),
        ("note: Revealed type is \"typing.List[int]\"   ", 'note: Revealed type is "list[int]"'),
        (
            'note: Revealed type is "Model[Tuple[Floats3d, Union[Ints1d, Ints2d]], Floats2d]"',
            'note: Revealed type is "Model[tuple[Floats3d, Ints1d | Ints2d], Floats2d]"',
        ),
        (
            'note: Revealed type is "List[Union[A, Optional[Dict[str, B]]]]"',
            'note: Revealed type is "list[A | dict[str, B] | None]"',
        ),
    ],
)
def test_normalise(message: str, expected: str) -> None:
    assert normalise(message) == expected


def test_message_paths_are_stripped() -> None:
    match = _MESSAGE.match("/tmp/x/typing_tests/modules/fail_pooling.py:12: error: bad  [misc]")
    assert match is not None
    parts = (match.group("module"), match.group("line"), match.group("rest"))
    assert parts == ("fail_pooling", "12", "error: bad  [misc]")
    windows = _MESSAGE.match(r"C:\x\modules\success_mixing.py:3: note: Revealed type is \"int\"")
    assert windows is not None and windows.group("module") == "success_mixing"


def test_regeneration_is_off() -> None:
    """Fails while outputs are being regenerated, so a regenerating run is never green."""
    assert REGENERATE is False, "switch REGENERATE back to False before committing"
    assert not regenerating(), f"unset {REGENERATE_ENV}: outputs were rewritten, review the diff"
