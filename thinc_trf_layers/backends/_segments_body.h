/* Kernels for one element type T; included by _kernels.h (no include guard on purpose).
 *
 * A segment b is the rows starts[b] .. starts[b] + lengths[b] - 1 of a C-contiguous
 * (rows, W) array. Every loop over the width is branch-free, so that the compiler
 * vectorises it; the loops over rows call them.
 */

/* o += w * x */
static inline void SUF(row_add)(T* restrict o, const T* restrict x, T w, int64_t W) {
    for (int64_t j = 0; j < W; j++) o[j] += w * x[j];
}

/* running max: a larger value, or the first NaN of a column, takes the place, and its
 * position k is kept in wh. !(v <= m) is true for v > m and for a NaN v; m == m is false
 * once m is NaN, so the first NaN stays (two compares and an and per element). */
static inline void SUF(row_max)(T* restrict best, int32_t* restrict wh,
                                const T* restrict x, int32_t k, int64_t W) {
    for (int64_t j = 0; j < W; j++) {
        const T v = x[j], m = best[j];
        const int take = !(v <= m) & (m == m);
        best[j] = take ? v : m;
        wh[j] = take ? k : wh[j];
    }
}

/* the same, also adding x to the running sum s */
static inline void SUF(row_sum_max)(T* restrict s, T* restrict best, int32_t* restrict wh,
                                    const T* restrict x, int32_t k, int64_t W) {
    for (int64_t j = 0; j < W; j++) {
        const T v = x[j], m = best[j];
        const int take = !(v <= m) & (m == m);
        s[j] += v;
        best[j] = take ? v : m;
        wh[j] = take ? k : wh[j];
    }
}

/* a gradient row: w * ds, plus dm in the columns whose max was at position k */
static inline void SUF(row_grad)(T* restrict o, const T* restrict ds, T w,
                                 const T* restrict dm, const int32_t* restrict wh,
                                 int32_t k, int64_t W) {
    for (int64_t j = 0; j < W; j++) {
        const T v = dm[j];
        o[j] = w * ds[j] + (wh[j] == k ? v : (T)0);
    }
}

static inline void SUF(row_grad_sum)(T* restrict o, const T* restrict ds, T w, int64_t W) {
    for (int64_t j = 0; j < W; j++) o[j] = w * ds[j];
}

static inline void SUF(row_grad_max)(T* restrict o, const T* restrict dm,
                                     const int32_t* restrict wh, int32_t k, int64_t W) {
    for (int64_t j = 0; j < W; j++) {
        const T v = dm[j];
        o[j] = wh[j] == k ? v : (T)0;
    }
}

/* One row of a fill at position pos of its output row (real: the row is one of its
 * rows): zeros for padding; else ds * w (if ds) plus dm in the columns whose max was at
 * pos (if dm) -- unless scatter, where the caller adds dm where the max was afterwards
 * (a max alone then writes zeros here). */
static inline void SUF(fill_row)(T* restrict o, int real, const T* restrict ds, T w,
                                 const T* restrict dm, const int32_t* restrict wh,
                                 int32_t pos, int scatter, int64_t W) {
    if (!real || (!ds && scatter))
        memset(o, 0, (size_t)W * sizeof(T));
    else if (ds && dm && !scatter)
        SUF(row_grad)(o, ds, w, dm, wh, pos, W);
    else if (ds)
        SUF(row_grad_sum)(o, ds, w, W);
    else
        SUF(row_grad_max)(o, dm, wh, pos, W);
}

/* Rows lo .. hi - 1 of dX: s0 .. s0 + n - 1 are real, at positions k0 .. k0 + n - 1 of
 * their output row (weight c, or c * (position + 1) if weighted), the others padding; each
 * written as fill_row says. With stream, the padding before and after the real rows is
 * written by ttl_stream_zero (streaming stores for long runs). The real rows always take
 * plain stores: streamed too (computed in scratch memory, then copied out) they measured
 * slower for the max and mean_max, and no faster for the mean (docs/benchmarks.md). */
static inline void SUF(fill_rows)(T* dX, int64_t lo, int64_t s0, int64_t n, int64_t hi,
                                  int64_t k0, const T* ds, T c, int weighted,
                                  const T* dm, const int32_t* wh, int scatter,
                                  int stream, int64_t W) {
    /* in order: (with stream) the padding before, the rows the loop writes, (with stream)
     * the padding after */
    const size_t row_bytes = (size_t)W * sizeof(T);
    const int64_t end = stream ? s0 + n : hi;
    if (stream) {
        ttl_stream_zero(dX + lo * W, (size_t)(s0 - lo) * row_bytes);
        lo = s0;
    }
    for (int64_t r = lo; r < end; r++) {
        const int64_t k = r - s0;
        const T w = weighted ? c * (T)(k0 + k + 1) : c;
        SUF(fill_row)(dX + r * W, k >= 0 && k < n, ds, w, dm, wh, (int32_t)(k0 + k), scatter, W);
    }
    if (stream) ttl_stream_zero(dX + end * W, (size_t)(hi - end) * row_bytes);
}

/* o *= c */
static inline void SUF(row_scale)(T* restrict o, T c, int64_t W) {
    for (int64_t j = 0; j < W; j++) o[j] *= c;
}

/* Output rows b of out start at out + b * ld (ld >= W: a column block of a wider array).
 * scale: NULL, or one factor per segment that the sums (not the maxima) are multiplied
 * by (1 / n for a mean). */

/* out[b] = scale[b] * sum_k w_k X[starts[b] + k], w_k = 1 (or k + 1 if weighted) */
SEGMENT_TARGETS static void SUF(seg_sum)(const T* X, const int64_t* starts,
                                         const int64_t* lengths, int64_t B, int64_t W,
                                         int weighted, const T* scale, T* out, int64_t ld) {
    for (int64_t b = 0; b < B; b++) {
        T* o = out + b * ld;
        const T* x = X + starts[b] * W;
        memset(o, 0, (size_t)W * sizeof(T));
        for (int64_t k = 0; k < lengths[b]; k++)
            SUF(row_add)(o, x + k * W, weighted ? (T)(k + 1) : (T)1, W);
        if (scale) SUF(row_scale)(o, scale[b], W);
    }
}

/* out[b, j] = max_k X[starts[b] + k, j], which[b, j] = its first position k (the first
 * NaN's if any); sums[b] = scale[b] * the segment's sum, unless sums is NULL. Empty
 * segments: 0. */
SEGMENT_TARGETS static void SUF(seg_max)(const T* X, const int64_t* starts,
                                         const int64_t* lengths, int64_t B, int64_t W,
                                         T* out, int64_t ld_out, int32_t* which,
                                         T* sums, int64_t ld_sums, const T* scale) {
    for (int64_t b = 0; b < B; b++) {
        T* best = out + b * ld_out;
        int32_t* wh = which + b * W;
        T* s = sums ? sums + b * ld_sums : NULL;
        const int64_t n = lengths[b];
        const T* x = X + starts[b] * W;
        memset(wh, 0, (size_t)W * sizeof(int32_t));
        if (n == 0) {
            memset(best, 0, (size_t)W * sizeof(T));
            if (s) memset(s, 0, (size_t)W * sizeof(T));
            continue;
        }
        memcpy(best, x, (size_t)W * sizeof(T));
        if (s) {
            memcpy(s, x, (size_t)W * sizeof(T));
            for (int64_t k = 1; k < n; k++)
                SUF(row_sum_max)(s, best, wh, x + k * W, (int32_t)k, W);
            if (scale) SUF(row_scale)(s, scale[b], W);
        } else {
            for (int64_t k = 1; k < n; k++)
                SUF(row_max)(best, wh, x + k * W, (int32_t)k, W);
        }
    }
}

/* The gradient of seg_sum / seg_max, written in one pass over dX: row starts[b] + k gets
 * scale[b] * w_k * d_sum[b] (if d_sum; scale NULL: 1) plus d_max[b, j] where
 * which[b, j] == k (if d_max; in a segment of SCATTER_MIN_ROWS rows or more, added as
 * one element per column once its rows are written, as in pcs_fill). Rows of
 * d_sum and d_max are ld_sum and ld_max apart. With block > 0, segment b's rows lie in
 * b * block .. (b + 1) * block - 1 and the other rows of that block are set to zero; with
 * block == 0 the segments tile dX. stream: see fill_rows. */
SEGMENT_TARGETS static void SUF(seg_fill)(T* dX, const int64_t* starts,
                                          const int64_t* lengths, int64_t B, int64_t W,
                                          int64_t block, const T* d_sum, int64_t ld_sum,
                                          const T* scale, int weighted, const T* d_max,
                                          int64_t ld_max, const int32_t* which,
                                          int stream) {
    for (int64_t b = 0; b < B; b++) {
        const int64_t start = starts[b], n = lengths[b];
        const int64_t lo = block > 0 ? b * block : start;
        const int64_t hi = block > 0 ? lo + block : start + n;
        const int scatter = d_max && n >= SCATTER_MIN_ROWS;
        const T* dm = d_max ? d_max + b * ld_max : NULL;
        const int32_t* wh = d_max ? which + b * W : NULL;
        SUF(fill_rows)(dX, lo, start, n, hi, 0, d_sum ? d_sum + b * ld_sum : NULL,
                       scale ? scale[b] : (T)1, weighted, dm, wh, scatter, stream, W);
        if (scatter)
            for (int64_t j = 0; j < W; j++) {
                const int64_t q = wh[j];
                if (q >= 0 && q < n) dX[(start + q) * W + j] += dm[j];
            }
    }
    if (stream) ttl_stream_fence();
}

/* --- pieces: output rows made of several segments, possibly of several arrays -------
 *
 * Output row b is the concatenation of the pieces seg_ptr[b] .. seg_ptr[b + 1] - 1; piece
 * p is len[p] rows starting at src[p] (a pointer to its first row, in whichever array
 * holds it). Positions k count over the row's pieces, in order, as if they had been
 * gathered into one segment (a padded Doc's spans, one output row per Doc). */

/* out[b] = scale[b] * sum_k w_k x_k over the row's pieces (w_k = 1, or k + 1 if weighted) */
SEGMENT_TARGETS static void SUF(pcs_sum)(const T* const* src, const int64_t* len,
                                         const int64_t* seg_ptr, int64_t B, int64_t W,
                                         int weighted, const T* scale, T* out, int64_t ld) {
    for (int64_t b = 0; b < B; b++) {
        T* o = out + b * ld;
        int64_t k0 = 0;
        memset(o, 0, (size_t)W * sizeof(T));
        for (int64_t p = seg_ptr[b]; p < seg_ptr[b + 1]; p++) {
            const T* x = src[p];
            for (int64_t k = 0; k < len[p]; k++)
                SUF(row_add)(o, x + k * W, weighted ? (T)(k0 + k + 1) : (T)1, W);
            k0 += len[p];
        }
        if (scale) SUF(row_scale)(o, scale[b], W);
    }
}

/* out[b, j] = the max over the row's pieces, which[b, j] its first position (the first
 * NaN's if any); sums[b] = scale[b] * the row's sum unless sums is NULL. A row without
 * rows: zeros. The caller checks that every row has at most 2**31 - 1 positions. */
SEGMENT_TARGETS static void SUF(pcs_max)(const T* const* src, const int64_t* len,
                                         const int64_t* seg_ptr, int64_t B, int64_t W,
                                         T* out, int64_t ld_out, int32_t* which,
                                         T* sums, int64_t ld_sums, const T* scale) {
    for (int64_t b = 0; b < B; b++) {
        T* best = out + b * ld_out;
        int32_t* wh = which + b * W;
        T* s = sums ? sums + b * ld_sums : NULL;
        int64_t k0 = 0;
        int started = 0;
        memset(wh, 0, (size_t)W * sizeof(int32_t));
        for (int64_t p = seg_ptr[b]; p < seg_ptr[b + 1]; p++) {
            const T* x = src[p];
            int64_t k = 0;
            if (len[p] > 0 && !started) {
                memcpy(best, x, (size_t)W * sizeof(T));
                if (s) memcpy(s, x, (size_t)W * sizeof(T));
                started = 1;
                k = 1;
            }
            if (s)
                for (; k < len[p]; k++)
                    SUF(row_sum_max)(s, best, wh, x + k * W, (int32_t)(k0 + k), W);
            else
                for (; k < len[p]; k++)
                    SUF(row_max)(best, wh, x + k * W, (int32_t)(k0 + k), W);
            k0 += len[p];
        }
        if (!started) {
            memset(best, 0, (size_t)W * sizeof(T));
            if (s) memset(s, 0, (size_t)W * sizeof(T));
        } else if (s && scale) {
            SUF(row_scale)(s, scale[b], W);
        }
    }
}

/* The gradient of pcs_sum / pcs_max written in one pass over dX (N, W): piece p owns the
 * rows tiles[p] .. tiles[p + 1] - 1 (the pieces tile dX), of which start[p] ..
 * start[p] + len[p] - 1 are its real rows, at positions k0 + k of its output row b; they
 * get scale[b] * w * d_sum[b] (if d_sum) plus d_max[b, j] in the columns j whose max was
 * at their position (if d_max); every other row gets zeros. In an output row of
 * SCATTER_MIN_ROWS positions or more, d_max[b, j] is added once the rows are written, in
 * column j of the row at position which[b, j]: one element per column, where the max was,
 * instead of a comparison in every element of every row (which costs less in few rows).
 * pos0 (P + 1 scratch) gets each piece's first position. A which[b, j] that is not a
 * position of row b matches no row: nothing is added for it.
 *
 * stream: see fill_rows. */
SEGMENT_TARGETS static void SUF(pcs_fill)(T* dX, const int64_t* tiles, const int64_t* start,
                                          const int64_t* len, const int64_t* seg_ptr,
                                          int64_t B, int64_t W, const T* d_sum, int64_t ld_sum,
                                          const T* scale, int weighted, const T* d_max,
                                          int64_t ld_max, const int32_t* which, int64_t* pos0,
                                          int stream) {
    for (int64_t b = 0; b < B; b++) {
        const T c = scale ? scale[b] : (T)1;
        const T* ds = d_sum ? d_sum + b * ld_sum : NULL;
        const T* dm = d_max ? d_max + b * ld_max : NULL;
        const int32_t* wh = d_max ? which + b * W : NULL;
        int64_t total = 0;
        if (d_max)
            for (int64_t p = seg_ptr[b]; p < seg_ptr[b + 1]; p++) total += len[p];
        const int scatter = d_max && total >= SCATTER_MIN_ROWS;
        int64_t k0 = 0;
        for (int64_t p = seg_ptr[b]; p < seg_ptr[b + 1]; p++) {
            pos0[p] = k0;
            SUF(fill_rows)(dX, tiles[p], start[p], len[p], tiles[p + 1], k0, ds, c, weighted,
                           dm, wh, scatter, stream, W);
            k0 += len[p];
        }
        if (!scatter) continue;
        const int64_t p_lo = seg_ptr[b], p_hi = seg_ptr[b + 1];
        for (int64_t j = 0; j < W; j++) {
            const int64_t q = wh[j];
            if (q < 0 || q >= k0) continue;
            /* the last piece that starts at or before q holds it (empty pieces start where
             * the next one does, so they are never the last) */
            int64_t lo = p_lo, hi = p_hi - 1;
            while (lo < hi) {
                const int64_t mid = lo + (hi - lo + 1) / 2;
                if (pos0[mid] <= q) lo = mid;
                else hi = mid - 1;
            }
            dX[(start[lo] + (q - pos0[lo])) * W + j] += dm[j];
        }
    }
    if (stream) ttl_stream_fence();
}

/* --- generalized mean (GeM) over segments that tile X --------------------------------
 *
 * z = max(x, eps) with NaN kept (x <= eps is false for NaN); z ** e by e - 1
 * multiplications when ie > 0 (e = ie, a small whole number), else pow(z, e). */

static inline void SUF(row_clamp)(T* restrict z, const T* restrict x, T eps, int64_t W) {
    for (int64_t j = 0; j < W; j++) z[j] = x[j] <= eps ? eps : x[j];
}

/* t *= z */
static inline void SUF(row_mul)(T* restrict t, const T* restrict z, int64_t W) {
    for (int64_t j = 0; j < W; j++) t[j] *= z[j];
}

/* t = z ** e */
static inline void SUF(row_pow)(T* restrict t, const T* restrict z, int ie, double e, int64_t W) {
    if (ie > 0) {
        memcpy(t, z, (size_t)W * sizeof(T));
        for (int i = 1; i < ie; i++) SUF(row_mul)(t, z, W);
    } else if (ie == 0 && e == 0.0) {
        for (int64_t j = 0; j < W; j++) t[j] = (T)1;
    } else {
        for (int64_t j = 0; j < W; j++) t[j] = (T)POW(z[j], (T)e);
    }
}

/* o = (t * (x > eps)) * d: t NaN (x NaN) gives NaN, as NaN * 0 does */
static inline void SUF(row_gem_grad)(T* restrict o, const T* restrict t, const T* restrict x,
                                     const T* restrict d, T eps, int64_t W) {
    for (int64_t j = 0; j < W; j++) {
        const T m = x[j] > eps ? (T)1 : (T)0;
        o[j] = (t[j] * m) * d[j];
    }
}

/* o += t * z */
static inline void SUF(row_add_prod)(T* restrict o, const T* restrict t, const T* restrict z, int64_t W) {
    for (int64_t j = 0; j < W; j++) o[j] += t[j] * z[j];
}

/* out[b] = sum_k max(x_k, eps) ** p over segment b (rows tile X), each term computed as
 * z ** (p - 1) * z (ip1, p1: the power p - 1, as row_pow takes it); tmp: 2 * W scratch */
SEGMENT_TARGETS static void SUF(gem_sum)(const T* X, const int64_t* lengths, int64_t B, int64_t W,
                                         int ip1, double p1, T eps, T* out, T* tmp) {
    T* z = tmp;
    T* t = tmp + W;
    const T* x = X;
    for (int64_t b = 0; b < B; b++) {
        T* o = out + b * W;
        memset(o, 0, (size_t)W * sizeof(T));
        for (int64_t k = 0; k < lengths[b]; k++, x += W) {
            SUF(row_clamp)(z, x, eps, W);
            SUF(row_pow)(t, z, ip1, p1, W);
            SUF(row_add_prod)(o, t, z, W);
        }
    }
}

/* dX[r] = (max(x_r, eps) ** (p - 1) * (x_r > eps)) * d[b] for every row r of segment b */
SEGMENT_TARGETS static void SUF(gem_grad)(const T* X, const int64_t* lengths, int64_t B, int64_t W,
                                          int ip1, double p1, T eps, const T* d, T* dX, T* tmp) {
    T* z = tmp;
    T* t = tmp + W;
    const T* x = X;
    T* o = dX;
    for (int64_t b = 0; b < B; b++) {
        const T* db = d + b * W;
        for (int64_t k = 0; k < lengths[b]; k++, x += W, o += W) {
            SUF(row_clamp)(z, x, eps, W);
            SUF(row_pow)(t, z, ip1, p1, W);
            SUF(row_gem_grad)(o, t, x, db, eps, W);
        }
    }
}
