/* tr_agg_s8 -- finish the fused max: bias, requantize + ReLU of the wide
 * layer, then the mask MUL by the code of 1.0 (a table), once per receiver.
 *
 *   agg[o] = n_src > 0 ? mul(fc(best[o] + bias[o])) : mul->out_zp
 *
 * where fc() is the wide layer's requantization and clamp and mul() the
 * mask MUL's. Masked senders (and a receiver without senders) give TFLM's
 * MUL(m, 0) = out_zp, which never exceeds an active sender's value.
 *
 *   best int32 [wide->d_out] from tr_dot_max_s8; agg int8 [wide->d_out]
 */
#ifndef TR_AGG_S8_H
#define TR_AGG_S8_H

#include <stdint.h>

#include "tr_types.h"

void tr_agg_s8(const tr_fc *wide, const tr_mul *mul, const int32_t *best, int32_t n_src,
               int8_t *agg);

#endif /* TR_AGG_S8_H */
