"""A protocol peer in Python for tests: serves docs/PROTOCOL.md over a pty
(or any byte stream) with the generated C compiled for the host (ctypes),
so the harness and the serial transport are tested without a board or QEMU.
"""

from __future__ import annotations

import os
import struct
import threading

import numpy as np

from tinyrrm.hil import protocol as P


class FakeTarget:
    def __init__(self, host_model, fd: int, max_payload: int = 1 << 20):
        self.m = host_model
        self.fd = fd
        self.max_payload = max_payload
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def start(self) -> FakeTarget:
        self.thread.start()
        return self

    def _read(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n and not self.stop.is_set():
            try:
                chunk = os.read(self.fd, n - len(buf))
            except OSError:
                return b""
            if not chunk:
                return b""
            buf += chunk
        return buf

    def _send(self, ftype: int, seq: int, payload: bytes) -> None:
        os.write(self.fd, P.encode(ftype, seq, payload))

    def _serve(self) -> None:
        m = self.m
        K, nt = m.K, m.nt
        eb = m.edge_bytes
        prev = b""
        while not self.stop.is_set():
            b = self._read(1)
            if not b:
                return
            if not (prev == b"\xa5" and b == b"\x5a"):
                prev = b
                continue
            prev = b""
            head = self._read(6)
            ftype, seq, length = head[0], head[1], struct.unpack("<I", head[2:6])[0]
            if length > self.max_payload:
                self._send(P.ERROR, seq, b"length above max_payload")
                continue
            rest = self._read(length + 4)
            try:
                _, _, payload = P.decode(P.SYNC + head + rest)
            except ValueError as e:
                self._send(P.ERROR, seq, str(e).encode())
                continue
            if ftype == P.HELLO:
                self._send(
                    P.HELLO | 0x80,
                    seq,
                    f"proto=1;prefix={m.prefix};k_max={K};nt={nt};steps={m.steps};"
                    f"max_payload={self.max_payload};dsp=0;core=host;stack=0;hz=0".encode(),
                )
            elif ftype == P.CORE and length == 4 + K * 4 * nt + K * K * 2 * nt + eb:
                k = struct.unpack_from("<i", payload)[0]
                x = np.frombuffer(payload, np.int8, K * 4 * nt, 4).reshape(K, 4 * nt)
                e = np.frombuffer(payload, np.int8, K * K * 2 * nt, 4 + K * 4 * nt).reshape(K, K, 2 * nt)
                bits = np.frombuffer(payload, np.uint8, eb, 4 + K * 4 * nt + K * K * 2 * nt)
                edge = np.unpackbits(bits, bitorder="little")[: K * K].reshape(K, K).astype(bool)
                o = m.core(x, e, edge, k)
                self._send(P.CORE | 0x80, seq, struct.pack("<iII", 0, 1, 0) + o.tobytes())
            elif ftype == P.STATS:
                self._send(P.STATS | 0x80, seq, struct.pack("<4I", 4096, 512, 1000, 40000))
            else:
                self._send(P.ERROR, seq, f"unknown type or bad length (type 0x{ftype:02x})".encode())
