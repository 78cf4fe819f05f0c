"""The top-m ranking and the sparse WMMSE in C (firmware_templates/wmmse/wmmse_{rank,sparse,solve}_f32.c),
host-compiled, against training/scenes.top_m_links and training/wmmse.wmmse(..., top_m=m | links=, init=)."""

import json
import shutil
import subprocess

import numpy as np
import pytest

from tinyrrm import paths
from tinyrrm.hil.wmmse_bench import STRICT, abi_channels, beams
from tinyrrm.hil.wmmse_sparse_bench import ERR, HERE, SOURCES, HostSparseWmmse, idx_links
from tinyrrm.training import scenes as sc
from tinyrrm.training.metrics import sum_rate
from tinyrrm.training.wmmse import mrt, wmmse

K_MAX = 12
# (K, top-m, iterations, channel model, seed): held-out scenes (not the training seeds)
CASES = [
    (12, 3, (1, 2, 5), "geometric", 911),
    (12, 6, (1, 3, 10), "geometric", 912),
    (9, 4, (2, 5), "iid", 913),
    (12, 11, (1, 3), "geometric", 914),  # m = K - 1: every interferer, the dense iteration
    (5, 1, (1, 4), "iid", 915),
]
N_SCENES = 3


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    return HostSparseWmmse(K_MAX, tmp_path_factory.mktemp("wmmse_sparse"))


def _scenes(K, mode, seed):
    s = sc.generate(N_SCENES, K, 2, seed, mode)
    w = np.random.default_rng(seed).uniform(0.2, 2.0, (N_SCENES, K)).astype(np.float32)
    return s, w


def _rate(s, n, v, w=None):
    V = beams(v, s.K)[None] * np.sqrt(s.p_max)
    return sum_rate(s.H[n : n + 1], V, s.noise_var, None if w is None else w[n : n + 1])[0]


@pytest.mark.parametrize("K,m,iters,mode,seed", CASES)
def test_ranking_matches_top_m_links(lib, K, m, iters, mode, seed):
    s, _ = _scenes(K, mode, seed)
    links = sc.top_m_links(s.H, m)
    for n in range(N_SCENES):
        rc, idx = lib.rank(abi_channels(s.H[n], s.p_max, s.noise_var, K_MAX), K, m)
        assert rc == ERR["ok"]
        assert idx.shape == (K, min(m, K - 1))
        assert np.array_equal(idx_links(idx), links[n])
        gain = (np.abs(s.H[n]) ** 2).sum(-1)  # [tx, rx]
        for r in range(K):  # strongest first
            assert np.all(np.diff(gain[idx[r], r]) <= 1e-6 * gain[idx[r], r].max())


def test_ranking_ties_go_to_the_lower_index(lib):
    """Equal gains: the earlier transmitter is kept, as numpy's stable sort keeps it."""
    H = np.ones((1, 6, 6, 2), np.complex64)
    H[0, 4, 0] = 2.0  # receiver 0: transmitter 4 strongest, then 1, 2, 3, 5 tied
    links = sc.top_m_links(H, 3)
    rc, idx = lib.rank(abi_channels(H[0], 1.0, 1.0, K_MAX), 6, 3)
    assert rc == ERR["ok"]
    assert list(idx[0]) == [4, 1, 2]
    assert np.array_equal(idx_links(idx), links[0])


@pytest.mark.parametrize("K,m,iters,mode,seed", CASES)
def test_sum_rate_matches_numpy(lib, K, m, iters, mode, seed):
    """Same iteration count, no tolerance stop: the full-channel weighted sum rate of the C beams
    within 1e-4 relative of wmmse(..., top_m=m)'s, power <= 1, the rest of v zero."""
    s, w = _scenes(K, mode, seed)
    for it in iters:
        _, hist = wmmse(
            s.H, s.p_max, s.noise_var, w, max_iter=it, tol=0.0, progress=False, return_history=True, top_m=m
        )
        for n in range(N_SCENES):
            h = abi_channels(s.H[n], s.p_max, s.noise_var, K_MAX)
            _, idx = lib.rank(h, K, m)
            rc, v, _ = lib.run(h, K, idx, it, w[n])
            assert rc == ERR["ok"]
            assert np.all((v**2).sum((1, 2)) <= 1 + 1e-5)
            assert not v[K:].any()
            ref = hist[n, -1]
            got = _rate(s, n, v, w)
            assert abs(got - ref) <= 1e-4 * ref, (it, n, got, ref)


def test_given_start_matches_numpy_init(lib):
    """From given beams (a learned start): as wmmse(..., init=V0, top_m=m)."""
    s, _ = _scenes(10, "geometric", 916)
    rng = np.random.default_rng(0)
    V0 = rng.normal(size=(N_SCENES, 10, 2)) + 1j * rng.normal(size=(N_SCENES, 10, 2))
    V0 *= 0.9 * np.sqrt(s.p_max) / np.linalg.norm(V0, axis=-1, keepdims=True)
    _, hist = wmmse(
        s.H, s.p_max, s.noise_var, max_iter=3, tol=0.0, progress=False, return_history=True, top_m=4, init=V0
    )
    for n in range(N_SCENES):
        h = abi_channels(s.H[n], s.p_max, s.noise_var, K_MAX)
        v0 = np.zeros((K_MAX, 2, 2), np.float32)
        v0[:10, :, 0], v0[:10, :, 1] = (V0[n] / np.sqrt(s.p_max)).real, (V0[n] / np.sqrt(s.p_max)).imag
        _, idx = lib.rank(h, 10, 4)
        rc, v, _ = lib.run(h, 10, idx, 0, v0=v0)
        assert rc == ERR["ok"] and np.allclose(v, v0)
        rc, v, _ = lib.run(h, 10, idx, 3, v0=v0)
        assert rc == ERR["ok"]
        assert abs(_rate(s, n, v) - hist[n, -1]) <= 1e-4 * hist[n, -1]


def test_zero_iterations_is_mrt_and_wsr_is_the_updates_view(lib):
    s, _ = _scenes(8, "iid", 917)
    h = abi_channels(s.H[0], s.p_max, s.noise_var, K_MAX)
    _, idx = lib.rank(h, 8, 3)
    rc, v, wsr = lib.run(h, 8, idx, 0)
    assert rc == ERR["ok"]
    V = beams(v, 8)
    assert np.allclose(V * np.sqrt(s.p_max), mrt(s.H[:1])[0] * np.sqrt(s.p_max), atol=1e-5)
    keep = sc.top_m_links(s.H[:1], 3)[0] | np.eye(8, dtype=bool)  # the links the updates see
    seen = sum_rate(s.H[:1] * keep[None, :, :, None], V[None] * np.sqrt(s.p_max), s.noise_var)[0]
    assert abs(wsr - seen) <= 1e-4 * seen


@pytest.mark.parametrize(
    "k,m,iters,edit,code",
    [
        (0, 0, 1, None, "k"),
        (8, 8, 1, None, "k"),  # m above k - 1
        (8, 3, -1, None, "iters"),
        (8, 3, 1, "self", "param"),  # a receiver keeping itself
        (8, 3, 1, "range", "param"),  # an index outside the active links
        (8, 3, 1, "nan", "nonfinite"),  # NaN on a kept link
    ],
)
def test_bad_arguments_leave_output_untouched(lib, k, m, iters, edit, code):
    s, _ = _scenes(8, "iid", 918)
    h = abi_channels(s.H[0], s.p_max, s.noise_var, K_MAX)
    _, idx = lib.rank(h, 8, 3)
    if edit == "self":
        idx[2, 1] = 2
    elif edit == "range":
        idx[2, 1] = 9
    elif edit == "nan":
        h[idx[5, 0], 5, 1, 0] = np.nan
    idx = idx if m == 3 else np.zeros((8, m), np.int16)
    rc, v, _ = lib.run(h, k, idx, iters)
    assert rc == ERR[code]
    assert not v.any()


def test_ranking_refuses_bad_input(lib):
    s, _ = _scenes(8, "iid", 919)
    h = abi_channels(s.H[0], s.p_max, s.noise_var, K_MAX)
    assert lib.rank(h, 1, 3)[0] == ERR["k"]
    assert lib.rank(h, 8, 0)[0] == ERR["m"]
    h[3, 6, 0, 1] = np.inf
    assert lib.rank(h, 8, 3)[0] == ERR["nonfinite"]


@pytest.mark.parametrize("cpu", [["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"]])
def test_cross_compiles_strict(tmp_path, cpu):
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.fail("arm-none-eabi-gcc missing: run docker/provision.sh")
    for src in SOURCES:
        cmd = ["arm-none-eabi-gcc", *cpu, *STRICT, "-DWMMSE_F32_K_MAX=50", "-DWMMSE_F32_NT=2", "-c", str(HERE / src)]
        r = subprocess.run([*cmd, "-o", str(tmp_path / "k.o")], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr


def test_committed_bench_agrees_with_numpy():
    """reports/wmmse_sparse_bench.json: every chip run's full-channel rate within 1e-4 of numpy's,
    the ranking timed apart, and every (top-m, iterations) case of the bench present."""
    from tinyrrm.hil.wmmse_sparse_bench import ITERS, TOP_M

    rep = json.loads((paths.REPORTS / "wmmse_sparse_bench.json").read_text())
    assert [c["top_m"] for c in rep["cases"]] == list(TOP_M)
    for case in rep["cases"]:
        assert [r["iters"] for r in case["runs"]] == list(ITERS)
        for r in case["runs"]:
            assert r["rel_diff"] <= 1e-4
            assert r["rank_instructions"] > 0 and r["instructions"] == r["rank_instructions"] + r["wmmse_instructions"]
    assert rep["flash_bytes"] > 0


@pytest.mark.slow
def test_chip_matches_numpy_under_qemu(tmp_path):
    """One top-m case on cortex-m4 under QEMU: the chip's beams give numpy's rate."""
    from tinyrrm.hil.wmmse_sparse_bench import bench

    # a geometric scene drawn here (a fresh checkout has no data/ before make test's pytest)
    scene = sc.save(sc.generate(1, 50, 2, 1002), tmp_path / "scene.npz")
    res = bench(test_path=scene, build_dir=tmp_path, top_m=(8,), iters=(0, 2), progress=False)
    runs = res["cases"][0]["runs"]
    assert all(r["rel_diff"] <= 1e-4 for r in runs)
    assert runs[1]["wmmse_instructions"] > runs[0]["wmmse_instructions"] > 0
