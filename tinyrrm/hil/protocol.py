"""The framed protocol of docs/PROTOCOL.md, host side.

    frame = A5 5A | type u8 | seq u8 | length u32 | payload | crc32 u32

:class:`Client` sends one request and reads one response over any
:class:`Transport` (``write(bytes)``, ``read(n, timeout) -> bytes``), and
gives up cleanly: a silent, crashed or garbled target raises
:class:`HILError` with a one-line reason (a target that sends bytes that are
not frames is told from a silent one), never hangs past its timeout.
"""

from __future__ import annotations

import struct
import time
import zlib
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from tinyrrm.errors import TinyrrmError

SYNC = b"\xa5\x5a"
HEADER = struct.Struct("<2sBBI")  # sync, type, seq, length
HELLO, CORE, INFER, VECTORS, STATS, ERROR = 0x01, 0x02, 0x03, 0x04, 0x05, 0x7F
NAMES = {HELLO: "HELLO", CORE: "CORE", INFER: "INFER", VECTORS: "VECTORS", STATS: "STATS", ERROR: "ERROR"}
MAX_LENGTH = 1 << 24


class HILError(TinyrrmError, RuntimeError):
    """The target did not answer as the protocol says (one line, for the user)."""


class TargetError(HILError):
    """The target answered with an ERROR frame."""


class Transport(Protocol):
    def write(self, data: bytes) -> None: ...

    def read(self, n: int, timeout: float) -> bytes: ...


def crc(body: bytes) -> int:
    return zlib.crc32(body) & 0xFFFFFFFF


def encode(ftype: int, seq: int, payload: bytes = b"") -> bytes:
    body = bytes([ftype & 0xFF, seq & 0xFF]) + struct.pack("<I", len(payload)) + payload
    return SYNC + body + struct.pack("<I", crc(body))


def decode(data: bytes) -> tuple[int, int, bytes]:
    """A complete frame -> (type, seq, payload); ValueError when it is not one."""
    if len(data) < HEADER.size + 4 or data[:2] != SYNC:
        raise ValueError("not a frame")
    _, ftype, seq, length = HEADER.unpack_from(data)
    if len(data) != HEADER.size + length + 4:
        raise ValueError("length mismatch")
    body = data[2 : HEADER.size + length]
    (want,) = struct.unpack_from("<I", data, HEADER.size + length)
    if crc(body) != want:
        raise ValueError("bad CRC")
    return ftype, seq, data[HEADER.size : HEADER.size + length]


@dataclass
class Junk:
    """What a read saw besides frames, for the error that ends it: a silent target
    and one that sends bytes that are not frames (wrong baud rate, another firmware,
    a boot log) are told apart."""

    n: int = 0  # bytes that were not part of a frame
    first: bytes = b""  # the first of them
    broken: int = 0  # frames that began (sync, maybe more) and stopped short
    KEEP = 16

    def add(self, data: bytes) -> None:
        self.n += len(data)
        self.first = (self.first + data)[: self.KEEP]

    def explain(self, head: str) -> str:
        """``head`` and what came instead of a frame, in one line."""
        if not self.n and not self.broken:
            return f"{head} (target silent or stuck)"
        what = []
        if self.n:
            what.append(f"{self.n} bytes that are not frames (first: {self.first.hex(' ')})")
        if self.broken:
            what.append(f"{self.broken} frame(s) that stopped short")
        return f"{head}: the target sent " + " and ".join(what)


class _Timeout(Exception):
    pass


def read_frame(t: Transport, timeout: float, junk: Junk | None = None) -> tuple[int, int, bytes]:
    """Hunt for sync, then read one frame within ``timeout`` seconds in all. Bytes skipped while
    hunting are counted in ``junk`` (a fresh one when None) and named by the timeout's error."""
    junk = Junk() if junk is None else junk
    deadline = time.monotonic() + timeout

    def left() -> float:
        rest = deadline - time.monotonic()
        if rest <= 0:
            raise _Timeout
        return rest

    prev = b""
    in_frame = False
    try:
        while True:
            b = t.read(1, left())
            if not b:
                continue
            if prev == b"\xa5" and b == b"\x5a":
                break
            junk.add(prev)  # prev did not start a sync
            prev = b
        prev, in_frame = b"", True
        head = _read_exact(t, HEADER.size - 2, left)
        length = struct.unpack("<I", head[2:6])[0]
        if length > MAX_LENGTH:
            raise HILError(f"response announces {length} bytes: garbled stream")
        rest = _read_exact(t, length + 4, left)
    except _Timeout:
        junk.add(prev)
        junk.broken += in_frame
        raise HILError(junk.explain(f"no complete response within {timeout:.0f} s")) from None
    try:
        return decode(SYNC + head + rest)
    except ValueError as e:
        raise HILError(f"corrupt response frame ({e})") from None


def _read_exact(t: Transport, n: int, left) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        buf += t.read(n - len(buf), left())
    return bytes(buf)


@dataclass
class Info:
    """The target's HELLO."""

    fields: dict[str, str]

    def __getitem__(self, key: str) -> str:
        return self.fields[key]

    @property
    def k_max(self) -> int:
        return int(self.fields["k_max"])

    @property
    def nt(self) -> int:
        return int(self.fields["nt"])

    @property
    def edge_bytes(self) -> int:
        return (self.k_max * self.k_max + 7) // 8


def check_hello(info: Info, want: dict[str, str], where: str, model: str) -> None:
    """:class:`HILError` naming every HELLO field of ``where`` that differs from ``want``
    (the firmware of ``model``): a board flashed with other firmware is not run."""
    diff = [
        f"{k}={info.fields.get(k, '(none)')} where {model} has {k}={v}"
        for k, v in want.items()
        if info.fields.get(k) != v
    ]
    if diff:
        raise HILError(
            f"{where} runs other firmware: its HELLO says "
            + ", ".join(diff)
            + f" (flash {model}'s firmware, or drop --port to run it under QEMU)"
        )


class Client:
    """Request/response over a transport (see the module docstring)."""

    def __init__(self, transport: Transport, timeout: float = 30.0):
        self.t = transport
        self.timeout = timeout
        self.seq = 0
        self._info: Info | None = None

    def request(self, ftype: int, payload: bytes = b"", timeout: float | None = None) -> bytes:
        self.seq = (self.seq + 1) & 0xFF
        self.t.write(encode(ftype, self.seq, payload))
        rtype, rseq, body = read_frame(self.t, timeout or self.timeout)
        if rtype == ERROR:
            raise TargetError(
                f"target answered ERROR to {NAMES.get(ftype, hex(ftype))}: {body.decode(errors='replace')}"
            )
        if rtype != (ftype | 0x80) or rseq != self.seq:
            raise HILError(f"unexpected response type 0x{rtype:02x} seq {rseq} to {NAMES.get(ftype)} seq {self.seq}")
        return body

    #: seconds before HELLO is sent again while the target does not answer
    HELLO_RETRY_S = 2.0

    def hello(self) -> Info:
        """HELLO, repeated every ``HELLO_RETRY_S`` until ``timeout``: a target still booting may
        drop the first bytes (an STM32 USART discards what arrives before it is enabled, and
        QEMU's netduinoplus2 delivers them that early). Only the answer to the latest try counts
        (an ERROR with its seq raises :class:`TargetError`); late answers to earlier tries and
        error frames of a half-received try are skipped."""
        deadline = time.monotonic() + self.timeout
        junk = Junk()  # over all tries: what the target sent instead of frames
        while True:
            self.seq = (self.seq + 1) & 0xFF
            self.t.write(encode(HELLO, self.seq))
            try_end = min(deadline, time.monotonic() + self.HELLO_RETRY_S)
            body = None
            while body is None and time.monotonic() < try_end:
                try:
                    rtype, rseq, got = read_frame(self.t, try_end - time.monotonic(), junk)
                except HILError:
                    break
                if rseq == self.seq and rtype == ERROR:  # this HELLO arrived and was refused
                    raise TargetError(f"target answered ERROR to HELLO: {got.decode(errors='replace')}")
                if rtype == HELLO | 0x80 and rseq == self.seq:
                    body = got
            if body is not None:
                break
            if time.monotonic() >= deadline:
                raise HILError(junk.explain(f"no answer to HELLO within {self.timeout:.0f} s"))
        text = body.decode(errors="replace")
        fields = dict(kv.split("=", 1) for kv in text.strip(";").split(";") if "=" in kv)
        if fields.get("proto") != "1":
            raise HILError(f"target speaks protocol {fields.get('proto')!r}, the host 1")
        self._info = Info(fields)
        return self._info

    @property
    def info(self) -> Info:
        return self._info or self.hello()

    def core(self, x_q: np.ndarray, e_q: np.ndarray, edge_bits: np.ndarray, k: int) -> tuple[np.ndarray, int]:
        """One int8 step on the target -> (o_q ``[K_MAX, 2Nt]``, SysTick ticks)."""
        i = self.info
        payload = (
            struct.pack("<i", k)
            + _i8(x_q, i.k_max * 4 * i.nt)
            + _i8(e_q, i.k_max * i.k_max * 2 * i.nt)
            + _u8(edge_bits, i.edge_bytes)
        )
        body = self.request(CORE, payload)
        rc, lo, hi = struct.unpack_from("<iII", body)
        if rc != 0:
            raise HILError(f"{i['prefix']}_core returned {rc} on the target")
        o = np.frombuffer(body, np.int8, offset=12).reshape(i.k_max, 2 * i.nt).copy()
        return o, lo | (hi << 32)

    def infer(self, input_bytes: bytes) -> tuple[bytes, int]:
        """The float API: input struct bytes -> (output struct bytes, ticks)."""
        body = self.request(INFER, input_bytes)
        rc, lo, hi = struct.unpack_from("<iII", body)
        if rc != 0:
            raise HILError(f"{self.info['prefix']}_infer returned {rc} on the target")
        return body[12:], lo | (hi << 32)

    def vectors(self) -> tuple[int, int, list[int]]:
        """(n, n_exact, mismatching bytes per vector) of the firmware's own test vectors."""
        body = self.request(VECTORS, timeout=max(self.timeout, 120.0))
        n, n_exact = struct.unpack_from("<II", body)
        return n, n_exact, list(struct.unpack_from(f"<{n}I", body, 8))

    def stats(self) -> dict[str, int]:
        keys = ("stack_size", "stack_peak", "calib_ticks", "calib_instructions")
        return dict(zip(keys, struct.unpack_from("<4I", self.request(STATS))))


def _i8(a: np.ndarray, n: int) -> bytes:
    b = np.ascontiguousarray(a, np.int8).tobytes()
    if len(b) != n:
        raise ValueError(f"expected {n} int8 values, got {len(b)}")
    return b


def _u8(a: np.ndarray, n: int) -> bytes:
    b = np.ascontiguousarray(a, np.uint8).tobytes()
    if len(b) != n:
        raise ValueError(f"expected {n} bytes of edge bits, got {len(b)}")
    return b
