"""The package's surface: __all__, registry names and entry points agree."""
import ast
import pathlib
import re
import sys

import thinc_trf_layers

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = pathlib.Path(__file__).parent.parent
PKG = ROOT / "thinc_trf_layers"


def test_all_matches_the_imports() -> None:
    tree = ast.parse((PKG / "__init__.py").read_text())
    imported = {
        alias.asname or alias.name
        for node in tree.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert set(thinc_trf_layers.__all__) == imported | {"__version__"}
    for name in thinc_trf_layers.__all__:
        assert hasattr(thinc_trf_layers, name), name


def _decorated(kind: str) -> set:
    # the name may follow on the next line, after a comment (a type: ignore)
    pattern = re.compile(
        r"@registry\." + kind + r'\(\s*(?:#[^\n]*\n\s*)?"(thinc_trf_layers\.[A-Za-z0-9_]+\.v\d+)"'
    )
    names = set()
    for path in PKG.rglob("*.py"):
        names.update(pattern.findall(path.read_text()))
    return names


def test_thinc_layers_entry_points_match_the_decorators() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    entry = meta["project"]["entry-points"]["thinc_layers"]
    assert set(entry) == _decorated("layers")
    for name, target in entry.items():
        module, func = target.split(":")
        mod = __import__(module, fromlist=[func])
        assert getattr(mod, func).__name__ == func, name


def test_spacy_architecture_entry_points_match_the_decorators() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    entry = meta["project"]["entry-points"].get("spacy_architectures", {})
    assert set(entry) == _decorated("architectures")


def test_registry_names_follow_the_scheme() -> None:
    for name in _decorated("layers") | _decorated("architectures"):
        assert re.fullmatch(r"thinc_trf_layers\.[A-Za-z0-9_]+\.v\d+", name), name


def test_every_benchmark_module_compiles() -> None:
    """No test runs the benchmarks (they time, they do not assert), so a syntax error in
    one would otherwise show only when someone runs it."""
    bench = ROOT / "benchmarks"
    if not bench.is_dir():  # (a copy of the tests without the repository)
        return
    files = sorted(bench.glob("*.py"))
    assert any(f.name == "bench_core.py" for f in files)
    for f in files:
        compile(f.read_text(), str(f), "exec")
