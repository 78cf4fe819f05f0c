/* tr_types.h -- parameter blocks of the int8 kernels (all constant, in flash).
 *
 * Quantization follows TFLite's int8 scheme: real = scale * (q - zero_point);
 * weights are per-output-channel with zero point 0, biases int32 at scale
 * s_in * s_w[c]; requantization by a Q31 multiplier and a shift per channel.
 */
#ifndef TR_TYPES_H
#define TR_TYPES_H

#include <stdint.h>

/* FULLY_CONNECTED, per-channel:
 *   y[o] = clamp(out_zp + mbqm(bias[o] + sum_i w[o][i] * (x[i] - in_zp), mult[o], shift[o]),
 *                act_min, act_max)
 * Ranges: d_in, d_out in [1, 32767]; in_zp, out_zp in [-128, 127]; mult in
 * [2^30, 2^31) (or 0); shift in [-31, 30]; |accumulator| < 2^31 (d_in <= 2^16). */
typedef struct {
    const int8_t *w;     /* [d_out][d_in], row-major, as in the .tflite */
    const int32_t *bias; /* [d_out] or NULL */
    const int32_t *mult; /* [d_out] Q31 multipliers */
    const int8_t *shift; /* [d_out] shifts */
    int16_t d_in;
    int16_t d_out;
    int16_t in_zp;
    int16_t out_zp;
    int8_t act_min;
    int8_t act_max;
    int8_t fast_rq; /* 1 (set by the generator): every shift[o] in [-31, -1] and every
                     * |accumulator| < 2^29, so tr_mbqm_fast requantizes exactly */
} tr_fc;

/* ADD, per tensor (TFLM's int8 ADD):
 *   v1 = mbqm_lt1((a - in1_zp) << left_shift, mult1, shift1), v2 likewise,
 *   y  = clamp(out_zp + mbqm_lt1(v1 + v2, mult_out, shift_out), act_min, act_max)
 * Ranges: left_shift = 20; shifts in [-31, 0]. */
typedef struct {
    int32_t mult1, mult2, mult_out;
    int8_t shift1, shift2, shift_out, left_shift;
    int16_t in1_zp, in2_zp, out_zp;
    int8_t act_min, act_max;
} tr_add;

/* MUL by a constant int8 operand b (the mask's code of 1.0), per tensor:
 *   y = clamp(out_zp + mbqm((a - in1_zp) * (b - in2_zp), mult, shift), act_min, act_max)
 * A function of the int8 a alone, so the generator tabulates it exactly
 * (TFLM's arithmetic, tested byte for byte): y = lut[a + 128]. */
typedef struct {
    const int8_t *lut; /* [256], indexed by a + 128 */
    int16_t out_zp;    /* MUL(0-valued a, b): what a masked sender gives */
} tr_mul;

#endif /* TR_TYPES_H */
