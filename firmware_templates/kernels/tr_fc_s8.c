#include "tr_fc_s8.h"

#include "tr_dot.h"
#include "tr_pack_s16.h"
#include "tr_requant.h"

static inline int8_t tr_requant_one(const tr_fc *p, int32_t acc, int32_t o)
{
    if (p->bias != 0) {
        acc += p->bias[o];
    }
    acc = (p->rshift_only ? tr_mbqm_rs(acc, p->mult[o], -p->shift[o]) : tr_mbqm(acc, p->mult[o], p->shift[o]))
          + p->out_zp;
    return (int8_t)tr_clamp(acc, p->act_min, p->act_max);
}

void tr_fc_s8(const tr_fc *p, const int8_t *x, int32_t n, int8_t *y, int16_t *scratch)
{
    int32_t r;
    for (r = 0; r < n; ++r) {
        const int8_t *w = p->w;
        int8_t *yr = y + (int32_t)r * p->d_out;
        int32_t o = 0;
        tr_pack_s16(x + (int32_t)r * p->d_in, p->d_in, p->in_zp, scratch);
#if TR_USE_DSP
        for (; o + 2 <= p->d_out; o += 2, w += 2 * p->d_in) {
            int32_t a0, a1;
            tr_dot2(w, w + p->d_in, scratch, p->d_in, &a0, &a1);
            yr[o] = tr_requant_one(p, a0, o);
            yr[o + 1] = tr_requant_one(p, a1, o + 1);
        }
#endif
        for (; o < p->d_out; ++o, w += p->d_in) {
            yr[o] = tr_requant_one(p, tr_dot(w, scratch, p->d_in), o);
        }
    }
}
