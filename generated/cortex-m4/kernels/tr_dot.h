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
#if !defined(TR_DSP_EMULATED) && defined(__GNUC__) && defined(__thumb2__)
#define TR_DOT2_ASM 1
/* tr_dot2's loop in Thumb-2 over n8 blocks of eight inputs: LDM fetches the
 * four packed input words, LDRD each row's eight weights, so a block is
 * 21 instructions for 16 MACs (the C loop compiles to 30). w0, w1 and s must
 * be word-aligned. */
static inline void tr_dot2_asm(const int8_t *w0, const int8_t *w1, const int16_t *s, int32_t n8,
                               int32_t *acc0, int32_t *acc1)
{
    int32_t a0 = *acc0, a1 = *acc1, p, q, t;
    const int16_t *end = s + 8 * n8;
    __asm__ volatile("   cmp     %[s], %[end]\n"
                     "   beq     2f\n"
                     "1: ldmia   %[s]!, {r8, r9, r10, r11}\n"
                     "   ldrd    %[p], %[q], [%[w0]], #8\n"
                     "   sxtb16  %[t], %[p]\n"
                     "   smlad   %[a0], %[t], r8, %[a0]\n"
                     "   sxtb16  %[t], %[p], ror #8\n"
                     "   smlad   %[a0], %[t], r9, %[a0]\n"
                     "   sxtb16  %[t], %[q]\n"
                     "   smlad   %[a0], %[t], r10, %[a0]\n"
                     "   sxtb16  %[t], %[q], ror #8\n"
                     "   smlad   %[a0], %[t], r11, %[a0]\n"
                     "   ldrd    %[p], %[q], [%[w1]], #8\n"
                     "   sxtb16  %[t], %[p]\n"
                     "   smlad   %[a1], %[t], r8, %[a1]\n"
                     "   sxtb16  %[t], %[p], ror #8\n"
                     "   smlad   %[a1], %[t], r9, %[a1]\n"
                     "   sxtb16  %[t], %[q]\n"
                     "   smlad   %[a1], %[t], r10, %[a1]\n"
                     "   sxtb16  %[t], %[q], ror #8\n"
                     "   smlad   %[a1], %[t], r11, %[a1]\n"
                     "   cmp     %[s], %[end]\n"
                     "   bne     1b\n"
                     "2:\n"
                     : [a0] "+r"(a0), [a1] "+r"(a1), [s] "+r"(s), [w0] "+r"(w0), [w1] "+r"(w1),
                       [p] "=&r"(p), [q] "=&r"(q), [t] "=&r"(t)
                     : [end] "r"(end)
                     : "r8", "r9", "r10", "r11", "cc", "memory");
    *acc0 = a0;
    *acc1 = a1;
}
#else
#define TR_DOT2_ASM 0
#endif

/* two rows against the same inputs: the packed input words are loaded once */
static inline void tr_dot2(const int8_t *w0, const int8_t *w1, const int16_t *s, int32_t d_in,
                           int32_t *acc0, int32_t *acc1)
{
    int32_t a0 = 0, a1 = 0;
    int32_t i = 0;
#if TR_DOT2_ASM
    if ((((uintptr_t)w0 | (uintptr_t)w1 | (uintptr_t)s) & 3u) == 0u) {
        i = d_in & ~7;
        tr_dot2_asm(w0, w1, s, d_in >> 3, &a0, &a1);
    }
#endif
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
