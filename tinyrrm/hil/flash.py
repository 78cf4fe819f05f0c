"""``make flash TARGET=... BOARD=...``: program a real board with pyocd.

Boards are named with the firmware port that runs on them (its linker script
places code at the part's flash address and drives the part's UART) and the
pyocd target type. ``--dry-run`` builds the firmware and prints the exact
pyocd command instead of running it (tested; no probe needed).
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tinyrrm import paths

from .protocol import HILError
from .run import build_firmware
from .session import gen_dir_for


@dataclass(frozen=True)
class Board:
    name: str
    target: str  # tinyrrm target (core)
    port: str  # firmware port folder under firmware_templates/firmware/boards
    pyocd_target: str
    note: str


BOARDS = {
    b.name: b
    for b in (
        Board(
            "stm32f4disco",
            "cortex-m4",
            "stm32f405",
            "stm32f407vg",
            "STM32F4 Discovery (STM32F407VG, ST-LINK/V2 on board); USART1 on PB6 (TX)/PB7 (RX) at 115200",
        ),
        Board(
            "netduinoplus2",
            "cortex-m4",
            "stm32f405",
            "stm32f405rg",
            "Netduino Plus 2 (STM32F405RG) with an SWD probe; USART1 on PB6/PB7 at 115200; "
            "the same image QEMU's netduinoplus2 runs",
        ),
    )
}


def build(board: Board, gen_dir: Path, out_dir: Path, prefix: str | None = None) -> Path:
    """``firmware.elf`` of the board's port (HILError with make's "needs X, has Y" line on failure)."""
    return build_firmware(board.target, gen_dir, out_dir, prefix, port=board.port)


def command(board: Board, elf: Path) -> list[str]:
    return ["pyocd", "flash", "--target", board.pyocd_target, "--format", "elf", str(elf)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tinyrrm.hil.flash", description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="cortex-m4")
    ap.add_argument("--board", default="stm32f4disco", help=", ".join(BOARDS))
    ap.add_argument("--dry-run", action="store_true", help="print the pyocd command, do not run it")
    a = ap.parse_args(argv)
    board = BOARDS.get(a.board)
    if board is None:
        print(f"flash: unknown board {a.board!r}; known: {', '.join(BOARDS)}", file=sys.stderr)
        return 2
    if board.target != a.target:
        print(f"flash: board {board.name} has a {board.target}, not a {a.target}", file=sys.stderr)
        return 2

    try:
        elf = build(board, gen_dir_for(a.target), paths.BUILD_FW / board.port / "deployed")
    except HILError as e:
        print(f"flash: {e}", file=sys.stderr)
        return 2
    cmd = command(board, elf)
    print(" ".join(shlex.quote(c) for c in cmd))
    if a.dry_run:
        return 0
    if shutil.which("pyocd") is None:
        print("flash: pyocd not found (pip install pyocd)", file=sys.stderr)
        return 2
    return subprocess.run(cmd).returncode


if __name__ == "__main__":
    sys.exit(main())
