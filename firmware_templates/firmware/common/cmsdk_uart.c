/* uart.h on the ARM CMSDK APB UART of the MPS2/MPS3 FPGA images, polled.
 * board.mk gives its base (CMSDK_UART_BASE); its clock is the core's. */
#include "uart.h"

#ifndef CMSDK_UART_BASE
#error "CMSDK_UART_BASE (from board.mk) is not set"
#endif

typedef struct {
    volatile uint32_t data;      /* 0x00 */
    volatile uint32_t state;     /* 0x04: bit0 TX full, bit1 RX full */
    volatile uint32_t ctrl;      /* 0x08: bit0 TX enable, bit1 RX enable */
    volatile uint32_t intstatus; /* 0x0C */
    volatile uint32_t bauddiv;   /* 0x10: >= 16 or QEMU refuses to move data */
} cmsdk_uart_regs;

#define UART ((cmsdk_uart_regs *)CMSDK_UART_BASE)
#define STATE_TXFULL 1u
#define STATE_RXFULL 2u
#define CTRL_TXEN 1u
#define CTRL_RXEN 2u
#define BAUD 115200u

void uart_init(void)
{
    uint32_t div = TR_CORE_HZ / BAUD;
    UART->ctrl = 0;
    UART->bauddiv = div < 16u ? 16u : div;
    UART->ctrl = CTRL_TXEN | CTRL_RXEN;
}

void uart_putc(uint8_t c)
{
    while (UART->state & STATE_TXFULL)
        ;
    UART->data = c;
}

int uart_getc_nonblock(void)
{
    if (!(UART->state & STATE_RXFULL))
        return -1;
    return (int)(UART->data & 0xFFu);
}
