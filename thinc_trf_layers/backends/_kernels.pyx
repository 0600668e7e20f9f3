# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""The optional compiled kernels: ``_pieces.h``'s for ``backends.reduce``, ``concat_rows`` for
``concat_last``. Each checks its shapes and that every piece lies in its array (a ValueError,
never an access out of bounds) before the C code runs; memoryviews check dtype and contiguity."""
from libc.stdint cimport int32_t, int64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

cdef extern from "_kernels.h" nogil:
    void pieces_sum_f32(const float**, const int64_t*, const int64_t*, int64_t, int64_t,
                        const float*, const float*, float*, int64_t)
    void pieces_sum_f64(const double**, const int64_t*, const int64_t*, int64_t, int64_t,
                        const double*, const double*, double*, int64_t)
    void pieces_max_f32(const float**, const int64_t*, const int64_t*, int64_t, int64_t,
                        float*, int64_t, int32_t*, float*, int64_t, const float*)
    void pieces_max_f64(const double**, const int64_t*, const int64_t*, int64_t, int64_t,
                        double*, int64_t, int32_t*, double*, int64_t, const double*)
    void pieces_fill_f32(float*, int64_t, int64_t, float**, const int64_t*, const int64_t*,
                         int64_t, const float*, int64_t, const float*, const float*, const float*,
                         int64_t, const int32_t*, char*)
    void pieces_fill_f64(double*, int64_t, int64_t, double**, const int64_t*, const int64_t*,
                         int64_t, const double*, int64_t, const double*, const double*,
                         const double*, int64_t, const int32_t*, char*)
    void attention_grad_f32(const float*, const int64_t*, int64_t, int64_t, const float*,
                            const float*, const float*, const float*, float*, float*)
    void attention_grad_f64(const double*, const int64_t*, int64_t, int64_t, const double*,
                            const double*, const double*, const double*, double*, double*)
    void gem_f32(const float*, const int64_t*, int64_t, int64_t, int, double, float, float*,
                 const float*, float*, float*)
    void gem_f64(const double*, const int64_t*, int64_t, int64_t, int, double, double, double*,
                 const double*, double*, double*)

ctypedef fused real_t:
    float
    double

#: The most positions a row of a max may have (they are counted in int32).
MAX_POSITIONS = 2147483647


cdef int _shape(object a, Py_ssize_t rows, Py_ssize_t cols, bint optional, str what) except -1:
    """``a`` is (rows, cols), or, with ``optional``, has no rows (not given)."""
    if (optional and a.shape[0] == 0) or (a.shape[0] == rows and a.shape[1] == cols):
        return 0
    raise ValueError(f"{what}: expected shape ({rows}, {cols}), got {tuple(a.shape)[:2]}")


cdef int64_t _ld(Py_ssize_t[8] strides, Py_ssize_t itemsize, str what) except -1:
    """The distance between rows, in elements, of a 2d view whose rows are contiguous."""
    if strides[1] != itemsize or strides[0] % itemsize:
        raise ValueError(f"{what}: each row must be contiguous")
    return strides[0] // itemsize


cdef int _tiling(const int64_t[::1] lengths, int64_t n_rows, str what) except -1:
    """Lengths >= 0 that sum to n_rows (compared without a sum that could overflow)."""
    cdef int64_t left = n_rows
    for b in range(lengths.shape[0]):
        if lengths[b] < 0 or lengths[b] > left:
            raise ValueError(f"{what}: the lengths must be >= 0 and sum to {n_rows} (row {b})")
        left -= lengths[b]
    if left:
        raise ValueError(f"{what}: the lengths must sum to {n_rows}, they sum to {n_rows - left}")
    return 0


cdef const real_t** _sources(list arrays, const int64_t[::1] array, const int64_t[::1] start,
                             const int64_t[::1] length, const int64_t[::1] row_ptr, int64_t W,
                             bint positions, const real_t* kind, str what) except NULL:
    """A table of every piece's first row (malloc'ed: the caller frees it), after checking
    that the ``arrays`` are C-contiguous (rows, W), that each piece lies within its array,
    that ``row_ptr`` runs from 0 to the pieces without decreasing, and (``positions``) that
    no row has more than MAX_POSITIONS."""
    cdef Py_ssize_t A = len(arrays), P = length.shape[0], B = row_ptr.shape[0] - 1, a, b, p
    cdef int64_t s, n, rows, total
    cdef const real_t[:, ::1] v
    if start.shape[0] != P or array.shape[0] != P:
        raise ValueError(
            f"{what}: {array.shape[0]} arrays and {start.shape[0]} starts for {P} lengths"
        )
    if B < 0 or row_ptr[0] != 0 or row_ptr[B] != P:
        raise ValueError(f"{what}: row_ptr must run from 0 to the {P} pieces")
    cdef const real_t** base = <const real_t**>malloc((A + 1) * sizeof(void*))
    cdef int64_t* n_rows = <int64_t*>malloc((A + 1) * sizeof(int64_t))
    cdef const real_t** out = <const real_t**>malloc((P + 1) * sizeof(void*))
    try:
        if base == NULL or n_rows == NULL or out == NULL:
            raise MemoryError()
        for a in range(A):
            v = arrays[a]
            if v.shape[1] != W:
                raise ValueError(f"{what}: array {a} has {v.shape[1]} columns, expected {W}")
            n_rows[a], base[a] = v.shape[0], (&v[0, 0] if v.shape[0] and W else NULL)
        for b in range(B):
            if row_ptr[b + 1] < row_ptr[b]:
                raise ValueError(f"{what}: row_ptr must not decrease (row {b})")
            total = 0
            for p in range(row_ptr[b], row_ptr[b + 1]):
                s, n = start[p], length[p]
                rows = n_rows[array[p]] if 0 <= array[p] < A else -1
                # compared without a sum that could overflow
                if rows < 0 or n < 0 or s < 0 or s > rows or n > rows - s:
                    raise ValueError(f"{what}: piece {p} (array {array[p]}, start {s}, "
                                     f"length {n}) is outside its array")
                if positions and n > MAX_POSITIONS - total:
                    raise ValueError(f"{what}: row {b} has more than {MAX_POSITIONS} positions")
                total += n
                out[p] = base[array[p]] + s * W if n else NULL
        return out
    except BaseException:
        free(out)
        raise
    finally:
        free(base); free(n_rows)


def pieces_sum(list arrays not None, const int64_t[::1] array not None,
               const int64_t[::1] start not None, const int64_t[::1] length not None,
               const int64_t[::1] row_ptr not None, real_t[:, :] out not None,
               const real_t[::1] w not None, const real_t[::1] scale not None):
    """``out[b] = scale[b] * sum_k w[g] x_k`` over the positions k of row b (g: the
    gathered position; no weights if ``w`` is empty, no scale if ``scale`` is empty).
    ``out`` may be a column block of a wider array."""
    cdef int64_t B = out.shape[0], W = out.shape[1], N = 0
    for p in range(length.shape[0]):
        N += length[p] if length[p] > 0 else 0
    if row_ptr.shape[0] != B + 1 or scale.shape[0] not in (0, B) or w.shape[0] not in (0, N):
        raise ValueError(f"pieces_sum: {row_ptr.shape[0]} row offsets, {scale.shape[0]} scales and "
                         f"{w.shape[0]} weights for {B} rows of {N} positions")
    cdef int64_t ld = _ld(out.strides, sizeof(real_t), "pieces_sum: out") if B and W else 0
    cdef const real_t** src = _sources(arrays, array, start, length, row_ptr, W, False,
                                       <real_t*>NULL, "pieces_sum")
    cdef const int64_t* lens = &length[0] if length.shape[0] else NULL
    cdef const real_t* wp = &w[0] if w.shape[0] else NULL
    cdef const real_t* sc = &scale[0] if scale.shape[0] else NULL
    if B and W:
        with nogil:
            if real_t is float:
                pieces_sum_f32(src, lens, &row_ptr[0], B, W, wp, sc, &out[0, 0], ld)
            else:
                pieces_sum_f64(src, lens, &row_ptr[0], B, W, wp, sc, &out[0, 0], ld)
    free(src)


def pieces_max(list arrays not None, const int64_t[::1] array not None,
               const int64_t[::1] start not None, const int64_t[::1] length not None,
               const int64_t[::1] row_ptr not None, real_t[:, :] out not None,
               int32_t[:, ::1] which not None, real_t[:, :] sums not None,
               const real_t[::1] scale not None):
    """``out[b, j]``: the max of column j over row b, ``which[b, j]`` its first position
    (the first NaN's, if any); a row without positions gives zeros. If ``sums`` has rows,
    ``scale[b]`` times the row's sum goes there in the same pass."""
    cdef int64_t B = out.shape[0], W = out.shape[1]
    if row_ptr.shape[0] != B + 1 or scale.shape[0] not in (0, B):
        raise ValueError(f"pieces_max: {row_ptr.shape[0]} row offsets and {scale.shape[0]} "
                         f"scales for {B} rows")
    _shape(which, B, W, False, "pieces_max: which")
    _shape(sums, B, W, True, "pieces_max: sums")
    cdef bint with_sums = sums.shape[0] > 0 and B and W
    cdef int64_t ld = _ld(out.strides, sizeof(real_t), "pieces_max: out") if B and W else 0
    cdef int64_t ld_sums = _ld(sums.strides, sizeof(real_t), "pieces_max: sums") if with_sums else 0
    cdef const real_t** src = _sources(arrays, array, start, length, row_ptr, W, True,
                                       <real_t*>NULL, "pieces_max")
    cdef const int64_t* lens = &length[0] if length.shape[0] else NULL
    cdef real_t* s = &sums[0, 0] if with_sums else NULL
    cdef const real_t* sc = &scale[0] if scale.shape[0] else NULL
    if B and W:
        with nogil:
            if real_t is float:
                pieces_max_f32(src, lens, &row_ptr[0], B, W, &out[0, 0], ld, &which[0, 0], s,
                               ld_sums, sc)
            else:
                pieces_max_f64(src, lens, &row_ptr[0], B, W, &out[0, 0], ld, &which[0, 0], s,
                               ld_sums, sc)
    free(src)


def pieces_fill(real_t[:, ::1] dX not None, const int64_t[::1] offsets not None,
                const int64_t[::1] array not None, const int64_t[::1] start not None,
                const int64_t[::1] length not None, const int64_t[::1] row_ptr not None,
                const real_t[:, :] d_sum not None, const real_t[::1] scale not None,
                const real_t[::1] w not None, const real_t[:, :] d_max not None,
                const int32_t[:, ::1] which not None):
    """Write the gradient of ``pieces_sum`` / ``pieces_max`` into every row of ``dX``, the
    arrays the pieces lie in, stacked (array a is rows ``offsets[a] .. offsets[a + 1] -
    1``): a piece's rows get ``scale[b] * w[g] * d_sum[b]`` (if ``d_sum`` has rows; empty
    ``scale``, ``w``: none), rows shared by pieces the sum, every other row zeros; then
    ``d_max[b, j]`` (if it has rows) is added where ``which[b, j]`` was."""
    cdef int64_t N = dX.shape[0], W = dX.shape[1], B = row_ptr.shape[0] - 1, n_pos = 0
    cdef Py_ssize_t A = offsets.shape[0] - 1, a
    if A < 0 or offsets[0] != 0 or offsets[A] != N:
        raise ValueError(f"pieces_fill: the array offsets must run from 0 to the {N} rows")
    for a in range(A):
        if offsets[a + 1] < offsets[a]:
            raise ValueError(f"pieces_fill: the array offsets must not decrease (array {a})")
    for p in range(length.shape[0]):
        n_pos += length[p] if length[p] > 0 else 0
    _shape(d_sum, B, W, True, "pieces_fill: d_sum")
    _shape(d_max, B, W, True, "pieces_fill: d_max")
    if d_max.shape[0]:
        _shape(which, B, W, False, "pieces_fill: which")
    if scale.shape[0] not in (0, B) or w.shape[0] not in (0, n_pos):
        raise ValueError(f"pieces_fill: {scale.shape[0]} scales and {w.shape[0]} weights for "
                         f"{B} rows of {n_pos} positions")
    if N == 0 or W == 0:
        return
    cdef const int64_t* lens = &length[0] if length.shape[0] else NULL
    cdef const real_t* ds = &d_sum[0, 0] if d_sum.shape[0] else NULL
    cdef const real_t* dm = &d_max[0, 0] if d_max.shape[0] else NULL
    cdef int64_t ld_sum = _ld(d_sum.strides, sizeof(real_t), "pieces_fill: d_sum") if ds else 0
    cdef int64_t ld_max = _ld(d_max.strides, sizeof(real_t), "pieces_fill: d_max") if dm else 0
    # the first row of every piece in dX (array a: its rows offsets[a] .. offsets[a + 1] - 1)
    cdef const real_t** dst = _sources([dX[offsets[a]:offsets[a + 1]] for a in range(A)], array,
                                       start, length, row_ptr, W, False, <real_t*>NULL,
                                       "pieces_fill")
    cdef char* seen = <char*>malloc(N)
    if seen == NULL:
        free(dst)
        raise MemoryError()
    cdef const int32_t* wh = &which[0, 0] if d_max.shape[0] else NULL
    cdef const real_t* sc = &scale[0] if scale.shape[0] else NULL
    cdef const real_t* wp = &w[0] if w.shape[0] else NULL
    with nogil:
        if real_t is float:
            pieces_fill_f32(&dX[0, 0], N, W, <float**>dst, lens, &row_ptr[0], B, ds, ld_sum, sc,
                            wp, dm, ld_max, wh, seen)
        else:
            pieces_fill_f64(&dX[0, 0], N, W, <double**>dst, lens, &row_ptr[0], B, ds, ld_sum, sc,
                            wp, dm, ld_max, wh, seen)
    free(seen)
    free(dst)


def attention_grad(const real_t[:, ::1] X not None, const int64_t[::1] lengths not None,
                   const real_t[::1] a not None, const real_t[:, ::1] dY not None,
                   const real_t[:, ::1] Y not None, const real_t[::1] q not None,
                   real_t[:, ::1] dX not None, real_t[::1] dq not None):
    """The gradient of attention pooling (``Y[b] = sum_r a[r] x_r``, ``a`` the softmax of
    ``x_r . q`` within row b; the lengths tile X) in one pass: ``dX`` and ``dq``."""
    cdef int64_t N = X.shape[0], W = X.shape[1], B = lengths.shape[0]
    _tiling(lengths, N, "attention_grad")
    _shape(dY, B, W, False, "attention_grad: dY")
    _shape(Y, B, W, False, "attention_grad: Y")
    _shape(dX, N, W, False, "attention_grad: dX")
    if a.shape[0] != N or q.shape[0] != W or dq.shape[0] != W:
        raise ValueError(f"attention_grad: expected {N} weights and a query and dq of {W}, got "
                         f"{a.shape[0]}, {q.shape[0]}, {dq.shape[0]}")
    if W == 0:
        return
    cdef const real_t* x = &X[0, 0] if N else NULL
    cdef real_t* dx = &dX[0, 0] if N else NULL
    cdef const real_t* ap = &a[0] if N else NULL
    cdef const int64_t* lens = &lengths[0] if B else NULL
    cdef const real_t* dy = &dY[0, 0] if B else NULL
    cdef const real_t* y = &Y[0, 0] if B else NULL
    with nogil:
        if real_t is float:
            attention_grad_f32(x, lens, B, W, ap, dy, y, &q[0], dx, &dq[0])
        else:
            attention_grad_f64(x, lens, B, W, ap, dy, y, &q[0], dx, &dq[0])


def gem(const real_t[:, ::1] X not None, const int64_t[::1] lengths not None, double p, double eps,
        real_t[:, ::1] out not None, const real_t[:, ::1] d not None, real_t[:, ::1] dX not None):
    """Generalized mean over rows that tile X: with ``dX`` of no rows, ``out[b] = sum_k
    max(x_k, eps) ** p`` over row b; else its gradient times ``d`` (B, W) into ``dX``:
    ``max(x_r, eps) ** (p - 1) * (x_r > eps) * d[b]`` (NaN stays NaN)."""
    cdef int64_t N = X.shape[0], W = X.shape[1], B = lengths.shape[0]
    cdef bint grad = dX.shape[0] > 0
    _tiling(lengths, N, "gem")
    if grad:
        _shape(d, B, W, False, "gem: d")
        _shape(dX, N, W, False, "gem: dX")
    else:
        _shape(out, B, W, False, "gem: out")
    if B == 0 or W == 0 or (grad and N == 0):
        return
    cdef double p1 = p - 1.0
    # how the C code raises to p - 1: a whole number from 0 to 16 as itself (multiplications;
    # 0: ones), -1 for pow()
    cdef int ip1 = <int>p1 if 0.0 <= p1 <= 16.0 and p1 == <double><int>p1 else -1
    cdef real_t* tmp = <real_t*>malloc(2 * W * sizeof(real_t))
    if tmp == NULL:
        raise MemoryError()
    cdef const real_t* x = &X[0, 0] if N else NULL
    cdef real_t* o = NULL if grad else &out[0, 0]
    cdef const real_t* dd = &d[0, 0] if grad else NULL
    cdef real_t* dx = &dX[0, 0] if grad else NULL
    with nogil:
        if real_t is float:
            gem_f32(x, &lengths[0], B, W, ip1, p1, <float>eps, o, dd, dx, tmp)
        else:
            gem_f64(x, &lengths[0], B, W, ip1, p1, eps, o, dd, dx, tmp)
    free(tmp)


def concat_rows(unsigned char[:, ::1] out not None, list parts not None):
    """``out[r]`` is the rows r of the parts side by side (bytes): ``out`` (R, k * w) and
    every part (R, w), all C-contiguous (``array.view("uint8")`` of 2d views). The output
    is written row after row, so fresh memory is faulted in once, in order."""
    cdef Py_ssize_t k = len(parts), R = out.shape[0], w, r, j
    cdef const unsigned char[:, ::1] part
    if k == 0 or R == 0 or out.shape[1] == 0:
        return
    w = out.shape[1] // k
    if w * k != out.shape[1]:
        raise ValueError(
            f"concat_rows: the output's {out.shape[1]} bytes per row are not {k} parts"
        )
    cdef const unsigned char** src = <const unsigned char**>malloc(k * sizeof(void*))
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
                    memcpy(dst + (r * k + j) * w, src[j] + r * w, w)
    finally:
        free(src)
