"""A pytest plugin that runs the peers' own tests with their architecture's names
replaced by ours: spacy-transformers' and spacy-curated-transformers' test modules, from
the installed packages.

Loaded by ``tests/integration/test_peer_suites.py`` in a child pytest process (``-p
rename_in_peer_tests``). ``$TTL_RENAMES`` (JSON: a list of ``[module, old, new]``, module
being a dotted name or ``"*"``) says what to replace in which test module's source: an
import hook reads each ``spacy_transformers.tests.*`` / ``spacy_curated_transformers.tests.*``
module from its installed file, replaces the strings and compiles it under its own file
name (nothing is copied or written). With no renames the modules run as shipped: the
baseline.

The peers' tests load Hugging Face models by Hub name (``distilbert-base-uncased``,
``albert-base-v2``, ``bert-base-cased``...); with no network, every name that is not a
folder loads the offline all-MiniLM-L6-v2 (``$TTL_MODEL_PATH``) instead, in both runs,
with its own special tokens.
"""
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from typing import Any, List, Optional, Sequence

PACKAGES = ("spacy_transformers.tests", "spacy_curated_transformers.tests")
RENAMES: List[Sequence[str]] = json.loads(os.environ.get("TTL_RENAMES", "[]"))
RENAMED: List[str] = []


class RenamingLoader(importlib.machinery.SourceFileLoader):
    def get_data(self, path: str) -> Any:
        data = super().get_data(path)
        if not path.endswith(".py"):
            return data
        source = data.decode("utf-8")
        for module, old, new in RENAMES:
            if module in ("*", self.name) and old in source:
                source = source.replace(old, new)
                RENAMED.append(f"{self.name}: {old!r} -> {new!r}")
        return source.encode("utf-8")

    def path_stats(self, path: str) -> Any:
        raise OSError("no bytecode cache for renamed sources")  # always compile the renamed source


class RenamingFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Optional[Sequence[str]], target: Any = None) -> Any:
        if not any(name.startswith(p + ".") for p in PACKAGES):
            return None
        for entry in path or []:
            base = os.path.join(entry, name.rsplit(".", 1)[-1])
            for file, is_pkg in ((os.path.join(base, "__init__.py"), True), (base + ".py", False)):
                if os.path.isfile(file):
                    loader = RenamingLoader(name, file)
                    return importlib.util.spec_from_file_location(
                        name, file, loader=loader, submodule_search_locations=[base] if is_pkg else None
                    )
        return None


def _redirect_hub_names(model_path: str) -> None:
    import transformers

    for cls in (transformers.AutoTokenizer, transformers.AutoConfig, transformers.AutoModel):
        original = cls.from_pretrained.__func__  # type: ignore[attr-defined]

        def from_pretrained(klass: Any, name: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            if isinstance(name, str) and not os.path.exists(name):
                # the Hub model's own special tokens (gpt2's "<|endoftext|>" as pad_token) are not
                # in the stand-in's vocabulary: it keeps its own
                for key in ("revision", "pad_token"):
                    kwargs.pop(key, None)
                name = model_path
            return _original(klass, name, *args, **kwargs)

        cls.from_pretrained = classmethod(from_pretrained)  # type: ignore[method-assign,assignment]


def pytest_configure(config: Any) -> None:
    sys.meta_path.insert(0, RenamingFinder())
    _redirect_hub_names(os.environ["TTL_MODEL_PATH"])


def pytest_report_header(config: Any) -> str:
    return "peer tests renamed: " + ("; ".join(f"{m}: {o!r} -> {n!r}" for m, o, n in RENAMES) or "nothing (baseline)")


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    path = os.environ.get("TTL_RENAME_REPORT")
    if path:
        with open(path, "w") as f:
            json.dump(sorted(set(RENAMED)), f)
