# cortex-m0 on QEMU microbit with the nRF51822's limits (flash 256 KB, RAM 16 KB):
# the model does not fit. The machine maps no larger code memory (BIG_FLASH
# keeps the 256 KB). UART: boards/cortex-m0/uart.c.
QEMU_MACHINE := microbit
CPU_FLAGS := -mcpu=cortex-m0 -mthumb -mfloat-abi=soft
CORE_HZ := 16000000
N_IRQ := 32
FLASH_ORIGIN := 0x00000000
FLASH_BYTES := 262144
RAM_ORIGIN := 0x20000000
RAM_BYTES := 16384
