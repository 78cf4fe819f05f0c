/* wmmse_sparse_f32: WMMSE beamforming (as wmmse_f32.h) whose updates see only
 * each receiver's kept interferers, e.g. the m strongest from wmmse_rank_f32.h,
 * so an iteration costs O(k m) instead of O(k^2). Portable C99 float32, NT = 2.
 *
 * Receiver r keeps the transmitters idx[r][0..m) (r itself never): its MMSE
 * receiver and weight see inf_r = sum_{i<m} |h_{idx[r][i] r}^H v_{idx[r][i]}|^2
 * + n_r, and transmitter t's A_t = R_t + c_t h_tt h_tt^H sums c_j h_tj h_tj^H
 * only over the receivers j that keep t. That is the iteration of wmmse_f32.h on
 * the channels with the other interfering links zeroed, which is what
 * training/wmmse.py's wmmse(..., links=.. | top_m=m) runs; the beams it returns
 * are then judged on the full channels by the caller.
 *
 * One iteration: c_t, beta_t per link (as wmmse_f32), R_t scattered from every
 * receiver's kept links (19 flops a link), the closed-form solve of
 * wmmse_solve_f32.h per transmitter, then the gains of the new v over the kept
 * links (18 flops a link) -- about 37 k m + k (70 + 12 Newton steps) flops.
 * The start is MRT at full power, or the caller's beams v0 (a learned policy's)
 * at the scale of h; the starting gains cost one sweep of the k m kept links.
 *
 * Memory: no malloc, no stdio, no static state; the caller owns
 * WMMSE_SPARSE_F32_SCRATCH_BYTES of float-aligned scratch.
 *
 * Compile-time sizes: WMMSE_F32_K_MAX [1, 1024] and WMMSE_F32_NT (must be 2), as
 * for wmmse_f32.h.
 */
#ifndef WMMSE_SPARSE_F32_H
#define WMMSE_SPARSE_F32_H

#include <stddef.h>
#include <stdint.h>

#include "wmmse_sizes.h" /* WMMSE_F32_K_MAX, WMMSE_F32_NT */
#if (WMMSE_F32_K_MAX) < 1 || (WMMSE_F32_K_MAX) > 1024
#error "WMMSE_F32_K_MAX must be in [1, 1024]"
#endif
#if (WMMSE_F32_NT) != 2
#error "wmmse_sparse_f32 is for WMMSE_F32_NT = 2 (the closed-form solve)"
#endif

/* return codes (the values of wmmse_f32.h); on an error v and *wsr are untouched */
#define WMMSE_SPARSE_F32_OK 0
#define WMMSE_SPARSE_F32_ERR_K (-1)     /* k not in [1, WMMSE_F32_K_MAX], or m not in [0, k-1] */
#define WMMSE_SPARSE_F32_ERR_ITERS (-2) /* iters < 0 */
#define WMMSE_SPARSE_F32_ERR_NONFINITE                                                             \
    (-3) /* NaN/Inf in a read h, v0, alpha, p_max or noise_var, or gains that overflow float */
#define WMMSE_SPARSE_F32_ERR_PARAM                                                                 \
    (-4)                               /* alpha or p_max < 0, noise_var <= 0, an idx out of        \
                                          range or = its receiver, v0 above its power limit */
#define WMMSE_SPARSE_F32_ERR_NULL (-5) /* h, v or scratch NULL, or idx NULL with m > 0 */

/* scratch: v (K_MAX, 2, 2), s (K_MAX, 2), sig, inf, c (K_MAX), beta (K_MAX, 2), amp (K_MAX), R
 * (K_MAX, 4)
 */
#define WMMSE_SPARSE_F32_SCRATCH_FLOATS ((WMMSE_F32_K_MAX)*16)
#define WMMSE_SPARSE_F32_SCRATCH_BYTES ((size_t)WMMSE_SPARSE_F32_SCRATCH_FLOATS * sizeof(float))

#ifdef __cplusplus
extern "C" {
#endif

size_t wmmse_sparse_f32_scratch_bytes(void);

/* Beamformers for links 0..k-1 by `iters` WMMSE iterations on the kept links.
 *
 *   h, k, alpha, p_max, noise_var, iters, scratch, v: as for wmmse_f32 (h[t][r][a][2] at
 *            unit noise; NULL alpha/p_max/noise_var = all 1; scratch of
 *            WMMSE_SPARSE_F32_SCRATCH_BYTES); only the direct and kept links of h are read.
 *   m        [0, k - 1] interferers kept per receiver (0: none, single-user updates).
 *   idx      (k, m) int16: row r = the transmitters receiver r keeps, each in [0, k) and != r
 *            (wmmse_rank_f32's output for min(m, k - 1)).
 *   v0       (WMMSE_F32_K_MAX, 2, 2) float starting beams at the scale of h with
 *            ||v0[t]||^2 <= p_max[t] (1e-5 relative slack); NULL = MRT at full power.
 *   wsr      out, may be NULL: sum_k alpha_k log2(1 + SINR_k) of the returned V as the
 *            updates see it (kept interferers only; the full-channel rate is the caller's).
 */
int wmmse_sparse_f32(const float *h, int32_t k, int32_t m, const int16_t *idx, const float *alpha,
                     const float *p_max, const float *noise_var, const float *v0, int32_t iters,
                     void *scratch, float *v, float *wsr);

#ifdef __cplusplus
}
#endif

#endif /* WMMSE_SPARSE_F32_H */
