"""Emulator tier: the HIL firmware of every core under QEMU, fast checks.

The full HIL suite (sum rates, the original model's firmware, reports) is
``hil_tests/`` (``make hil``); here every core builds, boots and answers.
"""

import shutil

import numpy as np
import pytest

from tinyrrm.codegen import host
from tinyrrm.codegen import targets as T
from tinyrrm.hil import flash
from tinyrrm.hil import protocol as P
from tinyrrm.hil.run import build_firmware, open_target

GEN = "generated/cortex-m4"  # the C is the same for every core
CORES = ["cortex-m3", "cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55"]

pytestmark = pytest.mark.slow  # cross builds and QEMU runs


@pytest.fixture(scope="module", autouse=True)
def tools():
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} missing: run docker/provision.sh")


@pytest.mark.parametrize("core", CORES)
def test_every_core_builds_boots_and_is_bit_exact(core, tmp_path):
    elf = build_firmware(core, GEN, tmp_path / "fw")
    with open_target(core, elf, timeout=60) as c:
        info = c.hello()
        assert info["core"] == core and info.k_max == 50
        assert info["dsp"] == ("1" if T.get(core).dsp else "0")
        n, n_exact, mism = c.vectors()
        assert n == 8 and n_exact == n, mism
        st = c.stats()
        assert 0 < st["stack_peak"] < st["stack_size"] and st["calib_ticks"] > 0


def test_streamed_core_frames_equal_the_host_build(tmp_path):
    """CORE frames of random inputs, K below K_MAX included: the target's bytes == host C == TFLM (tests/)."""
    m = host.HostModel(GEN)
    elf = build_firmware("cortex-m4", GEN, tmp_path / "fw")
    rng = np.random.default_rng(11)
    with open_target("cortex-m4", elf, timeout=60) as c:
        for k in (50, 17, 1):
            x = rng.integers(-128, 128, (50, 8), dtype=np.int8)
            e = rng.integers(-128, 128, (50, 50, 4), dtype=np.int8)
            edge = rng.random((50, 50)) < 0.3
            edge[k:], edge[:, k:] = False, False
            o, ticks = c.core(x, e, host.edge_bits(edge), k)
            np.testing.assert_array_equal(o[:k], m.core(x, e, edge, k)[:k])
            assert ticks > 0


def test_board_port_runs_on_qemus_netduinoplus2(tmp_path):
    """The stm32f405 port (the ELF `make flash` programs) under QEMU's netduinoplus2: its own
    USART driver and startup, bit-exact vectors, and CORE/INFER frames of 10 and 40 KB."""
    from tinyrrm.hil.qemu import Qemu

    m = host.HostModel(GEN)
    elf = build_firmware("cortex-m4", GEN, tmp_path / "fw", port="stm32f405")
    rng = np.random.default_rng(5)
    with Qemu(elf, "netduinoplus2", 120) as c:
        info = c.hello()
        assert info["core"] == "stm32f405" and info["hz"] == "16000000" and info.k_max == 50
        n, n_exact, mism = c.vectors()
        assert n == 8 and n_exact == n, mism
        x = rng.integers(-128, 128, (50, 8), dtype=np.int8)
        e = rng.integers(-128, 128, (50, 50, 4), dtype=np.int8)
        edge = rng.random((50, 50)) < 0.3
        o, _ = c.core(x, e, host.edge_bits(edge), 50)
        np.testing.assert_array_equal(o, m.core(x, e, edge, 50))
        H = (rng.standard_normal((50, 50, 2)) + 1j * rng.standard_normal((50, 50, 2))).astype(np.complex64)
        body, _ = c.infer(host.input_bytes(H, edge, 50))
        np.testing.assert_allclose(host.output_array(body, 50, 50, 2), m.infer(H, edge), atol=1e-6)


def test_infer_of_a_non_finite_channel_is_one_error_frame(tiny_ckpts, tiny_data, tmp_path):
    """A model generated with its own prefix (the Makefile reads it from GEN/model.mk): INFER
    with a NaN or Inf channel, or k out of range, gets an ERROR frame the host raises as one
    error, and the target keeps serving; a PREFIX that is not GEN's is refused at build time."""
    from tinyrrm.codegen import generate as codegen
    from tinyrrm.export import stage

    exp = stage.export_model(tiny_ckpts["lr"], tmp_path / "exp", tiny_data["train"], n_calib=8, progress=False)
    gen = codegen.generate(exp, "cortex-m4", tmp_path / "gen", prefix="tiny_lr")
    with pytest.raises(P.HILError, match=r"PREFIX=lrmpgnn but GEN .* holds the model tiny_lr"):
        build_firmware("cortex-m4", gen, tmp_path / "bad", prefix="lrmpgnn")
    elf = build_firmware("cortex-m4", gen, tmp_path / "fw", prefix="tiny_lr")
    m = host.HostModel(gen)
    rng = np.random.default_rng(3)
    H = (rng.standard_normal((m.K, m.K, m.nt)) + 1j * rng.standard_normal((m.K, m.K, m.nt))).astype(np.complex64)
    edge = ~np.eye(m.K, dtype=bool)
    with open_target("cortex-m4", elf, timeout=60) as c:
        assert c.hello()["prefix"] == "tiny_lr"
        for bad in (np.nan, np.inf, 1e30):
            Hb = H.copy()
            Hb[1, 2, 0] = bad
            with pytest.raises(P.TargetError, match=r"^target answered ERROR to INFER: non-finite channel") as err:
                c.infer(host.input_bytes(Hb, edge, m.K))
            assert "\n" not in str(err.value)
        zero_k = bytearray(host.input_bytes(H, edge, m.K))
        zero_k[:4] = bytes(4)
        with pytest.raises(P.TargetError, match="ERROR to INFER: k out of range"):
            c.infer(bytes(zero_k))
        body, _ = c.infer(host.input_bytes(H, edge, m.K))  # and it keeps serving
        np.testing.assert_allclose(host.output_array(body, m.K, m.K, m.nt), m.infer(H, edge), atol=1e-6)


def test_cortex_m0_fails_at_build_time_with_needs_and_has(tmp_path):
    with pytest.raises(P.HILError, match=r"firmware for cortex-m0 needs RAM [\d,]+ B, has 16,384 B"):
        build_firmware("cortex-m0", GEN, tmp_path / "fw")


def test_crashed_or_missing_firmware_is_a_clear_error(tmp_path):
    with pytest.raises(P.HILError, match="no firmware"):
        with open_target("cortex-m4", tmp_path / "none.elf"):
            pass
    junk = tmp_path / "junk.elf"
    junk.write_bytes(b"\x7fELF junk")  # loads nothing: the core locks up at once
    with pytest.raises(P.HILError, match=r"QEMU exited with code -?\d+; QEMU said: qemu: fatal") as err:
        with open_target("cortex-m4", junk, timeout=5) as c:
            c.hello()
    assert "\n" not in str(err.value)


def test_flash_dry_run_prints_the_pyocd_command(capsys):
    assert flash.main(["--target", "cortex-m4", "--board", "stm32f4disco", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("pyocd flash --target stm32f407vg --format elf ") and "stm32f405" in out
    assert flash.main(["--target", "cortex-m7", "--board", "stm32f4disco", "--dry-run"]) == 2
    assert flash.main(["--board", "no-such-board", "--dry-run"]) == 2


def test_evaluate_backend_qemu(tiny_ckpts, tiny_data, tmp_path, monkeypatch):
    """`tinyrrm evaluate --backend qemu`: both models' firmware under QEMU, same keys and metric."""
    from tinyrrm import evaluate as ev
    from tinyrrm.export import stage

    monkeypatch.setattr(stage, "BUILD", tmp_path / "export")

    rep = ev.evaluate(
        tiny_data["test"],
        tiny_ckpts["full"],
        tiny_ckpts["lr"],
        backend="qemu",
        out_path=tmp_path / "W.npz",
        progress=False,
        backend_options={"target": "cortex-m4", "port": None},
        calib=tiny_data["train"],
    )
    W = np.load(tmp_path / "W.npz")
    assert W["W_lrmpgnn_qemu"].shape == (16, 6, 2) and np.isfinite(W["W_mpgnn_qemu"]).all()
    c = ev.evaluate(tiny_data["test"], tiny_ckpts["full"], tiny_ckpts["lr"], backend="c", progress=False)
    # the same C on the target: only libm's float differences between newlib and glibc remain
    assert rep["sum_rate"]["lrmpgnn_qemu"] == pytest.approx(c["sum_rate"]["lrmpgnn_c"], rel=1e-4)
    assert rep["sum_rate"]["mpgnn_qemu"] == pytest.approx(c["sum_rate"]["mpgnn_c"], rel=1e-4)
