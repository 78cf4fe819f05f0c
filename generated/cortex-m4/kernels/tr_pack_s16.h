/* tr_pack_s16 -- widen an int8 vector to int16 with its zero point removed,
 * in the layout tr_fc_s8 and tr_dot_max_s8 read:
 *
 *   portable path: dst[i] = x[i] - zp
 *   DSP path:      per group of four, {x0, x2, x1, x3} - zp, so that one
 *                  int8x4 weight word unpacked by SXTB16 / SXTB16 ROR 8 meets
 *                  its inputs in two SMLADs; a tail shorter than 4 stays in order.
 *
 *   x   int8 [n], zp in [-128, 127]
 *   dst int16 [TR_FC_SCRATCH(n)], values in [-255, 255]
 */
#ifndef TR_PACK_S16_H
#define TR_PACK_S16_H

#include <stdint.h>

void tr_pack_s16(const int8_t *x, int32_t n, int32_t zp, int16_t *dst);

#endif /* TR_PACK_S16_H */
