/* wmmse_f32: WMMSE beamforming in portable C99 float32 (see wmmse_f32.h for
 * the algorithm, the conventions and the operation count).
 * Build with -DWMMSE_F32_K_MAX=.. -DWMMSE_F32_NT=.. and without -ffast-math /
 * -ffinite-math-only: the first gain sweep detects NaN/Inf by IEEE rules. */
#include "wmmse_f32.h"

#include <math.h>
#include <string.h>

#include "wmmse_links.h"   /* the per-link state and the helpers shared with wmmse_sparse_f32.c */
#include "wmmse_update2.h" /* the NT = 2 transmitter update */

#define KM (WMMSE_KM)
#define NT (WMMSE_F32_NT)
#define HV (WMMSE_HV)
#define H_AT WMMSE_H_AT

#define PIVOT_RTOL 0x1p-20f /* Cholesky: a pivot below this of its diagonal is singular */
#define MU_FLOOR                                                                                   \
    0x1p-20f /* Tikhonov floor on mu / trace(A) for a singular A (or R):                           \
                16x the rounding noise of a trace-1 pivot */
#define NEWTON_RTOL                                                                                \
    0x1p-20f /* Newton stops: step below this * mu, or (NT != 2) |power - 1| below this */

size_t wmmse_f32_scratch_bytes(void)
{
    return WMMSE_F32_SCRATCH_BYTES;
}

/* ---- gains ------------------------------------------------------------------- */

/* inf[r] += |h_jr^H v_j|^2 for receivers r in [r0, r1) */
static inline void add_interference(const float *hj, const float *vj, int32_t r0, int32_t r1,
                                    float *inf)
{
    float vl[HV]; /* (NT, 2) v_j in registers: the stores to inf cannot alias it */
    int32_t r;
    int a;
    UNROLL_ALL
    for (a = 0; a < HV; ++a)
        vl[a] = vj[a];
    for (r = r0; r < r1; ++r) {
        float gi, gr = wmmse_conj_dot(hj + (size_t)r * HV, vl, &gi);
        float acc = inf[r];
        acc = MADD(gi, gi, acc);
        inf[r] = MADD(gr, gr, acc);
    }
}

/* s, sig and inf of the current v, for links [0, k): one sweep over the k x k block */
static void gains(const float *h, int32_t k, const float *noise_var, wmmse_links *w)
{
    int32_t j;
    for (j = 0; j < k; ++j)
        w->inf[j] = noise_var ? noise_var[j] : 1.0f;
    for (j = 0; j < k; ++j) {
        const float *hj = H_AT(h, j, 0); /* (KM, NT, 2): row of transmitter j */
        const float *vj = w->v + (size_t)j * HV;
        float si, sr = wmmse_conj_dot(hj + (size_t)j * HV, vj, &si);
        w->s[2 * j] = sr;
        w->s[2 * j + 1] = si;
        w->sig[j] = sr * sr + si * si;
        add_interference(hj, vj, 0, j, w->inf);
        add_interference(hj, vj, j + 1, k, w->inf);
    }
}

/* ---- per-transmitter update: v_t = (A_t + mu I)^{-1} b_t ----------------------- */

#if NT != 2 /* NT = 2: wmmse_update2.h clips */
/* v (NT, 2) solved for the limit 1 -> amp v, with ||v|| <= 1 against rounding first */
static void clip_power(float *v, float amp)
{
    float p = 0.0f, scale = amp;
    int a;
    for (a = 0; a < HV; ++a)
        p += v[a] * v[a];
    if (p > 1.0f)
        scale = amp / sqrtf(p);
    for (a = 0; a < HV; ++a)
        v[a] *= scale;
}
#endif

/* The direct term is kept apart: A_t = R_t + c_t x x^H with x = h_tt, the
 * interference part R_t = sum_{j != t} c_j h_tj h_tj^H, and b_t = beta_t x.
 * Summed into one float A, c_t |x|^2 (often 1e6 times the rest) would wash
 * out R_t's small eigenvalues, which decide v_t when the power does not bind;
 * apart, the solve below is exact algebra (matrix determinant lemma,
 * Sherman-Morrison) and no digit of R_t is lost. */

#if NT == 2

/* R += c_j x x^H for the rows [j0, j1) of ht: R = (a, d, cr + i ci), registers */
static inline void accumulate_r(const float *ht, const float *c, int32_t j0, int32_t j1, float *R)
{
    float a = R[0], d = R[1], cr = R[2], ci = R[3];
    int32_t j;
    for (j = j0; j < j1; ++j) {
        const float *x = ht + (size_t)j * HV;
        float cj = c[j], p, q, r;
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
    R[0] = a;
    R[1] = d;
    R[2] = cr;
    R[3] = ci;
}

/* v_t from the row h[t][0..k) (k, 2, 2), the weights c and beta_t */
static void update_tx(const float *ht, int32_t t, int32_t k, const wmmse_links *w, float *v)
{
    float R[4] = {0.0f, 0.0f, 0.0f, 0.0f}, ct = w->c[t], amp = w->amp[t];

    accumulate_r(ht, w->c, 0, t, R);
    accumulate_r(ht, w->c, t + 1, k, R);
    wmmse_update2(R, ct, ht + (size_t)t * HV, w->beta[2 * t], w->beta[2 * t + 1], amp, v);
}

#else /* general NT: complex Cholesky of R + mu I */

/* L L^H = R + mu I for R (NT, NT, 2), lower triangle used; L (NT, NT, 2) lower.
 * Returns 0, or -1 when a pivot keeps less than PIVOT_RTOL of its diagonal
 * (mu = 0) or is not positive (mu > 0). */
static int cholesky(const float *R, float mu, float *L)
{
    int i, j, p;
    UNROLL_ALL
    for (j = 0; j < NT; ++j) {
        float dj = R[2 * (j * NT + j)] + mu, lj, inv, diag = dj;
        UNROLL_ALL
        for (p = 0; p < j; ++p)
            dj -= L[2 * (j * NT + p)] * L[2 * (j * NT + p)] +
                  L[2 * (j * NT + p) + 1] * L[2 * (j * NT + p) + 1];
        if (!(dj > PIVOT_RTOL * diag) && !(mu > 0.0f && dj > 0.0f))
            return -1; /* with mu > 0 every exact pivot is >= mu: accept what rounding left */
        lj = sqrtf(dj);
        inv = 1.0f / lj;
        L[2 * (j * NT + j)] = lj;
        L[2 * (j * NT + j) + 1] = 0.0f;
        UNROLL_ALL
        for (i = j + 1; i < NT; ++i) {
            float re = R[2 * (i * NT + j)], im = R[2 * (i * NT + j) + 1];
            UNROLL_ALL
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
    UNROLL_ALL
    for (i = 0; i < NT; ++i) {
        float re = b[2 * i], im = b[2 * i + 1], inv = 1.0f / L[2 * (i * NT + i)];
        UNROLL_ALL
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
    UNROLL_ALL
    for (i = NT - 1; i >= 0; --i) {
        float re = y[2 * i], im = y[2 * i + 1], inv = 1.0f / L[2 * (i * NT + i)];
        UNROLL_ALL
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
    UNROLL_ALL
    for (a = 0; a < HV; ++a)
        p += x[a] * x[a];
    return p;
}

/* y = (R + mu I)^{-1} x from L; returns s = x^H y (real), *yy = ||y||^2 */
static float sm_solve(const float *L, const float *x, float *y, float *yy)
{
    float s;
    forward(L, x, y);
    s = power(y); /* x^H M^{-1} x = ||L^{-1} x||^2 */
    backward(L, y, y);
    *yy = power(y);
    return s;
}

/* v = (R + c x x^H + mu I)^{-1} beta x with the WMMSE mu (Sherman-Morrison:
 * = beta y / (1 + c x^H y), y = (R + mu I)^{-1} x); R (NT, NT, 2) and c |x|^2
 * of trace 1 together, x, v (NT, 2), beta = (br, bi).
 * Safeguarded Newton: the derivative of ||v||^2 is a difference that cancels
 * when y lies along one eigenvector of R (a link just switched off leaves R
 * nearly singular); then, or when a step leaves the bracket [lo, hi] with
 * ||v(lo)|| > 1 >= ||v(hi)|| (hi starts at ||b||), the step bisects. */
static void solve_sm(const float *R, float c, const float *x, float br, float bi, float amp,
                     float *v)
{
    float L[NT * NT * 2], y[HV], z[HV]; /* (NT, NT, 2), (NT, 2), (NT, 2) */
    float mu = 0.0f, s, yy, den, b2 = br * br + bi * bi, pw, scale, lo, hi;
    int it, a;
    if (cholesky(R, mu, L) != 0) {
        mu = MU_FLOOR;
        if (cholesky(R, mu, L) != 0) {
            memset(v, 0, HV * sizeof(float));
            return;
        }
    }
    s = sm_solve(L, x, y, &yy);
    den = 1.0f + c * s;
    pw = b2 * yy / (den * den);
    lo = mu;
    hi = mu + sqrtf(b2 * power(x)); /* ||v(hi)|| <= ||b|| / hi <= 1, b = beta x */
    for (it = 0; it < WMMSE_F32_NEWTON_MAX && pw > 1.0f; ++it) {
        /* ||v||^2 = b2 yy / den^2; d/dmu = -2 b2 (den ||L^{-1} y||^2 - c yy^2) / den^3 */
        float zz, q, next;
        forward(L, y, z);
        zz = power(z);
        q = den * zz - c * yy * yy;
        lo = mu;
        next = mu + pw * (sqrtf(pw) - 1.0f) * den * den * den / (b2 * q);
        if (!(q > 0x1p-8f * den * zz) || !(next < hi))
            next = 0.5f * (lo + hi); /* bisect */
        else if (!(next - mu > NEWTON_RTOL * next))
            break; /* converged from the left: pw > 1 by a rounding */
        mu = next;
        if (cholesky(R, mu, L) != 0)
            break; /* unreachable for mu > 0: keep the last y */
        s = sm_solve(L, x, y, &yy);
        den = 1.0f + c * s;
        pw = b2 * yy / (den * den);
        if (pw > 1.0f - NEWTON_RTOL && pw < 1.0f + NEWTON_RTOL)
            break; /* ||v|| = 1 to float resolution: clip_power does the rest */
        if (!(pw > 1.0f)) {
            hi = mu;
            if (!(hi - lo > NEWTON_RTOL * hi))
                break;
            /* overshoot: go on from lo towards the root with the bracket [lo, hi] */
            mu = lo;
            if (cholesky(R, mu, L) != 0)
                break;
            s = sm_solve(L, x, y, &yy);
            den = 1.0f + c * s;
            pw = b2 * yy / (den * den);
        }
    }
    scale = 1.0f / den;
    UNROLL_ALL
    for (a = 0; a < NT; ++a) { /* v = beta y / den */
        v[2 * a] = (br * y[2 * a] - bi * y[2 * a + 1]) * scale;
        v[2 * a + 1] = (br * y[2 * a + 1] + bi * y[2 * a]) * scale;
    }
    clip_power(v, amp);
}

/* R (NT, NT, 2) lower triangle += sum_j c_j x_j x_j^H over the rows [j0, j1) of ht */
static void accumulate_r(const float *ht, const float *c, int32_t j0, int32_t j1, float *R)
{
    float acc[NT * NT * 2]; /* (NT, NT, 2): a local the compiler may keep in registers */
    int32_t j;
    int a, e;
    UNROLL_ALL
    for (a = 0; a < NT * NT * 2; ++a)
        acc[a] = R[a];
    for (j = j0; j < j1; ++j) {
        const float *x = ht + (size_t)j * HV;
        float cj = c[j], cx[HV];
        UNROLL_ALL
        for (a = 0; a < HV; ++a)
            cx[a] = cj * x[a];
        UNROLL_ALL
        for (a = 0; a < NT; ++a) {
            float *d = &acc[2 * (a * NT + a)];
            d[0] = MADD(cx[2 * a], x[2 * a], d[0]);
            d[0] = MADD(cx[2 * a + 1], x[2 * a + 1], d[0]);
            UNROLL_ALL
            for (e = 0; e < a; ++e) { /* R_ae += c x_a conj(x_e) */
                float *o = &acc[2 * (a * NT + e)];
                o[0] = MADD(cx[2 * a], x[2 * e], o[0]);
                o[0] = MADD(cx[2 * a + 1], x[2 * e + 1], o[0]);
                o[1] = MADD(cx[2 * a + 1], x[2 * e], o[1]);
                o[1] = MADD(-cx[2 * a], x[2 * e + 1], o[1]);
            }
        }
    }
    memcpy(R, acc, sizeof acc);
}

static void update_tx(const float *ht, int32_t t, int32_t k, const wmmse_links *w, float *v)
{
    float R[NT * NT * 2], tr = 0.0f, ct = w->c[t], amp = w->amp[t], inv, br,
                          bi;             /* (NT, NT, 2) lower */
    const float *x = ht + (size_t)t * HV; /* h_tt (NT, 2) */
    int a;
    memset(R, 0, sizeof R);
    accumulate_r(ht, w->c, 0, t, R);
    accumulate_r(ht, w->c, t + 1, k, R);
    for (a = 0; a < NT; ++a)
        tr += R[2 * (a * NT + a)];
    tr += ct * power(x); /* trace(A_t) */
    br = w->beta[2 * t];
    bi = w->beta[2 * t + 1];
    if (!(tr > 0.0f) || (br == 0.0f && bi == 0.0f) || !(amp > 0.0f)) {
        memset(v, 0, HV * sizeof(float));
        return;
    }
    /* solve with trace(A) = 1 and the power limit 1: v / amp = (A/tr + mu/tr I)^{-1} b/(tr amp) */
    inv = 1.0f / tr;
    for (a = 0; a < NT * NT * 2; ++a)
        R[a] *= inv;
    solve_sm(R, ct * inv, x, br * inv / amp, bi * inv / amp, amp, v);
}

#endif

/* ---- driver -------------------------------------------------------------------- */

static void one_iteration(const float *h, int32_t k, const float *alpha, const float *noise_var,
                          wmmse_links *w)
{
    int32_t t;
    wmmse_weights(k, alpha, w);
    for (t = 0; t < k; ++t)
        update_tx(H_AT(h, t, 0), t, k, w, w->v + (size_t)t * HV);
    gains(h, k, noise_var, w);
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

int wmmse_f32(const float *h, int32_t k, const float *alpha, const float *p_max,
              const float *noise_var, int32_t iters, void *scratch, float *v, float *wsr)
{
    wmmse_links w;
    int32_t t, it;
    int rc;

    if (!h || !v || !scratch)
        return WMMSE_F32_ERR_NULL;
    if (k < 1 || k > KM)
        return WMMSE_F32_ERR_K;
    if (iters < 0)
        return WMMSE_F32_ERR_ITERS;
    if ((rc = wmmse_check_params(alpha, k, 0, WMMSE_F32_ERR_NONFINITE, WMMSE_F32_ERR_PARAM)) != 0 ||
        (rc = wmmse_check_params(p_max, k, 0, WMMSE_F32_ERR_NONFINITE, WMMSE_F32_ERR_PARAM)) != 0 ||
        (rc = wmmse_check_params(noise_var, k, 1, WMMSE_F32_ERR_NONFINITE, WMMSE_F32_ERR_PARAM)) !=
            0)
        return rc;

    wmmse_links_split(scratch, &w);
    for (t = 0; t < k; ++t)
        w.amp[t] = p_max ? sqrtf(p_max[t]) : 1.0f;
    wmmse_mrt(h, k, w.amp, w.v);
    gains(h, k, noise_var,
          &w); /* touches every active h: a NaN/Inf there makes a gain non-finite */
    if (!wmmse_gains_finite(k, &w))
        return block_finite(h, k) ? WMMSE_F32_ERR_OVERFLOW : WMMSE_F32_ERR_NONFINITE;
    for (it = 0; it < iters; ++it)
        one_iteration(h, k, alpha, noise_var, &w);
    if (!wmmse_gains_finite(k, &w))
        return WMMSE_F32_ERR_OVERFLOW;

    wmmse_finish(k, alpha, &w, v, wsr);
    return WMMSE_F32_OK;
}
