# cortex-m33 on QEMU mps2-an505 with the STM32L552's limits (flash 512 KB, RAM 256 KB),
# secure aliases: code in ZBT SSRAM1 (4 MB at 0x10000000), data in SSRAM2/3 (0x38000000).
# Boots secure from the vector table at 0x10000000 (INITSVTOR).
QEMU_MACHINE := mps2-an505
CPU_FLAGS := -mcpu=cortex-m33 -mthumb -mfpu=fpv5-sp-d16 -mfloat-abi=hard
CORE_HZ := 20000000
N_IRQ := 92
CMSDK_UART_BASE := 0x50200000
FLASH_ORIGIN := 0x10000000
FLASH_BYTES := 524288
RAM_ORIGIN := 0x38000000
RAM_BYTES := 262144
# BIG_FLASH=1: all of SSRAM1
BIG_FLASH_BYTES := 0x400000
