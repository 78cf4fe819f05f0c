# stm32f405: real STM32F405/407 boards (`make flash`), also QEMU netduinoplus2.
# Flash 1024 KB at 0x08000000 (aliased at 0 for boot), SRAM 128 KB at 0x20000000.
# Runs on the reset clock (HSI 16 MHz): SysTick and USART1 need no clock setup.
# UART: boards/stm32f405/uart.c. No larger memory: BIG_FLASH keeps the 1 MB.
QEMU_MACHINE := netduinoplus2
CPU_FLAGS := -mcpu=cortex-m4 -mthumb -mfpu=fpv4-sp-d16 -mfloat-abi=hard
CORE_HZ := 16000000
N_IRQ := 82
FLASH_ORIGIN := 0x08000000
FLASH_BYTES := 1048576
RAM_ORIGIN := 0x20000000
RAM_BYTES := 131072
