/* wmmse_rank_f32: top-m interferers per receiver (see wmmse_rank_f32.h). */
#include "wmmse_rank_f32.h"

#include <math.h>
#include <string.h>

#include "wmmse_madd.h"

#define KM (WMMSE_F32_K_MAX)
#define HV (2 * (WMMSE_F32_NT)) /* floats per channel vector */

/* The kept list of one receiver, strongest first, in best[1..n] (best[0] is a sentinel above
 * every gain, so the insertion loop needs no bounds test). A gain is kept as its float bits:
 * for finite non-negative floats the unsigned integer order is the float order, and integer
 * compares are cheaper than VFP ones; non-finite gains are caught by the running sum. */
typedef struct {
    uint32_t best[KM + 1];
    int16_t who[KM + 1];
} kept;

static inline uint32_t bits(float p)
{
    uint32_t u;
    memcpy(&u, &p, sizeof u);
    return u;
}

/* candidates t in [t0, t1) of the receiver whose column x points at (x = h[t0][r]); n entries
 * of at most m kept so far; returns the new n, adds every gain to *check */
static int32_t scan(const float *x, int32_t t0, int32_t t1, int32_t n, int32_t m, kept *s,
                    float *check)
{
    int32_t t, i;
    float sum = *check;
    uint32_t thresh =
        n < m ? 0u : s->best[m]; /* a candidate must beat it (once the list is full) */
    for (t = t0; t < t1; ++t, x += (size_t)KM * HV) {
        float p = x[0] * x[0];
        uint32_t u;
        int a;
        UNROLL_ALL
        for (a = 1; a < HV; ++a)
            p = MADD(x[a], x[a], p);
        sum += p;
        u = bits(p);
        if (n == m && !(u > thresh))
            continue; /* not stronger than the weakest kept (ties: the earlier stays) */
        i = n < m ? ++n : m;
        for (; s->best[i - 1] < u;
             --i) { /* shift the strictly weaker down; stops at the sentinel */
            s->best[i] = s->best[i - 1];
            s->who[i] = s->who[i - 1];
        }
        s->best[i] = u;
        s->who[i] = (int16_t)t;
        if (n == m)
            thresh = s->best[m];
    }
    *check = sum;
    return n;
}

int wmmse_rank_f32(const float *h, int32_t k, int32_t m, int16_t *idx)
{
    kept s;
    int32_t r, i, n, mk;
    float check = 0.0f; /* sum of every gain read: NaN/Inf if any is */

    if (!h || !idx)
        return WMMSE_RANK_F32_ERR_NULL;
    if (k < 2 || k > KM)
        return WMMSE_RANK_F32_ERR_K;
    if (m < 1)
        return WMMSE_RANK_F32_ERR_M;
    mk = m < k - 1 ? m : k - 1;
    s.best[0] = UINT32_MAX; /* the sentinel */
    for (r = 0; r < k; ++r) {
        const float *col = h + (size_t)r * HV; /* h[0][r] */
        n = scan(col, 0, r, 0, mk, &s, &check);
        n = scan(col + (size_t)(r + 1) * KM * HV, r + 1, k, n, mk, &s, &check);
        for (i = 0; i < n; ++i)
            idx[(size_t)r * (size_t)mk + (size_t)i] = s.who[i + 1];
    }
    if (!isfinite(check))
        return WMMSE_RANK_F32_ERR_NONFINITE;
    return WMMSE_RANK_F32_OK;
}
