/* wmmse_rank_f32: each receiver's m strongest interferers, ranked on the chip from
 * the CSI, for the sparse WMMSE (wmmse_sparse_f32.h) or a top-m graph.
 *
 * For receiver r the candidates are the transmitters t != r of the active block,
 * ranked by the channel gain ||h_tr||^2 (sum of the 2 NT squared reals, float32);
 * the m largest are kept, strongest first. Ties go to the lower transmitter index,
 * as the stable sort of training/scenes.top_m_links does, so the two pick the same
 * sets whenever float32 and float64 order the gains alike.
 *
 * Method: one pass over the k - 1 candidates of a receiver with a sorted list of the
 * m best so far; a candidate that does not beat the list's last entry costs one
 * compare, one that does is inserted (shifting the weaker ones down). Cost per
 * receiver: (k - 1) gains (4 NT flops each) plus the insertions, O(k m) at worst,
 * about O(k + m log(k/m) m) on random gains.
 *
 * Memory: no malloc, no static state; idx is owned by the caller.
 *
 * Compile-time sizes: WMMSE_F32_K_MAX and WMMSE_F32_NT as for wmmse_f32.h (-D both,
 * or a generated wmmse_config.h beside this header).
 */
#ifndef WMMSE_RANK_F32_H
#define WMMSE_RANK_F32_H

#include <stddef.h>
#include <stdint.h>

#include "wmmse_sizes.h" /* WMMSE_F32_K_MAX, WMMSE_F32_NT */
#if (WMMSE_F32_K_MAX) < 2 || (WMMSE_F32_K_MAX) > 1024
#error "WMMSE_F32_K_MAX must be in [2, 1024] for a ranking"
#endif

#define WMMSE_RANK_F32_OK 0
#define WMMSE_RANK_F32_ERR_K (-1)         /* k not in [2, WMMSE_F32_K_MAX] */
#define WMMSE_RANK_F32_ERR_M (-2)         /* m < 1 */
#define WMMSE_RANK_F32_ERR_NONFINITE (-3) /* a gain of the active block is NaN/Inf */
#define WMMSE_RANK_F32_ERR_NULL (-5)      /* h or idx is NULL */

/* bytes of the idx table for k links and m interferers per receiver */
#define WMMSE_RANK_F32_IDX_BYTES(k, m) ((size_t)(k) * (size_t)(m) * sizeof(int16_t))

#ifdef __cplusplus
extern "C" {
#endif

/* The min(m, k - 1) strongest interferers of every receiver 0..k-1.
 *
 *   h    (WMMSE_F32_K_MAX, WMMSE_F32_K_MAX, WMMSE_F32_NT, 2) float: h[t][r][a], as for
 *        wmmse_f32; only the k x k block is read.
 *   k    [2, WMMSE_F32_K_MAX] active links.
 *   m    [1, INT32_MAX] interferers kept per receiver (min(m, k - 1) are).
 *   idx  (k, min(m, k - 1)) int16 out, row r = the kept transmitters of receiver r,
 *        strongest first (ties: lower index first). On an error its contents are
 *        unspecified.
 *
 * Returns WMMSE_RANK_F32_OK or one of the WMMSE_RANK_F32_ERR_* codes above.
 */
int wmmse_rank_f32(const float *h, int32_t k, int32_t m, int16_t *idx);

#ifdef __cplusplus
}
#endif

#endif /* WMMSE_RANK_F32_H */
