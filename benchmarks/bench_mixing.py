"""Layer mixing: forward+backward of each mix against its roofline and two baselines.

For each mix, in the same run, on one core:
- ours: the layer (``model(Xs, is_train=True)`` then ``backprop(dY)``);
- roofline: one ``numpy.copyto`` of the bytes the forward and backward must read and
  write (see ``benchmarks.common.roofline``);
- numpy naive: the obvious NumPy version (``xp.stack`` the layers, then a weighted sum;
  backward with full-size temporaries);
- torch: ``torch.stack`` + softmax (or softplus) weights + sum, backward by autograd
  (``torch.autograd.grad`` for the inputs and the parameters), 1 thread.

Bytes per mix, with S the bytes of one layer and n layers of which u are used:
scalar_mix reads n*S (forward) + S + n*S (backward: dY and the layers, for the weights'
gradient) and writes S + n*S; weighted_layer_pooling the same with u; mean_last reads
u*S + S and writes S + u*S; concat_last reads and writes u*S (its backward need move
nothing: the gradients are views of dY's blocks, as with torch.cat). The zero gradients
of unused layers are not counted: they are read-only zero views that take no memory.
"""
from typing import Any, Callable, List, Tuple

import numpy

from thinc_trf_layers import concat_last, mean_last, scalar_mix, weighted_layer_pooling

from .common import Row, roofline, timeit

N_LAYERS = 13
K_LAST = 4
LAYER_START = 4


def _ours(model: Any, Xs: List[Any], dY_shape: Tuple[int, ...]) -> Callable[[], object]:
    model.initialize(X=Xs)
    dY = numpy.ones(dY_shape, dtype="float32")

    def run() -> object:
        Y, backprop = model(Xs, is_train=True)
        return backprop(dY)

    return run


def _ours_forward(model: Any, Xs: List[Any]) -> Callable[[], object]:
    return lambda: model.predict(Xs)


# --- naive NumPy -------------------------------------------------------------------


def _naive_weighted(Xs: List[Any], used: List[int], coefs: Any, want_dots: bool) -> Callable[[], object]:
    def run() -> object:
        S = numpy.stack([Xs[i] for i in used])
        Y = numpy.tensordot(coefs, S, axes=1)
        dY = numpy.ones_like(Y)
        dXs = [numpy.zeros_like(X) for X in Xs]
        for j, i in enumerate(used):
            dXs[i] = coefs[j] * dY
        if want_dots:
            dots = numpy.tensordot(S.reshape(len(used), -1), dY.reshape(-1), axes=1)
            return dXs, dots
        return dXs

    return run


def _naive_concat(Xs: List[Any], k: int) -> Callable[[], object]:
    n = len(Xs)

    def run() -> object:
        S = numpy.stack(Xs[n - k :], axis=2)  # (spans, pieces, k, width)
        Y = S.reshape(S.shape[0], S.shape[1], -1)
        dY = numpy.ones_like(Y).reshape(S.shape)
        dXs = [numpy.zeros_like(X) for X in Xs[: n - k]]
        dXs += [dY[:, :, j].copy() for j in range(k)]
        return dXs

    return run


# --- torch ---------------------------------------------------------------------------


def _torch(kind: str, Xs: List[Any]) -> Callable[[], object]:
    import torch

    inputs = [torch.from_numpy(X).requires_grad_(True) for X in Xs]
    n = len(Xs)
    if kind == "scalar_mix":
        params = [torch.zeros(n, requires_grad=True), torch.ones(1, requires_grad=True)]
    elif kind == "weighted_layer_pooling":
        params = [torch.full((n - LAYER_START,), float(numpy.log(numpy.e - 1)), requires_grad=True)]
    else:
        params = []

    def run() -> object:
        if kind == "scalar_mix":
            w = torch.softmax(params[0], dim=0)
            Y = params[1] * (w.view(-1, 1, 1, 1) * torch.stack(inputs)).sum(0)
        elif kind == "weighted_layer_pooling":
            a = torch.nn.functional.softplus(params[0])
            Y = (a.view(-1, 1, 1, 1) * torch.stack(inputs[LAYER_START:])).sum(0) / a.sum()
        elif kind == "mean_last":
            Y = torch.stack(inputs[n - K_LAST :]).mean(0)
        else:
            Y = torch.cat(inputs[n - K_LAST :], dim=-1)
        return torch.autograd.grad(Y, inputs + params, torch.ones_like(Y), allow_unused=True, materialize_grads=True)

    return run


def _cases(Xs: List[Any]) -> List[Tuple[str, Any, Callable[[], object], int, int, Tuple[int, ...]]]:
    """(name, model, naive, bytes read, bytes written, output shape) per mix."""
    n = len(Xs)
    S = Xs[0].nbytes
    shape = tuple(Xs[0].shape)
    wide = shape[:2] + (K_LAST * shape[2],)
    u = n - LAYER_START
    return [
        (
            "scalar_mix",
            scalar_mix(n),
            _naive_weighted(Xs, list(range(n)), numpy.full(n, 1 / n, dtype="float32"), True),
            n * S + S + n * S,
            S + n * S,
            shape,
        ),
        (
            "weighted_layer_pooling",
            weighted_layer_pooling(n, layer_start=LAYER_START),
            _naive_weighted(Xs, list(range(LAYER_START, n)), numpy.full(u, 1 / u, dtype="float32"), True),
            u * S + S + u * S,
            S + u * S,
            shape,
        ),
        (
            "mean_last",
            mean_last(K_LAST),
            _naive_weighted(Xs, list(range(n - K_LAST, n)), numpy.full(K_LAST, 1 / K_LAST, dtype="float32"), False),
            K_LAST * S + S,
            S + K_LAST * S,
            shape,
        ),
        (
            "concat_last",
            concat_last(K_LAST),
            _naive_concat(Xs, K_LAST),
            K_LAST * S,
            K_LAST * S,
            wide,
        ),
    ]


def _per_doc(Xs: List[Any], repeat: int) -> List[Row]:
    """The per-call overhead: the same bytes as Docs of one span each, through map_list."""
    from thinc_trf_layers import map_list

    n_docs = Xs[0].shape[0]
    docs = [[numpy.ascontiguousarray(X[i : i + 1]) for X in Xs] for i in range(n_docs)]
    batch = _ours(scalar_mix(len(Xs)), Xs, tuple(Xs[0].shape))
    t_batch = timeit(batch, repeat=repeat)
    model = map_list(scalar_mix(len(Xs)))
    model.initialize(X=docs)
    dYs = [numpy.ones(d[0].shape, dtype="float32") for d in docs]

    def per_doc() -> object:
        Ys, backprop = model(docs, is_train=True)
        return backprop(dYs)

    t_docs = timeit(per_doc, repeat=repeat)
    case = f"{n_docs} Docs x 1 span"
    return [
        Row(case, "ours: scalar_mix(13) on the batch", t_batch, 1.0),
        Row(case, "ours: map_list(scalar_mix(13)) per Doc", t_docs, t_docs / t_batch),
    ]


def run(quick: bool) -> List[Tuple[str, List[Row]]]:
    shape = (8, 64, 256) if quick else (32, 128, 768)
    repeat = 3 if quick else 5
    rng = numpy.random.RandomState(0)
    Xs = [rng.uniform(-1, 1, shape).astype("float32") for _ in range(N_LAYERS)]
    label = f"{N_LAYERS}x {'x'.join(map(str, shape))} f32"
    try:
        import torch  # noqa: F401

        has_torch = True
    except ImportError:
        has_torch = False
    rows: List[Row] = []
    fwd_rows: List[Row] = []
    for name, model, naive, n_read, n_written, out_shape in _cases(Xs):
        case = f"{name}"
        roof = roofline(n_read, n_written)
        rows.append(Row(case, "roofline: copyto of the bytes read+written", roof, 1.0, f"{label}"))
        ours = timeit(_ours(model, Xs, out_shape), repeat=repeat)
        rows.append(Row(case, f"ours: {model.name}", ours, ours / roof))
        t_naive = timeit(naive, repeat=repeat)
        rows.append(Row(case, "numpy naive: stack + weighted sum", t_naive, t_naive / roof))
        if has_torch:
            t_torch = timeit(_torch(name, Xs), repeat=repeat)
            rows.append(Row(case, "torch: stack + weights + sum, autograd", t_torch, t_torch / roof, "1 thread"))
        S = Xs[0].nbytes
        fwd_read = {"scalar_mix": N_LAYERS * S, "weighted_layer_pooling": (N_LAYERS - LAYER_START) * S}.get(
            name, K_LAST * S
        )
        fwd_written = int(numpy.prod(out_shape)) * 4
        roof_fwd = roofline(fwd_read, fwd_written)
        fwd_rows.append(Row(case, "roofline: copyto of the bytes read+written", roof_fwd, 1.0, label))
        t_fwd = timeit(_ours_forward(model, Xs), repeat=repeat)
        fwd_rows.append(Row(case, f"ours: {model.name}.predict", t_fwd, t_fwd / roof_fwd))
    doc_rows = _per_doc(Xs, repeat)
    return [
        (f"Layer mixing, forward+backward ({label}; ratio to the roofline)", rows),
        (
            f"scalar_mix per Doc: map_list over the {shape[0]} spans as Docs of one span each "
            "vs the batch (forward+backward; ratio to the batch)",
            doc_rows,
        ),
        (f"Layer mixing, forward only ({label}; ratio to the roofline)", fwd_rows),
    ]
