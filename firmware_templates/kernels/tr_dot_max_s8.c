#include "tr_dot_max_s8.h"

#include "tr_dot.h"
#include "tr_dsp.h"
#include "tr_fc_s8.h"

#if !TR_USE_DSP
/* d_in == 4: the channel's four weights stay in registers across senders */
static void tr_dot_max_4(const int8_t *w, int32_t d_out, const int16_t *src, int32_t n_src, int32_t *best)
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
 * loaded once for four SMLADs; the four unpacked weight pairs stay in registers */
static void tr_dot_max_4(const int8_t *w, int32_t d_out, const int16_t *src, int32_t n_src, int32_t *best)
{
    const int16_t *end = src + 4 * n_src;
    int32_t o = 0;
    for (; o + 2 <= d_out; o += 2) {
        const int32_t wa = tr_read_u32(w + 4 * o);
        const int32_t wb = tr_read_u32(w + 4 * o + 4);
        const int32_t a02 = tr_sxtb16(wa), a13 = tr_sxtb16_ror8(wa);
        const int32_t b02 = tr_sxtb16(wb), b13 = tr_sxtb16_ror8(wb);
        const int16_t *s = src;
        int32_t s02 = tr_read_u32(s), s13 = tr_read_u32(s + 2);
        int32_t ma = tr_smlad(a13, s13, tr_smlad(a02, s02, 0));
        int32_t mb = tr_smlad(b13, s13, tr_smlad(b02, s02, 0));
        s += 4;
        for (; s + 8 <= end; s += 8) {  /* two senders per pass: half the loop overhead */
            const int32_t t02 = tr_read_u32(s), t13 = tr_read_u32(s + 2);
            const int32_t u02 = tr_read_u32(s + 4), u13 = tr_read_u32(s + 6);
            const int32_t da = tr_smlad(a13, t13, tr_smlad(a02, t02, 0));
            const int32_t db = tr_smlad(b13, t13, tr_smlad(b02, t02, 0));
            const int32_t ea = tr_smlad(a13, u13, tr_smlad(a02, u02, 0));
            const int32_t eb = tr_smlad(b13, u13, tr_smlad(b02, u02, 0));
            ma = da > ma ? da : ma;
            mb = db > mb ? db : mb;
            ma = ea > ma ? ea : ma;
            mb = eb > mb ? eb : mb;
        }
        if (s < end) {
            int32_t da, db;
            s02 = tr_read_u32(s);
            s13 = tr_read_u32(s + 2);
            da = tr_smlad(a13, s13, tr_smlad(a02, s02, 0));
            db = tr_smlad(b13, s13, tr_smlad(b02, s02, 0));
            ma = da > ma ? da : ma;
            mb = db > mb ? db : mb;
        }
        best[o] = ma;
        best[o + 1] = mb;
    }
    for (; o < d_out; ++o) {
        const int32_t w4 = tr_read_u32(w + 4 * o);
        const int32_t w02 = tr_sxtb16(w4), w13 = tr_sxtb16_ror8(w4);
        const int16_t *s = src;
        int32_t m = tr_smlad(w13, tr_read_u32(s + 2), tr_smlad(w02, tr_read_u32(s), 0));
        for (s += 4; s < end; s += 4) {
            const int32_t d = tr_smlad(w13, tr_read_u32(s + 2), tr_smlad(w02, tr_read_u32(s), 0));
            m = d > m ? d : m;
        }
        best[o] = m;
    }
}
#endif

void tr_dot_max_s8(const int8_t *w, int32_t d_in, int32_t d_out, const int16_t *src, int32_t n_src, int32_t *best)
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
