/* wmmse_solve_f32: the NT = 2 transmitter update (see wmmse_solve_f32.h). */
#include "wmmse_solve_f32.h"

#include "wmmse_update2.h"

void wmmse_solve_f32(const float *R_in, float ct, const float *x, float br, float bi, float amp,
                     float *v)
{
    float R[4] = {R_in[0], R_in[1], R_in[2], R_in[3]}; /* wmmse_update2 scales its copy */
    wmmse_update2(R, ct, x, br, bi, amp, v);
}
