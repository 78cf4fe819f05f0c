"""Cortex-M targets: the core, its QEMU machine and a real reference board.

Flash and RAM are the reference board's (the part's datasheet figures), so
"fits" means fits a board someone can buy. ``ram`` is the contiguous SRAM a
linker script can hand to .data/.bss/stack (on the STM32F405 the 64 KB CCM
is left out: not contiguous with SRAM1/2).

This table is the one place these facts are written: the firmware's
``boards/*/board.mk`` (CPU flags, QEMU machine, flash and RAM), the READMEs'
target tables and every list of targets (Makefile, CLI) are held equal to it
by ``tests/test_targets.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from tinyrrm.errors import UsageError

KB = 1024


@dataclass(frozen=True)
class Target:
    name: str
    cpu: str  # -mcpu
    qemu_machine: str
    board: str  # reference board (flash/RAM below)
    flash: int
    ram: int
    dsp: bool  # __ARM_FEATURE_DSP: SMLAD path
    fpu: str | None  # -mfpu, None: soft float
    arch_flags: tuple[str, ...] = ()

    def cflags(self) -> list[str]:
        if self.name == "host":
            return []
        f = [f"-mcpu={self.cpu}", "-mthumb"]
        if self.fpu:
            f += [f"-mfpu={self.fpu}", "-mfloat-abi=hard"]
        else:
            f += ["-mfloat-abi=soft"]
        return f + list(self.arch_flags)


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("cortex-m0", "cortex-m0", "microbit", "BBC micro:bit v1 (nRF51822)", 256 * KB, 16 * KB, False, None),
        Target("cortex-m3", "cortex-m3", "mps2-an385", "Arduino Due (SAM3X8E)", 512 * KB, 96 * KB, False, None),
        Target(
            "cortex-m4",
            "cortex-m4",
            "mps2-an386",
            "STM32F4 Discovery / Netduino Plus 2 (STM32F405/407)",
            1024 * KB,
            128 * KB,
            True,
            "fpv4-sp-d16",
        ),
        Target(
            "cortex-m7",
            "cortex-m7",
            "mps2-an500",
            "NUCLEO-F746ZG (STM32F746)",
            1024 * KB,
            320 * KB,
            True,
            "fpv5-sp-d16",
        ),
        Target(
            "cortex-m33",
            "cortex-m33",
            "mps2-an505",
            "NUCLEO-L552ZE-Q (STM32L552)",
            512 * KB,
            256 * KB,
            True,
            "fpv5-sp-d16",
        ),
        Target(
            "cortex-m55",
            "cortex-m55",
            "mps3-an547",
            "Arm MPS3 AN547 (Corstone-300, SSE-300)",
            512 * KB,
            512 * KB,
            True,
            "auto",
        ),
    )
}


def get(name: str) -> Target:
    if name not in TARGETS:
        raise UsageError(f"unknown target {name!r}; choose one of {', '.join(TARGETS)}")
    return TARGETS[name]


#: the host build of ``tinyrrm evaluate --backend c``: no board limits
HOST = Target("host", "native", "-", "the build machine", 1 << 40, 1 << 40, False, None)


def get_any(name: str) -> Target:
    """:func:`get`, plus the ``host`` pseudo-target."""
    return HOST if name == "host" else get(name)
