/* wmmse_rank_f32: top-m interferers per receiver (see wmmse_rank_f32.h). */
#include "wmmse_rank_f32.h"

#include <math.h>

#define KM (WMMSE_F32_K_MAX)
#define HV (2 * (WMMSE_F32_NT)) /* floats per channel vector */

/* MADD(a, b, c) = a * b + c: fmaf where the compiler says it is fast (VFMA on Cortex-M4F),
 * as in wmmse_f32.c; -DWMMSE_F32_FMA=0/1 forces either. A gain's rounding can differ between
 * the two by one ulp, which only matters for gains equal to float precision. */
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

/* UNROLL_ALL before the loop over a channel vector's reals (a compile-time count): GCC
 * unrolls it fully; other compilers see a plain loop. */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 8
#define UNROLL_ALL _Pragma("GCC unroll 32")
#else
#define UNROLL_ALL
#endif

/* the kept list of one receiver: gains descending, their transmitters, and the gain a
 * candidate must beat (below every gain while the list is not full) */
typedef struct {
    float best[KM];
    int16_t who[KM];
    float thresh, check;
    int32_t n, m;
} kept;

/* candidates t in [t0, t1) of the receiver whose column x points at (x = h[t0][r]) */
static void scan(const float *x, int32_t t0, int32_t t1, kept *s)
{
    int32_t t, i;
    float thresh = s->thresh,
          check = s->check; /* in registers: the list's stores cannot alias them */
    for (t = t0; t < t1; ++t, x += (size_t)KM * HV) {
        float p = x[0] * x[0];
        int a;
        UNROLL_ALL
        for (a = 1; a < HV; ++a)
            p = MADD(x[a], x[a], p);
        check += p;
        if (!(p > thresh))
            continue; /* not stronger than the weakest kept (ties: the earlier stays) */
        i = s->n < s->m ? s->n++ : s->m - 1;
        for (; i > 0 && s->best[i - 1] < p; --i) { /* shift the strictly weaker down */
            s->best[i] = s->best[i - 1];
            s->who[i] = s->who[i - 1];
        }
        s->best[i] = p;
        s->who[i] = (int16_t)t;
        if (s->n == s->m)
            thresh = s->best[s->m - 1];
    }
    s->thresh = thresh;
    s->check = check;
}

int wmmse_rank_f32(const float *h, int32_t k, int32_t m, int16_t *idx)
{
    kept s;
    int32_t r, i;
    float check = 0.0f; /* sum of every gain read: NaN/Inf if any is */

    if (!h || !idx)
        return WMMSE_RANK_F32_ERR_NULL;
    if (k < 2 || k > KM)
        return WMMSE_RANK_F32_ERR_K;
    if (m < 1)
        return WMMSE_RANK_F32_ERR_M;
    s.m = m < k - 1 ? m : k - 1;
    for (r = 0; r < k; ++r) {
        const float *col = h + (size_t)r * HV; /* h[0][r] */
        s.n = 0;
        s.thresh = -1.0f; /* gains are >= 0: the first m always enter */
        s.check = 0.0f;
        scan(col, 0, r, &s);
        scan(col + (size_t)(r + 1) * KM * HV, r + 1, k, &s);
        check += s.check;
        for (i = 0; i < s.n; ++i)
            idx[(size_t)r * (size_t)s.m + (size_t)i] = s.who[i];
    }
    if (!isfinite(check))
        return WMMSE_RANK_F32_ERR_NONFINITE;
    return WMMSE_RANK_F32_OK;
}
