# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""Compiled kernels for NumPy arrays (the optional extension built by setup.py).

The segment kernels (float32 and float64) serve ``CompiledPoolingBackend``
(``backends/pooling.py``); their C code lives in ``_segments_body.h``. ``zero_fill``
serves ``backends.pooling.zeros``, ``concat_rows`` serves ``concat_last``
(``backends/mix.py``). Gradients from ``set_stream_min_bytes`` on get their zeros with
streaming stores (``_kernels.h``). A *segment* b is the rows
``starts[b] .. starts[b] + lengths[b] - 1`` of ``X``.

Every function checks the shapes it is given and that every segment lies within its
array (a ``ValueError`` otherwise) before the C code runs: a wrong call is an error,
never a read or write out of bounds. The checks cannot overflow: any int64 start, length
or block, however large or negative, is a ``ValueError``, and a segment of a max longer
than ``MAX_SEGMENT_ROWS`` (its positions are int32) too. Dtypes and contiguity are
checked by the typed memoryviews (a ``ValueError``, or a ``TypeError`` for an object
that is not an array, None included).
"""
from libc.stdint cimport int32_t, int64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

import operator

cdef extern from "_kernels.h" nogil:
    void seg_sum_f32(const float*, const int64_t*, const int64_t*, int64_t, int64_t, int,
                     const float*, float*, int64_t)
    void seg_sum_f64(const double*, const int64_t*, const int64_t*, int64_t, int64_t, int,
                     const double*, double*, int64_t)
    void seg_max_f32(const float*, const int64_t*, const int64_t*, int64_t, int64_t,
                     float*, int64_t, int32_t*, float*, int64_t, const float*)
    void seg_max_f64(const double*, const int64_t*, const int64_t*, int64_t, int64_t,
                     double*, int64_t, int32_t*, double*, int64_t, const double*)
    void seg_fill_f32(float*, const int64_t*, const int64_t*, int64_t, int64_t, int64_t,
                      const float*, int64_t, const float*, int, const float*, int64_t,
                      const int32_t*, int)
    void seg_fill_f64(double*, const int64_t*, const int64_t*, int64_t, int64_t, int64_t,
                      const double*, int64_t, const double*, int, const double*, int64_t,
                      const int32_t*, int)
    void pcs_sum_f32(const float**, const int64_t*, const int64_t*, int64_t, int64_t, int,
                     const float*, float*, int64_t)
    void pcs_sum_f64(const double**, const int64_t*, const int64_t*, int64_t, int64_t, int,
                     const double*, double*, int64_t)
    void pcs_max_f32(const float**, const int64_t*, const int64_t*, int64_t, int64_t,
                     float*, int64_t, int32_t*, float*, int64_t, const float*)
    void pcs_max_f64(const double**, const int64_t*, const int64_t*, int64_t, int64_t,
                     double*, int64_t, int32_t*, double*, int64_t, const double*)
    void pcs_fill_f32(float*, const int64_t*, const int64_t*, const int64_t*, const int64_t*,
                      int64_t, int64_t, const float*, int64_t, const float*, int,
                      const float*, int64_t, const int32_t*, int64_t*, int)
    void pcs_fill_f64(double*, const int64_t*, const int64_t*, const int64_t*, const int64_t*,
                      int64_t, int64_t, const double*, int64_t, const double*, int,
                      const double*, int64_t, const int32_t*, int64_t*, int)
    void ttl_stream_zero(void*, size_t)
    void ttl_stream_fence()
    void gem_sum_f32(const float*, const int64_t*, int64_t, int64_t, int, double, float, float*, float*)
    void gem_sum_f64(const double*, const int64_t*, int64_t, int64_t, int, double, double, double*, double*)
    void gem_grad_f32(const float*, const int64_t*, int64_t, int64_t, int, double, float,
                      const float*, float*, float*)
    void gem_grad_f64(const double*, const int64_t*, int64_t, int64_t, int, double, double,
                      const double*, double*, double*)

ctypedef fused real_t:
    float
    double


cdef int _check_rows(Py_ssize_t rows, Py_ssize_t cols, int64_t B, int64_t W, bint optional,
                     str what) except -1:
    """A (B, W) array (or, if ``optional``, one with no rows: "not given")."""
    if optional and rows == 0:
        return 0
    if rows != B or cols != W:
        raise ValueError(f"{what}: expected shape ({B}, {W}), got ({rows}, {cols})")
    return 0


cdef int _check_scale(Py_ssize_t n, int64_t B, str what) except -1:
    if n != 0 and n != B:
        raise ValueError(f"{what}: expected {B} scale factors (or none), got {n}")
    return 0


cdef int64_t _MAX_SEGMENT_ROWS = 2147483647
#: The longest segment whose positions the int32 ``which`` of a max can hold (2**31 - 1).
MAX_SEGMENT_ROWS = _MAX_SEGMENT_ROWS


cdef int _check_segments(const int64_t[::1] starts, const int64_t[::1] lengths, int64_t n_rows,
                         int64_t block, bint positions, str what) except -1:
    """Every segment within rows 0 .. n_rows - 1 (with block > 0: within its own block
    b * block .. (b + 1) * block - 1, and the blocks within n_rows); with ``positions``,
    no segment longer than ``MAX_SEGMENT_ROWS`` (its rows are counted in int32).

    Nothing here can overflow: every bound is compared by a subtraction or a division of
    values already known to lie in 0 .. n_rows (a sum such as ``start + length`` or a
    product such as ``B * block`` could wrap around int64 and let a bad segment pass)."""
    cdef Py_ssize_t B = lengths.shape[0], b
    cdef int64_t lo = 0, hi = n_rows, s, n
    if starts.shape[0] != B:
        raise ValueError(f"{what}: {starts.shape[0]} starts for {B} lengths")
    if block < 0:
        raise ValueError(f"{what}: block must be >= 0 rows (0: no blocks), got {block}")
    if block > 0 and B > 0 and block > n_rows // B:
        raise ValueError(f"{what}: {B} blocks of {block} rows do not fit in {n_rows} rows")
    for b in range(B):
        s = starts[b]
        n = lengths[b]
        if block > 0:
            lo = b * block  # <= (B - 1) * block <= n_rows - block: no overflow
            hi = lo + block
        # s in lo .. hi first, then n <= hi - s (both sides in 0 .. n_rows)
        if n < 0 or s < lo or s > hi or n > hi - s:
            raise ValueError(f"{what}: segment {b} (start {s}, length {n}) is outside rows {lo}..{hi - 1}")
        if positions and n > _MAX_SEGMENT_ROWS:
            raise ValueError(
                f"{what}: segment {b} has {n} rows, more than {_MAX_SEGMENT_ROWS} (the positions "
                "of a max are int32)"
            )
    return 0


cdef int64_t _as_block(object block, int64_t n_rows, str what) except -1:
    """``block`` (any Python or NumPy int) as an int64 in 0 .. n_rows, else ValueError
    (never OverflowError: a huge block is a bad value like any other)."""
    try:
        value = int(operator.index(block))
    except TypeError:
        raise ValueError(f"{what}: block must be an int, got {block!r}") from None
    if value < 0 or value > n_rows:
        raise ValueError(f"{what}: block must be in 0 .. {n_rows} rows (0: no blocks), got {value}")
    return value


cdef int64_t _rows_apart(Py_ssize_t[8] strides, Py_ssize_t itemsize, str what) except -1:
    """The distance between rows, in elements, of a 2d view whose rows are contiguous."""
    if strides[1] != itemsize or strides[0] % itemsize:
        raise ValueError(f"{what}: each row must be contiguous")
    return strides[0] // itemsize


cdef int64_t _stream_min_bytes = 16 << 20


def set_stream_min_bytes(value):
    """From how many bytes on a gradient is written with streaming stores (see
    ``_kernels.h``); returns the previous value. ``backends.pooling`` sets it when it
    loads the kernels (``stream_min_bytes``: half the L3 cache); tests and benchmarks set
    it to compare both ways. A ValueError for anything but an int >= 0."""
    global _stream_min_bytes
    if isinstance(value, bool):
        raise ValueError(f"set_stream_min_bytes: expected a size in bytes (an int >= 0), got {value!r}")
    try:
        new = int(operator.index(value))
    except TypeError:
        raise ValueError(f"set_stream_min_bytes: expected a size in bytes (an int >= 0), got {value!r}") from None
    if new < 0 or new > 0x7FFFFFFFFFFFFFFF:
        raise ValueError(f"set_stream_min_bytes: expected a size in bytes (an int >= 0), got {value!r}")
    old = _stream_min_bytes
    _stream_min_bytes = new
    return old


cdef bint _streams(int64_t rows, int64_t W, size_t itemsize) noexcept:
    """Whether a (rows, W) gradient is written with streaming stores (no overflow: it is
    the size of an array in memory)."""
    return rows * W * <int64_t>itemsize >= _stream_min_bytes


def segment_sum(const real_t[:, ::1] X not None, const int64_t[::1] starts not None,
                const int64_t[::1] lengths not None, real_t[:, :] out not None, bint weighted,
                const real_t[::1] scale not None):
    """``out[b] = scale[b] * sum_k w_k * X[starts[b] + k]``, ``w_k = 1`` (``k + 1`` if
    weighted; no scale if ``scale`` is empty). ``out`` may be a column block of a wider
    array (its rows contiguous)."""
    cdef int64_t B = lengths.shape[0], W = X.shape[1]
    _check_segments(starts, lengths, X.shape[0], 0, False, "segment_sum")
    _check_rows(out.shape[0], out.shape[1], B, W, False, "segment_sum: out")
    _check_scale(scale.shape[0], B, "segment_sum")
    if B == 0 or W == 0:
        return
    cdef int64_t ld = _rows_apart(out.strides, sizeof(real_t), "segment_sum: out")
    cdef bint scaled = scale.shape[0] > 0
    with nogil:
        if real_t is float:
            seg_sum_f32(&X[0, 0], &starts[0], &lengths[0], B, W, weighted,
                        &scale[0] if scaled else NULL, &out[0, 0], ld)
        else:
            seg_sum_f64(&X[0, 0], &starts[0], &lengths[0], B, W, weighted,
                        &scale[0] if scaled else NULL, &out[0, 0], ld)


def segment_max(const real_t[:, ::1] X not None, const int64_t[::1] starts not None,
                const int64_t[::1] lengths not None, real_t[:, :] out not None,
                int32_t[:, ::1] which not None, real_t[:, :] sums not None,
                const real_t[::1] scale not None):
    """``out[b, j]``: the max of column j over segment b; ``which[b, j]``: the position of
    its first occurrence (of the first NaN, if any). Empty segments give zeros. If
    ``sums`` has rows, ``scale[b]`` times the segment's sum (no scale if ``scale`` is
    empty) is written there in the same pass. ``out`` and ``sums`` may be column blocks
    of a wider array."""
    cdef int64_t B = lengths.shape[0], W = X.shape[1]
    _check_segments(starts, lengths, X.shape[0], 0, True, "segment_max")
    _check_rows(out.shape[0], out.shape[1], B, W, False, "segment_max: out")
    _check_rows(which.shape[0], which.shape[1], B, W, False, "segment_max: which")
    _check_rows(sums.shape[0], sums.shape[1], B, W, True, "segment_max: sums")
    _check_scale(scale.shape[0], B, "segment_max")
    if B == 0 or W == 0:
        return
    cdef int64_t ld_out = _rows_apart(out.strides, sizeof(real_t), "segment_max: out")
    cdef bint with_sums = sums.shape[0] > 0
    cdef int64_t ld_sums = _rows_apart(sums.strides, sizeof(real_t), "segment_max: sums") if with_sums else 0
    cdef bint scaled = scale.shape[0] > 0
    with nogil:
        if real_t is float:
            seg_max_f32(&X[0, 0], &starts[0], &lengths[0], B, W, &out[0, 0], ld_out,
                        &which[0, 0], &sums[0, 0] if with_sums else NULL, ld_sums,
                        &scale[0] if scaled else NULL)
        else:
            seg_max_f64(&X[0, 0], &starts[0], &lengths[0], B, W, &out[0, 0], ld_out,
                        &which[0, 0], &sums[0, 0] if with_sums else NULL, ld_sums,
                        &scale[0] if scaled else NULL)


def segment_fill(real_t[:, ::1] dX not None, const int64_t[::1] starts not None,
                 const int64_t[::1] lengths not None, object block, const real_t[:, :] d_sum not None,
                 const real_t[::1] scale not None, bint weighted, const real_t[:, :] d_max not None,
                 const int32_t[:, ::1] which not None):
    """Write the gradient of ``segment_sum`` / ``segment_max`` into ``dX`` in one pass:
    row ``starts[b] + k`` gets ``scale[b] * w_k * d_sum[b]`` (if ``d_sum`` has rows; no
    scale if ``scale`` is empty) plus ``d_max[b, j]`` where ``which[b, j] == k`` (if
    ``d_max`` has rows). ``d_sum`` and ``d_max`` may be column blocks of a wider array.
    With ``block > 0`` the rows ``b * block .. (b + 1) * block - 1`` hold segment b and
    the others are set to zero (a padded batch); with ``block == 0`` the segments tile
    ``dX`` (a Ragged)."""
    cdef int64_t B = lengths.shape[0], W = dX.shape[1]
    cdef int64_t blk = _as_block(block, dX.shape[0], "segment_fill")
    _check_segments(starts, lengths, dX.shape[0], blk, d_max.shape[0] > 0, "segment_fill")
    _check_rows(d_sum.shape[0], d_sum.shape[1], B, W, True, "segment_fill: d_sum")
    _check_rows(d_max.shape[0], d_max.shape[1], B, W, True, "segment_fill: d_max")
    if d_max.shape[0]:
        _check_rows(which.shape[0], which.shape[1], B, W, False, "segment_fill: which")
    if d_sum.shape[0] == 0 and d_max.shape[0] == 0 and B:
        raise ValueError("segment_fill: give d_sum, d_max or both")
    _check_scale(scale.shape[0], B, "segment_fill")
    if B == 0 or W == 0 or dX.shape[0] == 0:
        return
    cdef bint has_sum = d_sum.shape[0] > 0
    cdef bint has_max = d_max.shape[0] > 0
    cdef bint scaled = scale.shape[0] > 0
    cdef int64_t ld_sum = _rows_apart(d_sum.strides, sizeof(real_t), "segment_fill: d_sum") if has_sum else 0
    cdef int64_t ld_max = _rows_apart(d_max.strides, sizeof(real_t), "segment_fill: d_max") if has_max else 0
    cdef bint stream = _streams(dX.shape[0], W, sizeof(real_t))
    with nogil:
        if real_t is float:
            seg_fill_f32(&dX[0, 0], &starts[0], &lengths[0], B, W, blk,
                         &d_sum[0, 0] if has_sum else NULL, ld_sum,
                         &scale[0] if scaled else NULL, weighted,
                         &d_max[0, 0] if has_max else NULL, ld_max,
                         &which[0, 0] if has_max else NULL, stream)
        else:
            seg_fill_f64(&dX[0, 0], &starts[0], &lengths[0], B, W, blk,
                         &d_sum[0, 0] if has_sum else NULL, ld_sum,
                         &scale[0] if scaled else NULL, weighted,
                         &d_max[0, 0] if has_max else NULL, ld_max,
                         &which[0, 0] if has_max else NULL, stream)


def zero_fill(unsigned char[::1] out not None):
    """Zeros into ``out`` (the bytes of a C-contiguous array, ``array.reshape(-1).view("uint8")``),
    with streaming stores from ``set_stream_min_bytes`` bytes on."""
    cdef size_t n = out.shape[0]
    if n == 0:
        return
    with nogil:
        if <int64_t>n >= _stream_min_bytes:
            ttl_stream_zero(&out[0], n)
            ttl_stream_fence()
        else:
            memset(&out[0], 0, n)


def concat_rows(unsigned char[:, ::1] out not None, list parts not None):
    """``out[r] = parts[0][r] + parts[1][r] + ...`` (bytes): row r of the output is the
    rows r of the parts side by side. ``out`` is (R, k * w) and every part (R, w), all
    C-contiguous bytes (``array.view("uint8")`` of 2d views). The output is written
    sequentially, row after row, so fresh memory is faulted in once, in order."""
    cdef Py_ssize_t k = len(parts), R = out.shape[0], w, r, j
    cdef const unsigned char[:, ::1] part
    cdef const unsigned char** src
    cdef unsigned char* dst
    if k == 0 or R == 0 or out.shape[1] == 0:
        return
    w = out.shape[1] // k
    if w * k != out.shape[1]:
        raise ValueError(f"concat_rows: the output's {out.shape[1]} bytes per row are not {k} parts")
    src = <const unsigned char**>malloc(k * sizeof(void*))
    if src == NULL:
        raise MemoryError()
    try:
        for j in range(k):
            part = parts[j]
            if part.shape[0] != R or part.shape[1] != w:
                raise ValueError("concat_rows: every part must be (rows, width / k) bytes")
            src[j] = &part[0, 0]
        dst = &out[0, 0]
        with nogil:
            for r in range(R):
                for j in range(k):
                    memcpy(dst, src[j] + r * w, w)
                    dst += w
    finally:
        free(src)


# --- pieces: output rows made of several segments (a Doc's spans), of several arrays -----


cdef int _check_seg_ptr(const int64_t[::1] seg_ptr, Py_ssize_t P, str what) except -1:
    """``seg_ptr`` (B + 1,): 0, then non-decreasing, ending at P (the pieces of row b are
    seg_ptr[b] .. seg_ptr[b + 1] - 1)."""
    cdef Py_ssize_t n = seg_ptr.shape[0], b
    if n == 0:
        raise ValueError(f"{what}: seg_ptr must hold at least one offset (0)")
    if seg_ptr[0] != 0 or seg_ptr[n - 1] != P:
        raise ValueError(f"{what}: seg_ptr must run from 0 to the {P} pieces, got {seg_ptr[0]} .. {seg_ptr[n - 1]}")
    for b in range(n - 1):
        if seg_ptr[b + 1] < seg_ptr[b]:
            raise ValueError(f"{what}: seg_ptr must not decrease (row {b})")
    return 0


cdef int _check_positions(const int64_t[::1] seg_ptr, const int64_t[::1] lengths, str what) except -1:
    """No output row with more than ``MAX_SEGMENT_ROWS`` rows in all its pieces (the
    lengths are already known to be >= 0: no sum here can overflow)."""
    cdef Py_ssize_t b, p
    cdef int64_t total
    for b in range(seg_ptr.shape[0] - 1):
        total = 0
        for p in range(seg_ptr[b], seg_ptr[b + 1]):
            if lengths[p] > _MAX_SEGMENT_ROWS - total:
                raise ValueError(
                    f"{what}: row {b} has more than {_MAX_SEGMENT_ROWS} rows in its pieces (the "
                    "positions of a max are int32)"
                )
            total += lengths[p]
    return 0


cdef int _check_piece(Py_ssize_t p, int64_t a, Py_ssize_t n_arrays, int64_t s, int64_t n,
                      int64_t lo, int64_t hi, str what) except -1:
    """Piece p: array a in 0 .. n_arrays - 1, rows s .. s + n - 1 within lo .. hi - 1
    (compared without any sum that could overflow)."""
    if a < 0 or a >= n_arrays:
        raise ValueError(f"{what}: piece {p} is in array {a}, but there are {n_arrays}")
    if n < 0 or s < lo or s > hi or n > hi - s:
        raise ValueError(f"{what}: piece {p} (start {s}, length {n}) is outside rows {lo}..{hi - 1}")
    return 0


cdef int _piece_sources(list held, const int64_t[::1] block, const int64_t[::1] starts,
                        const int64_t[::1] lengths, int64_t W, const real_t** src, str what) except -1:
    """Point ``src[p]`` at piece p's first row (NULL for an empty piece), checking that
    every array of ``held`` has W columns and holds its pieces."""
    cdef Py_ssize_t A = len(held), P = lengths.shape[0], a, p
    cdef const real_t[:, ::1] v
    cdef const real_t** base = <const real_t**>malloc((A + 1) * sizeof(void*))
    cdef int64_t* rows = <int64_t*>malloc((A + 1) * sizeof(int64_t))
    if base == NULL or rows == NULL:
        free(base); free(rows)
        raise MemoryError()
    try:
        for a in range(A):
            v = held[a]
            if v.shape[1] != W:
                raise ValueError(f"{what}: array {a} has {v.shape[1]} columns, out has {W}")
            rows[a] = v.shape[0]
            base[a] = &v[0, 0] if v.shape[0] > 0 and W > 0 else NULL
        for p in range(P):
            _check_piece(p, block[p], A, starts[p], lengths[p], 0, rows[block[p]] if 0 <= block[p] < A else 0, what)
            src[p] = base[block[p]] + starts[p] * W if lengths[p] > 0 else NULL
    finally:
        free(base); free(rows)
    return 0


def pieces_sum(list Xs not None, const int64_t[::1] block not None, const int64_t[::1] starts not None,
               const int64_t[::1] lengths not None, const int64_t[::1] seg_ptr not None,
               real_t[:, :] out not None, bint weighted, const real_t[::1] scale not None):
    """``out[b] = scale[b] * sum_k w_k x_k`` over the rows of the pieces seg_ptr[b] ..
    seg_ptr[b + 1] - 1, in order; piece p is the rows ``starts[p] .. starts[p] + lengths[p]
    - 1`` of ``Xs[block[p]]`` (C-contiguous (rows, W) arrays of out's dtype); ``w_k = 1``
    (``k + 1``, k counted over the row's pieces, if weighted; no scale if ``scale`` is
    empty). One call for a whole batch of padded Docs."""
    cdef int64_t B = out.shape[0], W = out.shape[1]
    cdef Py_ssize_t P = lengths.shape[0]
    if starts.shape[0] != P or block.shape[0] != P:
        raise ValueError(f"pieces_sum: {block.shape[0]} blocks and {starts.shape[0]} starts for {P} lengths")
    if seg_ptr.shape[0] != B + 1:
        raise ValueError(f"pieces_sum: expected {B + 1} seg_ptr offsets for {B} output rows, got {seg_ptr.shape[0]}")
    _check_seg_ptr(seg_ptr, P, "pieces_sum")
    _check_scale(scale.shape[0], B, "pieces_sum")
    held = list(Xs)  # the arrays stay alive (and the list may change) while the C code runs
    cdef const real_t** src = <const real_t**>malloc((P + 1) * sizeof(void*))
    if src == NULL:
        raise MemoryError()
    try:
        _piece_sources(held, block, starts, lengths, W, src, "pieces_sum")
        if B == 0 or W == 0:
            return
        ld = _rows_apart(out.strides, sizeof(real_t), "pieces_sum: out")
        _pieces_sum(src, lengths, seg_ptr, B, W, weighted, scale, out, ld)
    finally:
        free(src)


cdef void _pieces_sum(const real_t** src, const int64_t[::1] lengths, const int64_t[::1] seg_ptr, int64_t B,
                      int64_t W, bint weighted, const real_t[::1] scale, real_t[:, :] out, int64_t ld) noexcept:
    cdef bint scaled = scale.shape[0] > 0
    cdef const int64_t* lens = &lengths[0] if lengths.shape[0] > 0 else NULL
    with nogil:
        if real_t is float:
            pcs_sum_f32(src, lens, &seg_ptr[0], B, W, weighted, &scale[0] if scaled else NULL, &out[0, 0], ld)
        else:
            pcs_sum_f64(src, lens, &seg_ptr[0], B, W, weighted, &scale[0] if scaled else NULL, &out[0, 0], ld)


def pieces_max(list Xs not None, const int64_t[::1] block not None, const int64_t[::1] starts not None,
               const int64_t[::1] lengths not None, const int64_t[::1] seg_ptr not None,
               real_t[:, :] out not None, int32_t[:, ::1] which not None, real_t[:, :] sums not None,
               const real_t[::1] scale not None):
    """``segment_max`` over pieces (see ``pieces_sum``): ``out[b, j]`` the max of column j
    over the rows of row b's pieces, ``which[b, j]`` its first position among them (of
    the first NaN, if any); a row without rows gives zeros. If ``sums`` has rows, the
    scaled sums too, in the same pass."""
    cdef int64_t B = out.shape[0], W = out.shape[1]
    cdef Py_ssize_t P = lengths.shape[0]
    if starts.shape[0] != P or block.shape[0] != P:
        raise ValueError(f"pieces_max: {block.shape[0]} blocks and {starts.shape[0]} starts for {P} lengths")
    if seg_ptr.shape[0] != B + 1:
        raise ValueError(f"pieces_max: expected {B + 1} seg_ptr offsets for {B} output rows, got {seg_ptr.shape[0]}")
    _check_seg_ptr(seg_ptr, P, "pieces_max")
    _check_rows(which.shape[0], which.shape[1], B, W, False, "pieces_max: which")
    _check_rows(sums.shape[0], sums.shape[1], B, W, True, "pieces_max: sums")
    _check_scale(scale.shape[0], B, "pieces_max")
    held = list(Xs)  # the arrays stay alive (and the list may change) while the C code runs
    cdef const real_t** src = <const real_t**>malloc((P + 1) * sizeof(void*))
    if src == NULL:
        raise MemoryError()
    try:
        _piece_sources(held, block, starts, lengths, W, src, "pieces_max")
        _check_positions(seg_ptr, lengths, "pieces_max")
        if B == 0 or W == 0:
            return
        ld_out = _rows_apart(out.strides, sizeof(real_t), "pieces_max: out")
        ld_sums = _rows_apart(sums.strides, sizeof(real_t), "pieces_max: sums") if sums.shape[0] > 0 else 0
        _pieces_max(src, lengths, seg_ptr, B, W, out, ld_out, which, sums, ld_sums, scale)
    finally:
        free(src)


cdef void _pieces_max(const real_t** src, const int64_t[::1] lengths, const int64_t[::1] seg_ptr, int64_t B,
                      int64_t W, real_t[:, :] out, int64_t ld_out, int32_t[:, ::1] which, real_t[:, :] sums,
                      int64_t ld_sums, const real_t[::1] scale) noexcept:
    cdef bint with_sums = sums.shape[0] > 0
    cdef bint scaled = scale.shape[0] > 0
    cdef const int64_t* lens = &lengths[0] if lengths.shape[0] > 0 else NULL
    with nogil:
        if real_t is float:
            pcs_max_f32(src, lens, &seg_ptr[0], B, W, &out[0, 0], ld_out, &which[0, 0],
                        &sums[0, 0] if with_sums else NULL, ld_sums, &scale[0] if scaled else NULL)
        else:
            pcs_max_f64(src, lens, &seg_ptr[0], B, W, &out[0, 0], ld_out, &which[0, 0],
                        &sums[0, 0] if with_sums else NULL, ld_sums, &scale[0] if scaled else NULL)


def pieces_fill(real_t[:, ::1] dX not None, const int64_t[::1] tiles not None, const int64_t[::1] starts not None,
                const int64_t[::1] lengths not None, const int64_t[::1] seg_ptr not None,
                const real_t[:, :] d_sum not None, const real_t[::1] scale not None, bint weighted,
                const real_t[:, :] d_max not None, const int32_t[:, ::1] which not None):
    """The gradient of ``pieces_sum`` / ``pieces_max`` for pieces that lie in ``dX``
    (N, W), written in one pass, every row of dX included: piece p owns rows ``tiles[p] ..
    tiles[p + 1] - 1`` (``tiles`` (P + 1,) runs from 0 to N without decreasing: the
    pieces tile dX), of which ``starts[p] .. starts[p] + lengths[p] - 1`` are its real
    rows; they get ``scale[b] * w * d_sum[b]`` (if ``d_sum`` has rows) plus ``d_max[b, j]``
    where ``which[b, j]`` is their position in output row b (if ``d_max`` has rows); all
    other rows get zeros. One call for a whole batch of padded Docs whose gradients are
    views of one array."""
    cdef Py_ssize_t P = lengths.shape[0], p
    cdef int64_t N = dX.shape[0], W = dX.shape[1], B
    if starts.shape[0] != P or tiles.shape[0] != P + 1:
        raise ValueError(f"pieces_fill: {starts.shape[0]} starts and {tiles.shape[0]} tile offsets for {P} lengths")
    _check_seg_ptr(seg_ptr, P, "pieces_fill")
    B = seg_ptr.shape[0] - 1
    if tiles[0] != 0 or tiles[P] != N:
        raise ValueError(f"pieces_fill: the tiles must run from row 0 to {N}, got {tiles[0]} .. {tiles[P]}")
    for p in range(P):
        if tiles[p + 1] < tiles[p]:
            raise ValueError(f"pieces_fill: tile offsets must not decrease (piece {p})")
        _check_piece(p, 0, 1, starts[p], lengths[p], tiles[p], tiles[p + 1], "pieces_fill")
    _check_rows(d_sum.shape[0], d_sum.shape[1], B, W, True, "pieces_fill: d_sum")
    _check_rows(d_max.shape[0], d_max.shape[1], B, W, True, "pieces_fill: d_max")
    if d_max.shape[0]:
        _check_rows(which.shape[0], which.shape[1], B, W, False, "pieces_fill: which")
        _check_positions(seg_ptr, lengths, "pieces_fill")
    if d_sum.shape[0] == 0 and d_max.shape[0] == 0 and N:
        raise ValueError("pieces_fill: give d_sum, d_max or both")
    _check_scale(scale.shape[0], B, "pieces_fill")
    if N == 0 or W == 0:
        return
    cdef bint has_sum = d_sum.shape[0] > 0
    cdef bint has_max = d_max.shape[0] > 0
    cdef bint scaled = scale.shape[0] > 0
    cdef int64_t ld_sum = _rows_apart(d_sum.strides, sizeof(real_t), "pieces_fill: d_sum") if has_sum else 0
    cdef int64_t ld_max = _rows_apart(d_max.strides, sizeof(real_t), "pieces_fill: d_max") if has_max else 0
    cdef bint stream = _streams(N, W, sizeof(real_t))
    cdef int64_t* pos0 = <int64_t*>malloc((P + 1) * sizeof(int64_t))
    if pos0 == NULL:
        raise MemoryError()
    with nogil:
        if real_t is float:
            pcs_fill_f32(&dX[0, 0], &tiles[0], &starts[0], &lengths[0], &seg_ptr[0], B, W,
                         &d_sum[0, 0] if has_sum else NULL, ld_sum, &scale[0] if scaled else NULL, weighted,
                         &d_max[0, 0] if has_max else NULL, ld_max, &which[0, 0] if has_max else NULL, pos0,
                         stream)
        else:
            pcs_fill_f64(&dX[0, 0], &tiles[0], &starts[0], &lengths[0], &seg_ptr[0], B, W,
                         &d_sum[0, 0] if has_sum else NULL, ld_sum, &scale[0] if scaled else NULL, weighted,
                         &d_max[0, 0] if has_max else NULL, ld_max, &which[0, 0] if has_max else NULL, pos0,
                         stream)
        free(pos0)


# --- generalized mean (GeM) ------------------------------------------------------------------


cdef int _check_tiling(const int64_t[::1] lengths, int64_t n_rows, str what) except -1:
    """Lengths >= 0 that sum to exactly n_rows (compared without an overflowing sum)."""
    cdef Py_ssize_t b
    cdef int64_t left = n_rows
    for b in range(lengths.shape[0]):
        if lengths[b] < 0 or lengths[b] > left:
            raise ValueError(f"{what}: the lengths must be >= 0 and sum to the {n_rows} rows (segment {b})")
        left -= lengths[b]
    if left != 0:
        raise ValueError(f"{what}: the lengths must sum to the {n_rows} rows, they sum to {n_rows - left}")
    return 0


cdef int _power_code(double e):
    """How the C code raises to ``e``: a small whole e > 0 by multiplication (e itself),
    0 for e == 0 (ones), -1 for pow()."""
    if e == 0.0:
        return 0
    if 1.0 <= e <= 16.0 and e == <double><int>e:
        return <int>e
    return -1


def gem_sum(const real_t[:, ::1] X not None, const int64_t[::1] lengths not None, double p, double eps,
            real_t[:, ::1] out not None):
    """``out[b] = sum_k max(x_k, eps) ** p`` over segment b (the lengths tile X's rows; NaN
    stays NaN), each term computed as ``z ** (p - 1) * z``."""
    cdef int64_t B = lengths.shape[0], W = X.shape[1]
    _check_tiling(lengths, X.shape[0], "gem_sum")
    _check_rows(out.shape[0], out.shape[1], B, W, False, "gem_sum: out")
    if B == 0 or W == 0:
        return
    cdef double p1 = p - 1.0
    cdef int ip1 = _power_code(p1)
    cdef real_t* tmp = <real_t*>malloc(2 * W * sizeof(real_t))
    if tmp == NULL:
        raise MemoryError()
    cdef const real_t* x = &X[0, 0] if X.shape[0] > 0 else NULL
    try:
        with nogil:
            if real_t is float:
                gem_sum_f32(x, &lengths[0], B, W, ip1, p1, <float>eps, &out[0, 0], tmp)
            else:
                gem_sum_f64(x, &lengths[0], B, W, ip1, p1, eps, &out[0, 0], tmp)
    finally:
        free(tmp)


def gem_grad(const real_t[:, ::1] X not None, const int64_t[::1] lengths not None, double p, double eps,
             const real_t[:, ::1] d not None, real_t[:, ::1] dX not None):
    """``dX[r] = (max(x_r, eps) ** (p - 1) * (x_r > eps)) * d[b]`` for every row r of
    segment b (the lengths tile X's rows): the gradient of ``gem_sum`` times ``d``."""
    cdef int64_t B = lengths.shape[0], W = X.shape[1], N = X.shape[0]
    _check_tiling(lengths, N, "gem_grad")
    _check_rows(d.shape[0], d.shape[1], B, W, False, "gem_grad: d")
    _check_rows(dX.shape[0], dX.shape[1], N, W, False, "gem_grad: dX")
    if N == 0 or W == 0:
        return
    cdef double p1 = p - 1.0
    cdef int ip1 = _power_code(p1)
    cdef real_t* tmp = <real_t*>malloc(2 * W * sizeof(real_t))
    if tmp == NULL:
        raise MemoryError()
    try:
        with nogil:
            if real_t is float:
                gem_grad_f32(&X[0, 0], &lengths[0], B, W, ip1, p1, <float>eps, &d[0, 0], &dX[0, 0], tmp)
            else:
                gem_grad_f64(&X[0, 0], &lengths[0], B, W, ip1, p1, eps, &d[0, 0], &dX[0, 0], tmp)
    finally:
        free(tmp)
