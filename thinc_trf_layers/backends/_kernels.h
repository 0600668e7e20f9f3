/* The pooling kernels of thinc_trf_layers.backends._kernels (see _kernels.pyx), in float
 * and double, generated from _pieces.h. */
#ifndef THINC_TRF_LAYERS_KERNELS_H
#define THINC_TRF_LAYERS_KERNELS_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(_MSC_VER)
#define restrict __restrict
#endif

/* With GCC on x86-64 Linux, each kernel is also compiled for AVX2, and the loader picks
 * the version the CPU runs (the same code: only the vector width differs). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define TARGETS __attribute__((target_clones("avx2", "default")))
#else
#define TARGETS
#endif

#define T float
#define SUF(name) name##_f32
#define POW powf
#include "_pieces.h"
#undef T
#undef SUF
#undef POW

#define T double
#define SUF(name) name##_f64
#define POW pow
#include "_pieces.h"
#undef T
#undef SUF
#undef POW

#endif
