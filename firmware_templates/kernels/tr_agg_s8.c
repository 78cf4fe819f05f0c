#include "tr_agg_s8.h"

#include "tr_requant.h"

void tr_agg_s8(const tr_fc *wide, const tr_mul *mul, const int32_t *best, int32_t n_src, int8_t *agg)
{
    const int32_t b = mul->b - mul->in2_zp;
    int32_t o;
    if (n_src <= 0) {
        for (o = 0; o < wide->d_out; ++o) {
            agg[o] = (int8_t)mul->out_zp;
        }
        return;
    }
    for (o = 0; o < wide->d_out; ++o) {
        int32_t acc = best[o] + (wide->bias != 0 ? wide->bias[o] : 0);
        acc = tr_mbqm(acc, wide->mult[o], wide->shift[o]) + wide->out_zp;
        acc = tr_clamp(acc, wide->act_min, wide->act_max);
        acc = tr_mbqm((acc - mul->in1_zp) * b, mul->mult, mul->shift) + mul->out_zp;
        agg[o] = (int8_t)tr_clamp(acc, mul->act_min, mul->act_max);
    }
}
