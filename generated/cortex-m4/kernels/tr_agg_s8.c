#include "tr_agg_s8.h"

#include "tr_requant.h"

void tr_agg_s8(const tr_fc *wide, const tr_mul *mul, const int32_t *best, int32_t n_src,
               int8_t *agg)
{
    int32_t o;
    if (n_src <= 0) {
        for (o = 0; o < wide->d_out; ++o) {
            agg[o] = (int8_t)mul->out_zp;
        }
        return;
    }
    {
        /* locals: agg is int8, so the compiler must assume it aliases the parameter blocks */
        const int32_t n = wide->d_out, zp = wide->out_zp, lo = wide->act_min, hi = wide->act_max;
        const int32_t *bias = wide->bias, *mult = wide->mult;
        const int8_t *shift = wide->shift, *lut = mul->lut + 128;
        if (wide->fast_rq && bias != 0 && lo == -128 && hi == 127) {
            for (o = 0; o < n; ++o) {
                agg[o] = lut[tr_sat8(tr_mbqm_fast(best[o] + bias[o], mult[o], -shift[o]) + zp)];
            }
            return;
        }
        for (o = 0; o < n; ++o) {
            int32_t acc = best[o] + (bias != 0 ? bias[o] : 0);
            acc = tr_clamp(tr_mbqm(acc, mult[o], shift[o]) + zp, lo, hi);
            agg[o] = lut[acc];
        }
    }
}
