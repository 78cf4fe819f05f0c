/* SysTick tick counter and boot calibration (ticks.h). */
#include "ticks.h"

#include "board.h"

uint32_t tr_calib_ticks;
uint32_t tr_calib_instructions;

static volatile uint32_t systick_wraps;

void SysTick_Handler(void)
{
    systick_wraps++;
}

/* ticks since boot: wraps * 2^24 + (0xFFFFFF - CVR). The interrupt comes
 * when CVR reaches 0; a wrap not yet counted shows as a pending SysTick. */
uint64_t tr_ticks_now(void)
{
    uint32_t hi, lo, pending;
    do {
        hi = systick_wraps;
        lo = SYST_CVR;
        pending = SCB_ICSR & SCB_ICSR_PENDSTSET;
    } while (hi != systick_wraps);
    if (pending)
        hi++;
    if (lo == 0) /* counted wrap, reload still to come */
        return ((uint64_t)hi << 24) - 1u;
    return ((uint64_t)hi << 24) | (0xFFFFFFu - lo);
}

/* n iterations of subs/bne = exactly 2n instructions */
static void calibrate(void)
{
    uint32_t n = TR_CALIB_LOOPS;
    uint64_t t0, t1;
    t0 = tr_ticks_now();
#if __ARM_ARCH_ISA_THUMB == 1
    /* GCC hands Thumb-1 inline asm over in divided syntax: "sub" sets flags */
    __asm volatile("1:\n\tsub %0, #1\n\tbne 1b" : "+l"(n) : : "cc");
#else
    __asm volatile("1:\n\tsubs %0, %0, #1\n\tbne 1b" : "+l"(n) : : "cc");
#endif
    t1 = tr_ticks_now();
    tr_calib_ticks = (uint32_t)(t1 - t0);
    tr_calib_instructions = 2u * TR_CALIB_LOOPS;
}

void tr_ticks_init(void)
{
    SYST_CSR = 0;
    SYST_RVR = 0xFFFFFFu;
    SYST_CVR = 0;
    SYST_CSR = SYST_CSR_ENABLE | SYST_CSR_TICKINT | SYST_CSR_CLKSOURCE;
    while (SYST_CVR == 0) /* first reload, so the counter is meaningful */
        ;
    calibrate();
}
