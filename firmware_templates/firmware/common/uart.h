/* Minimal polled UART: common/cmsdk_uart.c, or boards/<target>/uart.c. */
#ifndef TR_UART_H
#define TR_UART_H

#include <stdint.h>

void uart_init(void);
/* blocks while the transmitter is busy */
void uart_putc(uint8_t c);
/* the next received byte (0..255), or -1 when none is waiting */
int uart_getc_nonblock(void);

#endif /* TR_UART_H */
