#include "tr_pack_s16.h"

#include "tr_dsp.h"

void tr_pack_s16(const int8_t *x, int32_t n, int32_t zp, int16_t *dst)
{
    int32_t i = 0;
#if TR_USE_DSP
    for (; i + 4 <= n; i += 4) {
        dst[i + 0] = (int16_t)(x[i + 0] - zp);
        dst[i + 1] = (int16_t)(x[i + 2] - zp);
        dst[i + 2] = (int16_t)(x[i + 1] - zp);
        dst[i + 3] = (int16_t)(x[i + 3] - zp);
    }
#endif
    for (; i < n; ++i) {
        dst[i] = (int16_t)(x[i] - zp);
    }
}
