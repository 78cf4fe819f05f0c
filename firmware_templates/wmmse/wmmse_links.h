/* wmmse_links.h: the per-link state of a WMMSE solve and the helpers on it that the
 * dense kernel (wmmse_f32.c) and the sparse one (wmmse_sparse_f32.c) share, inline,
 * in one copy: the scratch layout, g = x^H v, the MRT start, the WMMSE weights of the
 * current gains, the parameter and gain checks, and the weighted rate and copy-out
 * at the end.
 *
 * Channels are h[t][r] (WMMSE_F32_K_MAX, WMMSE_F32_K_MAX, NT, 2) floats, (re, im) per
 * antenna: transmitter t to receiver r, row stride K_MAX. Beams v (K_MAX, NT, 2).
 * Internal to the kernels: not an API (names may change with them).
 */
#ifndef WMMSE_LINKS_H
#define WMMSE_LINKS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "wmmse_madd.h"  /* MADD, UNROLL_ALL */
#include "wmmse_sizes.h" /* WMMSE_F32_K_MAX, WMMSE_F32_NT */

#define WMMSE_KM (WMMSE_F32_K_MAX)
#define WMMSE_HV (2 * (WMMSE_F32_NT)) /* floats per channel vector or beamformer */

/* h[t][r] -> its (NT, 2) channel vector */
#define WMMSE_H_AT(h, t, r)                                                                        \
    ((h) + ((size_t)(t) * (size_t)WMMSE_KM + (size_t)(r)) * (size_t)WMMSE_HV)

/* per-link state in the caller's scratch, all indexed by link */
typedef struct {
    float *v;    /* (KM, NT, 2) current beamformers */
    float *s;    /* (KM, 2)     s_k = h_kk^H v_k */
    float *sig;  /* (KM,)       |s_k|^2 */
    float *inf;  /* (KM,)       interference seen by receiver k + its noise variance */
    float *c;    /* (KM,)       alpha_k sig_k / (inf_k (inf_k + sig_k)) */
    float *beta; /* (KM, 2)     alpha_k s_k / inf_k */
    float *amp;  /* (KM,)       sqrt(p_max_k): the largest ||v_k|| */
} wmmse_links;

/* WMMSE_LINKS_FLOATS floats of the links' state at the head of scratch */
#define WMMSE_LINKS_FLOATS ((WMMSE_KM) * (WMMSE_HV + 8))

/* the links' arrays at the head of `scratch` (float-aligned); returns the first float after them */
static inline float *wmmse_links_split(void *scratch, wmmse_links *w)
{
    float *p = (float *)scratch;
    w->v = p;
    p += WMMSE_KM * WMMSE_HV;
    w->s = p;
    p += WMMSE_KM * 2;
    w->sig = p;
    p += WMMSE_KM;
    w->inf = p;
    p += WMMSE_KM;
    w->c = p;
    p += WMMSE_KM;
    w->beta = p;
    p += WMMSE_KM * 2;
    w->amp = p;
    return p + WMMSE_KM;
}

/* g = x^H v for x, v (NT, 2): returns Re, *im = Im */
static inline float wmmse_conj_dot(const float *x, const float *v, float *im)
{
    float re = x[0] * v[0];
    float ii = x[0] * v[1];
    int a;
    re = MADD(x[1], v[1], re);
    ii = MADD(-x[1], v[0], ii);
    UNROLL_ALL
    for (a = 1; a < WMMSE_F32_NT; ++a) {
        re = MADD(x[2 * a], v[2 * a], re);
        re = MADD(x[2 * a + 1], v[2 * a + 1], re);
        ii = MADD(x[2 * a], v[2 * a + 1], ii);
        ii = MADD(-x[2 * a + 1], v[2 * a], ii);
    }
    *im = ii;
    return re;
}

/* v_t = amp_t h_tt / ||h_tt|| for t in [0, k) (0 where h_tt = 0) */
static inline void wmmse_mrt(const float *h, int32_t k, const float *amp, float *v)
{
    int32_t t;
    int a;
    for (t = 0; t < k; ++t) {
        const float *x = WMMSE_H_AT(h, t, t);
        float *vt = v + (size_t)t * WMMSE_HV;
        float n2 = 0.0f, scale;
        for (a = 0; a < WMMSE_HV; ++a)
            n2 += x[a] * x[a];
        scale = n2 > 0.0f ? amp[t] / sqrtf(n2) : 0.0f;
        for (a = 0; a < WMMSE_HV; ++a)
            vt[a] = scale * x[a];
    }
}

/* from the gains of the current v: c_t and beta_t (the MMSE receiver u_t and the
 * weight w_t folded in); alpha NULL = every rate weight 1 */
static inline void wmmse_weights(int32_t k, const float *alpha, wmmse_links *w)
{
    int32_t t;
    for (t = 0; t < k; ++t) {
        float al = alpha ? alpha[t] : 1.0f;
        float r = al / w->inf[t];
        w->c[t] = r * w->sig[t] / (w->inf[t] + w->sig[t]);
        w->beta[2 * t] = r * w->s[2 * t];
        w->beta[2 * t + 1] = r * w->s[2 * t + 1];
    }
}

/* 1 when every gain of links [0, k) is finite */
static inline int wmmse_gains_finite(int32_t k, const wmmse_links *w)
{
    int32_t t;
    for (t = 0; t < k; ++t)
        if (!isfinite(w->sig[t]) || !isfinite(w->inf[t]))
            return 0;
    return 1;
}

/* 0, or the first bad entry's code: err_nonfinite for a NaN/Inf in x[0..k), err_param for
 * an entry below 0 (open: not above 0); x NULL is fine (the kernels' defaults) */
static inline int wmmse_check_params(const float *x, int32_t k, int open, int err_nonfinite,
                                     int err_param)
{
    int32_t t;
    if (x)
        for (t = 0; t < k; ++t) {
            if (!isfinite(x[t]))
                return err_nonfinite;
            if (open ? !(x[t] > 0.0f) : !(x[t] >= 0.0f))
                return err_param;
        }
    return 0;
}

/* the end of a solve: *wsr = sum_t alpha_t log2(1 + sig_t / inf_t) if wsr, and v = the
 * beams of links [0, k) with links [k, KM) zeroed */
static inline void wmmse_finish(int32_t k, const float *alpha, const wmmse_links *w, float *v,
                                float *wsr)
{
    int32_t t;
    float rate = 0.0f;
    if (wsr) {
        for (t = 0; t < k; ++t)
            rate += (alpha ? alpha[t] : 1.0f) * log2f(1.0f + w->sig[t] / w->inf[t]);
        *wsr = rate;
    }
    memcpy(v, w->v, (size_t)k * WMMSE_HV * sizeof(float));
    memset(v + (size_t)k * WMMSE_HV, 0, (size_t)(WMMSE_KM - k) * WMMSE_HV * sizeof(float));
}

#endif /* WMMSE_LINKS_H */
