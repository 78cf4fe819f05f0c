/* wmmse_sparse_f32: WMMSE on each receiver's kept interferers (see wmmse_sparse_f32.h).
 * Build without -ffast-math / -ffinite-math-only: NaN/Inf are found by IEEE rules. */
#include "wmmse_sparse_f32.h"

#include <math.h>
#include <string.h>

#include "wmmse_links.h" /* the per-link state and the helpers shared with wmmse_f32.c */
#include "wmmse_solve_f32.h"

#define KM (WMMSE_KM)
#define HV (WMMSE_HV) /* 4: NT = 2 */
#define H_AT WMMSE_H_AT

/* scratch: the links' state (wmmse_links.h), then R (KM, 4) */

size_t wmmse_sparse_f32_scratch_bytes(void)
{
    return WMMSE_SPARSE_F32_SCRATCH_BYTES;
}

/* s, sig and inf of the current v: the direct link and the m kept links of each receiver */
static void gains(const float *h, int32_t k, int32_t m, const int16_t *idx, const float *noise_var,
                  wmmse_links *w)
{
    int32_t r, i;
    for (r = 0; r < k; ++r) {
        const int16_t *row = idx + (size_t)r * (size_t)m;
        float gi, gr = wmmse_conj_dot(H_AT(h, r, r), w->v + (size_t)r * HV, &gi);
        float acc = noise_var ? noise_var[r] : 1.0f;
        w->s[2 * r] = gr;
        w->s[2 * r + 1] = gi;
        w->sig[r] = gr * gr + gi * gi;
        for (i = 0; i < m; ++i) {
            int32_t t = row[i];
            gr = wmmse_conj_dot(H_AT(h, t, r), w->v + (size_t)t * HV, &gi);
            acc = MADD(gi, gi, acc);
            acc = MADD(gr, gr, acc);
        }
        w->inf[r] = acc;
    }
}

/* one iteration; R (KM, 4): the interference parts of the A_t, (R00, R11, Re R10, Im R10) */
static void one_iteration(const float *h, int32_t k, int32_t m, const int16_t *idx,
                          const float *alpha, const float *noise_var, wmmse_links *w, float *Rs)
{
    int32_t t, r, i;
    wmmse_weights(k, alpha, w);
    memset(Rs, 0, (size_t)k * 4 * sizeof(float));
    for (r = 0; r < k; ++r) { /* R_t += c_r h_tr h_tr^H for every t that receiver r keeps */
        const int16_t *row = idx + (size_t)r * (size_t)m;
        float cr = w->c[r];
        for (i = 0; i < m; ++i) {
            int32_t t = row[i];
            const float *x = H_AT(h, t, r);
            float *R = Rs + (size_t)t * 4;
            float p = cr * x[0], q = cr * x[1], d = x[3] * x[3];
            R[0] = MADD(q, x[1], MADD(p, x[0], R[0]));
            d = MADD(x[2], x[2], d);
            R[1] = MADD(cr, d, R[1]);
            R[2] = MADD(q, x[3], MADD(p, x[2], R[2]));
            R[3] = MADD(-p, x[3], MADD(q, x[2], R[3]));
        }
    }
    for (t = 0; t < k; ++t)
        wmmse_solve_f32(Rs + (size_t)t * 4, w->c[t], H_AT(h, t, t), w->beta[2 * t],
                        w->beta[2 * t + 1], w->amp[t], w->v + (size_t)t * HV);
    gains(h, k, m, idx, noise_var, w);
}

static int check_idx(const int16_t *idx, int32_t k, int32_t m)
{
    int32_t r, i;
    for (r = 0; r < k; ++r)
        for (i = 0; i < m; ++i) {
            int32_t t = idx[(size_t)r * (size_t)m + (size_t)i];
            if (t < 0 || t >= k || t == r)
                return WMMSE_SPARSE_F32_ERR_PARAM;
        }
    return 0;
}

/* copy v0 into v; an error code if it is non-finite or above its power limit */
static int start_from(const float *v0, int32_t k, const float *amp, float *v)
{
    int32_t t;
    int a;
    for (t = 0; t < k; ++t) {
        const float *x = v0 + (size_t)t * HV;
        float p = x[0] * x[0] + x[1] * x[1] + x[2] * x[2] + x[3] * x[3];
        if (!isfinite(p))
            return WMMSE_SPARSE_F32_ERR_NONFINITE;
        if (p > amp[t] * amp[t] * (1.0f + 1e-5f))
            return WMMSE_SPARSE_F32_ERR_PARAM;
        for (a = 0; a < HV; ++a)
            v[(size_t)t * HV + (size_t)a] = x[a];
    }
    return 0;
}

int wmmse_sparse_f32(const float *h, int32_t k, int32_t m, const int16_t *idx, const float *alpha,
                     const float *p_max, const float *noise_var, const float *v0, int32_t iters,
                     void *scratch, float *v, float *wsr)
{
    wmmse_links w;
    float *R;
    int32_t t, it;
    int rc;

    if (!h || !v || !scratch || (!idx && m > 0))
        return WMMSE_SPARSE_F32_ERR_NULL;
    if (k < 1 || k > KM || m < 0 || m > k - 1)
        return WMMSE_SPARSE_F32_ERR_K;
    if (iters < 0)
        return WMMSE_SPARSE_F32_ERR_ITERS;
    if ((rc = wmmse_check_params(alpha, k, 0, WMMSE_SPARSE_F32_ERR_NONFINITE,
                                 WMMSE_SPARSE_F32_ERR_PARAM)) != 0 ||
        (rc = wmmse_check_params(p_max, k, 0, WMMSE_SPARSE_F32_ERR_NONFINITE,
                                 WMMSE_SPARSE_F32_ERR_PARAM)) != 0 ||
        (rc = wmmse_check_params(noise_var, k, 1, WMMSE_SPARSE_F32_ERR_NONFINITE,
                                 WMMSE_SPARSE_F32_ERR_PARAM)) != 0 ||
        (rc = check_idx(idx, k, m)) != 0)
        return rc;

    R = wmmse_links_split(scratch, &w);
    for (t = 0; t < k; ++t)
        w.amp[t] = p_max ? sqrtf(p_max[t]) : 1.0f;
    if (v0) {
        if ((rc = start_from(v0, k, w.amp, w.v)) != 0)
            return rc;
    } else {
        wmmse_mrt(h, k, w.amp, w.v);
    }
    gains(h, k, m, idx, noise_var, &w); /* reads every kept h: NaN/Inf make a gain non-finite */
    if (!wmmse_gains_finite(k, &w))
        return WMMSE_SPARSE_F32_ERR_NONFINITE;
    for (it = 0; it < iters; ++it)
        one_iteration(h, k, m, idx, alpha, noise_var, &w, R);
    if (!wmmse_gains_finite(k, &w))
        return WMMSE_SPARSE_F32_ERR_NONFINITE;

    wmmse_finish(k, alpha, &w, v, wsr);
    return WMMSE_SPARSE_F32_OK;
}
