/* tr_dsp.h -- the Armv7E-M DSP operations the kernels use, with a portable
 * emulation so the DSP path can be tested on the host against the same goldens.
 *
 * TR_USE_DSP is 1 when the target has the DSP extension (__ARM_FEATURE_DSP:
 * Cortex-M4, M7, M33 with DSP, M55) and 0 otherwise; define TR_EMULATE_DSP=1
 * on any compiler to take the DSP path through the C emulation below (host
 * tests do). Define TR_NO_DSP=1 to force the portable path on a DSP core
 * (the benchmark compares both).
 *
 *   tr_sxtb16(x)      -> int16x2 {(int8)x[7:0], (int8)x[23:16]}          (SXTB16)
 *   tr_sxtb16_ror8(x) -> int16x2 {(int8)x[15:8], (int8)x[31:24]}         (SXTB16 x, ROR #8)
 *   tr_smlad(a, b, c) -> c + a.lo*b.lo + a.hi*b.hi  (int16 halves)       (SMLAD)
 *   tr_sadd16(a, b)   -> per-halfword a + b, wrapping                    (SADD16)
 *   tr_usat31(x)      -> max(x, 0) for any int32 x                       (USAT #31)
 */
#ifndef TR_DSP_H
#define TR_DSP_H

#include <stdint.h>
#include <string.h>

#if defined(TR_NO_DSP) && TR_NO_DSP
#define TR_USE_DSP 0
#elif defined(TR_EMULATE_DSP) && TR_EMULATE_DSP
#define TR_USE_DSP 1
#define TR_DSP_EMULATED 1
#elif defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#define TR_USE_DSP 1
#include <arm_acle.h>
#else
#define TR_USE_DSP 0
#endif

/* A 32-bit word from any address (one LDR on cores with unaligned access). */
static inline int32_t tr_read_u32(const void *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

#if TR_USE_DSP && !defined(TR_DSP_EMULATED)
#define tr_sxtb16(x) ((int32_t)__sxtb16((uint32_t)(x)))
/* SXTB16 with its ROR #8 operand (ACLE has no rotate in every toolchain) */
static inline int32_t tr_sxtb16_ror8(int32_t x)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"((uint32_t)x));
    return (int32_t)r;
}
#define tr_smlad(a, b, c) ((int32_t)__smlad((uint32_t)(a), (uint32_t)(b), (c)))
#define tr_sadd16(a, b) ((int32_t)__sadd16((uint32_t)(a), (uint32_t)(b)))
#define tr_usat31(x) ((int32_t)__usat((x), 31))
#elif TR_USE_DSP
static inline int32_t tr_pack16(int32_t lo, int32_t hi)
{
    return (int32_t)(((uint32_t)(uint16_t)lo) | ((uint32_t)(uint16_t)hi << 16));
}
static inline int32_t tr_lo16(int32_t x)
{
    return (int16_t)(uint16_t)((uint32_t)x & 0xffffu);
}
static inline int32_t tr_hi16(int32_t x)
{
    return (int16_t)(uint16_t)((uint32_t)x >> 16);
}
static inline int32_t tr_sxtb16(int32_t x)
{
    return tr_pack16((int8_t)(uint8_t)((uint32_t)x & 0xffu),
                     (int8_t)(uint8_t)(((uint32_t)x >> 16) & 0xffu));
}
static inline int32_t tr_sxtb16_ror8(int32_t x)
{
    return tr_pack16((int8_t)(uint8_t)(((uint32_t)x >> 8) & 0xffu),
                     (int8_t)(uint8_t)((uint32_t)x >> 24));
}
static inline int32_t tr_smlad(int32_t a, int32_t b, int32_t c)
{
    return (int32_t)((uint32_t)c + (uint32_t)(tr_lo16(a) * tr_lo16(b)) +
                     (uint32_t)(tr_hi16(a) * tr_hi16(b)));
}
static inline int32_t tr_sadd16(int32_t a, int32_t b)
{
    return tr_pack16(tr_lo16(a) + tr_lo16(b), tr_hi16(a) + tr_hi16(b));
}
static inline int32_t tr_usat31(int32_t x)
{
    return x > 0 ? x : 0;
}
#endif

#endif /* TR_DSP_H */
