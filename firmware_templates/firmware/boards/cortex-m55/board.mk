# cortex-m55 on QEMU mps3-an547 with the AN547's limits (code 512 KB, RAM 512 KB),
# secure aliases: code in ITCM (0x10000000), data in DTCM (0x30000000).
# Boots secure from the vector table at 0x10000000.
QEMU_MACHINE := mps3-an547
CPU_FLAGS := -mcpu=cortex-m55 -mthumb -mfpu=auto -mfloat-abi=hard
CORE_HZ := 32000000
N_IRQ := 96
CMSDK_UART_BASE := 0x59303000
FLASH_ORIGIN := 0x10000000
FLASH_BYTES := 524288
RAM_ORIGIN := 0x30000000
RAM_BYTES := 524288
# BIG_FLASH=1: the secure half of the DDR (0x70000000, 256 MB); the vector
# table stays in ITCM (BOOT), where the core boots
BIG_FLASH_ORIGIN := 0x70000000
BIG_FLASH_BYTES := 0x10000000
BOOT_ORIGIN := 0x10000000
BOOT_BYTES := 524288
