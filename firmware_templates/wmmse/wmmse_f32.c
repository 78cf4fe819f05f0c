/* wmmse_f32: WMMSE beamforming in portable C99 float32 (see wmmse_f32.h for
 * the algorithm, the conventions and the operation count).
 * Build with -DWMMSE_K_MAX=.. -DWMMSE_NT=.. and without -ffast-math /
 * -ffinite-math-only: the first gain sweep detects NaN/Inf by IEEE rules. */
#include "wmmse_f32.h"

#include <math.h>
#include <string.h>

#define KM (WMMSE_K_MAX)
#define NT (WMMSE_NT)
#define HV (2 * NT) /* floats per channel vector or beamformer */

/* h[t][r] -> its (NT, 2) channel vector */
#define H_AT(h, t, r) ((h) + ((size_t)(t) * (size_t)KM + (size_t)(r)) * (size_t)HV)

#define SINGULAR 0x1p-20f   /* pivot (or 2x2 determinant) of trace-1 A below this: singular */
#define MU_FLOOR 0x1p-12f   /* Tikhonov floor on mu / trace(A) for a singular A */
#define NEWTON_RTOL 0x1p-20f /* Newton stops when its step is below this * mu */

/* MADD(a, b, c) = a * b + c in the inner loops: fmaf (one rounding, one
 * instruction) where the compiler says it is fast (FP_FAST_FMAF, GCC's
 * __FP_FAST_FMAF: VFMA on Cortex-M4F/M7/M33/M55), else multiply and add.
 * -DWMMSE_FMA=0/1 forces either; both are tested against the same goldens. */
#ifndef WMMSE_FMA
#if defined(FP_FAST_FMAF) || defined(__FP_FAST_FMAF)
#define WMMSE_FMA 1
#else
#define WMMSE_FMA 0
#endif
#endif
#if WMMSE_FMA
#define MADD(a, b, c) fmaf((a), (b), (c))
#else
#define MADD(a, b, c) ((a) * (b) + (c))
#endif

/* per-link state in the caller's scratch, all indexed by link */
typedef struct {
    float *v;    /* (KM, NT, 2) current beamformers */
    float *s;    /* (KM, 2)     s_k = h_kk^H v_k */
    float *sig;  /* (KM,)       |s_k|^2 */
    float *inf;  /* (KM,)       sum_{j!=k} |h_jk^H v_j|^2 + 1 */
    float *c;    /* (KM,)       alpha_k sig_k / (inf_k (inf_k + sig_k)) */
    float *beta; /* (KM, 2)     alpha_k s_k / inf_k */
} work;

size_t wmmse_f32_scratch_bytes(void)
{
    return WMMSE_F32_SCRATCH_BYTES;
}

static work split_scratch(void *scratch)
{
    float *p = (float *)scratch;
    work w;
    w.v = p;
    p += KM * HV;
    w.s = p;
    p += KM * 2;
    w.sig = p;
    p += KM;
    w.inf = p;
    p += KM;
    w.c = p;
    p += KM;
    w.beta = p;
    return w;
}

/* ---- gains ------------------------------------------------------------------- */

/* g = x^H v for x, v (NT, 2): returns Re, *im = Im */
static inline float conj_dot(const float *x, const float *v, float *im)
{
    float re = x[0] * v[0];
    float ii = x[0] * v[1];
    int a;
    re = MADD(x[1], v[1], re);
    ii = MADD(-x[1], v[0], ii);
    for (a = 1; a < NT; ++a) {
        re = MADD(x[2 * a], v[2 * a], re);
        re = MADD(x[2 * a + 1], v[2 * a + 1], re);
        ii = MADD(x[2 * a], v[2 * a + 1], ii);
        ii = MADD(-x[2 * a + 1], v[2 * a], ii);
    }
    *im = ii;
    return re;
}

/* inf[r] += |h_jr^H v_j|^2 for receivers r in [r0, r1) */
static inline void add_interference(const float *hj, const float *vj, int32_t r0, int32_t r1, float *inf)
{
    float vl[HV]; /* (NT, 2) v_j in registers: the stores to inf cannot alias it */
    int32_t r;
    int a;
    for (a = 0; a < HV; ++a)
        vl[a] = vj[a];
    for (r = r0; r < r1; ++r) {
        float gi, gr = conj_dot(hj + (size_t)r * HV, vl, &gi);
        float acc = inf[r];
        acc = MADD(gi, gi, acc);
        inf[r] = MADD(gr, gr, acc);
    }
}

/* s, sig and inf of the current v, for links [0, k): one sweep over the k x k block */
static void gains(const float *h, int32_t k, work *w)
{
    int32_t j;
    for (j = 0; j < k; ++j)
        w->inf[j] = 1.0f; /* unit noise */
    for (j = 0; j < k; ++j) {
        const float *hj = H_AT(h, j, 0); /* (KM, NT, 2): row of transmitter j */
        const float *vj = w->v + (size_t)j * HV;
        float si, sr = conj_dot(hj + (size_t)j * HV, vj, &si);
        w->s[2 * j] = sr;
        w->s[2 * j + 1] = si;
        w->sig[j] = sr * sr + si * si;
        add_interference(hj, vj, 0, j, w->inf);
        add_interference(hj, vj, j + 1, k, w->inf);
    }
}

/* ---- MRT ----------------------------------------------------------------------- */

/* v_k = h_kk / ||h_kk|| (0 where h_kk = 0) */
static void mrt(const float *h, int32_t k, float *v)
{
    int32_t t;
    int a;
    for (t = 0; t < k; ++t) {
        const float *x = H_AT(h, t, t);
        float *vt = v + (size_t)t * HV;
        float n2 = 0.0f, scale;
        for (a = 0; a < HV; ++a)
            n2 += x[a] * x[a];
        scale = n2 > 0.0f ? 1.0f / sqrtf(n2) : 0.0f;
        for (a = 0; a < HV; ++a)
            vt[a] = scale * x[a];
    }
}

/* ---- per-transmitter update: v_t = (A_t + mu I)^{-1} b_t ----------------------- */

/* ||v|| <= 1 against rounding: scale v (NT, 2) down if its power exceeds 1 */
static void clip_power(float *v)
{
    float p = 0.0f;
    int a;
    for (a = 0; a < HV; ++a)
        p += v[a] * v[a];
    if (p > 1.0f) {
        float scale = 1.0f / sqrtf(p);
        for (a = 0; a < HV; ++a)
            v[a] *= scale;
    }
}

#if NT == 2

/* A = [[a, cr + i ci], [cr - i ci, d]] (trace 1), b = (b0, b1): v (2, 2) out */
static void solve2(float a, float d, float cr, float ci, const float *b, float *v)
{
    float det = a * d - (cr * cr + ci * ci);
    /* x = adj(A) b, so (A + mu I)^{-1} b = (x + mu b) / D(mu) */
    float x0r = d * b[0] - (cr * b[2] - ci * b[3]);
    float x0i = d * b[1] - (cr * b[3] + ci * b[2]);
    float x1r = a * b[2] - (cr * b[0] + ci * b[1]);
    float x1i = a * b[3] - (cr * b[1] - ci * b[0]);
    /* ||x + mu b||^2 = n0 + n1 mu + n2 mu^2,  D(mu) = det + mu + mu^2 */
    float n0 = x0r * x0r + x0i * x0i + x1r * x1r + x1i * x1i;
    float n1 = 2.0f * (b[0] * x0r + b[1] * x0i + b[2] * x1r + b[3] * x1i);
    float n2 = b[0] * b[0] + b[1] * b[1] + b[2] * b[2] + b[3] * b[3];
    float mu = det > SINGULAR ? 0.0f : MU_FLOOR;
    float num = n0 + mu * (n1 + mu * n2);
    float den = det + mu * (1.0f + mu);
    float inv;
    int it;

    if (num > den * den) { /* ||v(mu)|| > 1: Newton on D / sqrt(num) = 1 */
        for (it = 0; it < WMMSE_NEWTON_MAX; ++it) {
            float root = sqrtf(num);
            float step = (root - den) * num / ((1.0f + 2.0f * mu) * num - 0.5f * den * (n1 + 2.0f * mu * n2));
            mu += step;
            num = n0 + mu * (n1 + mu * n2);
            den = det + mu * (1.0f + mu);
            if (!(step > NEWTON_RTOL * mu))
                break;
        }
    }
    inv = 1.0f / den;
    v[0] = (x0r + mu * b[0]) * inv;
    v[1] = (x0i + mu * b[1]) * inv;
    v[2] = (x1r + mu * b[2]) * inv;
    v[3] = (x1i + mu * b[3]) * inv;
    clip_power(v);
}

/* v_t from the row h[t][0..k) and the weights c; b_t = beta_t h_tt */
static void update_tx(const float *ht, int32_t t, int32_t k, const work *w, float *v)
{
    float a = 0.0f, d = 0.0f, cr = 0.0f, ci = 0.0f, b[4], tr, inv;
    const float *x;
    int32_t j;
    for (j = 0; j < k; ++j) { /* A += c_j x x^H, x = h_tj */
        float cj = w->c[j], p, q, r;
        x = ht + (size_t)j * HV;
        p = cj * x[0];
        q = cj * x[1];
        a = MADD(p, x[0], a);
        a = MADD(q, x[1], a);
        cr = MADD(p, x[2], cr);
        cr = MADD(q, x[3], cr);
        ci = MADD(q, x[2], ci);
        ci = MADD(-p, x[3], ci);
        r = x[3] * x[3];
        r = MADD(x[2], x[2], r);
        d = MADD(cj, r, d);
    }
    tr = a + d;
    x = ht + (size_t)t * HV;
    if (!(tr > 0.0f) || (w->beta[2 * t] == 0.0f && w->beta[2 * t + 1] == 0.0f)) {
        memset(v, 0, HV * sizeof(float));
        return;
    }
    inv = 1.0f / tr; /* solve with trace(A) = 1: v = (A/tr + mu/tr I)^{-1} b/tr */
    {
        float br = w->beta[2 * t] * inv, bi = w->beta[2 * t + 1] * inv;
        b[0] = br * x[0] - bi * x[1];
        b[1] = br * x[1] + bi * x[0];
        b[2] = br * x[2] - bi * x[3];
        b[3] = br * x[3] + bi * x[2];
    }
    solve2(a * inv, d * inv, cr * inv, ci * inv, b, v);
}

#else /* general NT: complex Cholesky */

/* L L^H = A + mu I for A (NT, NT, 2), lower triangle used; L (NT, NT, 2) lower.
 * Returns 0, or -1 when a pivot is below SINGULAR (A has trace 1). */
static int cholesky(const float *A, float mu, float *L)
{
    int i, j, p;
    for (j = 0; j < NT; ++j) {
        float dj = A[2 * (j * NT + j)] + mu, lj, inv;
        for (p = 0; p < j; ++p)
            dj -= L[2 * (j * NT + p)] * L[2 * (j * NT + p)] + L[2 * (j * NT + p) + 1] * L[2 * (j * NT + p) + 1];
        if (!(dj > SINGULAR))
            return -1;
        lj = sqrtf(dj);
        inv = 1.0f / lj;
        L[2 * (j * NT + j)] = lj;
        L[2 * (j * NT + j) + 1] = 0.0f;
        for (i = j + 1; i < NT; ++i) {
            float re = A[2 * (i * NT + j)], im = A[2 * (i * NT + j) + 1];
            for (p = 0; p < j; ++p) { /* -= L_ip conj(L_jp) */
                const float *li = &L[2 * (i * NT + p)], *lq = &L[2 * (j * NT + p)];
                re -= li[0] * lq[0] + li[1] * lq[1];
                im -= li[1] * lq[0] - li[0] * lq[1];
            }
            L[2 * (i * NT + j)] = re * inv;
            L[2 * (i * NT + j) + 1] = im * inv;
        }
    }
    return 0;
}

/* y = L^{-1} b (forward), b, y (NT, 2); y may alias b */
static void forward(const float *L, const float *b, float *y)
{
    int i, p;
    for (i = 0; i < NT; ++i) {
        float re = b[2 * i], im = b[2 * i + 1], inv = 1.0f / L[2 * (i * NT + i)];
        for (p = 0; p < i; ++p) { /* -= L_ip y_p */
            const float *l = &L[2 * (i * NT + p)];
            re -= l[0] * y[2 * p] - l[1] * y[2 * p + 1];
            im -= l[0] * y[2 * p + 1] + l[1] * y[2 * p];
        }
        y[2 * i] = re * inv;
        y[2 * i + 1] = im * inv;
    }
}

/* x = L^{-H} y (backward), y, x (NT, 2); x may alias y */
static void backward(const float *L, const float *y, float *x)
{
    int i, p;
    for (i = NT - 1; i >= 0; --i) {
        float re = y[2 * i], im = y[2 * i + 1], inv = 1.0f / L[2 * (i * NT + i)];
        for (p = i + 1; p < NT; ++p) { /* -= conj(L_pi) x_p */
            const float *l = &L[2 * (p * NT + i)];
            re -= l[0] * x[2 * p] + l[1] * x[2 * p + 1];
            im -= l[0] * x[2 * p + 1] - l[1] * x[2 * p];
        }
        x[2 * i] = re * inv;
        x[2 * i + 1] = im * inv;
    }
}

static float power(const float *x)
{
    float p = 0.0f;
    int a;
    for (a = 0; a < HV; ++a)
        p += x[a] * x[a];
    return p;
}

/* v = (A + mu I)^{-1} b with the WMMSE mu, A (NT, NT, 2) of trace 1, b, v (NT, 2) */
static void solve_chol(const float *A, const float *b, float *v)
{
    float L[NT * NT * 2], z[HV]; /* (NT, NT, 2), (NT, 2) */
    float mu = 0.0f, pw;
    int it;
    if (cholesky(A, mu, L) != 0) {
        mu = MU_FLOOR;
        if (cholesky(A, mu, L) != 0) {
            memset(v, 0, HV * sizeof(float));
            return;
        }
    }
    forward(L, b, v);
    backward(L, v, v);
    pw = power(v);
    for (it = 0; it < WMMSE_NEWTON_MAX && pw > 1.0f; ++it) {
        /* phi = 1/||v|| - 1, phi' = q / pw^(3/2) with q = v^H (A + mu I)^{-1} v = ||L^{-1} v||^2 */
        float q, step;
        forward(L, v, z);
        q = power(z);
        step = pw * (sqrtf(pw) - 1.0f) / q;
        mu += step;
        if (cholesky(A, mu, L) != 0)
            break; /* unreachable for mu >= MU_FLOOR: keep the last v */
        forward(L, b, v);
        backward(L, v, v);
        pw = power(v);
        if (!(step > NEWTON_RTOL * mu))
            break;
    }
    clip_power(v);
}

static void update_tx(const float *ht, int32_t t, int32_t k, const work *w, float *v)
{
    float A[NT * NT * 2], b[HV], tr = 0.0f, inv, br, bi; /* (NT, NT, 2) lower, (NT, 2) */
    const float *x;
    int32_t j;
    int a, e;
    memset(A, 0, sizeof A);
    for (j = 0; j < k; ++j) { /* A += c_j x x^H (lower triangle), x = h_tj */
        float cj = w->c[j], cx[HV];
        x = ht + (size_t)j * HV;
        for (a = 0; a < HV; ++a)
            cx[a] = cj * x[a];
        for (a = 0; a < NT; ++a) {
            float *d = &A[2 * (a * NT + a)];
            d[0] = MADD(cx[2 * a], x[2 * a], MADD(cx[2 * a + 1], x[2 * a + 1], d[0]));
            for (e = 0; e < a; ++e) { /* A_ae += c x_a conj(x_e) */
                float *o = &A[2 * (a * NT + e)];
                o[0] = MADD(cx[2 * a], x[2 * e], MADD(cx[2 * a + 1], x[2 * e + 1], o[0]));
                o[1] = MADD(cx[2 * a + 1], x[2 * e], MADD(-cx[2 * a], x[2 * e + 1], o[1]));
            }
        }
    }
    for (a = 0; a < NT; ++a)
        tr += A[2 * (a * NT + a)];
    br = w->beta[2 * t];
    bi = w->beta[2 * t + 1];
    if (!(tr > 0.0f) || (br == 0.0f && bi == 0.0f)) {
        memset(v, 0, HV * sizeof(float));
        return;
    }
    inv = 1.0f / tr; /* solve with trace(A) = 1: v = (A/tr + mu/tr I)^{-1} b/tr */
    for (a = 0; a < NT * NT * 2; ++a)
        A[a] *= inv;
    br *= inv;
    bi *= inv;
    x = ht + (size_t)t * HV;
    for (a = 0; a < NT; ++a) {
        b[2 * a] = br * x[2 * a] - bi * x[2 * a + 1];
        b[2 * a + 1] = br * x[2 * a + 1] + bi * x[2 * a];
    }
    solve_chol(A, b, v);
}

#endif

/* ---- driver -------------------------------------------------------------------- */

static void one_iteration(const float *h, int32_t k, const float *alpha, work *w)
{
    int32_t t;
    /* from the gains of the current v: c_k and beta_k (u_k and w_k folded in) */
    for (t = 0; t < k; ++t) {
        float al = alpha ? alpha[t] : 1.0f;
        float r = al / w->inf[t];
        w->c[t] = r * w->sig[t] / (w->inf[t] + w->sig[t]);
        w->beta[2 * t] = r * w->s[2 * t];
        w->beta[2 * t + 1] = r * w->s[2 * t + 1];
    }
    for (t = 0; t < k; ++t)
        update_tx(H_AT(h, t, 0), t, k, w, w->v + (size_t)t * HV);
    gains(h, k, w);
}

/* 1 when every gain is finite */
static int gains_finite(int32_t k, const work *w)
{
    int32_t t;
    for (t = 0; t < k; ++t)
        if (!isfinite(w->sig[t]) || !isfinite(w->inf[t]))
            return 0;
    return 1;
}

static int block_finite(const float *h, int32_t k)
{
    int32_t t, r;
    int a;
    for (t = 0; t < k; ++t)
        for (r = 0; r < k; ++r)
            for (a = 0; a < HV; ++a)
                if (!isfinite(H_AT(h, t, r)[a]))
                    return 0;
    return 1;
}

int wmmse_f32(const float *h, int32_t k, const float *alpha, int32_t iters, void *scratch, float *v,
              float *wsr)
{
    work w;
    int32_t t, it;
    float rate = 0.0f;

    if (!h || !v || !scratch)
        return WMMSE_ERR_NULL;
    if (k < 1 || k > KM)
        return WMMSE_ERR_K;
    if (iters < 0)
        return WMMSE_ERR_ITERS;
    if (alpha)
        for (t = 0; t < k; ++t) {
            if (!isfinite(alpha[t]))
                return WMMSE_ERR_NONFINITE;
            if (alpha[t] < 0.0f)
                return WMMSE_ERR_ALPHA;
        }

    w = split_scratch(scratch);
    mrt(h, k, w.v);
    gains(h, k, &w); /* touches every active h: a NaN/Inf there makes a gain non-finite */
    if (!gains_finite(k, &w))
        return block_finite(h, k) ? WMMSE_ERR_OVERFLOW : WMMSE_ERR_NONFINITE;
    for (it = 0; it < iters; ++it)
        one_iteration(h, k, alpha, &w);
    if (!gains_finite(k, &w))
        return WMMSE_ERR_OVERFLOW;

    if (wsr) {
        for (t = 0; t < k; ++t)
            rate += (alpha ? alpha[t] : 1.0f) * log2f(1.0f + w.sig[t] / w.inf[t]);
        *wsr = rate;
    }
    memcpy(v, w.v, (size_t)k * HV * sizeof(float));
    memset(v + (size_t)k * HV, 0, (size_t)(KM - k) * HV * sizeof(float));
    return WMMSE_OK;
}
