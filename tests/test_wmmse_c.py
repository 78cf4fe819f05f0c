"""The C WMMSE (firmware_templates/wmmse/wmmse_f32.c), host-compiled, against training/wmmse.py."""

import numpy as np
import pytest

from tinyrrm.hil.wmmse_bench import ERR, HostWmmse, abi_channels, beams
from tinyrrm.training import scenes as sc
from tinyrrm.training.metrics import sum_rate
from tinyrrm.training.wmmse import wmmse

K_MAX = 8
ITERS = (1, 2, 5, 10, 20)
# (Nt, K, mode, seed): held-out scenes, full and partial K_MAX, both channel models
CASES = [(2, 8, "geometric", 901), (2, 5, "iid", 902), (4, 8, "iid", 903), (4, 5, "geometric", 904), (2, 2, "iid", 905)]
N_SCENES = 3


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    d = tmp_path_factory.mktemp("wmmse_c")
    return {fma: {nt: HostWmmse(K_MAX, nt, d, fma=fma) for nt in (1, 2, 4)} for fma in (0, 1)}


@pytest.fixture
def libs(builds):
    return builds[0]


def _scenes(Nt, K, mode, seed):
    s = sc.generate(N_SCENES, K, Nt, seed, mode)
    w = np.random.default_rng(seed).uniform(0.2, 2.0, (N_SCENES, K)).astype(np.float32)
    return s, w


@pytest.mark.parametrize("fma", [0, 1])
@pytest.mark.parametrize("Nt,K,mode,seed", CASES)
def test_sum_rate_matches_numpy(builds, fma, Nt, K, mode, seed):
    """Same iteration count, no tolerance stop: weighted sum rate within 1e-4 relative, power <= 1;
    both inner-loop forms (fused multiply-add, as on Cortex-M4F, and multiply then add)."""
    s, w = _scenes(Nt, K, mode, seed)
    lib = builds[fma][Nt]
    for iters in ITERS:
        _, hist = wmmse(s.H, s.p_max, s.noise_var, w, max_iter=iters, tol=0.0, progress=False, return_history=True)
        assert hist.shape[1] == iters + 1
        for n in range(N_SCENES):
            rc, v, wsr = lib.run(abi_channels(s.H[n], s.p_max, s.noise_var, K_MAX), K, iters, w[n])
            assert rc == ERR["ok"]
            V = beams(v, K)
            assert np.all((np.abs(V) ** 2).sum(-1) <= 1 + 1e-5)
            assert not v[K:].any()
            ref = hist[n, -1]
            got = sum_rate(s.H[n : n + 1], V[None] * np.sqrt(s.p_max), s.noise_var, w[n : n + 1])[0]
            assert abs(got - ref) <= 1e-4 * ref, (iters, n, got, ref)
            assert abs(wsr - ref) <= 1e-4 * ref, (iters, n, wsr, ref)


def test_no_weights_means_ones(libs):
    s, _ = _scenes(2, 6, "iid", 906)
    h = abi_channels(s.H[0], s.p_max, s.noise_var, K_MAX)
    rc0, v0, r0 = libs[2].run(h, 6, 5)
    rc1, v1, r1 = libs[2].run(h, 6, 5, np.ones(6))
    assert rc0 == rc1 == ERR["ok"] and r0 == r1 and np.array_equal(v0, v1)


def test_single_antenna(libs):
    """Nt = 1 (the general solve with a 1x1 Cholesky) follows numpy too."""
    s, w = _scenes(1, 6, "iid", 907)
    for iters in (1, 5):
        _, hist = wmmse(s.H, s.p_max, s.noise_var, w, max_iter=iters, tol=0.0, progress=False, return_history=True)
        for n in range(N_SCENES):
            rc, v, wsr = libs[1].run(abi_channels(s.H[n], s.p_max, s.noise_var, K_MAX), 6, iters, w[n])
            assert rc == ERR["ok"] and abs(wsr - hist[n, -1]) <= 1e-4 * hist[n, -1]


def test_zero_iterations_is_mrt(libs):
    s, _ = _scenes(4, 5, "iid", 908)
    rc, v, _ = libs[4].run(abi_channels(s.H[0], 1.0, 1.0, K_MAX), 5, 0)
    d = s.H[0][np.arange(5), np.arange(5)]
    assert rc == ERR["ok"]
    np.testing.assert_allclose(beams(v, 5), d / np.linalg.norm(d, axis=-1, keepdims=True), atol=1e-6)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", [(0, 0, 0, 0), (3, 1, 1, 1), (4, 4, 0, 1)])
def test_nonfinite_channel_is_refused(libs, bad, where):
    s, _ = _scenes(2, 5, "iid", 909)
    h = abi_channels(s.H[0], 1.0, 1.0, K_MAX)
    h[where] = bad
    out = np.full((K_MAX, 2, 2), 7.0, np.float32)
    rc, v, _ = libs[2].run(h, 5, 3, v=out)
    assert rc == ERR["nonfinite"]
    assert np.all(v == 7.0)


def test_outside_the_active_block_is_not_read(libs):
    s, _ = _scenes(2, 5, "iid", 910)
    h = abi_channels(s.H[0], 1.0, 1.0, K_MAX)
    rc0, v0, r0 = libs[2].run(h, 5, 3)
    h[5:, :] = np.nan
    h[:, 5:] = np.nan
    rc1, v1, r1 = libs[2].run(h, 5, 3)
    assert rc0 == rc1 == ERR["ok"] and r0 == r1 and np.array_equal(v0, v1)


@pytest.mark.parametrize(
    "k,iters,alpha,code",
    [
        (0, 1, None, "k"),
        (K_MAX + 1, 1, None, "k"),
        (-3, 1, None, "k"),
        (4, -1, None, "iters"),
        (4, 1, [1, np.nan, 1, 1], "nonfinite"),
        (4, 1, [1, 1, -0.5, 1], "param"),
    ],
)
def test_bad_arguments_leave_output_untouched(libs, k, iters, alpha, code):
    s, _ = _scenes(2, 5, "iid", 911)
    out = np.full((K_MAX, 2, 2), 7.0, np.float32)
    rc, v, _ = libs[2].run(abi_channels(s.H[0], 1.0, 1.0, K_MAX), k, iters, alpha, v=out)
    assert rc == ERR[code]
    assert np.all(v == 7.0)


def test_overflowing_gains_are_an_error(libs):
    h = np.zeros((K_MAX, K_MAX, 2, 2), np.float32)
    h[:, :] = 5e18  # finite, but the interference sum overflows float
    out = np.full((K_MAX, 2, 2), 7.0, np.float32)
    rc, v, _ = libs[2].run(h, K_MAX, 2, v=out)
    assert rc == ERR["overflow"] and np.all(v == 7.0)


def test_header_states_the_flop_count_the_bench_uses():
    """wmmse_f32.h's per-pair operation count is the one the bench divides by."""
    from tinyrrm.hil.wmmse_bench import HERE, flops_per_pair_iteration

    doc = (HERE / "wmmse_f32.h").read_text()
    a2, a4 = flops_per_pair_iteration(2), flops_per_pair_iteration(4)
    assert f"NT = 2: 19 + 18 = {a2};  NT = 4: 72 + 34 = {a4}" in doc
    assert (a2, a4) == (19 + 8 * 2 + 2, 6 * 4 + 4 * 4 * 3 + 8 * 4 + 2)


@pytest.mark.parametrize(
    "cpu",
    [
        ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"],
        ["-mcpu=cortex-m3", "-mthumb", "-mfloat-abi=soft"],
    ],
    ids=["m4f", "m3"],
)
@pytest.mark.parametrize("nt", [2, 4])
def test_cross_compiles_strict(tmp_path, cpu, nt):
    """arm-none-eabi-gcc with the cores' flags and the strict warnings (FMA path on the M4F)."""
    import shutil
    import subprocess

    from tinyrrm.hil.wmmse_bench import HERE, STRICT

    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.fail("arm-none-eabi-gcc missing: run docker/provision.sh")
    r = subprocess.run(
        [
            "arm-none-eabi-gcc",
            *cpu,
            *STRICT,
            "-DWMMSE_F32_K_MAX=50",
            f"-DWMMSE_F32_NT={nt}",
            "-c",
            str(HERE / "wmmse_f32.c"),
            "-o",
            str(tmp_path / "w.o"),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    dis = subprocess.run(["arm-none-eabi-objdump", "-d", str(tmp_path / "w.o")], capture_output=True, text=True)
    assert ("vfma.f32" in dis.stdout) == ("-mfpu=fpv4-sp-d16" in cpu)


@pytest.mark.parametrize("fma", [0, 1])
@pytest.mark.parametrize("Nt,K,n", [(4, 5, 47), (4, 5, 54), (4, 5, 58), (4, 8, 26), (2, 8, 52)])
def test_links_switching_off(builds, fma, Nt, K, n):
    """Scenes where WMMSE switches a link off: the direct term, 1e6 times the interference, must
    not wash the interference out of A_k, and Newton on mu must survive a nearly singular R_k."""
    s = sc.generate(60, K, Nt, 555, "geometric").subset([n])
    w = np.random.default_rng(1).uniform(0.2, 2, (60, K))[n : n + 1]
    _, hist = wmmse(s.H, 1.0, 1.0, w, max_iter=20, tol=0.0, progress=False, return_history=True)
    rc, _, wsr = builds[fma][Nt].run(abi_channels(s.H[0], 1.0, 1.0, K_MAX), K, 20, w[0])
    assert rc == ERR["ok"] and abs(wsr - hist[0, -1]) <= 1e-4 * hist[0, -1]
