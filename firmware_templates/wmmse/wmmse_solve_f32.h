/* wmmse_solve_f32: one transmitter's WMMSE update for NT = 2 as a function,
 * v = (A + mu I)^{-1} b with A = R + c x x^H, b = beta x and ||v|| <= amp: the
 * inline update of wmmse_update2.h (its algorithm, ranges and cost), for the
 * sparse WMMSE (wmmse_sparse_f32.c), which accumulates R over a receiver's
 * kept interferers and calls this once per transmitter.
 */
#ifndef WMMSE_SOLVE_F32_H
#define WMMSE_SOLVE_F32_H

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
