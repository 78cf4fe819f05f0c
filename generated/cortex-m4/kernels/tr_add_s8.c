#include "tr_add_s8.h"

#include "tr_requant.h"

void tr_add_s8(const tr_add *p, const int8_t *a, const int8_t *b, int32_t n, int8_t *y)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        const int32_t v1 = tr_mbqm_lt1((int32_t)((uint32_t)(a[i] - p->in1_zp) << p->left_shift),
                                       p->mult1, p->shift1);
        const int32_t v2 = tr_mbqm_lt1((int32_t)((uint32_t)(b[i] - p->in2_zp) << p->left_shift),
                                       p->mult2, p->shift2);
        const int32_t out = tr_mbqm_lt1(v1 + v2, p->mult_out, p->shift_out) + p->out_zp;
        y[i] = (int8_t)tr_clamp(out, p->act_min, p->act_max);
    }
}
