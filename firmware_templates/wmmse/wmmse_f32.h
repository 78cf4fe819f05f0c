/* wmmse_f32: the classical WMMSE beamformer (Shi, Razaviyayn, Luo, He, IEEE
 * TSP 2011) in portable C99 float32, for the same caller as the learned
 * policy: the channel layout and output convention of the generated model.h
 * (h[t][r][a][2] scaled to unit noise, k active links, ||v_k||^2 <= p_k), so a
 * firmware swaps one policy for the other without touching its caller.
 *
 * Problem (h at the unit scale below; p_k, n_k relative to it, 1 by default)
 *
 *     max_V  sum_k alpha_k log2(1 + |h_kk^H v_k|^2 / (sum_{j!=k} |h_jk^H v_j|^2 + n_k))
 *     s.t.   ||v_k||^2 <= p_k
 *
 * One iteration, from the gains of the current V (MRT at full power to start):
 *
 *     s_k   = h_kk^H v_k,  sig_k = |s_k|^2,  inf_k = sum_{j!=k} |h_jk^H v_j|^2 + n_k
 *     c_j   = alpha_j w_j |u_j|^2 = alpha_j sig_j / (inf_j (inf_j + sig_j))
 *     b_k   = alpha_k w_k u_k h_kk = (alpha_k s_k / inf_k) h_kk
 *     A_k   = sum_j c_j h_kj h_kj^H                       (NT x NT Hermitian PSD)
 *     v_k   = (A_k + mu_k I)^{-1} b_k,  mu_k = 0 if that fits, else ||v_k||^2 = p_k
 *
 * The solve below runs at the limit 1: b_k / sqrt(p_k) in, v_k * sqrt(p_k) out
 * (v_k is linear in b_k for a fixed mu_k); p_k = 0 switches transmitter k off.
 *
 * (u_k = s_k / (inf_k + sig_k) is the MMSE receiver, w_k = (inf_k + sig_k) / inf_k
 * the MSE weight; only their products above are formed.) Then the gains of
 * the new V: per receiver, s_k, sig_k and the interference sum inf_k, summed
 * without the cancellation of "total - signal". Those three per-receiver
 * numbers are all that u, w, the next iteration and the rate use, so the
 * |h_jk^H v_j|^2 table is kept as its column sums (O(K) scratch, not O(K^2)).
 *
 * Solve: the direct term is kept apart, A_k = R_k + c_k x x^H with x = h_kk,
 * R_k = sum_{j!=k} c_j h_kj h_kj^H, b_k = beta_k x. Summed into one float32
 * matrix, c_k |x|^2 (often 1e6 times the rest) would round R_k's small
 * eigenvalues away, and those decide v_k when the power does not bind.
 * Everything is divided by trace(A_k) first (v is unchanged; numbers O(1)).
 *   NT = 2: closed form. adj(A) x = adj(R) x and det(A) = det(R) +
 *     c_k x^H adj(R) x (determinant lemma), so (A + mu I)^{-1} b =
 *     (x0 + mu b) / (det(A) + mu + mu^2), x0 = beta_k adj(R) x, and
 *     ||v(mu)||^2 is a rational function of mu with exact derivative.
 *   other NT: Sherman-Morrison, v = beta_k y / (1 + c_k x^H y) with
 *     y = (R + mu I)^{-1} x from a complex Cholesky of R + mu I per step.
 * A singular matrix (NT = 2: det(A) < 2^-40; Cholesky: a pivot below 2^-20
 * of its diagonal, e.g. fewer interferers than antennas) starts from the
 * Tikhonov floor mu = 2^-20 trace(A_k) instead of the minimum-norm solution
 * (they agree whenever the power limit binds); A_k = 0 or b_k = 0 gives 0.
 *
 * Power multiplier: Newton on the secular equation phi(mu) = 1/||v(mu)|| - 1
 * (More & Sorensen). phi is concave and nearly linear in mu, so from mu = 0
 * (where phi < 0) the iterates rise monotonically to the root with no
 * bracket: quadratic convergence, typically 3-5 steps, stopping when a step
 * is below 2^-20 of mu (NT != 2: or ||v||^2 is within 2^-20 of 1), at most
 * WMMSE_F32_NEWTON_MAX. Bisection would take about 24 steps to reach float32
 * resolution. For NT != 2 the derivative is a
 * difference that cancels when R_k is nearly singular (a link just switched
 * off), so there Newton is safeguarded: a step whose derivative lost more
 * than 8 bits, or that leaves the bracket [mu with ||v|| > 1, ||b||], bisects.
 * v is finally scaled to ||v|| <= 1, so the limit holds up to one rounding.
 *
 * Floating-point operations per sender-receiver pair per iteration, counted
 * from the two inner loops of wmmse_f32.c (a multiply-add counts as two):
 *     R_k accumulation  NT = 2: 19 (2 mul c_j h, diagonal 4 + 5, off-diagonal 8)
 *                       other NT: 2 NT + 4 NT + 8 NT(NT-1)/2
 *     gains             8 NT - 2 (h^H v) + 3 (|g|^2) + 1 (interference sum)
 *     total             NT = 2: 19 + 18 = 37;  NT = 4: 72 + 34 = 106
 * Where fmaf is fast (FP_FAST_FMAF / __FP_FAST_FMAF, e.g. VFMA on Cortex-M4F)
 * the inner loops use it (WMMSE_F32_FMA, -DWMMSE_F32_FMA=0/1 forces), so NT = 2 takes
 * 21 FPU instructions a pair. Per link per iteration: c_k, beta_k and the
 * solve (NT = 2: about 70 flops + 12 per Newton step, one sqrt and one
 * division each). MRT + gains alone (iters = 0, wsr = NULL, the fixed cost
 * of every run): the gain sweep once, plus a norm and a sqrt per link.
 *
 * Non-finite input costs nothing extra: the first gain sweep reads every
 * active h once, and a NaN/Inf there makes a gain non-finite by IEEE rules
 * (so do not build with -ffast-math or -ffinite-math-only); only then is the
 * block scanned, to tell WMMSE_F32_ERR_NONFINITE from WMMSE_F32_ERR_OVERFLOW.
 *
 * Memory: no malloc, no stdio, no static state (reentrant); the caller owns
 * WMMSE_F32_SCRATCH_BYTES of scratch, aligned for float. Arithmetic is float
 * throughout (sqrtf, log2f).
 *
 * Compile-time sizes (-D both, or a generated wmmse_config.h beside this header):
 *     WMMSE_F32_K_MAX  [1, 1024]  link capacity of h and v (the arrays' stride)
 *     WMMSE_F32_NT     [1, 16]    transmit antennas
 */
#ifndef WMMSE_F32_H
#define WMMSE_F32_H

#include <stddef.h>
#include <stdint.h>

#include "wmmse_sizes.h" /* WMMSE_F32_K_MAX, WMMSE_F32_NT */
#if (WMMSE_F32_K_MAX) < 1 || (WMMSE_F32_K_MAX) > 1024
#error "WMMSE_F32_K_MAX must be in [1, 1024]"
#endif
#if (WMMSE_F32_NT) < 1 || (WMMSE_F32_NT) > 16
#error "WMMSE_F32_NT must be in [1, 16]"
#endif

/* return codes; on any error the output and *wsr are left untouched */
#define WMMSE_F32_OK 0
#define WMMSE_F32_ERR_K (-1)     /* k not in [1, WMMSE_F32_K_MAX] */
#define WMMSE_F32_ERR_ITERS (-2) /* iters < 0 */
#define WMMSE_F32_ERR_NONFINITE                                                                    \
    (-3) /* NaN/Inf in the active h[0..k)[0..k) block, or in alpha, p_max, noise_var[0..k) */
#define WMMSE_F32_ERR_PARAM (-4)    /* a rate weight or power limit < 0, or a noise variance <= 0 */
#define WMMSE_F32_ERR_NULL (-5)     /* h, v or scratch is NULL */
#define WMMSE_F32_ERR_OVERFLOW (-6) /* finite input whose gains overflow float (|h|^2 ~ 1e38) */

#define WMMSE_F32_NEWTON_MAX                                                                       \
    40 /* steps on mu per link per iteration, at most (Newton, or bisection)                       \
        */

/* scratch: v (K_MAX, NT, 2), s (K_MAX, 2), sig, inf, c (K_MAX), beta (K_MAX, 2), amp (K_MAX) floats
 */
#define WMMSE_F32_SCRATCH_FLOATS ((WMMSE_F32_K_MAX) * (2 * (WMMSE_F32_NT) + 8))
#define WMMSE_F32_SCRATCH_BYTES ((size_t)WMMSE_F32_SCRATCH_FLOATS * sizeof(float))

#ifdef __cplusplus
extern "C" {
#endif

/* WMMSE_F32_SCRATCH_BYTES, for callers that size scratch at run time */
size_t wmmse_f32_scratch_bytes(void);

/* Beamformers for links 0..k-1 by `iters` WMMSE iterations from MRT.
 *
 *   h        (WMMSE_F32_K_MAX, WMMSE_F32_K_MAX, WMMSE_F32_NT, 2) float: h[t][r][a] = channel
 *            from transmitter t to receiver r, antenna a, as (re, im), scaled to
 *            unit noise: h * sqrt(P / N) for a reference power P and noise N
 *            (the learned model's scale; p_max and noise_var below are
 *            relative to them). Only the k x k block
 *            of active links is read (and checked finite).
 *   k        [1, WMMSE_F32_K_MAX] active links.
 *   alpha    (k,) float rate weights, finite and >= 0; NULL = all 1.
 *   p_max    (k,) float power limit of transmitter t relative to the scale of h,
 *            finite and >= 0 (0: off); NULL = all 1.
 *   noise_var (k,) float noise variance of receiver r relative to the scale of h,
 *            finite and > 0; NULL = all 1.
 *   iters    [0, INT32_MAX] WMMSE iterations (0 = MRT); no tolerance stop, so
 *            the cost is fixed by (k, iters).
 *   scratch  WMMSE_F32_SCRATCH_BYTES, float-aligned, caller-owned, clobbered.
 *   v        (WMMSE_F32_K_MAX, WMMSE_F32_NT, 2) float out: v[t][a] = beamformer of
 *            transmitter t at the scale of h, ||v[t]||^2 <= p_max[t] (1 when
 *            NULL); links t >= k get 0. Written only on success.
 *   wsr      out, may be NULL: sum_k alpha_k log2(1 + SINR_k) of the returned V,
 *            in bits/s/Hz (from the gains the last iteration kept, no recompute).
 *
 * Returns WMMSE_F32_OK or one of the WMMSE_F32_ERR_* codes above.
 */
int wmmse_f32(const float *h, int32_t k, const float *alpha, const float *p_max,
              const float *noise_var, int32_t iters, void *scratch, float *v, float *wsr);

#ifdef __cplusplus
}
#endif

#endif /* WMMSE_F32_H */
