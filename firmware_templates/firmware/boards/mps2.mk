# AN385 (m3), AN386 (m4), AN500 (m7): the same MPS2 memory map, UART0 and clock.
# Code in ZBT SSRAM1 (4 MB at 0), data in SSRAM2/3 (0x20000000); board.mk sets
# the reference board's FLASH_BYTES and RAM_BYTES within them.
CORE_HZ := 25000000
N_IRQ := 32
CMSDK_UART_BASE := 0x40004000
FLASH_ORIGIN := 0x00000000
RAM_ORIGIN := 0x20000000
# BIG_FLASH=1: all of SSRAM1
BIG_FLASH_BYTES := 0x400000
