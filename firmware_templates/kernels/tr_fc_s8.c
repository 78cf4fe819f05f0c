#include "tr_fc_s8.h"

#include "tr_dot.h"
#include "tr_pack_s16.h"
#include "tr_requant.h"

void tr_fc_s8(const tr_fc *p, const int8_t *x, int32_t n, int8_t *y, int16_t *scratch)
{
    int32_t r;
    for (r = 0; r < n; ++r) {
        const int8_t *w = p->w;
        int32_t o;
        tr_pack_s16(x + (int32_t)r * p->d_in, p->d_in, p->in_zp, scratch);
        for (o = 0; o < p->d_out; ++o, w += p->d_in) {
            int32_t acc = tr_dot(w, scratch, p->d_in);
            if (p->bias != 0) {
                acc += p->bias[o];
            }
            acc = tr_mbqm(acc, p->mult[o], p->shift[o]) + p->out_zp;
            y[(int32_t)r * p->d_out + o] = (int8_t)tr_clamp(acc, p->act_min, p->act_max);
        }
    }
}
