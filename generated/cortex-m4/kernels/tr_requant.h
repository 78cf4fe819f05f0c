/* tr_requant.h -- TFLite's fixed-point requantization, bit-exact with TFLM's
 * reference kernels (gemmlowp rounding, double rounding: TFLITE_SINGLE_ROUNDING off).
 *
 *   tr_mbqm(x, m, s)        x * m * 2^s / 2^31, m a Q31 multiplier in [2^30, 2^31),
 *                           s in [-31, 30]; rounding as MultiplyByQuantizedMultiplier
 *   tr_mbqm_lt1(x, m, s)    the same for s <= 0 (MultiplyByQuantizedMultiplierSmallerThanOneExp)
 *   tr_mbqm_fast(x, m, e)   tr_mbqm(x, m, -e) for e in [1, 31] and |x| < 2^29
 *   tr_sat8(x)              clamp to [-128, 127] (SSAT on Armv7-M and later)
 *
 * Ranges: x any int32 (x * 2^s must fit int32 when s > 0, as in TFLM);
 * m >= 0 (tr_mbqm; TFLM's multipliers are), any m for tr_srdhm.
 */
#ifndef TR_REQUANT_H
#define TR_REQUANT_H

#include <stdint.h>

/* high 32 bits of 2*a*b, rounded; saturates the one overflow (INT32_MIN^2) */
static inline int32_t tr_srdhm(int32_t a, int32_t b)
{
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    {
        const int64_t ab = (int64_t)a * (int64_t)b;
        const int64_t nudge = ab >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
        return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
    }
}

/* x / 2^e rounded half away from zero, e in [0, 31] */
static inline int32_t tr_rdbpot(int32_t x, int32_t e)
{
    const int32_t mask = (int32_t)((((int64_t)1) << e) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> e) + (remainder > threshold ? 1 : 0);
}

/* SRDHM for a multiplier m >= 0 (every TFLM requantization multiplier is):
 * then INT32_MIN * INT32_MIN cannot occur, and the nudge-and-truncate of
 * tr_srdhm equals floor((x*m + 2^30) / 2^31), one 64-bit add and shift.
 * (>> on a negative int64 is arithmetic on GCC and Clang, which we require.) */
static inline int32_t tr_srdhm_pos(int32_t x, int32_t m)
{
    return (int32_t)(((int64_t)x * (int64_t)m + ((int64_t)1 << 30)) >> 31);
}

static inline int32_t tr_mbqm(int32_t x, int32_t m, int32_t s)
{
    if (s > 0) {
        return tr_srdhm_pos((int32_t)((uint32_t)x << s), m);
    }
    return tr_rdbpot(tr_srdhm_pos(x, m), -s);
}

/* tr_mbqm for s in [-31, -1] and |x| < 2^29: with e = -s, TFLM's rounding
 * divide (x >> e) + (remainder > threshold) equals one add and shift,
 * (y + 2^(e-1) - (y < 0)) >> e, which cannot overflow in that range
 * (|y| <= |x| + 1). Three instructions instead of nine on Cortex-M. */
static inline int32_t tr_mbqm_fast(int32_t x, int32_t m, int32_t e)
{
    const int32_t y = tr_srdhm_pos(x, m);
    return (y + (y >> 31) + (int32_t)((1u << e) >> 1)) >> e;
}

static inline int32_t tr_mbqm_lt1(int32_t x, int32_t m, int32_t s)
{
    return tr_rdbpot(tr_srdhm(x, m), -s);
}

static inline int32_t tr_clamp(int32_t x, int32_t lo, int32_t hi)
{
    return x < lo ? lo : (x > hi ? hi : x);
}

#if defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT
#include <arm_acle.h>
#define tr_sat8(x) ((int32_t)__ssat((x), 8))
#else
#define tr_sat8(x) tr_clamp((x), -128, 127)
#endif

#endif /* TR_REQUANT_H */
