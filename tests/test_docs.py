"""The docs run as written: README.md and docs/*.md.

- every page's Python blocks, in order in one namespace, in a fresh process, with the
  printed output compared to the ```text block that follows (pages that import spaCy,
  torch or transformers run in tests/integration/test_doc_snippets_spacy.py);
- every Thinc config block (``[model]``) resolved, initialized and run on a sample;
- typing.md's examples through mypy with Thinc's plugin, against the output shown;
- every fence has a language, every ```bash block runs or is listed with the reason it
  does not, links point at pages that exist, the README starts with the two commands.

The rules the pages follow are in tests/doc_snippets.py.
"""
import os
import pathlib
import re
import subprocess
import sys
from typing import List, Set, Tuple

import pytest

from doc_snippets import (
    DOCS,
    ROOT,
    SHOWN_ONLY,
    Block,
    blocks,
    check_thinc_config,
    config_blocks,
    is_thinc_config,
    needs_integration,
    page_name,
    pages,
    python_blocks,
    run_page,
    shown_only_key,
)

#: Fence languages a page may use: python and ini run, the others are shown only.
FENCES = {"python", "ini", "bash", "text", "cfg", "toml"}
#: Pages allowed unlabelled fences (none).
UNLABELLED_OK: Set[str] = set()

CORE_PAGES = [p for p in pages() if python_blocks(p) and not needs_integration(p)]
THINC_CONFIGS = [b for p in pages() for b in config_blocks(p) if is_thinc_config(b.code)]


@pytest.mark.parametrize("page", CORE_PAGES, ids=page_name)
def test_python_blocks_run(page: pathlib.Path, tmp_path: pathlib.Path) -> None:
    run_page(page, tmp_path)


@pytest.mark.parametrize("block", THINC_CONFIGS, ids=lambda b: b.where)
def test_thinc_config_blocks_build_and_run(block: Block) -> None:
    check_thinc_config(block)


def test_every_fence_has_a_known_language() -> None:
    bad = [
        f"{b.where}: ```{b.lang}"
        for p in pages()
        for b in blocks(p)
        if b.lang not in FENCES and not (b.lang == "" and page_name(p) in UNLABELLED_OK)
    ]
    assert not bad, "fences must be one of " + ", ".join(sorted(FENCES)) + ":\n" + "\n".join(bad)


def test_every_config_block_is_checked() -> None:
    """A config block is a Thinc config ([model]) or a spaCy one (the integration tests)."""
    for page in pages():
        for block in config_blocks(page):
            first = re.search(r"^\[([^\]]+)\]", block.code, re.M)
            assert first is not None, f"{block.where}: a config block without a section"
            top = first.group(1).split(".")[0]
            assert top in ("model", "nlp", "paths", "components", "training", "initialize"), (
                f"{block.where}: [{first.group(1)}] is neither a Thinc config ([model]) nor a "
                f"spaCy one; use ```cfg for other configuration files"
            )


def test_every_command_block_runs_or_says_why_not() -> None:
    """A ```bash block is marked to run (tests/doc_snippets.py), or listed in SHOWN_ONLY
    with the reason; an entry of SHOWN_ONLY names a block that is there and not run."""
    shown = [b for p in pages() for b in blocks(p) if b.lang == "bash" and not b.runs]
    unlisted = [f"{b.where}: {shown_only_key(b)[1]}" for b in shown if shown_only_key(b) not in SHOWN_ONLY]
    assert not unlisted, (
        "```bash blocks that neither run nor say why (mark them `<!-- the tests run this -->`, "
        "or add them to SHOWN_ONLY with the reason):\n" + "\n".join(unlisted)
    )
    keys = [shown_only_key(b) for b in shown]
    assert len(keys) == len(set(keys)), f"two shown-only blocks with one key: {sorted(keys)}"
    stale = [key for key in SHOWN_ONLY if key not in keys]
    assert not stale, f"SHOWN_ONLY names blocks that run or are gone: {stale}"
    assert all(reason.strip() for reason in SHOWN_ONLY.values())


def test_readme_example_shows_its_output() -> None:
    """test_python_blocks_run[README.md] checks that the example prints it."""
    readme = python_blocks(ROOT / "README.md")
    assert readme and readme[0].output is not None, "the README's example shows its output"
    assert readme[0].output.strip() == "(2, 3)"


def test_readme_starts_with_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text()
    first_block = re.search(r"```bash\n(.*?)```", text, flags=re.S)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert commands[:2] == ["make demo", "make test"]


#: Pages that other work adds (trf2ragged's page); linked before they land.
PENDING_PAGES = {"wordpieces.md"}
LINK_PAGES = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted(DOCS.glob("*.md"))]


def test_doc_links_resolve() -> None:
    for page in LINK_PAGES:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            if pathlib.Path(target).name in PENDING_PAGES and not (page.parent / target).exists():
                continue
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


def anchors(page: pathlib.Path) -> List[str]:
    """The anchors GitHub gives the page's headings."""
    text = re.sub(r"^[ \t]*```.*?^[ \t]*```", "", page.read_text(), flags=re.M | re.S)
    seen: List[str] = []
    for heading in re.findall(r"^#{1,6}[ \t]+(.+?)[ \t]*$", text, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        n = sum(1 for s in seen if s == slug or re.fullmatch(re.escape(slug) + r"-\d+", s))
        seen.append(slug if n == 0 else f"{slug}-{n}")
    return seen


#: Links to a section that other, unfinished work is to add: (page, link). Remove an entry
#: when its section lands (the test then fails until it is removed).
PENDING_ANCHORS: Set[Tuple[str, str]] = set()


def test_doc_anchors_resolve() -> None:
    for page in LINK_PAGES:
        for target, anchor in re.findall(r"\]\(([^)#:]*)#([^)]+)\)", page.read_text()):
            if (page.name, f"{target}#{anchor}") in PENDING_ANCHORS:
                path = page.parent / target
                assert anchor not in anchors(path), f"{target}#{anchor} exists now: drop it from PENDING_ANCHORS"
                continue
            path = (page.parent / target) if target else page
            if not path.exists() or path.suffix != ".md":
                continue  # a missing page is test_doc_links_resolve's to report
            assert anchor in anchors(path), f"{page.name} links to {target}#{anchor}, not a heading of {path.name}"


# --- typing.md: the examples through mypy ---------------------------------------------


def _mypy_messages(stdout: str, cases: List[pathlib.Path]) -> List[List[str]]:
    per_case: List[List[str]] = [[] for _ in cases]
    for raw in stdout.splitlines():
        match = re.match(r"^(?:.*[/\\])?model_(\d+)\.py:(\d+): (.*)$", raw)
        if match is None or re.search(r": note: See https?://", raw):
            continue
        per_case[int(match.group(1))].append(f"model.py:{match.group(2)}: {match.group(3).rstrip()}")
    return per_case


def test_typing_page_examples_give_the_mypy_output_shown(tmp_path: pathlib.Path) -> None:
    pytest.importorskip("mypy")
    examples = [b for b in python_blocks(DOCS / "typing.md") if b.output is not None]
    assert examples, "typing.md shows mypy's output after its examples"
    cases = []
    for i, block in enumerate(examples):
        # one module per example (mypy refuses two modules of one name); shown as model.py
        case = tmp_path / f"model_{i}.py"
        case.write_text(block.code)
        cases.append(case)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MYPY")}
    env.update(MYPYPATH=str(ROOT), NO_COLOR="1")
    config = ROOT / "typing_tests" / "configs" / "mypy-plugin.ini"
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(config), "--cache-dir", str(tmp_path / "cache"),
         "--show-error-codes", "--no-error-summary", "--hide-error-context", "--no-pretty",
         "--no-color-output", *[str(c) for c in cases]],
        cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode in (0, 1) and "error: " not in proc.stderr, proc.stdout + proc.stderr
    for block, got in zip(examples, _mypy_messages(proc.stdout, cases)):
        assert block.output is not None
        shown = [line.rstrip() for line in block.output.strip().splitlines()]
        assert got == shown, f"{block.where}: mypy says\n" + "\n".join(got) + "\nthe page shows\n" + "\n".join(shown)



# --- the shipped configs ------------------------------------------------------------------


def test_the_configs_the_docs_name_ship_with_the_package(capsys: pytest.CaptureFixture) -> None:
    """Every config a page names (``config NAME``, ``config_path("NAME")``) is one of the
    package's, which the wheel ships (package-data), and ``config NAME`` prints its path."""
    from thinc_trf_layers.cli import main
    from thinc_trf_layers.configs import config_names, config_path

    names = config_names()
    assert names and all(config_path(name).is_file() for name in names)
    named = {m for p in pages() for m in re.findall(r"""(?:thinc_trf_layers config |config_path\(["'])(\w+)""", p.read_text())}
    assert "pooled_textcat" in named and named - {"NAME"} <= set(names), f"the docs name configs that do not ship: {sorted(named - set(names))}"
    assert '"configs/*.cfg"' in (ROOT / "pyproject.toml").read_text()
    assert main(["config", "pooled_textcat"]) == 0
    assert capsys.readouterr().out.strip() == str(config_path("pooled_textcat"))
    assert main(["config"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == names


def test_source_pointers_to_docs_resolve() -> None:
    """The package's docstrings and comments point to docs/ pages and headings for the
    long form: each pointer must name a page and a heading that exist."""
    sources = sorted((ROOT / "thinc_trf_layers").rglob("*.py")) + sorted(
        (ROOT / "thinc_trf_layers").rglob("*.p[yx]x")
    )
    found = 0
    for source in sources:
        for page, anchor in re.findall(r"docs/([\w.-]+\.md)(?:#([\w-]+))?", source.read_text()):
            found += 1
            path = DOCS / page
            where = f"{source.relative_to(ROOT)} points to docs/{page}"
            assert path.exists(), f"{where}, which does not exist"
            assert not anchor or anchor in anchors(path), f"{where}#{anchor}, not a heading"
    assert found > 20, "the docstrings point to the docs"
