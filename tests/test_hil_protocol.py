"""The HIL harness without a board: frames, a pty peer, garbage and silence."""

import os
import pty
import time

import numpy as np
import pytest

from tinyrrm.export import host
from tinyrrm.hil import protocol as P
from tinyrrm.hil.transport import SerialTransport

from .fake_target import FakeTarget

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_frame_roundtrip_and_crc():
    f = P.encode(P.CORE, 7, b"abc")
    assert f[:2] == P.SYNC and P.decode(f) == (P.CORE, 7, b"abc")
    bad = bytearray(f)
    bad[-1] ^= 1
    with pytest.raises(ValueError, match="bad CRC"):
        P.decode(bytes(bad))


@pytest.fixture
def pty_pair():
    master, slave = pty.openpty()
    import tty

    tty.setraw(master)
    tty.setraw(slave)
    yield master, os.ttyname(slave)
    os.close(master)
    os.close(slave)


def test_serial_transport_against_a_pty_peer(pty_pair):
    """The generated C (host build) behind a pty: the same client a real board gets."""
    master, name = pty_pair
    m = host.HostModel(os.path.join(ROOT, "generated/cortex-m4"))
    peer = FakeTarget(m, master).start()
    client = P.Client(SerialTransport(name), timeout=10)
    info = client.hello()
    assert info.k_max == m.K and info["prefix"] == "lrmpgnn"
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, (m.K, 4 * m.nt), dtype=np.int8)
    e = rng.integers(-128, 128, (m.K, m.K, 2 * m.nt), dtype=np.int8)
    edge = rng.random((m.K, m.K)) < 0.3
    from tinyrrm.export.codegen import edge_bits

    o, ticks = client.core(x, e, edge_bits(edge), m.K)
    np.testing.assert_array_equal(o, m.core(x, e, edge))
    # garbage, then a frame with a bad CRC: an ERROR frame, and the peer keeps serving
    client.t.write(b"\x00\x13garbage\xa5")
    frame = bytearray(P.encode(P.HELLO, 9))
    frame[-1] ^= 0xFF
    client.t.write(bytes(frame))
    ftype, seq, body = P.read_frame(client.t, 5)
    assert (ftype, seq) == (P.ERROR, 9) and b"CRC" in body
    assert client.hello().k_max == m.K
    peer.stop.set()


def test_silent_target_gives_up_cleanly(pty_pair):
    _, name = pty_pair
    client = P.Client(SerialTransport(name), timeout=0.5)
    t = time.monotonic()
    with pytest.raises(P.HILError, match="no answer to HELLO within"):
        client.hello()
    assert time.monotonic() - t < 3


class _BootingTarget:
    """A transport whose target drops the first HELLO (its UART not enabled yet), then answers
    each later one after an error frame and a stale answer with an earlier seq."""

    def __init__(self):
        self.buf, self.writes = bytearray(), 0

    def write(self, data: bytes) -> None:
        self.writes += 1
        if self.writes == 1:
            return
        _, seq, _ = P.decode(data)
        self.buf += P.encode(P.ERROR, 0, b"truncated frame")
        self.buf += P.encode(P.HELLO | 0x80, seq - 1, b"proto=1;k_max=9;nt=2")
        self.buf += P.encode(P.HELLO | 0x80, seq, b"proto=1;k_max=4;nt=2")

    def read(self, n: int, timeout: float) -> bytes:
        if not self.buf:
            time.sleep(min(timeout, 0.01))
            return b""
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out


def test_hello_is_repeated_until_the_target_answers(monkeypatch):
    monkeypatch.setattr(P.Client, "HELLO_RETRY_S", 0.2)
    t = _BootingTarget()
    client = P.Client(t, timeout=5)
    assert client.hello().k_max == 4 and t.writes == 2  # the answer to the latest HELLO, not the stale one
    assert client.hello().k_max == 4 and t.writes == 3  # and the stream is in step afterwards


def test_error_frame_is_reported(pty_pair):
    master, name = pty_pair
    client = P.Client(SerialTransport(name), timeout=5)
    import threading

    def answer():
        time.sleep(0.1)
        os.read(master, 4096)
        os.write(master, P.encode(P.ERROR, 1, b"bad CRC"))

    threading.Thread(target=answer, daemon=True).start()
    with pytest.raises(P.TargetError, match="ERROR to HELLO: bad CRC"):
        client.hello()


def test_hil_report_goes_to_build_unless_published(tmp_path, monkeypatch):
    """The HIL suite of `make test` writes its report under build/ only; `make hil` (publish)
    writes reports/hil/<target>.{json,md,png}, with the markdown rendered from that JSON."""
    import json

    from tinyrrm.hil import session

    res = json.loads(open(os.path.join(ROOT, "reports/hil/cortex-m4.json")).read())
    res["model"] = {"name": "lrmpgnn_paper_a1-4_a2-16", "prefix": "lrmpgnn", "weights_symbol": "lrmpgnn_weights",
                    "a1": 4, "a2": 16, "cut_m": 500.0, "tflite_sha256": "0" * 64}
    monkeypatch.chdir(tmp_path)
    session.save(res, "cortex-m4", hil_dir=tmp_path / "build/hil/cortex-m4", publish=False)
    assert not (tmp_path / "reports").exists()
    built = tmp_path / "build/hil/cortex-m4"
    assert {p.name for p in built.iterdir()} == {"hil.json", "cortex-m4.json", "cortex-m4.md", "cortex-m4.png"}
    session.save(res, "cortex-m4", hil_dir=built, publish=True)
    pub = tmp_path / "reports/hil"
    assert sorted(p.name for p in pub.iterdir()) == ["cortex-m4.json", "cortex-m4.md", "cortex-m4.png"]
    brief = json.loads((pub / "cortex-m4.json").read_text())
    assert brief["model"]["a2"] == 16 and brief["instructions_per_inference"] == res["instructions_per_inference"]
    assert (pub / "cortex-m4.md").read_text() == session.markdown(brief, png="cortex-m4.png")
    assert "![flash and RAM" in (pub / "cortex-m4.md").read_text()
