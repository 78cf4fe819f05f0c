/* tr_dot.h -- one row's dot product: sum_i w[i] * s[i], int32.
 *
 *   w  int8 [d_in]  (a weight row; read four at a time on the DSP path)
 *   s  int16 [TR_FC_SCRATCH(d_in)], laid out by tr_pack_s16 (zero point removed)
 *
 * Range: |result| <= d_in * 127 * 255 < 2^31 for d_in <= 2^16.
 */
#ifndef TR_DOT_H
#define TR_DOT_H

#include <stdint.h>

#include "tr_dsp.h"

static inline int32_t tr_dot(const int8_t *w, const int16_t *s, int32_t d_in)
{
    int32_t acc = 0;
    int32_t i = 0;
#if TR_USE_DSP
    for (; i + 4 <= d_in; i += 4) {
        const int32_t w4 = tr_read_u32(w + i);
        acc = tr_smlad(tr_sxtb16(w4), tr_read_u32(s + i), acc);
        acc = tr_smlad(tr_sxtb16_ror8(w4), tr_read_u32(s + i + 2), acc);
    }
#else
    for (; i + 4 <= d_in; i += 4) {
        acc += w[i] * s[i] + w[i + 1] * s[i + 1] + w[i + 2] * s[i + 2] + w[i + 3] * s[i + 3];
    }
#endif
    for (; i < d_in; ++i) {
        acc += w[i] * s[i];
    }
    return acc;
}

#endif /* TR_DOT_H */
