from typing import Any, Callable, List, Optional, Sequence, Tuple, cast

from thinc.api import Model, registry
from thinc.types import Floats2d

from ..backends.pooling import LAZY_ZEROS_BYTES, get_pooling_backend
from ..containers.base import DocTensor, check_batch, check_grad_factor, check_int, check_reach, tensor_gradients
from ..types import TransformerOutputT
from ..util import LayerInputError, check_grad
from ..wordpieces import batch_layout, zeros_block

# Sequence, not List: List is invariant, so a List[TransformerOutput] (what
# TransformerOutput.from_hf returns) would not be accepted as a List of the Union.
InT = Sequence[TransformerOutputT]


@registry.layers("thinc_trf_layers.cls_pool.v1")
def cls_pool(
    *, index: int = 0, token_index: int = 0, grad_factor: float = 1.0
) -> Model[Sequence[TransformerOutputT], Floats2d]:
    """Each Doc's [CLS] vector, averaged over its spans: (docs, width).

    The one-call form of ``chain(trf2tensor(index), map_list(select_token(token_index)),
    list2ragged(), reduce_mean())``. ``token_index`` counts within each span's *real*
    wordpieces: 0 is [CLS], -1 the last real wordpiece ([SEP] for BERT), whatever the
    padding. Spans with no wordpieces are left out of the mean; a Doc without any span
    gives a row of zeros. The mean is taken in at least float32; the output keeps the
    input's dtype.

    Backprop gives one gradient of the picked tensor's shape per Doc (the upstream
    containers want the full tensor), all of them views of one block. On NumpyOps with
    the compiled kernels (float32/float64) the block is written in one pass, zeros and
    picked rows, with streaming stores once it is large; elsewhere, and for a block of
    32 MiB or more (where fresh zeros from the OS cost less), the picked rows are put
    into zeros.

    spacy-curated-transformers strips the BOS/[CLS] piece from its outputs, so its
    containers are refused (use ``trf_pool(reduce_first())`` for the first wordpiece).
    """
    name = f"cls_pool({index}, {token_index})"
    check_int(name, "index", index)
    check_int(name, "token_index", token_index)
    factor = check_grad_factor(name, grad_factor)
    return Model(
        name, forward, attrs={"index": index, "token_index": token_index, "grad_factor": factor}
    )


def forward(
    model: Model[InT, Floats2d], Xs: InT, is_train: bool
) -> Tuple[Floats2d, Callable[[Floats2d], InT]]:
    index: int = model.attrs["index"]
    token_index: int = model.attrs["token_index"]
    grad_factor: float = model.attrs["grad_factor"]
    adapters = check_batch(model.name, Xs)
    for i, adapter in enumerate(adapters):
        if adapter.no_class_token is not None:
            raise LayerInputError(
                f"{model.name}: item {i} of the batch is a {adapter.name}: {adapter.no_class_token}"
            )
    docs = [a.read_tensor(model.name, model.ops, X, index) for X, a in zip(Xs, adapters)]
    check_reach(model, is_train, grad_factor, all(doc.reaches for doc in docs), f"tensor {index}")
    width, dtype = batch_layout(model.name, docs)
    xp = model.ops.xp
    acc: Any = "float64" if xp.dtype(dtype) == xp.dtype("float64") else "float32"
    # the picked rows: their Doc, their row in the Doc's tensor seen as (spans * wordpieces,
    # width), and the spans each Doc's mean is over
    pick_doc: List[int] = []
    pick_row: List[int] = []
    n_spans: List[int] = []
    for i, doc in enumerate(docs):
        k = 0
        n_pieces = int(doc.tensor.shape[1]) if doc.tensor is not None else -1
        for s, n in enumerate(doc.lengths):
            if n == 0:
                continue
            p = token_index if token_index >= 0 else n + token_index
            if not 0 <= p < n:
                raise LayerInputError(
                    f"{model.name}: token index {token_index} is out of range for span {s} of "
                    f"Doc {i}, which has {n} real wordpiece(s); expected an index in [{-n}, {n})."
                )
            if n_pieces >= 0:
                pick_doc.append(i)
                pick_row.append(s * n_pieces + p)
                k += 1
        n_spans.append(k)
    be = get_pooling_backend(model.ops)
    kernel = be.pieces and be.pieces_dtype(xp.dtype(dtype)) and width > 0 and len(docs) > 0
    Yout: Floats2d = _mean_of_picks(model, be, docs, pick_doc, pick_row, n_spans, width, dtype, acc, kernel)
    out_dtype = Yout.dtype
    out_shape = tuple(Yout.shape)

    def backprop(dY: Floats2d) -> InT:
        check_grad(model.name, dY, out_shape, out_dtype)
        # one block for the batch's gradients (views of it), rows of the Docs that get one
        shapes: List[Optional[Tuple[int, ...]]] = []
        offsets: List[int] = []
        at = 0
        for doc, k in zip(docs, n_spans):
            T: Any = doc.tensor
            offsets.append(at)
            if k and grad_factor != 0.0 and doc.reaches:
                shapes.append(T.shape)
                at += T.shape[0] * T.shape[1]
            else:
                shapes.append(None)
        # the kernel writes every row; from LAZY_ZEROS_BYTES on, numpy.zeros' fresh pages
        # cost less, and only the picks are written
        if kernel and at and at * width * xp.dtype(dtype).itemsize < LAZY_ZEROS_BYTES:
            grads = _picks_grad(be, dY, shapes, offsets, at, pick_row, n_spans, grad_factor, width)
        else:
            flat, grads = zeros_block(xp, shapes, dtype)
            # the picked rows, each dY[doc] * grad_factor / (its Doc's spans), in one assignment
            which = [i for i in pick_doc if shapes[i] is not None]
            if which:
                rows = [offsets[i] + r for i, r in zip(pick_doc, pick_row) if shapes[i] is not None]
                factors = xp.asarray([grad_factor / n_spans[i] for i in which], dtype=acc)
                values = (cast(Any, dY)[xp.asarray(which, dtype="int64")].astype(acc) * factors[:, None]).astype(dtype)
                flat.reshape(at, width)[xp.asarray(rows, dtype="int64")] = values
        # the rows carry grad_factor already: wrap them unscaled (1.0), or say "frozen" (0.0)
        factor = 1.0 if grad_factor else 0.0
        out: List[TransformerOutputT] = tensor_gradients(
            model.name, model.id, index, docs, grads, factor, owned=True
        )
        return out

    return Yout, backprop


def _picks_grad(
    be: Any, dY: Any, shapes: List[Optional[Tuple[int, ...]]], offsets: List[int], n_rows: int,
    pick_row: List[int], n_spans: List[int], grad_factor: float, width: int,
) -> List[Optional[Any]]:
    """The gradients in one pass of the backend's pieces kernel, padding included: every
    pick a piece of one real row, owning the rows from its own to the next pick's (a
    Doc's first pick from the Doc's first row, its last to the Doc's end), so that the
    pieces tile the block; a Doc's picks get dY[doc] * grad_factor / (its picks)."""
    xp = be.xp
    i64 = "int64"
    tiles: List[int] = []
    starts: List[int] = []
    seg_ptr = [0]
    j = 0
    for shape, off, k in zip(shapes, offsets, n_spans):
        if shape is not None:
            for q in range(k):
                r = off + pick_row[j + q]
                tiles.append(off if q == 0 else r)
                starts.append(r)
        j += k
        seg_ptr.append(len(starts))
    tiles.append(n_rows)
    scale = xp.asarray([grad_factor / max(k, 1) for k in n_spans], dtype=dY.dtype)
    dX = be.pieces_grad(
        "mean", n_rows, xp.asarray(tiles, dtype=i64), xp.asarray(starts, dtype=i64),
        xp.ones((len(starts),), dtype=i64), xp.asarray(seg_ptr, dtype=i64), dY, scale, None,
    )
    flat = dX.reshape(-1)
    grads: List[Optional[Any]] = []
    for shape, off in zip(shapes, offsets):
        if shape is None:
            grads.append(None)
        else:
            grads.append(flat[off * width : (off + shape[0] * shape[1]) * width].reshape(shape))
    return grads


def _mean_of_picks(
    model: Model[InT, Floats2d], be: Any, docs: List[DocTensor], pick_doc: List[int], pick_row: List[int],
    n_spans: List[int], width: int, dtype: Any, acc: Any, kernel: bool,
) -> Floats2d:
    """Every Doc's mean of its picked rows (zeros for a Doc without one), in ``dtype``:
    the backend's pieces kernel (one call, every picked row a piece) where it takes the
    dtype (``kernel``), else one gather per Doc."""
    xp = model.ops.xp
    B = len(docs)
    i64 = "int64"
    if kernel:
        arrays: List[Any] = []
        none: Any = None  # one (0, width) array for every Doc without picks
        for doc, k in zip(docs, n_spans):
            T: Any = doc.tensor
            if k:
                if not T.flags.c_contiguous:
                    T = xp.ascontiguousarray(T)
                arrays.append(T.reshape(T.shape[0] * T.shape[1], width))
            else:
                if none is None:
                    none = xp.zeros((0, width), dtype=dtype)
                arrays.append(none)
        seg_ptr = [0]
        for k in n_spans:
            seg_ptr.append(seg_ptr[-1] + k)
        means, _ = be.pieces_pool(
            "mean", arrays, xp.asarray(pick_doc, dtype=i64), xp.asarray(pick_row, dtype=i64),
            xp.ones((len(pick_row),), dtype=i64), xp.asarray(seg_ptr, dtype=i64),
            xp.asarray([1.0 / max(k, 1) for k in n_spans], dtype=acc), width, xp.dtype(dtype),
        )
        return cast(Floats2d, means)
    Y: Any = model.ops.alloc2f(B, width, dtype=acc)
    at = 0
    for i, doc in enumerate(docs):
        k = n_spans[i]
        if k:
            T = cast(Any, doc.tensor)
            L = int(T.shape[1])  # (span, position) pairs: no reshape, which copies a strided T
            rows = pick_row[at : at + k]
            spans = xp.asarray([r // L for r in rows], dtype=i64)
            positions = xp.asarray([r % L for r in rows], dtype=i64)
            Y[i] = T[spans, positions].astype(acc).sum(axis=0) / k
        at += k
    return cast(Floats2d, Y.astype(dtype, copy=False))
