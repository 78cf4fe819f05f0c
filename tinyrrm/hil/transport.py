"""Byte-stream transports: a TCP socket (QEMU's serial chardev) and a serial port."""

from __future__ import annotations

import socket
import time

from .protocol import HILError


class SocketTransport:
    def __init__(self, host: str, port: int, connect_timeout: float = 20.0):
        deadline = time.monotonic() + connect_timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                self.sock = socket.create_connection((host, port), timeout=2.0)
                break
            except OSError as e:  # QEMU not listening yet
                last = e
                time.sleep(0.05)
        else:
            raise ConnectionError(f"cannot connect to {host}:{port} within {connect_timeout:.0f} s ({last})")
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def write(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read(self, n: int, timeout: float) -> bytes:
        self.sock.settimeout(max(timeout, 1e-3))
        try:
            data = self.sock.recv(n)
        except TimeoutError:
            return b""
        if not data:
            raise ConnectionError("the target closed the connection (QEMU exited?)")
        return data

    def close(self) -> None:
        self.sock.close()


class SerialTransport:
    """A real board's UART (pyserial), e.g. ``/dev/ttyACM0``; also any pty."""

    def __init__(self, port: str, baud: int = 115200):
        import serial

        try:
            self.ser = serial.Serial(port, baudrate=baud, timeout=0)
        except serial.SerialException as e:  # an OSError, but not one of the user's files
            raise HILError(f"cannot open the serial port {port}: {e}") from None

    def write(self, data: bytes) -> None:
        self.ser.write(data)
        self.ser.flush()

    def read(self, n: int, timeout: float) -> bytes:
        self.ser.timeout = max(timeout, 1e-3)
        return self.ser.read(n)

    def close(self) -> None:
        self.ser.close()
