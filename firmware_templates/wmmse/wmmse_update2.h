/* wmmse_update2.h: one transmitter's WMMSE update for NT = 2, inline, the one
 * copy behind the dense kernel (wmmse_f32.c) and the sparse one's solve
 * (wmmse_solve_f32.c):
 *
 *     v = (A + mu I)^{-1} b,  A = R + c x x^H,  b = beta x,
 *     mu = 0 if ||v||^2 <= amp^2 there, else the mu >= 0 with ||v|| = amp.
 *
 * Everything is divided by trace(A) first; adj(A) x = adj(R) x and
 * det(A) = det(R) + c x^H adj(R) x (determinant lemma), so the interference
 * part R keeps its small eigenvalues apart from the direct term c |x|^2
 * (often 1e6 times the rest); Newton on the secular equation for mu (at most
 * WMMSE_UPDATE2_NEWTON_MAX steps, stopping at a step below 2^-20 mu); a
 * singular A (det < 2^-40 at trace 1) starts from the Tikhonov floor
 * mu = 2^-20 trace(A). A = 0, b = 0 or amp = 0 give v = 0. About 70 flops plus
 * 12 per Newton step, one sqrt and one division each.
 *
 *   R     (4,) float: the Hermitian 2 x 2 interference part (R00, R11, Re R10,
 *         Im R10), PSD; scaled in place (the caller's copy).
 *   ct    >= 0: weight of the direct term.
 *   x     (2, 2) float: the direct channel h_tt, (re, im) per antenna.
 *   br, bi  beta = br + i bi.
 *   amp   >= 0: the largest ||v|| (sqrt of the power limit).
 *   v     (2, 2) float out: the beamformer, ||v|| <= amp up to one rounding.
 */
#ifndef WMMSE_UPDATE2_H
#define WMMSE_UPDATE2_H

#include <math.h>
#include <string.h>

#define WMMSE_UPDATE2_NEWTON_MAX 40
#define WMMSE_UPDATE2_SINGULAR 0x1p-40f    /* det(A) of a trace-1 A below this is singular */
#define WMMSE_UPDATE2_MU_FLOOR 0x1p-20f    /* Tikhonov floor on mu / trace(A) for a singular A */
#define WMMSE_UPDATE2_NEWTON_RTOL 0x1p-20f /* Newton stops: step below this * mu */

static inline void wmmse_update2(float *R, float ct, const float *x, float br, float bi, float amp,
                                 float *v)
{
    float x2, tr, inv, y[4], q, det, x0[4], b[4], n0, n1, n2, mu, num, den, p = 0.0f, scale = amp;
    int it, a;

    x2 = x[0] * x[0] + x[1] * x[1] + x[2] * x[2] + x[3] * x[3];
    tr = R[0] + R[1] + ct * x2; /* trace(A_t) */
    if (!(tr > 0.0f) || (br == 0.0f && bi == 0.0f) || !(amp > 0.0f)) {
        memset(v, 0, 4 * sizeof(float));
        return;
    }
    /* solve with trace(A) = 1 and the power limit 1: v / amp = (A/tr + mu/tr I)^{-1} b/(tr amp) */
    inv = 1.0f / tr;
    R[0] *= inv;
    R[1] *= inv;
    R[2] *= inv;
    R[3] *= inv;
    ct *= inv;
    inv /= amp;
    br *= inv;
    bi *= inv;
    /* y = adj(R) x = adj(A) x (adj(x x^H) x = 0), q = x^H y,
     * det(A) = det(R) + c_t x^H adj(R) x (determinant lemma) */
    y[0] = R[1] * x[0] - (R[2] * x[2] - R[3] * x[3]);
    y[1] = R[1] * x[1] - (R[2] * x[3] + R[3] * x[2]);
    y[2] = R[0] * x[2] - (R[2] * x[0] + R[3] * x[1]);
    y[3] = R[0] * x[3] - (R[2] * x[1] - R[3] * x[0]);
    q = x[0] * y[0] + x[1] * y[1] + x[2] * y[2] + x[3] * y[3];
    det = (R[0] * R[1] - (R[2] * R[2] + R[3] * R[3])) + ct * q;
    /* b = beta x, x0 = adj(A) b = beta y: (A + mu I)^{-1} b = (x0 + mu b) / D(mu) */
    b[0] = br * x[0] - bi * x[1];
    b[1] = br * x[1] + bi * x[0];
    b[2] = br * x[2] - bi * x[3];
    b[3] = br * x[3] + bi * x[2];
    x0[0] = br * y[0] - bi * y[1];
    x0[1] = br * y[1] + bi * y[0];
    x0[2] = br * y[2] - bi * y[3];
    x0[3] = br * y[3] + bi * y[2];
    /* ||x0 + mu b||^2 = n0 + n1 mu + n2 mu^2,  D(mu) = det + mu + mu^2 */
    n0 = x0[0] * x0[0] + x0[1] * x0[1] + x0[2] * x0[2] + x0[3] * x0[3];
    n1 = 2.0f * (b[0] * x0[0] + b[1] * x0[1] + b[2] * x0[2] + b[3] * x0[3]);
    n2 = b[0] * b[0] + b[1] * b[1] + b[2] * b[2] + b[3] * b[3];
    mu = det > WMMSE_UPDATE2_SINGULAR ? 0.0f : WMMSE_UPDATE2_MU_FLOOR;
    num = n0 + mu * (n1 + mu * n2);
    den = det + mu * (1.0f + mu);
    if (num > den * den) { /* ||v(mu)|| > 1: Newton on D / sqrt(num) = 1 */
        for (it = 0; it < WMMSE_UPDATE2_NEWTON_MAX; ++it) {
            float root = sqrtf(num);
            float step = (root - den) * num /
                         ((1.0f + 2.0f * mu) * num - 0.5f * den * (n1 + 2.0f * mu * n2));
            mu += step;
            num = n0 + mu * (n1 + mu * n2);
            den = det + mu * (1.0f + mu);
            if (!(step > WMMSE_UPDATE2_NEWTON_RTOL * mu))
                break;
        }
    }
    inv = 1.0f / den;
    v[0] = (x0[0] + mu * b[0]) * inv;
    v[1] = (x0[1] + mu * b[1]) * inv;
    v[2] = (x0[2] + mu * b[2]) * inv;
    v[3] = (x0[3] + mu * b[3]) * inv;
    /* ||v|| <= 1 against rounding, then back to the limit amp */
    for (a = 0; a < 4; ++a)
        p += v[a] * v[a];
    if (p > 1.0f)
        scale = amp / sqrtf(p);
    for (a = 0; a < 4; ++a)
        v[a] *= scale;
}

#endif /* WMMSE_UPDATE2_H */
