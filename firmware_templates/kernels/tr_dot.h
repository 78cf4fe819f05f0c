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

#if TR_USE_DSP
/* two rows against the same inputs: the packed input words are loaded once */
static inline void tr_dot2(const int8_t *w0, const int8_t *w1, const int16_t *s, int32_t d_in,
                           int32_t *acc0, int32_t *acc1)
{
    int32_t a0 = 0, a1 = 0;
    int32_t i = 0;
    for (; i + 4 <= d_in; i += 4) {
        const int32_t s02 = tr_read_u32(s + i), s13 = tr_read_u32(s + i + 2);
        const int32_t u = tr_read_u32(w0 + i), v = tr_read_u32(w1 + i);
        a0 = tr_smlad(tr_sxtb16(u), s02, a0);
        a1 = tr_smlad(tr_sxtb16(v), s02, a1);
        a0 = tr_smlad(tr_sxtb16_ror8(u), s13, a0);
        a1 = tr_smlad(tr_sxtb16_ror8(v), s13, a1);
    }
    for (; i < d_in; ++i) {
        a0 += w0[i] * s[i];
        a1 += w1[i] * s[i];
    }
    *acc0 = a0;
    *acc1 = a1;
}
#endif

#endif /* TR_DOT_H */
