/* wmmse_sparse_f32: WMMSE on each receiver's kept interferers (see wmmse_sparse_f32.h).
 * Build without -ffast-math / -ffinite-math-only: NaN/Inf are found by IEEE rules. */
#include "wmmse_sparse_f32.h"

#include <math.h>
#include <string.h>

#include "wmmse_madd.h"
#include "wmmse_solve_f32.h"

#define KM (WMMSE_F32_K_MAX)
#define HV 4 /* floats per channel vector or beamformer (NT = 2) */

/* h[t][r] -> its (2, 2) channel vector */
#define H_AT(h, t, r) ((h) + ((size_t)(t) * (size_t)KM + (size_t)(r)) * (size_t)HV)

typedef struct {
    float *v;    /* (KM, 2, 2) current beamformers */
    float *s;    /* (KM, 2)    s_k = h_kk^H v_k */
    float *sig;  /* (KM,)      |s_k|^2 */
    float *inf;  /* (KM,)      kept interference + noise */
    float *c;    /* (KM,)      alpha_k sig_k / (inf_k (inf_k + sig_k)) */
    float *amp;  /* (KM,)      sqrt(p_max_k) */
    float *beta; /* (KM, 2)    alpha_k s_k / inf_k */
    float *R;    /* (KM, 4)    interference part of A_t: (R00, R11, Re R10, Im R10) */
} work;

size_t wmmse_sparse_f32_scratch_bytes(void)
{
    return WMMSE_SPARSE_F32_SCRATCH_BYTES;
}

static work split_scratch(void *scratch)
{
    float *p = (float *)scratch;
    work w;
    w.v = p;
    w.s = p + KM * HV;
    w.sig = w.s + KM * 2;
    w.inf = w.sig + KM;
    w.c = w.inf + KM;
    w.amp = w.c + KM;
    w.beta = w.amp + KM;
    w.R = w.beta + KM * 2;
    return w;
}

/* g = x^H v for x, v (2, 2): returns Re, *im = Im */
static inline float conj_dot(const float *x, const float *v, float *im)
{
    float re = x[0] * v[0], ii = x[0] * v[1];
    re = MADD(x[1], v[1], re);
    ii = MADD(-x[1], v[0], ii);
    re = MADD(x[2], v[2], re);
    ii = MADD(x[2], v[3], ii);
    re = MADD(x[3], v[3], re);
    *im = MADD(-x[3], v[2], ii);
    return re;
}

/* s, sig and inf of the current v: the direct link and the m kept links of each receiver */
static void gains(const float *h, int32_t k, int32_t m, const int16_t *idx, const float *noise_var,
                  work *w)
{
    int32_t r, i;
    for (r = 0; r < k; ++r) {
        const int16_t *row = idx + (size_t)r * (size_t)m;
        float gi, gr = conj_dot(H_AT(h, r, r), w->v + (size_t)r * HV, &gi);
        float acc = noise_var ? noise_var[r] : 1.0f;
        w->s[2 * r] = gr;
        w->s[2 * r + 1] = gi;
        w->sig[r] = gr * gr + gi * gi;
        for (i = 0; i < m; ++i) {
            int32_t t = row[i];
            gr = conj_dot(H_AT(h, t, r), w->v + (size_t)t * HV, &gi);
            acc = MADD(gi, gi, acc);
            acc = MADD(gr, gr, acc);
        }
        w->inf[r] = acc;
    }
}

static void mrt(const float *h, int32_t k, const float *amp, float *v)
{
    int32_t t;
    int a;
    for (t = 0; t < k; ++t) {
        const float *x = H_AT(h, t, t);
        float *vt = v + (size_t)t * HV;
        float n2 = x[0] * x[0] + x[1] * x[1] + x[2] * x[2] + x[3] * x[3];
        float scale = n2 > 0.0f ? amp[t] / sqrtf(n2) : 0.0f;
        for (a = 0; a < HV; ++a)
            vt[a] = scale * x[a];
    }
}

static void one_iteration(const float *h, int32_t k, int32_t m, const int16_t *idx,
                          const float *alpha, const float *noise_var, work *w)
{
    int32_t t, r, i;
    for (t = 0; t < k; ++t) {
        float al = alpha ? alpha[t] : 1.0f;
        float q = al / w->inf[t];
        w->c[t] = q * w->sig[t] / (w->inf[t] + w->sig[t]);
        w->beta[2 * t] = q * w->s[2 * t];
        w->beta[2 * t + 1] = q * w->s[2 * t + 1];
    }
    memset(w->R, 0, (size_t)k * 4 * sizeof(float));
    for (r = 0; r < k; ++r) { /* R_t += c_r h_tr h_tr^H for every t that receiver r keeps */
        const int16_t *row = idx + (size_t)r * (size_t)m;
        float cr = w->c[r];
        for (i = 0; i < m; ++i) {
            int32_t t = row[i];
            const float *x = H_AT(h, t, r);
            float *R = w->R + (size_t)t * 4;
            float p = cr * x[0], q = cr * x[1], d = x[3] * x[3];
            R[0] = MADD(q, x[1], MADD(p, x[0], R[0]));
            d = MADD(x[2], x[2], d);
            R[1] = MADD(cr, d, R[1]);
            R[2] = MADD(q, x[3], MADD(p, x[2], R[2]));
            R[3] = MADD(-p, x[3], MADD(q, x[2], R[3]));
        }
    }
    for (t = 0; t < k; ++t)
        wmmse_solve_f32(w->R + (size_t)t * 4, w->c[t], H_AT(h, t, t), w->beta[2 * t],
                        w->beta[2 * t + 1], w->amp[t], w->v + (size_t)t * HV);
    gains(h, k, m, idx, noise_var, w);
}

static int check_params(const float *x, int32_t k, int open)
{
    int32_t t;
    if (x)
        for (t = 0; t < k; ++t) {
            if (!isfinite(x[t]))
                return WMMSE_SPARSE_F32_ERR_NONFINITE;
            if (open ? !(x[t] > 0.0f) : !(x[t] >= 0.0f))
                return WMMSE_SPARSE_F32_ERR_PARAM;
        }
    return 0;
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

static int gains_finite(int32_t k, const work *w)
{
    int32_t t;
    for (t = 0; t < k; ++t)
        if (!isfinite(w->sig[t]) || !isfinite(w->inf[t]))
            return 0;
    return 1;
}

int wmmse_sparse_f32(const float *h, int32_t k, int32_t m, const int16_t *idx, const float *alpha,
                     const float *p_max, const float *noise_var, const float *v0, int32_t iters,
                     void *scratch, float *v, float *wsr)
{
    work w;
    int32_t t, it;
    int rc;
    float rate = 0.0f;

    if (!h || !v || !scratch || (!idx && m > 0))
        return WMMSE_SPARSE_F32_ERR_NULL;
    if (k < 1 || k > KM || m < 0 || m > k - 1)
        return WMMSE_SPARSE_F32_ERR_K;
    if (iters < 0)
        return WMMSE_SPARSE_F32_ERR_ITERS;
    if ((rc = check_params(alpha, k, 0)) != 0 || (rc = check_params(p_max, k, 0)) != 0 ||
        (rc = check_params(noise_var, k, 1)) != 0 || (rc = check_idx(idx, k, m)) != 0)
        return rc;

    w = split_scratch(scratch);
    for (t = 0; t < k; ++t)
        w.amp[t] = p_max ? sqrtf(p_max[t]) : 1.0f;
    if (v0) {
        if ((rc = start_from(v0, k, w.amp, w.v)) != 0)
            return rc;
    } else {
        mrt(h, k, w.amp, w.v);
    }
    gains(h, k, m, idx, noise_var, &w); /* reads every kept h: NaN/Inf make a gain non-finite */
    if (!gains_finite(k, &w))
        return WMMSE_SPARSE_F32_ERR_NONFINITE;
    for (it = 0; it < iters; ++it)
        one_iteration(h, k, m, idx, alpha, noise_var, &w);
    if (!gains_finite(k, &w))
        return WMMSE_SPARSE_F32_ERR_NONFINITE;

    if (wsr) {
        for (t = 0; t < k; ++t)
            rate += (alpha ? alpha[t] : 1.0f) * log2f(1.0f + w.sig[t] / w.inf[t]);
        *wsr = rate;
    }
    memcpy(v, w.v, (size_t)k * HV * sizeof(float));
    memset(v + (size_t)k * HV, 0, (size_t)(KM - k) * HV * sizeof(float));
    return WMMSE_SPARSE_F32_OK;
}
