/* wmmse_rank_f32: top-m interferers per receiver (see wmmse_rank_f32.h). */
#include "wmmse_rank_f32.h"

#include <math.h>

#define KM (WMMSE_F32_K_MAX)
#define HV (2 * (WMMSE_F32_NT)) /* floats per channel vector */

/* ||h_tr||^2 of a (NT, 2) channel vector */
static inline float gain(const float *x)
{
    float p = 0.0f;
    int a;
    for (a = 0; a < HV; ++a)
        p += x[a] * x[a];
    return p;
}

int wmmse_rank_f32(const float *h, int32_t k, int32_t m, int16_t *idx)
{
    float best[KM];     /* (m,) gains of the kept list, descending */
    int16_t who[KM];    /* (m,) their transmitters */
    float check = 0.0f; /* sum of every gain read: NaN/Inf if any is */
    int32_t r, t, n, i, mk;

    if (!h || !idx)
        return WMMSE_RANK_F32_ERR_NULL;
    if (k < 2 || k > KM)
        return WMMSE_RANK_F32_ERR_K;
    if (m < 1)
        return WMMSE_RANK_F32_ERR_M;
    mk = m < k - 1 ? m : k - 1;
    for (r = 0; r < k; ++r) {
        n = 0; /* entries in the list */
        for (t = 0; t < k; ++t) {
            float p;
            if (t == r)
                continue;
            p = gain(h + ((size_t)t * (size_t)KM + (size_t)r) * (size_t)HV);
            check += p;
            if (n == mk && !(p > best[mk - 1]))
                continue; /* not stronger than the weakest kept (ties: the earlier stays) */
            i = n < mk ? n++ : mk - 1;
            for (; i > 0 && best[i - 1] < p; --i) { /* shift the strictly weaker down */
                best[i] = best[i - 1];
                who[i] = who[i - 1];
            }
            best[i] = p;
            who[i] = (int16_t)t;
        }
        for (i = 0; i < mk; ++i)
            idx[(size_t)r * (size_t)mk + (size_t)i] = who[i];
    }
    if (!isfinite(check))
        return WMMSE_RANK_F32_ERR_NONFINITE;
    return WMMSE_RANK_F32_OK;
}
