/* stm32f405/407: USART1 (0x40011000, QEMU netduinoplus2's first serial),
 * TX PB6, RX PB7 (AF7; PA9 carries a 4.7 uF capacitor on the STM32F4
 * Discovery), 115200 8N1 from the 16 MHz HSI that runs after reset. */
#include "uart.h"

#define REG(addr) (*(volatile uint32_t *)(addr))

#define RCC_AHB1ENR REG(0x40023830u)
#define RCC_APB2ENR REG(0x40023844u)
#define RCC_AHB1ENR_GPIOBEN (1u << 1)
#define RCC_APB2ENR_USART1EN (1u << 4)

#define GPIOB_MODER REG(0x40020400u)
#define GPIOB_PUPDR REG(0x4002040Cu)
#define GPIOB_AFRL REG(0x40020420u)

#define USART1_SR REG(0x40011000u)
#define USART1_DR REG(0x40011004u)
#define USART1_BRR REG(0x40011008u)
#define USART1_CR1 REG(0x4001100Cu)
#define SR_RXNE (1u << 5)
#define SR_TXE (1u << 7)
#define CR1_RE (1u << 2)
#define CR1_TE (1u << 3)
#define CR1_UE (1u << 13)

#define TX_PIN 6u
#define RX_PIN 7u
#define AF_USART1 7u
#define APB2_HZ 16000000u /* HSI, no prescaler after reset */
#define BAUD 115200u

void uart_init(void)
{
    RCC_AHB1ENR |= RCC_AHB1ENR_GPIOBEN;
    RCC_APB2ENR |= RCC_APB2ENR_USART1EN;
    (void)RCC_APB2ENR; /* a read-back lets the clock settle before the first access */

    GPIOB_AFRL = (GPIOB_AFRL & ~(0xFFu << (4u * TX_PIN))) | (AF_USART1 << (4u * TX_PIN)) |
                 (AF_USART1 << (4u * RX_PIN));
    GPIOB_PUPDR = (GPIOB_PUPDR & ~(0xFu << (2u * TX_PIN))) | (1u << (2u * RX_PIN)); /* RX pull-up */
    GPIOB_MODER = (GPIOB_MODER & ~(0xFu << (2u * TX_PIN))) | (2u << (2u * TX_PIN)) |
                  (2u << (2u * RX_PIN)); /* alternate function */

    USART1_CR1 = 0;
    USART1_BRR = (APB2_HZ + BAUD / 2u) / BAUD; /* 16x oversampling: 139 = 8 + 11/16 */
    USART1_CR1 = CR1_UE | CR1_TE | CR1_RE;
}

void uart_putc(uint8_t c)
{
    while (!(USART1_SR & SR_TXE))
        ;
    USART1_DR = c;
}

int uart_getc_nonblock(void)
{
    if (!(USART1_SR & SR_RXNE))
        return -1;
    return (int)(USART1_DR & 0xFFu);
}
