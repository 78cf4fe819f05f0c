/* SysTick as a 64-bit tick counter, and the boot calibration that turns its
 * ticks into instructions under QEMU -icount (shared by every firmware here).
 *
 *   tr_ticks_init()   start SysTick free-running (24-bit reload, one interrupt
 *                     a wrap), then calibrate: tr_calib_ticks SysTick ticks for
 *                     tr_calib_instructions instructions of a SUBS/BNE loop.
 *   tr_ticks_now()    ticks since tr_ticks_init, 64 bits (wraps * 2^24 + count).
 *
 * Under QEMU -icount the ratio tr_calib_instructions / tr_calib_ticks is exact;
 * on a board the loop measures the pipeline, and ticks are core-clock cycles. */
#ifndef TR_TICKS_H
#define TR_TICKS_H

#include <stdint.h>

#define TR_CALIB_LOOPS 5000000u /* 2 instructions each */

extern uint32_t tr_calib_ticks;        /* SysTick ticks of the calibration loop */
extern uint32_t tr_calib_instructions; /* its instructions: 2 * TR_CALIB_LOOPS */

void tr_ticks_init(void);
uint64_t tr_ticks_now(void);

#endif /* TR_TICKS_H */
