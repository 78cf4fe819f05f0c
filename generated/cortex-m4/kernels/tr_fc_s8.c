#include "tr_fc_s8.h"

#include "tr_dot.h"
#include "tr_pack_s16.h"
#include "tr_requant.h"

/* The parameter block copied to locals once per call: y is int8, so the
 * compiler must otherwise assume every store to y may change *p. */
typedef struct {
    const int32_t *bias, *mult;
    const int8_t *shift;
    int32_t out_zp, lo, hi, fast, sat8;
} tr_rq;

static inline int8_t tr_requant_one(const tr_rq *q, int32_t acc, int32_t o)
{
    if (q->bias != 0) {
        acc += q->bias[o];
    }
    if (q->fast) {
        acc = tr_mbqm_fast(acc, q->mult[o], -q->shift[o]) + q->out_zp;
    } else {
        acc = tr_mbqm(acc, q->mult[o], q->shift[o]) + q->out_zp;
    }
    return (int8_t)(q->sat8 ? tr_sat8(acc) : tr_clamp(acc, q->lo, q->hi));
}

void tr_fc_s8(const tr_fc *p, const int8_t *x, int32_t n, int8_t *y, int16_t *scratch)
{
    const tr_rq q = {p->bias,    p->mult,    p->shift,   p->out_zp,
                     p->act_min, p->act_max, p->fast_rq, p->act_min == -128 && p->act_max == 127};
    const int8_t *w0 = p->w;
    const int32_t d_in = p->d_in, d_out = p->d_out, in_zp = p->in_zp;
    int32_t r;
    for (r = 0; r < n; ++r) {
        const int8_t *w = w0;
        int8_t *yr = y + r * d_out;
        int32_t o = 0;
        tr_pack_s16(x + r * d_in, d_in, in_zp, scratch);
#if TR_USE_DSP
        for (; o + 2 <= d_out; o += 2, w += 2 * d_in) {
            int32_t a0, a1;
            tr_dot2(w, w + d_in, scratch, d_in, &a0, &a1);
            yr[o] = tr_requant_one(&q, a0, o);
            yr[o + 1] = tr_requant_one(&q, a1, o + 1);
        }
#endif
        for (; o < d_out; ++o, w += d_in) {
            yr[o] = tr_requant_one(&q, tr_dot(w, scratch, d_in), o);
        }
    }
}
