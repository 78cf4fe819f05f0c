/* wmmse_solve_f32: the NT = 2 transmitter update (see wmmse_solve_f32.h). */
#include "wmmse_solve_f32.h"

#include <math.h>
#include <string.h>

#define SINGULAR 0x1p-40f    /* det(A) of a trace-1 A below this is singular */
#define MU_FLOOR 0x1p-20f    /* Tikhonov floor on mu / trace(A) for a singular A */
#define NEWTON_RTOL 0x1p-20f /* Newton stops: step below this * mu */

void wmmse_solve_f32(const float *R_in, float ct, const float *x, float br, float bi, float amp,
                     float *v)
{
    float R[4], x2, tr, inv, y[4], q, det, x0[4], b[4], n0, n1, n2, mu, num, den, p, scale;
    int it, a;

    x2 = x[0] * x[0] + x[1] * x[1] + x[2] * x[2] + x[3] * x[3];
    tr = R_in[0] + R_in[1] + ct * x2; /* trace(A) */
    if (!(tr > 0.0f) || (br == 0.0f && bi == 0.0f) || !(amp > 0.0f)) {
        memset(v, 0, 4 * sizeof(float));
        return;
    }
    /* solve with trace(A) = 1 and the power limit 1: v / amp = (A/tr + mu/tr I)^{-1} b/(tr amp) */
    inv = 1.0f / tr;
    for (a = 0; a < 4; ++a)
        R[a] = R_in[a] * inv;
    ct *= inv;
    inv /= amp;
    br *= inv;
    bi *= inv;
    /* y = adj(R) x = adj(A) x, q = x^H y, det(A) = det(R) + c x^H adj(R) x */
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
    mu = det > SINGULAR ? 0.0f : MU_FLOOR;
    num = n0 + mu * (n1 + mu * n2);
    den = det + mu * (1.0f + mu);
    if (num > den * den) { /* ||v(mu)|| > 1: Newton on D / sqrt(num) = 1 */
        for (it = 0; it < WMMSE_SOLVE_F32_NEWTON_MAX; ++it) {
            float root = sqrtf(num);
            float step = (root - den) * num /
                         ((1.0f + 2.0f * mu) * num - 0.5f * den * (n1 + 2.0f * mu * n2));
            mu += step;
            num = n0 + mu * (n1 + mu * n2);
            den = det + mu * (1.0f + mu);
            if (!(step > NEWTON_RTOL * mu))
                break;
        }
    }
    inv = 1.0f / den;
    for (a = 0; a < 4; ++a)
        v[a] = (x0[a] + mu * b[a]) * inv;
    /* ||v|| <= 1 against rounding, then back to the limit amp */
    p = v[0] * v[0] + v[1] * v[1] + v[2] * v[2] + v[3] * v[3];
    scale = p > 1.0f ? amp / sqrtf(p) : amp;
    for (a = 0; a < 4; ++a)
        v[a] *= scale;
}
