"""A pytest plugin that swaps our layers in for Thinc's, to run Thinc's own tests on them.

Loaded by ``test_thinc_upstream.py`` in a child pytest process (``-p
swap_thinc_layers``) that runs test modules from the installed Thinc package. At
``pytest_configure``, before those modules are imported, every name below is replaced by
ours wherever Thinc holds the original function: ``thinc.api``, ``thinc.layers``, each
``thinc.*`` module that imported it (``Embed`` and ``HashEmbed`` build their ``column``
lookup with ``ints_getitem``), and the ``registry.layers`` entries (``reduce_max.v1``...)
that ``test_layers_api.py`` builds its layers from. Only layers whose creation function
takes the same arguments as Thinc's are swapped.

Every call of a swapped creation function is counted; at the end of the session the
counts are written as JSON to the file named by ``$TTL_SWAP_REPORT``, so that the parent
test can check that the upstream tests really ran our layers.
"""
import functools
import json
import os
import sys
from collections import Counter
from typing import Any, Callable, Dict

import thinc.api
import thinc.layers
from thinc.api import registry

import thinc_trf_layers

#: Thinc's name -> ours (Thinc's ``floats_getitem`` and ``ints_getitem`` are
#: ``array_getitem`` under a narrower type: ours serves all three).
SWAPS: Dict[str, Callable[..., Any]] = {
    "reduce_first": thinc_trf_layers.reduce_first,
    "reduce_last": thinc_trf_layers.reduce_last,
    "reduce_max": thinc_trf_layers.reduce_max,
    "reduce_mean": thinc_trf_layers.reduce_mean,
    "reduce_sum": thinc_trf_layers.reduce_sum,
    "map_list": thinc_trf_layers.map_list,
    "array_getitem": thinc_trf_layers.array_getitem,
    "floats_getitem": thinc_trf_layers.array_getitem,
    "ints_getitem": thinc_trf_layers.array_getitem,
}
#: Thinc's registry names -> the name in SWAPS.
REGISTERED = {f"{name}.v1": name for name in ("reduce_first", "reduce_last", "reduce_max", "reduce_mean", "reduce_sum")}

CALLS: Counter = Counter()
PATCHED: Dict[str, int] = {}


def _counted(name: str, ours: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(ours)
    def make(*args: Any, **kwargs: Any) -> Any:
        CALLS[name] += 1
        return ours(*args, **kwargs)

    return make


def pytest_configure(config: Any) -> None:
    thinc_getitem = sys.modules["thinc.layers.array_getitem"]  # the module (its name is shadowed)
    originals = {name: getattr(thinc_getitem, name) for name in ("array_getitem", "floats_getitem", "ints_getitem")}
    for name in SWAPS:
        if name not in originals:
            originals[name] = getattr(thinc.layers, name)
    for name, ours in SWAPS.items():
        original = originals[name]
        wrapped = _counted(name, ours)
        PATCHED[name] = 0
        for mod_name, module in list(sys.modules.items()):
            if not (mod_name == "thinc" or mod_name.startswith("thinc.")) or module is None:
                continue
            if getattr(module, name, None) is original:
                setattr(module, name, wrapped)
                PATCHED[name] += 1
        assert getattr(thinc.api, name, wrapped) is wrapped, name
    for reg_name, name in REGISTERED.items():
        registry.layers.register(reg_name, func=_counted(name, SWAPS[name]))


def pytest_report_header(config: Any) -> str:
    return "thinc_trf_layers swapped in for Thinc's: " + ", ".join(
        f"{name} ({n} modules)" for name, n in sorted(PATCHED.items())
    )


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    path = os.environ.get("TTL_SWAP_REPORT")
    if path:
        with open(path, "w") as f:
            json.dump({"calls": dict(CALLS), "patched": PATCHED}, f)
