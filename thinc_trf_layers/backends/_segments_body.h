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
 * which[b, j] == k (if d_max). Rows of d_sum and d_max are ld_sum and ld_max apart. With
 * block > 0, segment b's rows lie in b * block .. (b + 1) * block - 1 and the other rows
 * of that block are set to zero; with block == 0 the segments tile dX. */
SEGMENT_TARGETS static void SUF(seg_fill)(T* dX, const int64_t* starts,
                                          const int64_t* lengths, int64_t B, int64_t W,
                                          int64_t block, const T* d_sum, int64_t ld_sum,
                                          const T* scale, int weighted, const T* d_max,
                                          int64_t ld_max, const int32_t* which) {
    for (int64_t b = 0; b < B; b++) {
        const int64_t start = starts[b], n = lengths[b];
        const int64_t lo = block > 0 ? b * block : start;
        const int64_t hi = block > 0 ? lo + block : start + n;
        const T c = scale ? scale[b] : (T)1;
        for (int64_t r = lo; r < hi; r++) {
            T* o = dX + r * W;
            const int64_t k = r - start;
            const T w = weighted ? c * (T)(k + 1) : c;
            if (k < 0 || k >= n)
                memset(o, 0, (size_t)W * sizeof(T));
            else if (d_sum && d_max)
                SUF(row_grad)(o, d_sum + b * ld_sum, w, d_max + b * ld_max, which + b * W,
                              (int32_t)k, W);
            else if (d_sum)
                SUF(row_grad_sum)(o, d_sum + b * ld_sum, w, W);
            else
                SUF(row_grad_max)(o, d_max + b * ld_max, which + b * W, (int32_t)k, W);
        }
    }
}
