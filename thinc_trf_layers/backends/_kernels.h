/* Segment kernels behind thinc_trf_layers.backends._kernels (see _kernels.pyx).
 *
 * The float32 and float64 versions are generated from _segments_body.h, included twice
 * with T (the element type) and SUF (the name suffix) defined. On x86-64 with GCC the
 * kernels are also compiled for AVX2 and the best version is picked when the module is
 * loaded (target_clones); elsewhere they are compiled once for the baseline.
 */
#ifndef THINC_TRF_LAYERS_KERNELS_H
#define THINC_TRF_LAYERS_KERNELS_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(_MSC_VER)
#define restrict __restrict
#endif

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define SEGMENT_TARGETS __attribute__((target_clones("avx2", "default")))
#else
#define SEGMENT_TARGETS
#endif

/* Zeros written with streaming (non-temporal) stores, for gradients too large to keep in
 * the cache: they write whole cache lines without reading them first and without
 * evicting what the caller works on next (as glibc's memcpy does for large copies). Only
 * whole 64-byte lines are streamed, and only in runs of TTL_STREAM_MIN_RUN bytes or more:
 * the part lines at either end, which the rows beside them share, and short runs, which
 * would alternate with the plain stores of those rows, take memset. SSE2, the baseline
 * of x86-64; elsewhere memset. Call ttl_stream_fence() once the streamed writes are
 * done, before the memory is read. */
#if defined(__SSE2__) || defined(_M_X64)
#include <emmintrin.h>
#define TTL_HAVE_STREAM 1
#else
#define TTL_HAVE_STREAM 0
#endif

#define TTL_STREAM_MIN_RUN 4096

static inline void ttl_stream_zero(void* dst, size_t n) {
#if TTL_HAVE_STREAM
    char* p = (char*)dst;
    if (n < TTL_STREAM_MIN_RUN) {
        memset(p, 0, n);
        return;
    }
    /* n >= 4096: the head (< 64 bytes) leaves more than 64 */
    const size_t head = (size_t)((64 - ((uintptr_t)p & 63)) & 63);
    const __m128i z = _mm_setzero_si128();
    memset(p, 0, head);
    p += head;
    n -= head;
    for (; n >= 64; n -= 64, p += 64) {
        _mm_stream_si128((__m128i*)p, z);
        _mm_stream_si128((__m128i*)(p + 16), z);
        _mm_stream_si128((__m128i*)(p + 32), z);
        _mm_stream_si128((__m128i*)(p + 48), z);
    }
    memset(p, 0, n);
#else
    memset(dst, 0, n);
#endif
}

static inline void ttl_stream_fence(void) {
#if TTL_HAVE_STREAM
    _mm_sfence();
#endif
}

/* The gradient of a max over at least this many rows adds each column's gradient where
 * its max was, after the rows are written; over fewer, every row compares its position
 * with the max's, which costs less there. */
#define SCATTER_MIN_ROWS 16

#define T float
#define SUF(name) name##_f32
#define POW powf
#include "_segments_body.h"
#undef T
#undef SUF
#undef POW

#define T double
#define SUF(name) name##_f64
#define POW pow
#include "_segments_body.h"
#undef T
#undef SUF
#undef POW

#endif
