/* tr_fc_s8 -- int8 FULLY_CONNECTED with per-channel requantization over n rows.
 *
 *   x       int8 [n][p->d_in]
 *   y       int8 [n][p->d_out]   (must not alias x)
 *   scratch int16 [TR_FC_SCRATCH(p->d_in)], owned by the caller (the DSP path
 *           keeps the row's zero-point-corrected inputs there)
 *
 * Bit-exact with TFLM's reference FullyConnectedPerChannel on both paths.
 * DSP path (TR_USE_DSP): inputs widened once per row, two MACs per SMLAD;
 * on Thumb-2 with word-aligned rows and scratch, two outputs x eight inputs
 * per 21-instruction pass (tr_dot2_asm). Requantization by tr_mbqm_fast and
 * SSAT where the generator set fast_rq and the clamp is [-128, 127].
 */
#ifndef TR_FC_S8_H
#define TR_FC_S8_H

#include <stdint.h>

#include "tr_types.h"

#define TR_FC_SCRATCH(d_in) ((((d_in) + 3) / 4) * 4)

void tr_fc_s8(const tr_fc *p, const int8_t *x, int32_t n, int8_t *y, int16_t *scratch);

#endif /* TR_FC_S8_H */
