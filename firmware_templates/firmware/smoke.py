#!/usr/bin/env python3
"""Smoke test of the tinyrrm HIL firmware under QEMU (docs/PROTOCOL.md v1).

    python3 smoke.py --target cortex-m4 --elf build/fw/cortex-m4/firmware.elf \
        [--gen generated/cortex-m4] [--json out.json]

Boots the firmware with `qemu-system-arm -icount shift=0`, its UART0 on a
TCP socket, then checks HELLO, VECTORS (all bit-exact), STATS, CORE on test
vector 0, INFER on a random input, a bad-CRC frame, other malformed frames
and a truncated frame (each answered with ERROR, HELLO still working after).
Exit status 0 when every check passed. Needs only the stdlib and numpy.
"""
import argparse
import json
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))

HELLO, CORE, INFER, VECTORS, STATS, ERROR = 0x01, 0x02, 0x03, 0x04, 0x05, 0x7F
SYNC = b"\xa5\x5a"


class ProtoError(Exception):
    pass


def frame(ftype, seq, payload, crc=None):
    body = struct.pack("<BBI", ftype, seq, len(payload)) + payload
    if crc is None:
        crc = zlib.crc32(body)
    return SYNC + body + struct.pack("<I", crc & 0xFFFFFFFF)


class Link:
    """One request, one response, over the QEMU serial socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.seq = 0

    def _read(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ProtoError("timeout waiting for %d bytes (have %d)" % (n, len(self.buf)))
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                raise ProtoError("connection closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self, timeout=60.0):
        deadline = time.monotonic() + timeout
        # hunt for A5 5A
        prev = b""
        while True:
            b = self._read(1, deadline)
            if prev == b"\xa5" and b == b"\x5a":
                break
            prev = b
        hdr = self._read(6, deadline)
        ftype, seq, length = struct.unpack("<BBI", hdr)
        payload = self._read(length, deadline)
        (crc,) = struct.unpack("<I", self._read(4, deadline))
        if crc != zlib.crc32(hdr + payload):
            raise ProtoError("bad CRC in response")
        return ftype, seq, payload

    def send_raw(self, data):
        self.sock.sendall(data)

    def request(self, ftype, payload=b"", timeout=120.0):
        self.seq = (self.seq + 1) & 0xFF
        self.send_raw(frame(ftype, self.seq, payload))
        rtype, rseq, rpayload = self.recv(timeout)
        if rtype == ERROR:
            raise ProtoError("ERROR frame: %r" % rpayload)
        if rtype != (ftype | 0x80) or rseq != self.seq:
            raise ProtoError("unexpected response type 0x%02x seq %d" % (rtype, rseq))
        return rpayload


def model_sizes(gen):
    text = open(os.path.join(gen, "model.h")).read()
    prefix = re.search(r"#define (\w+)_K_MAX (\d+)", text).group(1)

    def macro(name):
        return int(re.search(r"#define %s_%s (\d+)" % (prefix, name), text).group(1))

    k_max, nt, edge = macro("K_MAX"), macro("NT"), macro("EDGE_BYTES")
    infer_bytes = 4 + k_max * k_max * nt * 2 * 4 + edge
    infer_bytes = (infer_bytes + 3) // 4 * 4  # struct padding to its int32/float alignment
    return dict(prefix=prefix.lower(), k_max=k_max, nt=nt, edge=edge, infer_bytes=infer_bytes)


def test_vector(gen, index):
    """(k, x_q, e_q, edge_bits, expected) of one vector from test_vectors.c"""
    text = open(os.path.join(gen, "test_vectors.c")).read()

    def array(name):
        m = re.search(r"%s\[\] = \{(.*?)\};" % name, text, re.S)
        return [int(v, 0) for v in m.group(1).replace("\n", " ").split(",") if v.strip()]

    k = int(re.findall(r'\{ "[^"]*", (\d+), V\d+_X', text)[index])
    v = "V%d_" % index
    return k, array(v + "X"), array(v + "E"), array(v + "EDGE"), array(v + "EXPECTED")


def board_machine(target):
    text = open(os.path.join(HERE, "boards", target, "board.mk")).read()
    return re.search(r"QEMU_MACHINE\s*:=\s*(\S+)", text).group(1)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_qemu(machine, elf, log):
    port = free_port()
    cmd = ["qemu-system-arm", "-M", machine, "-kernel", elf, "-icount", "shift=0",
           "-display", "none", "-monitor", "none", "-serial", "chardev:s0",
           "-chardev", "socket,id=s0,host=127.0.0.1,port=%d,server=on,wait=on" % port]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 15
    while True:
        try:
            return proc, socket.create_connection(("127.0.0.1", port), timeout=2), cmd
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise ProtoError("QEMU did not open port %d" % port)
            time.sleep(0.05)


def stop_qemu(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def run(target, elf, gen, seed=1):
    sz = model_sizes(gen)
    k_max, nt, edge = sz["k_max"], sz["nt"], sz["edge"]
    machine = board_machine(target)
    res = dict(target=target, machine=machine, elf=elf, checks={}, ok=False)
    checks = res["checks"]
    t_start = time.monotonic()
    log = tempfile.TemporaryFile()
    proc, sock, res["qemu_cmd"] = start_qemu(machine, elf, log)
    link = Link(sock)

    def check(name, ok, detail=""):
        checks[name] = dict(ok=bool(ok), detail=detail)
        print("  %-28s %s %s" % (name, "ok  " if ok else "FAIL", detail), flush=True)

    def expect_error(name, raw, timeout=60.0):
        t0 = time.monotonic()
        link.send_raw(raw)
        try:
            rtype, _, payload = link.recv(timeout)
        except ProtoError as e:
            check(name, False, str(e))
            return
        wall = time.monotonic() - t0
        check(name, rtype == ERROR, "%r after %.2f s" % (payload.decode(errors="replace"), wall))
        hello = link.request(HELLO, timeout=30)
        check(name + " then HELLO", hello.startswith(b"proto=1;"))

    try:
        # HELLO
        hello = link.request(HELLO, timeout=30).decode()
        kv = dict(item.split("=", 1) for item in hello.split(";"))
        res["hello"] = hello
        max_payload = max(4 + k_max * 4 * nt + k_max * k_max * 2 * nt + edge, sz["infer_bytes"])
        check("HELLO", kv.get("proto") == "1" and kv.get("core") == target
              and int(kv.get("k_max", -1)) == k_max and int(kv.get("max_payload", -1)) == max_payload,
              hello)

        # STATS (calibration) first, so ticks convert to instructions
        st = struct.unpack("<4I", link.request(STATS))
        calib_ticks, calib_instr = st[2], st[3]
        res["calib_ticks"], res["calib_instructions"] = calib_ticks, calib_instr
        ipt = calib_instr / calib_ticks if calib_ticks else float("nan")
        res["instructions_per_tick"] = ipt
        check("STATS calibration", calib_ticks > 0, "%d ticks for %d instructions (%.3f instr/tick)"
              % (calib_ticks, calib_instr, ipt))

        # VECTORS
        t0 = time.monotonic()
        vec = link.request(VECTORS, timeout=300)
        res["vectors_wall_s"] = time.monotonic() - t0
        n, n_exact = struct.unpack_from("<2I", vec)
        bad = struct.unpack_from("<%dI" % n, vec, 8)
        res["vectors"] = dict(n=n, n_exact=n_exact, mismatches=list(bad))
        check("VECTORS bit-exact", n == n_exact and n > 0, "%d/%d exact, mismatches %s (%.1f s)"
              % (n_exact, n, list(bad), res["vectors_wall_s"]))

        # CORE on test vector 0
        k, x_q, e_q, edge_bits, expected = test_vector(gen, 0)
        req = struct.pack("<i", k) + np.array(x_q, np.int8).tobytes() + np.array(e_q, np.int8).tobytes() \
            + bytes(edge_bits)
        t0 = time.monotonic()
        out = link.request(CORE, req, timeout=120)
        res["core_wall_s"] = time.monotonic() - t0
        rc, lo, hi = struct.unpack_from("<iII", out)
        ticks = lo | (hi << 32)
        o_q = np.frombuffer(out, np.int8, offset=12)
        rows = k * 2 * nt
        exact = rc == 0 and np.array_equal(o_q[:rows], np.array(expected[:rows], np.int8))
        res["core_v0"] = dict(rc=rc, ticks=ticks, instructions=round(ticks * ipt))
        check("CORE vector 0", exact, "rc=%d ticks=%d -> %.0f instructions" % (rc, ticks, ticks * ipt))

        # INFER on a random input
        rng = np.random.default_rng(seed)
        k = int(rng.integers(k_max // 2, k_max + 1))
        h = np.zeros((k_max, k_max, nt, 2), np.float32)
        h[:k, :k] = rng.normal(0, 3.0, (k, k, nt, 2))
        bits = np.zeros(edge * 8, np.uint8)
        for r in range(k):
            for j in range(k):
                if j != r:
                    bits[r * k_max + j] = 1
        payload = struct.pack("<i", k) + h.tobytes() + np.packbits(bits, bitorder="little")[:edge].tobytes()
        payload += bytes(sz["infer_bytes"] - len(payload))
        t0 = time.monotonic()
        out = link.request(INFER, payload, timeout=300)
        res["infer_wall_s"] = time.monotonic() - t0
        rc, lo, hi = struct.unpack_from("<iII", out)
        ticks = lo | (hi << 32)
        v = np.frombuffer(out, np.float32, offset=12).reshape(k_max, nt, 2)
        norms = np.sqrt((v.astype(np.float64) ** 2).sum(axis=(1, 2)))
        ok = rc == 0 and np.isfinite(v).all() and (norms <= 1 + 1e-5).all() and not v[k:].any() \
            and norms[:k].max() > 0
        res["infer"] = dict(k=k, rc=rc, ticks=ticks, instructions=round(ticks * ipt),
                            max_norm=float(norms.max()))
        check("INFER random input", ok, "k=%d rc=%d max|v|=%.4f ticks=%d -> %.0f instructions (%.1f s)"
              % (k, rc, norms.max(), ticks, ticks * ipt, res["infer_wall_s"]))

        # malformed frames: each answered by ERROR, then the target still serves
        good = bytearray(frame(HELLO, 7, b""))
        good[-1] ^= 0xFF
        expect_error("bad CRC", bytes(good))
        expect_error("unknown type", frame(0x42, 8, b"abc"))
        expect_error("wrong payload size", frame(HELLO, 9, b"x"))
        expect_error("length above max_payload", SYNC + struct.pack("<BBI", CORE, 10, 1 << 30))
        link.send_raw(b"\x00\xa5\x11garbage\x5a")  # noise before a frame: resync on A5 5A
        hello2 = link.request(HELLO, timeout=30)
        check("resync after noise", hello2.startswith(b"proto=1;"))
        # truncated: header promises a CORE payload, 10 bytes come, then silence
        t0 = time.monotonic()
        expect_error("truncated frame", frame(CORE, 11, bytes(len(req)))[:8 + 10], timeout=120)
        res["truncated_wall_s"] = time.monotonic() - t0

        # STATS again: stack peak after CORE, INFER and VECTORS
        st = struct.unpack("<4I", link.request(STATS))
        res["stack_size"], res["stack_peak"] = st[0], st[1]
        check("STATS stack", 0 < st[1] < st[0], "peak %d of %d B" % (st[1], st[0]))
    except (ProtoError, OSError, ValueError, struct.error) as e:
        check("exception", False, "%s: %s" % (type(e).__name__, e))
    finally:
        sock.close()
        stop_qemu(proc)
        log.seek(0)
        qlog = log.read().decode(errors="replace").strip()
        if qlog:
            res["qemu_log"] = qlog[-2000:]
            print("  qemu: " + qlog[-500:].replace("\n", "\n  qemu: "))
    res["wall_s"] = time.monotonic() - t_start
    res["ok"] = all(c["ok"] for c in checks.values())
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--target", required=True)
    ap.add_argument("--elf", help="default build/fw/<target>/firmware.elf")
    ap.add_argument("--gen", default=os.path.join(REPO, "generated", "cortex-m4"),
                    help="generated model folder (model.h, test_vectors.c)")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    elf = a.elf or os.path.join(REPO, "build", "fw", a.target, "firmware.elf")
    print("%s: %s" % (a.target, elf), flush=True)
    res = run(a.target, os.path.abspath(elf), os.path.abspath(a.gen), a.seed)
    print("%s: %s in %.1f s wall" % (a.target, "PASS" if res["ok"] else "FAIL", res["wall_s"]))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
