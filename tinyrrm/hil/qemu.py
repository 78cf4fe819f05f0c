"""QEMU as a HIL target: the firmware's UART on a TCP socket chardev.

``with Qemu(elf, machine) as client: ...`` starts ``qemu-system-arm`` with
``-icount shift=0`` (one virtual ns per instruction: SysTick counts
instructions, deterministically), connects the protocol :class:`Client`,
and always kills QEMU on exit. A crashed QEMU or a silent firmware ends in
an :class:`HILError` with QEMU's own last words, never a hang.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from .protocol import Client, HILError, TargetError
from .transport import SocketTransport

QEMU = "qemu-system-arm"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def command(elf, machine: str, port: int, extra: tuple[str, ...] = ()) -> list[str]:
    return [
        QEMU,
        "-M",
        machine,
        "-kernel",
        str(elf),
        "-icount",
        "shift=0",
        "-display",
        "none",
        "-monitor",
        "none",
        "-nodefaults",
        "-chardev",
        f"socket,id=s0,host=127.0.0.1,port={port},server=on,wait=on",
        "-serial",
        "chardev:s0",
        *extra,
    ]


class Qemu:
    def __init__(self, elf, machine: str, timeout: float = 60.0, extra: tuple[str, ...] = ()):
        if shutil.which(QEMU) is None:
            raise HILError(f"{QEMU} not found (docker/provision.sh installs qemu-system-arm)")
        if not Path(elf).is_file():
            raise HILError(f"{elf}: no firmware (make firmware TARGET=...)")
        self.elf, self.machine, self.timeout, self.extra = elf, machine, timeout, extra
        self.proc: subprocess.Popen | None = None
        self.log = tempfile.TemporaryFile()

    def __enter__(self) -> Client:
        port = free_port()
        self.proc = subprocess.Popen(
            command(self.elf, self.machine, port, self.extra),
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        try:
            self.transport = SocketTransport("127.0.0.1", port)
        except ConnectionError as e:
            self.__exit__(None, None, None)
            raise HILError(f"QEMU ({self.machine}) did not open its serial socket: {e}; {self.last_words()}") from None
        self.client = _GuardedClient(self.transport, self.timeout, self)
        return self.client

    def last_words(self) -> str:
        """QEMU's stderr in one line: its own message ("qemu: fatal: Lockup ...") and the PC of
        a register dump, else the last line it printed."""
        self.log.seek(0)
        lines = [ln.strip() for ln in self.log.read().decode(errors="replace").splitlines() if ln.strip()]
        if not lines:
            return "QEMU printed nothing"
        own = [ln for ln in lines if ln.lower().startswith("qemu")]
        pc = [m.group(1) for ln in lines for m in [re.search(r"\bR15=([0-9a-fA-F]{8})", ln)] if m]
        said = (own[-1] if own else lines[-1])[:300]
        return f"QEMU said: {said}" + (f" (pc=0x{pc[-1]})" if pc else "")

    def __exit__(self, *exc) -> None:
        if getattr(self, "transport", None) is not None:
            self.transport.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


class _GuardedClient(Client):
    """A Client that names QEMU's state when the firmware stops answering."""

    def __init__(self, transport, timeout, qemu: Qemu):
        super().__init__(transport, timeout)
        self.qemu = qemu

    def request(self, ftype, payload=b"", timeout=None):
        try:
            return super().request(ftype, payload, timeout)
        except TargetError:
            raise
        except (HILError, ConnectionError) as e:
            self._explain(e)

    def hello(self):
        try:
            return super().hello()
        except TargetError:
            raise
        except (HILError, ConnectionError) as e:
            self._explain(e)

    def _explain(self, e: Exception):
        """Re-raise ``e`` as an HILError that says whether QEMU still runs, and what it said."""
        code = None
        if self.qemu.proc is not None:
            try:  # a crashing QEMU closes the socket a moment before it exits
                code = self.qemu.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
        state = f"QEMU exited with code {code}" if code is not None else "QEMU still running"
        raise HILError(f"{e} [{state}; {self.qemu.last_words()}]") from None
