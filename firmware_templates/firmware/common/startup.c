/* Reset code and vector table of every board: FPU on, .data copied, .bss
 * zeroed, stack painted, main(). board.mk gives the external interrupt
 * count (TR_N_IRQ); the table goes to .vectors, the start of BOOT. */
#include <stdint.h>

#include "board.h"

#ifndef TR_N_IRQ
#error "TR_N_IRQ (external interrupts, from board.mk) is not set"
#endif

extern uint32_t __data_load[], __data_start[], __data_end[];
extern uint32_t __bss_start[], __bss_end[];

void Reset_Handler(void) __attribute__((noreturn));
void Default_Handler(void);

void Reset_Handler(void)
{
    uint32_t *src, *dst, *sp;

#if defined(__ARM_FP) || defined(__ARM_FEATURE_MVE)
    /* full access to CP10/CP11 (FPU, and MVE on v8.1-M) before any float code */
    SCB_CPACR |= 0xFu << 20;
    __asm volatile("dsb\n\tisb" ::: "memory");
#endif
    for (src = __data_load, dst = __data_start; dst < __data_end;)
        *dst++ = *src++;
    for (dst = __bss_start; dst < __bss_end;)
        *dst++ = 0;

    /* paint from the stack limit up to just below this frame */
    __asm volatile("mov %0, sp" : "=r"(sp));
    for (dst = __stack_limit; dst < sp - 16;)
        *dst++ = TR_STACK_PAINT;

    main();
    for (;;)
        ;
}

/* faults and unexpected interrupts: report over the UART, then stop */
void Default_Handler(void)
{
    tr_fault();
}

#define TR_WEAK_ALIAS __attribute__((weak, alias("Default_Handler")))
void NMI_Handler(void) TR_WEAK_ALIAS;
void HardFault_Handler(void) TR_WEAK_ALIAS;
void MemManage_Handler(void) TR_WEAK_ALIAS;
void BusFault_Handler(void) TR_WEAK_ALIAS;
void UsageFault_Handler(void) TR_WEAK_ALIAS;
void SecureFault_Handler(void) TR_WEAK_ALIAS;
void SVC_Handler(void) TR_WEAK_ALIAS;
void DebugMon_Handler(void) TR_WEAK_ALIAS;
void PendSV_Handler(void) TR_WEAK_ALIAS;

typedef void (*tr_vector)(void);

/* entry 0 is the initial stack pointer, then 15 system and the external ones */
__attribute__((section(".vectors"), used)) static const tr_vector vectors[16 + TR_N_IRQ] = {
    (tr_vector)(uintptr_t)__stack_top,
    Reset_Handler,
    NMI_Handler,
    HardFault_Handler,
    MemManage_Handler,
    BusFault_Handler,
    UsageFault_Handler,
    SecureFault_Handler,
    0,
    0,
    0,
    SVC_Handler,
    DebugMon_Handler,
    0,
    PendSV_Handler,
    SysTick_Handler,
    [16 ... 16 + TR_N_IRQ - 1] = Default_Handler,
};
