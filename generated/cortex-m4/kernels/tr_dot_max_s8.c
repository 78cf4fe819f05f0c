#include "tr_dot_max_s8.h"

#include "tr_dot.h"
#include "tr_dsp.h"
#include "tr_fc_s8.h"

#if !TR_USE_DSP
/* d_in == 4: the channel's four weights stay in registers across senders */
static void tr_dot_max_4(const int8_t *w, int32_t d_out, const int16_t *src, int32_t n_src,
                         int32_t *best)
{
    int32_t o;
    for (o = 0; o < d_out; ++o) {
        const int32_t w0 = w[4 * o], w1 = w[4 * o + 1], w2 = w[4 * o + 2], w3 = w[4 * o + 3];
        const int16_t *s = src;
        int32_t m = w0 * s[0] + w1 * s[1] + w2 * s[2] + w3 * s[3];
        int32_t j;
        for (j = 1, s += 4; j < n_src; ++j, s += 4) {
            const int32_t d = w0 * s[0] + w1 * s[1] + w2 * s[2] + w3 * s[3];
            m = d > m ? d : m;
        }
        best[o] = m;
    }
}
#else
/* d_in == 4, DSP: two channels at a time, so each sender's packed inputs are
 * loaded once for four SMLADs; the four unpacked weight pairs stay in registers.
 *
 * The running max is kept negated, n = -max, so that one SMLAD chain started
 * at n yields t = dot - max and the update is n -= max(t, 0): SMLAD, SMLAD,
 * USAT, SUB per channel and sender instead of SMLAD, SMLAD, CMP, IT, MOV.
 * Exact: |dot| < 2^17 and n starts at TR_DOT_MAX_START, so t never overflows. */
#define TR_DOT_MAX_START 0x40000000 /* -n is below every dot product */

static inline int32_t tr_dot_max_step(int32_t n, int32_t w02, int32_t w13, int32_t s02, int32_t s13)
{
    return n - tr_usat31(tr_smlad(w13, s13, tr_smlad(w02, s02, n)));
}

#if !defined(TR_DSP_EMULATED) && defined(__GNUC__) && defined(__thumb2__)
#define TR_DOT_MAX_ASM 1
/* The pair loop above in Thumb-2: one LDM fetches two senders' packed inputs
 * (four words) and advances s, so a pass is LDM, 8 SMLAD, 4 USAT, 4 SUB, CMP,
 * BNE: 19 instructions for 16 MACs (the C loop compiles to 23). s must be
 * word-aligned and (end2 - s) a multiple of 8 halfwords; returns end2. */
static inline const int16_t *tr_dot_max_pass_asm(int32_t a02, int32_t a13, int32_t b02, int32_t b13,
                                                 const int16_t *s, const int16_t *end2, int32_t *na,
                                                 int32_t *nb)
{
    int32_t x, n0 = *na, n1 = *nb;
    __asm__ volatile(
        "   cmp     %[s], %[end]\n"
        "   beq     2f\n"
        "1: ldmia   %[s]!, {r8, r9, r10, r11}\n"
        "   smlad   %[x], %[a02], r8, %[n0]\n"
        "   smlad   %[x], %[a13], r9, %[x]\n"
        "   usat    %[x], #31, %[x]\n"
        "   sub     %[n0], %[n0], %[x]\n"
        "   smlad   %[x], %[b02], r8, %[n1]\n"
        "   smlad   %[x], %[b13], r9, %[x]\n"
        "   usat    %[x], #31, %[x]\n"
        "   sub     %[n1], %[n1], %[x]\n"
        "   smlad   %[x], %[a02], r10, %[n0]\n"
        "   smlad   %[x], %[a13], r11, %[x]\n"
        "   usat    %[x], #31, %[x]\n"
        "   sub     %[n0], %[n0], %[x]\n"
        "   smlad   %[x], %[b02], r10, %[n1]\n"
        "   smlad   %[x], %[b13], r11, %[x]\n"
        "   usat    %[x], #31, %[x]\n"
        "   sub     %[n1], %[n1], %[x]\n"
        "   cmp     %[s], %[end]\n"
        "   bne     1b\n"
        "2:\n"
        : [x] "=&r"(x), [n0] "+r"(n0), [n1] "+r"(n1), [s] "+r"(s)
        : [a02] "r"(a02), [a13] "r"(a13), [b02] "r"(b02), [b13] "r"(b13), [end] "r"(end2)
        : "r8", "r9", "r10", "r11", "cc", "memory");
    *na = n0;
    *nb = n1;
    return s;
}
#else
#define TR_DOT_MAX_ASM 0
#endif

static void tr_dot_max_4(const int8_t *w, int32_t d_out, const int16_t *src, int32_t n_src,
                         int32_t *best)
{
    const int16_t *end = src + 4 * n_src;
    const int16_t *end2 = src + 4 * (n_src & ~1);
#if TR_DOT_MAX_ASM
    const int aligned = ((uintptr_t)src & 3u) == 0u; /* LDM needs word alignment */
#endif
    int32_t o = 0;
    for (; o + 2 <= d_out; o += 2) {
        const int32_t wa = tr_read_u32(w + 4 * o);
        const int32_t wb = tr_read_u32(w + 4 * o + 4);
        const int32_t a02 = tr_sxtb16(wa), a13 = tr_sxtb16_ror8(wa);
        const int32_t b02 = tr_sxtb16(wb), b13 = tr_sxtb16_ror8(wb);
        const int16_t *s = src;
        int32_t na = TR_DOT_MAX_START, nb = TR_DOT_MAX_START;
#if TR_DOT_MAX_ASM
        if (aligned) {
            s = tr_dot_max_pass_asm(a02, a13, b02, b13, s, end2, &na, &nb);
        }
#endif
        for (; s != end2; s += 8) { /* two senders per pass: half the loop overhead */
            const int32_t t02 = tr_read_u32(s), t13 = tr_read_u32(s + 2);
            const int32_t u02 = tr_read_u32(s + 4), u13 = tr_read_u32(s + 6);
            na = tr_dot_max_step(na, a02, a13, t02, t13);
            nb = tr_dot_max_step(nb, b02, b13, t02, t13);
            na = tr_dot_max_step(na, a02, a13, u02, u13);
            nb = tr_dot_max_step(nb, b02, b13, u02, u13);
        }
        if (s != end) {
            const int32_t t02 = tr_read_u32(s), t13 = tr_read_u32(s + 2);
            na = tr_dot_max_step(na, a02, a13, t02, t13);
            nb = tr_dot_max_step(nb, b02, b13, t02, t13);
        }
        best[o] = -na;
        best[o + 1] = -nb;
    }
    for (; o < d_out; ++o) {
        const int32_t w4 = tr_read_u32(w + 4 * o);
        const int32_t w02 = tr_sxtb16(w4), w13 = tr_sxtb16_ror8(w4);
        const int16_t *s;
        int32_t n = TR_DOT_MAX_START;
        for (s = src; s != end; s += 4) {
            n = tr_dot_max_step(n, w02, w13, tr_read_u32(s), tr_read_u32(s + 2));
        }
        best[o] = -n;
    }
}
#endif

void tr_dot_max_s8(const int8_t *w, int32_t d_in, int32_t d_out, const int16_t *src, int32_t n_src,
                   int32_t *best)
{
    const int32_t stride = TR_FC_SCRATCH(d_in);
    int32_t o;
    if (d_in == 4) {
        tr_dot_max_4(w, d_out, src, n_src, best);
        return;
    }
    for (o = 0; o < d_out; ++o, w += d_in) {
        int32_t m = tr_dot(w, src, d_in);
        int32_t j;
        for (j = 1; j < n_src; ++j) {
            const int32_t d = tr_dot(w, src + j * stride, d_in);
            m = d > m ? d : m;
        }
        best[o] = m;
    }
}
