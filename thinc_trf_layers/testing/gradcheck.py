"""A finite-difference check of a model's backprop against its forward (``check_gradients``)."""

import dataclasses
from typing import Any, Callable, Iterator, List, Optional, Tuple

import numpy
from thinc.api import Model, NumpyOps, get_array_module
from thinc.types import Padded, Ragged

from ..wordpieces import host

Path = Tuple[Any, ...]


class GradientCheckError(AssertionError):
    """The analytic gradient disagrees with the finite-difference estimate."""


def check_gradients(
    model: Model[Any, Any],
    X: Any,
    *,
    eps: float = 1e-6,
    rtol: float = 1e-4,
    atol: float = 1e-6,
    params: bool = True,
    inputs: bool = True,
    max_checks: int = 400,
    is_train: bool = True,
    seed: int = 0,
) -> None:
    """Check ``model``'s backprop against central differences of ``L = sum(Y * R)`` on a
    float64 copy; raises ``GradientCheckError`` naming where they disagree. The forward must
    be deterministic. See docs/testing.md."""
    if not isinstance(model, Model):
        raise TypeError(
            "check_gradients: expected a thinc Model as the first argument, got "
            f"{type(model).__module__}.{type(model).__qualname__} ({model!r:.80}). Pass the model "
            "itself (e.g. check_gradients(reduce_mean(), X)), initialized."
        )
    model = model.copy()
    for node in model.walk():
        if isinstance(node.ops, NumpyOps) and getattr(node.ops, "use_blis", False):
            node.ops = NumpyOps(use_blis=False)  # blis 1.x's float64 gemm(trans2=True) is wrong
        for name in node.param_names:
            if node.has_param(name):
                param = node.get_param(name)
                node.set_param(name, param.astype("float64"))  # type: ignore[arg-type]
            if node.has_grad(name):
                node.get_grad(name).fill(0)  # (a forward writes no gradient)
    X = _map_leaves(X, lambda a: _xp(a).ascontiguousarray(a.astype("float64")))
    rng = numpy.random.RandomState(seed)

    Y, backprop = model(X, is_train=is_train)
    # in Y's dtype: float64 wherever an input array reached it; an output that none did
    # (an empty batch) keeps the dtype the layer gave it
    R = _map_leaves(Y, lambda a: _xp(a).asarray(rng.uniform(-1.0, 1.0, a.shape).astype(a.dtype)))
    dX = backprop(R)
    failures: List[str] = []

    def loss() -> float:
        total = 0.0
        for path, y in _leaves(model(X, is_train=is_train)[0]):
            total += float((host(y).astype("float64") * host(_get_path(R, path))).sum())
        return total

    def compare(where: str, array: Any, grad: Any) -> None:
        if not array.flags.c_contiguous:
            raise ValueError(
                f"check_gradients: {where} is not contiguous, so it cannot be perturbed in place"
            )
        flat = array.reshape(-1)
        grad_flat = numpy.asarray(host(grad), dtype="float64").reshape(-1)
        n = int(flat.size)
        idx = numpy.arange(n)
        if n > max_checks:
            idx = numpy.sort(rng.choice(n, max_checks, replace=False))
        for i in idx:
            orig = float(flat[i])
            flat[i] = orig + eps
            up = loss()
            flat[i] = orig - eps
            down = loss()
            flat[i] = orig
            numeric = (up - down) / (2 * eps)
            analytic = float(grad_flat[i])
            if not abs(analytic - numeric) <= atol + rtol * abs(numeric):
                at = [int(p) for p in numpy.unravel_index(int(i), array.shape)]
                failures.append(f"{where}{at}: analytic {analytic:.6g}, numeric {numeric:.6g}")

    if inputs:
        for path, x in _leaves(X):
            grad = _get_path(dX, path)
            if grad is None:
                grad = _xp(x).zeros_like(x)
            where = "input" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
            if tuple(grad.shape) != tuple(x.shape):
                failures.append(
                    f"{where}: backprop returned shape {tuple(grad.shape)}, input has "
                    f"{tuple(x.shape)}"
                )
                continue
            compare(where, x, grad)
    if params:
        for node in model.walk():
            for name in filter(node.has_param, node.param_names):
                param = node.get_param(name)
                grad = node.get_grad(name) if node.has_grad(name) else _xp(param).zeros_like(param)
                compare(f"param {name!r} of layer {node.name!r}", param, grad)
    if failures:
        shown = "\n  ".join(failures[:20])
        more = f"\n  ... and {len(failures) - 20} more" if len(failures) > 20 else ""
        raise GradientCheckError(
            f"check_gradients({model.name}): {len(failures)} gradient(s) disagree with finite "
            f"differences (eps={eps}, rtol={rtol}, atol={atol}):\n  {shown}{more}"
        )


def _xp(array: Any) -> Any:
    return get_array_module(array)  # type: ignore[no-untyped-call]


def _is_float_array(obj: Any) -> bool:
    return hasattr(obj, "shape") and hasattr(obj, "dtype") and getattr(obj.dtype, "kind", "") == "f"


def _leaves(obj: Any, path: Path = ()) -> Iterator[Tuple[Path, Any]]:
    """The floating-point arrays in a structure, with their paths."""
    if _is_float_array(obj):
        yield path, obj
    elif isinstance(obj, Ragged):
        yield from _leaves(obj.dataXd, path + ("dataXd",))
    elif isinstance(obj, Padded):
        yield from _leaves(obj.data, path + ("data",))
    elif isinstance(obj, (list, tuple)):
        for i, item in enumerate(obj):
            yield from _leaves(item, path + (i,))
    elif isinstance(obj, dict):
        for key, item in obj.items():
            yield from _leaves(item, path + (key,))
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for field in dataclasses.fields(obj):
            yield from _leaves(getattr(obj, field.name), path + (field.name,))


def _map_leaves(obj: Any, fn: Callable[[Any], Any]) -> Any:
    """A copy of a structure with every floating-point array replaced by ``fn(array)``."""
    if _is_float_array(obj):
        return fn(obj)
    if isinstance(obj, Ragged):
        return Ragged(_map_leaves(obj.dataXd, fn), obj.lengths)
    if isinstance(obj, Padded):
        return Padded(_map_leaves(obj.data, fn), obj.size_at_t, obj.lengths, obj.indices)
    if isinstance(obj, list):
        return [_map_leaves(item, fn) for item in obj]
    if isinstance(obj, tuple):
        return tuple(_map_leaves(item, fn) for item in obj)
    if isinstance(obj, dict):
        return {key: _map_leaves(item, fn) for key, item in obj.items()}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        names = [f.name for f in dataclasses.fields(obj) if f.init]
        return dataclasses.replace(obj, **{n: _map_leaves(getattr(obj, n), fn) for n in names})
    return obj


def _get_path(obj: Any, path: Path) -> Optional[Any]:
    for key in path:
        if obj is None:
            return None
        if isinstance(key, int) and isinstance(obj, (list, tuple)):
            obj = obj[key] if key < len(obj) else None
        elif isinstance(obj, dict):
            obj = obj.get(key)
        else:
            obj = getattr(obj, key, None)
    return obj
