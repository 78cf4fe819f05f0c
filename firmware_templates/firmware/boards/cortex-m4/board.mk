# cortex-m4 on QEMU mps2-an386 with the STM32F405's limits (flash 1024 KB, RAM 128 KB)
QEMU_MACHINE := mps2-an386
CPU_FLAGS := -mcpu=cortex-m4 -mthumb -mfpu=fpv4-sp-d16 -mfloat-abi=hard
FLASH_BYTES := 1048576
RAM_BYTES := 131072
include $(HERE)/boards/mps2.mk
