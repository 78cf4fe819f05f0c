# cortex-m3 on QEMU mps2-an385 with the Arduino Due's limits (flash 512 KB, RAM 96 KB)
QEMU_MACHINE := mps2-an385
CPU_FLAGS := -mcpu=cortex-m3 -mthumb -mfloat-abi=soft
FLASH_BYTES := 524288
RAM_BYTES := 98304
include $(HERE)/boards/mps2.mk
