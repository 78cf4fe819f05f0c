/* cortex-m0 (BBC micro:bit, nRF51822): UART0 at 0x40002000, TX P0.24, RX P0.25.
 * Only built to show that the model does not fit (see link.ld). */
#include "uart.h"

#define NRF_UART_REG(off) (*(volatile uint32_t *)(0x40002000u + (off)))
#define UART_STARTRX NRF_UART_REG(0x000)
#define UART_STARTTX NRF_UART_REG(0x008)
#define UART_RXDRDY NRF_UART_REG(0x108)
#define UART_TXDRDY NRF_UART_REG(0x11C)
#define UART_ENABLE NRF_UART_REG(0x500)
#define UART_PSELTXD NRF_UART_REG(0x50C)
#define UART_PSELRXD NRF_UART_REG(0x514)
#define UART_RXD NRF_UART_REG(0x518)
#define UART_TXD NRF_UART_REG(0x51C)
#define UART_BAUDRATE NRF_UART_REG(0x524)

void uart_init(void)
{
    UART_PSELTXD = 24;
    UART_PSELRXD = 25;
    UART_BAUDRATE = 0x01D7E000u; /* 115200 */
    UART_ENABLE = 4;
    UART_STARTTX = 1;
    UART_STARTRX = 1;
}

void uart_putc(uint8_t c)
{
    UART_TXDRDY = 0;
    UART_TXD = c;
    while (!UART_TXDRDY)
        ;
}

int uart_getc_nonblock(void)
{
    if (!UART_RXDRDY)
        return -1;
    UART_RXDRDY = 0;
    return (int)(UART_RXD & 0xFFu);
}
