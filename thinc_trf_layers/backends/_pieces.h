/* The pooling kernels for one element type T, behind _kernels.pyx; _kernels.h includes
 * this file twice (T float and double, SUF the name suffix, POW the power function): no
 * include guard on purpose.
 *
 * Row b of the input is made of the pieces row_ptr[b] .. row_ptr[b + 1] - 1, in order;
 * piece p is len[p] rows of W values from src[p]. A row's positions count over its
 * pieces; the *gathered* position of a row's k-th position is the number of positions of
 * the rows before it, plus k (what a per-position weight w is indexed by). Every loop
 * over the width is branch-free, so that the compiler vectorises it.
 */

/* o += w * x */
static inline void SUF(row_add)(T* restrict o, const T* restrict x, T w, int64_t W) {
    for (int64_t j = 0; j < W; j++) o[j] += w * x[j];
}

/* o *= c */
static inline void SUF(row_scale)(T* restrict o, T c, int64_t W) {
    for (int64_t j = 0; j < W; j++) o[j] *= c;
}

/* x . y, in 8 partial sums (so that it vectorises) */
static inline T SUF(row_dot)(const T* restrict x, const T* restrict y, int64_t W) {
    T acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t j = 0;
    for (; j + 8 <= W; j += 8)
        for (int l = 0; l < 8; l++) acc[l] += x[j + l] * y[j + l];
    T s = 0;
    for (; j < W; j++) s += x[j] * y[j];
    for (int l = 0; l < 8; l++) s += acc[l];
    return s;
}

/* A running max over positions k and k + 1 (x, y; y NULL: x alone): a larger value, or
 * the first NaN of a column, takes the place and its position goes to wh. !(v <= m)
 * holds for v > m and for a NaN v; m == m fails once m is NaN, so the first NaN stays.
 * The pair is settled first, by the same rule, so the best and wh are read and written
 * once per two positions. With s, the positions are also added to the running sum s. */
static inline void SUF(row_max)(T* restrict best, int32_t* restrict wh, T* restrict s,
                                const T* restrict x, const T* restrict y, int32_t k, int64_t W) {
    for (int64_t j = 0; j < W; j++) {
        const T a = x[j], c = y ? y[j] : a, m = best[j];
        const int second = !(c <= a) & (a == a);
        const T v = second ? c : a;
        const int take = !(v <= m) & (m == m);
        best[j] = take ? v : m;
        wh[j] = take ? k + second : wh[j];
        if (s) s[j] += y ? a + c : a;
    }
}

/* out[b] = scale[b] * sum_k w_k x_k over the row's positions (w NULL: 1; scale NULL:
 * 1). Rows of out are ld apart. */
TARGETS static void SUF(pieces_sum)(const T* const* src, const int64_t* len, const int64_t* row_ptr,
                            int64_t B, int64_t W, const T* w, const T* scale, T* out, int64_t ld) {
    int64_t g = 0;
    for (int64_t b = 0; b < B; b++) {
        T* o = out + b * ld;
        memset(o, 0, (size_t)W * sizeof(T));
        for (int64_t p = row_ptr[b]; p < row_ptr[b + 1]; p++)
            for (int64_t k = 0; k < len[p]; k++, g++)
                SUF(row_add)(o, src[p] + k * W, w ? w[g] : (T)1, W);
        if (scale) SUF(row_scale)(o, scale[b], W);
    }
}

/* out[b, j] = the max of column j over the row, which[b, j] its first position (the
 * first NaN's, if any); with sums, sums[b] = scale[b] * the row's sum in the same pass.
 * A row without positions gives zeros. */
TARGETS static void SUF(pieces_max)(const T* const* src, const int64_t* len, const int64_t* row_ptr,
                            int64_t B, int64_t W, T* out, int64_t ld_out, int32_t* which,
                            T* sums, int64_t ld_sums, const T* scale) {
    for (int64_t b = 0; b < B; b++) {
        T* best = out + b * ld_out;
        int32_t* wh = which + b * W;
        T* s = sums ? sums + b * ld_sums : NULL;
        int64_t k0 = 0;
        memset(wh, 0, (size_t)W * sizeof(int32_t));
        memset(best, 0, (size_t)W * sizeof(T));
        if (s) memset(s, 0, (size_t)W * sizeof(T));
        for (int64_t p = row_ptr[b]; p < row_ptr[b + 1]; p++) {
            int64_t k = 0;
            if (len[p] > 0 && k0 == 0) {  /* the row's first position starts the max */
                memcpy(best, src[p], (size_t)W * sizeof(T));
                if (s) memcpy(s, src[p], (size_t)W * sizeof(T));
                k = 1;
            }
            for (; k + 1 < len[p]; k += 2)
                SUF(row_max)(best, wh, s, src[p] + k * W, src[p] + (k + 1) * W, (int32_t)(k0 + k),
                             W);
            if (k < len[p]) SUF(row_max)(best, wh, s, src[p] + k * W, NULL, (int32_t)(k0 + k), W);
            k0 += len[p];
        }
        if (s && scale) SUF(row_scale)(s, scale[b], W);
    }
}

/* o = w * d + (the columns j where wh[j] == k: dm[j]), or o += that with add; d NULL:
 * no sum term, dm NULL: no max term. */
static inline void SUF(row_grad)(T* restrict o, const T* restrict d, T w, const T* restrict dm,
                                 const int32_t* restrict wh, int32_t k, int add, int64_t W) {
    for (int64_t j = 0; j < W; j++) {
        const T v = (d ? w * d[j] : (T)0) + (dm && wh[j] == k ? dm[j] : (T)0);
        o[j] = add ? o[j] + v : v;
    }
}

/* The gradient of pieces_sum and pieces_max, written into all N rows of dX (the arrays
 * the pieces lie in, stacked: piece p's first row is dst[p] = dX + its row there). The
 * row at position k of row b gets scale[b] * w_k * d_sum[b] (w indexed by gathered
 * position; no d_sum: zeros) plus d_max[b, j] in the columns j where which[b, j] == k;
 * rows that pieces share get the sum of theirs, every other row zeros (seen: a flag per
 * row of dX, scratch). */
TARGETS static void SUF(pieces_fill)(T* dX, int64_t N, int64_t W, T* const* dst, const int64_t* len,
                             const int64_t* row_ptr, int64_t B, const T* d_sum, int64_t ld_sum,
                             const T* scale, const T* w, const T* d_max, int64_t ld_max,
                             const int32_t* which, char* seen) {
    int64_t g = 0;
    memset(seen, 0, (size_t)N);
    for (int64_t b = 0; b < B; b++) {
        const T c = scale ? scale[b] : (T)1;
        const T* d = d_sum ? d_sum + b * ld_sum : NULL;
        const T* dm = d_max ? d_max + b * ld_max : NULL;
        const int32_t* wh = d_max ? which + b * W : NULL;
        int64_t k0 = 0;
        for (int64_t p = row_ptr[b]; p < row_ptr[b + 1]; k0 += len[p], p++)
            for (int64_t k = 0; k < len[p]; k++, g++) {
                T* o = dst[p] + k * W;
                const int64_t r = (o - dX) / W;
                SUF(row_grad)(o, d, w ? c * w[g] : c, dm, wh, (int32_t)(k0 + k), seen[r], W);
                seen[r] = 1;
            }
    }
    for (int64_t r = 0; r < N;) { /* the rows no piece holds: zeros, a run at a time */
        int64_t e = r;
        while (e < N && !seen[e]) e++;
        if (e > r) memset(dX + r * W, 0, (size_t)(e - r) * (size_t)W * sizeof(T));
        r = e + 1;
    }
}

/* --- attention pooling over rows that tile X ------------------------------------------
 *
 * The gradient of Y[b] = sum_r a[r] x_r (a: the softmax of x_r . q within the row), in
 * one pass: ds = a[r] * (x_r . dY[b] - dY[b] . Y[b]); dX[r] = a[r] * dY[b] + ds * q;
 * dq += ds * x_r. */
TARGETS static void SUF(attention_grad)(const T* X, const int64_t* lengths, int64_t B, int64_t W,
                                const T* a, const T* dY, const T* Y, const T* q, T* dX, T* dq) {
    const T* x = X;
    T* o = dX;
    memset(dq, 0, (size_t)W * sizeof(T));
    for (int64_t b = 0; b < B; b++) {
        const T* d = dY + b * W;
        const T c = SUF(row_dot)(d, Y + b * W, W);
        for (int64_t k = 0; k < lengths[b]; k++, x += W, o += W, a++) {
            const T ds = a[0] * (SUF(row_dot)(x, d, W) - c);
            for (int64_t j = 0; j < W; j++) o[j] = a[0] * d[j] + ds * q[j];
            SUF(row_add)(dq, x, ds, W);
        }
    }
}

/* --- generalized mean (GeM) over rows that tile X -------------------------------------
 *
 * z = max(x, eps) with NaN kept (x <= eps is false for NaN); z ** e by e - 1
 * multiplications when ie > 0 (e = ie, a small whole number), ones when ie == 0 (e = 0),
 * else pow(z, e). */

static inline void SUF(row_pow)(T* restrict t, const T* restrict z, int ie, double e, int64_t W) {
    if (ie > 0) {
        memcpy(t, z, (size_t)W * sizeof(T));
        for (int i = 1; i < ie; i++)
            for (int64_t j = 0; j < W; j++) t[j] *= z[j];
    } else if (ie == 0) {
        for (int64_t j = 0; j < W; j++) t[j] = (T)1;
    } else {
        for (int64_t j = 0; j < W; j++) t[j] = (T)POW(z[j], (T)e);
    }
}

/* o += t * z (forward), or o = (t * (x > eps)) * d (backward: t NaN, x NaN, stays NaN) */
static inline void SUF(row_gem)(T* restrict o, const T* restrict t, const T* restrict z,
                                const T* restrict x, const T* restrict d, T eps, int64_t W) {
    if (!d)
        for (int64_t j = 0; j < W; j++) o[j] += t[j] * z[j];
    else
        for (int64_t j = 0; j < W; j++) o[j] = (t[j] * (T)(x[j] > eps)) * d[j];
}

/* With dX NULL: out[b] = sum_k max(x_k, eps) ** p over row b, each term computed as
 * z ** (p - 1) * z (ip1, p1: the power p - 1, as row_pow takes it). With dX: its
 * gradient times d, dX[r] = (z ** (p - 1) * (x_r > eps)) * d[b] (NaN stays NaN).
 * tmp: 2 * W scratch. */
TARGETS static void SUF(gem)(const T* X, const int64_t* lengths, int64_t B, int64_t W, int ip1,
                     double p1, T eps, T* out, const T* d, T* dX, T* tmp) {
    T* z = tmp;
    T* t = tmp + W;
    const T* x = X;
    for (int64_t b = 0; b < B; b++) {
        if (!dX) memset(out + b * W, 0, (size_t)W * sizeof(T));
        for (int64_t k = 0; k < lengths[b]; k++, x += W) {
            for (int64_t j = 0; j < W; j++) z[j] = x[j] <= eps ? eps : x[j];
            SUF(row_pow)(t, z, ip1, p1, W);
            SUF(row_gem)(dX ? dX + (x - X) : out + b * W, t, z, x, dX ? d + b * W : NULL, eps, W);
        }
    }
}
