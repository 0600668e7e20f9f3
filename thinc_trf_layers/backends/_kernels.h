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
