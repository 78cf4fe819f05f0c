/* What the common code needs from a Cortex-M core and the linker script. */
#ifndef TR_BOARD_H
#define TR_BOARD_H

#include <stdint.h>

/* system control space (same on every Cortex-M) */
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define SCB_ICSR (*(volatile uint32_t *)0xE000ED04u)
#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)

#define SYST_CSR_ENABLE 1u
#define SYST_CSR_TICKINT 2u
#define SYST_CSR_CLKSOURCE 4u /* 1: core clock */
#define SCB_ICSR_PENDSTSET (1u << 26)

/* stack painting: every unused stack word holds this */
#define TR_STACK_PAINT 0xC0FFEE5Au

/* from sections.ld (symbols, not variables: use their addresses) */
extern uint32_t __stack_limit[]; /* lowest stack address */
extern uint32_t __stack_top[];   /* initial SP, end of RAM */
extern char __stack_size[];      /* its address is the stack size */

#define TR_STACK_SIZE ((uint32_t)(uintptr_t)__stack_size)

/* interrupt handlers the common code provides */
void SysTick_Handler(void);
void tr_fault(void) __attribute__((noreturn));
int main(void);

#endif /* TR_BOARD_H */
