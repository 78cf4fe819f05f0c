/* wmmse_solve_f32: one transmitter's WMMSE update for NT = 2,
 *
 *     v = (A + mu I)^{-1} b,  A = R + c x x^H,  b = beta x,
 *     mu = 0 if ||v||^2 <= amp^2 there, else the mu >= 0 with ||v|| = amp,
 *
 * the closed form of wmmse_f32.h ("Solve", NT = 2): everything divided by
 * trace(A) first, adj(A) x = adj(R) x and det(A) = det(R) + c x^H adj(R) x
 * (determinant lemma), so the interference part R keeps its small eigenvalues
 * apart from the direct term c |x|^2; Newton on the secular equation for mu
 * (at most WMMSE_SOLVE_F32_NEWTON_MAX steps, stopping at a step below 2^-20 mu);
 * a singular A (det < 2^-40 at trace 1) starts from the Tikhonov floor
 * mu = 2^-20 trace(A). A = 0, b = 0 or amp = 0 give v = 0. About 70 flops plus
 * 12 per Newton step, one sqrt and one division each.
 *
 * For the sparse WMMSE (wmmse_sparse_f32.c), which accumulates R over a
 * receiver's kept interferers and calls this once per transmitter.
 */
#ifndef WMMSE_SOLVE_F32_H
#define WMMSE_SOLVE_F32_H

#define WMMSE_SOLVE_F32_NEWTON_MAX 40

#ifdef __cplusplus
extern "C" {
#endif

/*   R     (4,) float: the Hermitian 2 x 2 interference part (R00, R11, Re R10, Im R10), PSD.
 *   c     >= 0: weight of the direct term.
 *   x     (2, 2) float: the direct channel h_tt, (re, im) per antenna.
 *   br, bi  beta = br + i bi.
 *   amp   >= 0: the largest ||v|| (sqrt of the power limit).
 *   v     (2, 2) float out: the beamformer, ||v|| <= amp up to one rounding.
 */
void wmmse_solve_f32(const float *R, float c, const float *x, float br, float bi, float amp,
                     float *v);

#ifdef __cplusplus
}
#endif

#endif /* WMMSE_SOLVE_F32_H */
