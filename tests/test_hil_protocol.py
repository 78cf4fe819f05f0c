"""The HIL harness without a board: frames, a pty peer, garbage and silence."""

import os
import pty
import time

import numpy as np
import pytest

from tinyrrm.codegen import host
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
    from tinyrrm.codegen.generate import edge_bits

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
    res["model"] = {
        "name": "lrmpgnn_paper_a1-4_a2-16",
        "prefix": "lrmpgnn",
        "weights_symbol": "lrmpgnn_weights",
        "a1": 4,
        "a2": 16,
        "cut_m": 500.0,
        "tflite_sha256": "0" * 64,
    }
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


class _Babbler:
    """A transport whose target answers nothing but bytes that are not frames."""

    def __init__(self, noise: bytes):
        self.noise, self.at = noise, 0

    def write(self, data: bytes) -> None:
        pass

    def read(self, n: int, timeout: float) -> bytes:
        time.sleep(0.001)
        out = bytes(self.noise[(self.at + i) % len(self.noise)] for i in range(n))
        self.at += n
        return out


def test_a_target_sending_garbage_is_not_called_silent(monkeypatch):
    monkeypatch.setattr(P.Client, "HELLO_RETRY_S", 0.2)
    with pytest.raises(P.HILError) as err:
        P.Client(_Babbler(b"\x00\x13g"), timeout=0.5).hello()
    msg = str(err.value)
    assert msg.startswith("no answer to HELLO within 0 s: the target sent ") and "silent" not in msg
    n = int(msg.split("sent ")[1].split()[0])
    assert n > 3 and "bytes that are not frames (first: 00 13 67 00 13 67" in msg and "\n" not in msg
    with pytest.raises(
        P.HILError,
        match=r"within 0 s: the target sent \d+ bytes that are not frames \(first: "
        r"a5 a5 00 ",
    ):
        P.read_frame(_Babbler(b"\xa5\xa5\x00"), 0.2)
    half = P.encode(P.HELLO | 0x80, 1, b"proto=1")[:9]  # a frame that stops short
    with pytest.raises(P.HILError, match=r"the target sent 1 frame\(s\) that stopped short"):
        P.read_frame(_Once(half), 0.2)


class _Once(_Babbler):
    def read(self, n: int, timeout: float) -> bytes:
        out, self.noise = self.noise[:n], self.noise[n:]
        if not out:
            time.sleep(min(timeout, 0.01))
        return out


def test_silent_target_is_called_silent(pty_pair):
    _, name = pty_pair
    with pytest.raises(P.HILError, match=r"no answer to HELLO within 0 s \(target silent or stuck\)$"):
        P.Client(SerialTransport(name), timeout=0.3).hello()


def test_a_board_running_other_firmware_is_one_error(pty_pair, tiny_ckpts, tiny_data, tmp_path, monkeypatch):
    """evaluate --backend qemu --port P: a board whose HELLO names another model (here the
    committed K=50 model where the checkpoint's firmware has K_MAX=6) is refused, not
    replaced by QEMU without a word."""
    import json

    from tinyrrm.evaluate import backends

    master, name = pty_pair
    peer = FakeTarget(host.HostModel(os.path.join(ROOT, "generated/cortex-m4")), master).start()
    gen = tmp_path / "gen"
    gen.mkdir()
    (gen / "report.json").write_text(json.dumps({"model": {"prefix": "lrmpgnn", "K_MAX": 6, "Nt": 2, "steps": 3}}))
    monkeypatch.setattr(backends, "firmware_for", lambda ckpt, target, calib=None: (tmp_path / "unused.elf", gen))
    from tinyrrm.training.scenes import load

    with pytest.raises(P.HILError) as err:
        backends.qemu_backend(tiny_ckpts["lr"], load(tiny_data["test"]), port=name)
    peer.stop.set()
    msg = str(err.value)
    assert msg.startswith(f"the board on {name} runs other firmware: its HELLO says k_max=50 where lrmpgnn_tiny")
    assert "k_max=6" in msg and "prefix" not in msg.split("(")[0] and "\n" not in msg


def test_protocol_doc_states_the_infer_payload_the_host_packs():
    """docs/PROTOCOL.md's INFER size, tail padding included, is what host.input_bytes packs
    (and the firmware's sizeof(<prefix>_input), which a wrong size would answer with ERROR)."""
    import re

    doc = open(os.path.join(ROOT, "docs/PROTOCOL.md")).read()
    row = next(ln for ln in doc.splitlines() if ln.startswith("| `0x03 INFER`"))
    m = re.search(r"([\d,]+) for K_MAX = (\d+), Nt = (\d+) \(([\d,]+) before the padding\)", row)
    assert m, row
    size, k_max, nt, unpadded = int(m[1].replace(",", "")), int(m[2]), int(m[3]), int(m[4].replace(",", ""))
    packed = host.input_bytes(np.zeros((k_max, k_max, nt), np.complex64), np.zeros((k_max, k_max), bool), k_max)
    assert len(packed) == size and size % 4 == 0 and unpadded == 4 + 8 * k_max * k_max * nt + -(-k_max * k_max // 8)
    for k, n in ((6, 2), (50, 2), (7, 1), (9, 3)):  # and the formula the row gives, for other sizes
        assert len(host.input_bytes(np.zeros((k, k, n), np.complex64), np.zeros((k, k), bool), k)) == 4 * -(
            -(4 + 8 * k * k * n + -(-k * k // 8)) // 4
        )
    assert "4·⌈(4 + 8·K_MAX²·Nt + EDGE_BYTES) / 4⌉" in row
