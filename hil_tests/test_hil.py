"""Emulated hardware-in-the-loop checks of one target: the committed default deployment, or
(``--hil-dir`` of ``tinyrrm hil-prepare --model DIR``) a model of your own, for which the
checks of the default's budgets (the paper's ratios, its speed) do not apply."""

import struct
from pathlib import Path

import pytest

from tinyrrm.codegen import targets as T
from tinyrrm.hil import protocol as P
from tinyrrm.hil.run import build_firmware, open_target


def _default_only(hil):
    if "model_dir" in hil:
        pytest.skip(f"a budget of the committed default deployment; this run is of {hil['model_dir']}")


def test_every_test_vector_is_bit_exact_on_target(hil):
    assert hil["bit_exact"]["total"] >= 8
    assert hil["bit_exact"]["equal"] == hil["bit_exact"]["total"], hil["bit_exact"]["mismatching_bytes"]


def test_firmware_fits_the_reference_board(hil, target):
    t = T.get(target)
    assert hil["flash_bytes"] <= t.flash and hil["ram_bytes"] <= t.ram
    g = hil["generator"]
    # held against the generator's own figures: the weights are one read-only symbol of the
    # generator's size (in flash, not copied to RAM), the arena is in .bss, and the generator's
    # flash estimate (weights + code; the HIL image adds the test vectors) holds to 3%, or to 2 KB
    # in a small image (a model of your own), where the code estimate is most of it
    w = hil["elf"]["symbols"][hil["model"]["weights_symbol"]]
    assert w["size"] == g["weights_bytes"] == hil["model_bytes_in_flash"]
    assert w["read_only"] and w["section"] == ".rodata", w
    assert hil["elf"]["bss"] >= g["arena_bytes"]
    expected = g["flash_need_bytes"] + g["test_vector_bytes"]
    assert abs(hil["flash_bytes"] - expected) <= max(0.03 * expected, 2048)  # default: 0.8% on cortex-m4
    assert 0 < hil["stack_peak_bytes"] < hil["stats"]["stack_size"]


def test_sum_rate_on_target_is_the_host_cs(hil):
    # the same C as the host build: the beams agree to float rounding (libm's logf/sqrtf may differ)
    assert hil["max_abs_diff_vs_host_c"] <= 1e-5
    assert hil["sum_rate_ratio_vs"]["host_c"] == pytest.approx(1.0, abs=1e-6)


def test_sum_rate_on_target(hil):
    _default_only(hil)
    r = hil["sum_rate_ratio_vs"]
    assert r["lrmpgnn_fp32"] >= 0.99  # int8 vs the fp32 LR-MPGNN (the quantization budget)
    # int8 LR-MPGNN on target vs the fp32 original: the low-rank target 0.97 times the int8 budget 0.99
    assert hil["sum_rate_ratio"] >= 0.96
    # vs WMMSE: 0.95 (MPGNN) x 0.96, and far above MRT (0.78 of WMMSE on the test scenes)
    assert r["wmmse"] >= 0.91


def test_instructions_are_measured(hil, port):
    if port:  # a board: SysTick cycles, at least one per MAC pair on any Cortex-M
        assert hil["count_unit"] == "cycles" and hil["cycles_per_inference"] > hil["macs_per_inference"] * 0.5
        return
    # QEMU -icount shift=0 runs one instruction per virtual ns and SysTick at the core clock the
    # firmware was built for: the calibration must find exactly 1e9 / hz instructions a tick, or
    # every instruction count would be off by the same factor
    st, hz = hil["stats"], int(hil["hello"]["hz"])
    assert st["calib_instructions"] / st["calib_ticks"] == pytest.approx(1e9 / hz, rel=1e-4)
    assert hil["count_unit"] == "instructions"
    # the int8 core is at least one instruction per MAC pair (SMLAD)
    assert hil["macs_per_inference"] * 0.5 < hil["instructions_per_inference"]


def test_instructions_per_mac_of_the_default(hil, port):
    """Below 10 per MAC: the default model's work is its int8 matrices (a small model of your
    own spends a larger share in the float front end)."""
    _default_only(hil)
    if port:
        pytest.skip("cycles on a board: checked against MACs above")
    assert hil["instructions_per_inference"] < hil["macs_per_inference"] * 10


def test_60x_size_target(hil, port):
    _default_only(hil)
    assert hil["model_size_ratio"] >= 60
    orig = hil["original_firmware"]
    assert hil["flash_ratio"] == pytest.approx(orig["flash_bytes"] / hil["flash_bytes"])
    # the original image holds the full MPGNN's int8 weights (16x the deployed ones)
    assert orig["flash_bytes"] - hil["flash_bytes"] >= 12 * hil["generator"]["weights_bytes"]
    if not port:
        assert orig["bit_exact"]["equal"] == orig["bit_exact"]["total"] >= 8


def test_bad_frames_get_error_frames_and_the_target_keeps_serving(target, port, hil):
    elf = hil["firmware_elf"]
    with open_target(target, elf, port, timeout=30) as c:
        info = c.hello()
        c.t.write(b"\x00\xff garbage \xa5\x00\x5a")
        bad = bytearray(P.encode(P.HELLO, 5))
        bad[-2] ^= 0x55
        c.t.write(bytes(bad))
        assert P.read_frame(c.t, 20)[0] == P.ERROR
        with pytest.raises(P.TargetError):  # a CORE frame one byte short
            c.request(P.CORE, b"\x00" * 10)
        with pytest.raises(P.TargetError):  # unknown type
            c.request(0x33, b"")
        big = P.SYNC + bytes([P.CORE, 1]) + struct.pack("<I", 1 << 30)  # length beyond max_payload
        c.t.write(big)
        assert P.read_frame(c.t, 20)[0] == P.ERROR
        c.t.write(P.encode(P.INFER, 2, b"\x01" * 100)[:40])  # truncated: the target times out
        assert P.read_frame(c.t, 60)[0] == P.ERROR
        assert c.hello().fields == info.fields


SILENT_S = """\
    .syntax unified
    .thumb
    .text
    .word 0x20001000        @ initial stack pointer
    .word reset             @ reset vector (Thumb bit set by .thumb_func)
    .thumb_func
reset:
    b reset                 @ boots, never touches the UART
"""


def test_silent_target_gives_up_within_its_timeout(target, tmp_path):
    """A firmware that boots and never answers (QEMU runs, the UART stays silent) -> a clear error, no hang."""
    import subprocess
    import time

    if target != "cortex-m4":
        pytest.skip("one core is enough for the harness's own timeout")
    (tmp_path / "silent.S").write_text(SILENT_S)
    elf = tmp_path / "silent.elf"
    subprocess.run(
        [
            "arm-none-eabi-gcc",
            "-mcpu=cortex-m4",
            "-mthumb",
            "-nostdlib",
            "-Wl,-Ttext=0x0",
            "-Wl,-e,reset",
            str(tmp_path / "silent.S"),
            "-o",
            str(elf),
        ],
        check=True,
    )
    t0 = time.monotonic()
    with pytest.raises(P.HILError, match="no answer to HELLO within 5 s .*QEMU still running"):
        with open_target(target, elf, timeout=5) as c:
            c.hello()
    assert time.monotonic() - t0 < 40


def test_portable_path_is_also_bit_exact(target, hil):
    """The portable kernels on a DSP core (TR_NO_DSP): the same goldens."""
    if not T.get(target).dsp:
        pytest.skip("this core has only the portable path, checked above")
    elf = build_firmware(
        target, hil["generated"], Path(hil["firmware_elf"]).parent.parent / "portable", extra_cflags="-DTR_NO_DSP=1"
    )
    with open_target(target, elf) as c:
        assert c.hello()["dsp"] == "0"
        n, n_exact, _ = c.vectors()
        assert n_exact == n
