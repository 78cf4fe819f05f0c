# cortex-m7 on QEMU mps2-an500 with the STM32F746's limits (flash 1024 KB, RAM 320 KB)
QEMU_MACHINE := mps2-an500
CPU_FLAGS := -mcpu=cortex-m7 -mthumb -mfpu=fpv5-sp-d16 -mfloat-abi=hard
FLASH_BYTES := 1048576
RAM_BYTES := 327680
include $(HERE)/boards/mps2.mk
