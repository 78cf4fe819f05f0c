/* wmmse_madd.h: the inner-loop helpers of the WMMSE kernels (wmmse_f32.c,
 * wmmse_rank_f32.c, wmmse_sparse_f32.c).
 *
 * MADD(a, b, c) = a * b + c: fmaf (one rounding, one instruction) where the compiler
 * says it is fast (FP_FAST_FMAF, GCC's __FP_FAST_FMAF: VFMA on Cortex-M4F/M7/M33/M55),
 * else multiply and add; -DWMMSE_F32_FMA=0/1 forces either.
 * UNROLL_ALL before a loop of a compile-time count: GCC unrolls it fully; other
 * compilers see a plain loop. */
#ifndef WMMSE_MADD_H
#define WMMSE_MADD_H

#include <math.h>

#ifndef WMMSE_F32_FMA
#if defined(FP_FAST_FMAF) || defined(__FP_FAST_FMAF)
#define WMMSE_F32_FMA 1
#else
#define WMMSE_F32_FMA 0
#endif
#endif
#if WMMSE_F32_FMA
#define MADD(a, b, c) fmaf((a), (b), (c))
#else
#define MADD(a, b, c) ((a) * (b) + (c))
#endif

#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 8
#define UNROLL_ALL _Pragma("GCC unroll 32")
#else
#define UNROLL_ALL
#endif

#endif /* WMMSE_MADD_H */
