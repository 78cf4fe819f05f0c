"""The WMMSE policy as generated C (``tinyrrm export wmmse``): the learned model's ABI, the
folder's bytes, and the host build against training/wmmse.py on held-out scenes."""

import ctypes
import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from tinyrrm import paths
from tinyrrm.cli import app
from tinyrrm.codegen import wmmse as W
from tinyrrm.training import scenes as sc
from tinyrrm.training.metrics import sum_rate
from tinyrrm.training.wmmse import wmmse

K_MAX, NT = 50, 2  # the test scenes' K


@pytest.fixture(scope="module")
def gen(tmp_path_factory):
    return W.generate("cortex-m4", tmp_path_factory.mktemp("wm") / "wmmse", K_MAX, NT)


@pytest.fixture(scope="module")
def policy(gen):
    return W.HostPolicy(gen)


@pytest.fixture(autouse=True)
def defaults(policy):
    assert (
        policy.set_params(iters=W.DEFAULT_ITERS, alpha=np.ones(K_MAX), p_max=np.ones(K_MAX), noise_var=np.ones(K_MAX))
        == W.ERR["ok"]
    )


def _unit(s: sc.Scenes, i: int) -> np.ndarray:
    return s.H[i] * math.sqrt(s.p_max / s.noise_var)


def test_folder_is_deterministic_and_says_where_it_came_from(gen, tmp_path):
    again = W.generate("cortex-m4", tmp_path / "again", K_MAX, NT)
    names = sorted(p.relative_to(gen).as_posix() for p in gen.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(again).as_posix() for p in again.rglob("*") if p.is_file())
    for n in names:
        assert (gen / n).read_bytes() == (again / n).read_bytes(), n
    for n in ("model.h", "model.c", "kernels/wmmse_config.h", "model.mk", "README.md"):
        head = (gen / n).read_text().splitlines()[:4]
        assert any("do not edit" in ln for ln in head) and any(W.sources_sha256() in ln for ln in head), n
    for n in W.KERNEL_FILES:  # copied verbatim
        assert (gen / "kernels" / n).read_bytes() == (W.SOURCE / n).read_bytes()


def test_same_abi_as_the_learned_model(policy):
    """<prefix>_input and <prefix>_output have the learned model's layout (host.input_bytes)."""
    K = K_MAX
    assert ctypes.sizeof(policy.Input) == -(-(4 + K * K * NT * 8 + -(-K * K // 8)) // 4) * 4
    assert ctypes.sizeof(policy.Output) == K * NT * 8
    assert W.Sizes(K, NT).input_bytes == ctypes.sizeof(policy.Input)


def test_defaults(policy):
    p = policy.params()
    assert p["iters"] == W.DEFAULT_ITERS
    for n in ("alpha", "p_max", "noise_var"):
        assert np.all(p[n] == 1.0)


@pytest.mark.parametrize("iters", [0, 1, 2, 5, 10])
def test_sum_rate_matches_python_on_test_scenes(policy, iters):
    """Held-out scenes (geometric as the test file's, drawn here so that a fresh checkout has
    them, K = K_MAX, and iid scenes below K_MAX): the C's sum rate within 1e-4 relative of
    training/wmmse.py's."""
    for s in (sc.generate(4, K_MAX, NT, 1002), sc.generate(3, 7, NT, 941, "iid")):
        assert policy.set_params(iters=iters) == W.ERR["ok"]
        V = np.stack([policy.infer(_unit(s, i)) for i in range(s.N)]) * math.sqrt(s.p_max)
        Vp = wmmse(s.H, s.p_max, s.noise_var, max_iter=iters, tol=0.0, progress=False)
        r, rp = sum_rate(s.H, V, s.noise_var), sum_rate(s.H, Vp, s.noise_var)
        assert np.all(np.abs(r - rp) <= 1e-4 * rp), (iters, r, rp)
        assert np.all((np.abs(V) ** 2).sum(-1) <= s.p_max * (1 + 1e-5))


def test_per_link_power_noise_and_weights(policy):
    """Per-transmitter p_max, per-receiver noise_var and rate weights: the same as WMMSE on the
    channels scaled by sqrt(p_t / n_r) at unit power and noise (the problem is the same), and
    every beam within its own limit."""
    K = 9
    s = sc.generate(3, K, NT, 951, "iid")
    rng = np.random.default_rng(3)
    p = rng.uniform(0.1, 3.0, K)
    p[4] = 0.0  # a transmitter switched off
    n = rng.uniform(0.5, 2.0, K)
    alpha = rng.uniform(0.2, 2.0, K)
    assert policy.set_params(iters=5, alpha=alpha, p_max=p, noise_var=n) == W.ERR["ok"]
    for i in range(s.N):
        H = _unit(s, i)
        V = policy.infer(H).astype(np.complex128)
        pw = (np.abs(V) ** 2).sum(-1)
        assert np.all(pw <= p * (1 + 1e-5)) and pw[4] == 0.0
        Hs = H * np.sqrt(p)[:, None, None] / np.sqrt(n)[None, :, None]  # h[t][r] sqrt(p_t / n_r)
        Vp = wmmse(Hs[None], 1.0, 1.0, alpha[None], max_iter=5, tol=0.0, progress=False)[0] * np.sqrt(p)[:, None]
        r = sum_rate(H[None] / np.sqrt(n)[None, None, :, None], V[None], 1.0, alpha[None])[0]
        rp = sum_rate(H[None] / np.sqrt(n)[None, None, :, None], Vp[None], 1.0, alpha[None])[0]
        assert abs(r - rp) <= 1e-4 * rp, (r, rp)


def test_bad_input_is_one_code_and_nothing_written(policy):
    s = sc.generate(1, 6, NT, 961, "iid")
    H = _unit(s, 0)
    out = policy.Output()
    ctypes.memset(ctypes.byref(out), 0x7F, ctypes.sizeof(out))
    before = bytes(out)
    for k, h, code in (
        (0, H, "k"),
        (K_MAX + 1, H, "k"),
        (6, np.where(np.arange(6)[:, None, None] == 2, np.nan, H), "nonfinite"),
    ):
        inp = policy.Input.from_buffer_copy(W.host.input_bytes(h, np.zeros((6, 6), bool), K_MAX))
        inp.k = k
        assert policy._fn["infer"](ctypes.byref(inp), ctypes.byref(out)) == W.ERR[code]
        assert bytes(out) == before


@pytest.mark.parametrize(
    "field,value", [("iters", -1), ("alpha", [-1.0]), ("p_max", [np.inf]), ("noise_var", [0.0]), ("alpha", [np.nan])]
)
def test_bad_params_are_refused_and_keep_the_old(policy, field, value):
    assert policy.set_params(iters=7) == W.ERR["ok"]
    assert policy.set_params(**{field: value}) == W.ERR["param"]
    assert policy.params()["iters"] == 7 and np.all(policy.params()["alpha"] == 1.0)


def test_cli_refusals_are_one_line_and_write_nothing(tmp_path):
    r = CliRunner()
    for args, why in (
        (["--target", "cortex-m0", "--k-max", "50"], "does not fit cortex-m0: needs RAM"),
        (["--iters", "-1"], "--iters must be >= 0"),
        (["--nt", "0"], "--nt must be in [1, 16]"),
        (["--prefix", "wmmse_f32"], "not a valid C prefix"),
        (["--like", str(tmp_path / "nothing")], "not a checkpoint"),
    ):
        out = tmp_path / "out"
        res = r.invoke(app, ["export", "wmmse", *args, "--out", str(out)])
        assert res.exit_code == 2, res.output
        lines = res.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("tinyrrm: error:") and why in lines[0], res.output
        assert not out.exists()


def test_cli_takes_the_learned_models_shape(tmp_path):
    res = CliRunner().invoke(app, ["export", "wmmse", "--out", str(tmp_path / "w"), "--prefix", "classic"])
    assert res.exit_code == 0, res.output
    rep = W.host.read_report(tmp_path / "w")
    assert (rep["model"]["K_MAX"], rep["model"]["Nt"]) == W.shape_like(paths.LRMPGNN)
    assert "classic_infer" in (tmp_path / "w" / "model.h").read_text()


def test_evaluate_c_writes_the_policys_beamformers(tmp_path):
    s = sc.generate(3, 6, NT, 971, "iid")
    sc.save(s, tmp_path / "s.npz")
    out = tmp_path / "w.npz"
    args = ["evaluate", "--scenes", str(tmp_path / "s.npz"), "--backend", "c", "--policy", "wmmse"]
    res = CliRunner().invoke(app, [*args, "--iters", "3", "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    with np.load(out) as z:
        V = z["W_wmmse3_c"]
    assert V.shape == (3, 6, NT) and V.dtype == np.complex64
    Vp = wmmse(s.H, s.p_max, s.noise_var, max_iter=3, tol=0.0, progress=False)
    rp = float(sum_rate(s.H, Vp, s.noise_var).mean())
    assert abs(rep["sum_rate"]["wmmse3_c"] - rp) <= 1e-4 * rp
    assert "instructions_per_decision" not in rep  # measured on a target only


@pytest.mark.parametrize(
    "args,why",
    [
        (["--policy", "wmmse", "--backend", "onnx"], "--policy wmmse runs on --backend c or qemu"),
        (["--iters", "3"], "--iters is the WMMSE policy's"),
        (["--policy", "wmmse", "--backend", "c", "--iters", "-2"], "--iters must be >= 0"),
    ],
)
def test_evaluate_policy_refusals(tmp_path, args, why):
    sc.save(sc.generate(1, 4, NT, 972, "iid"), tmp_path / "s.npz")
    out = tmp_path / "w.npz"
    res = CliRunner().invoke(app, ["evaluate", "--scenes", str(tmp_path / "s.npz"), *args, "--out", str(out)])
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and why in lines[0], res.output
    assert not out.exists()


def test_links_beside_the_learned_model_behind_one_caller(gen, tmp_path):
    """The committed learned model and the WMMSE policy (default prefixes) in one program: the
    same input bytes through both <prefix>_infer, each beam within its limit, the same refusal
    code for k = 0. No -I: every generated file includes its own folder's headers."""
    import subprocess

    from tinyrrm.codegen.host import CFLAGS

    lr = paths.SHIPPED / "generated" / "cortex-m4"
    srcs = [lr / "model.c", lr / "weights.c", *sorted((lr / "kernels").glob("*.c")), gen / "model.c"]
    srcs += [gen / "kernels" / "wmmse_f32.c", paths.SHIPPED / "tests" / "c" / "policy_swap_main.c"]
    flags = [f for f in CFLAGS if f not in ("-fPIC", "-shared")]
    defs = ["-DLR=lrmpgnn", "-DWM=wmmse", f'-DLR_MODEL_H="{lr}/model.h"', f'-DWM_MODEL_H="{gen}/model.h"']
    exe = tmp_path / "swap"
    r = subprocess.run(
        ["gcc", *flags, "-DTR_NO_DSP=1", *defs, *map(str, srcs), "-o", str(exe), "-lm"], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    r = subprocess.run([str(exe)], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.rstrip().endswith("ok"), r.stdout
    assert "lrmpgnn rc=0" in r.stdout and "wmmse rc=0" in r.stdout and "wmmse k=0 rc=-1" in r.stdout


# ----------------------------------------------------------------------------
# the top-m policy: each receiver's updates keep its m strongest interferers
# ----------------------------------------------------------------------------
TOP_M = 8


@pytest.fixture(scope="module")
def top_policy(tmp_path_factory):
    return W.HostPolicy(W.generate("cortex-m4", tmp_path_factory.mktemp("wt") / "top", K_MAX, NT, 3, top_m=TOP_M))


@pytest.mark.parametrize("iters", [0, 1, 3])
def test_top_m_sum_rate_matches_python(top_policy, iters):
    """The ranking and the sparse WMMSE on the chip against training/wmmse.py's top_m on the
    same scenes (geometric at K_MAX, and iid with K - 1 < m: every interferer kept), judged on
    the full channels; at K_MAX the top-m policy is not the dense one."""
    for s in (sc.generate(3, K_MAX, NT, 1003), sc.generate(2, 7, NT, 942, "iid")):
        assert top_policy.set_params(iters=iters) == W.ERR["ok"]
        V = np.stack([top_policy.infer(_unit(s, i)) for i in range(s.N)]) * math.sqrt(s.p_max)
        Vp = wmmse(s.H, s.p_max, s.noise_var, max_iter=iters, tol=0.0, top_m=TOP_M, progress=False)
        r, rp = sum_rate(s.H, V, s.noise_var), sum_rate(s.H, Vp, s.noise_var)
        assert np.all(np.abs(r - rp) <= 1e-4 * rp), (iters, r, rp)
        assert np.all((np.abs(V) ** 2).sum(-1) <= s.p_max * (1 + 1e-5))
        if s.K == K_MAX and iters > 0:
            Vd = wmmse(s.H, s.p_max, s.noise_var, max_iter=iters, tol=0.0, progress=False)
            assert np.all(np.abs(sum_rate(s.H, Vd, s.noise_var) - rp) > 1e-3 * rp)


def test_top_m_folder_and_sizes(top_policy):
    rep = W.host.read_report(top_policy.gen_dir)
    assert rep["model"]["top_m"] == TOP_M and rep["command"].endswith(f"--top-m {TOP_M}")
    names = sorted(p.name for p in (top_policy.gen_dir / "kernels").iterdir())
    assert names == sorted([*W.TOP_M_KERNEL_FILES, "wmmse_config.h"])  # no dense kernel
    # the sparse WMMSE's 16 floats a link and the ranking's int16 table
    assert W.Sizes(K_MAX, NT, TOP_M).scratch_bytes == (K_MAX * 16 + K_MAX * TOP_M // 2) * 4
    assert f"#define WMMSE_TOP_M {TOP_M}" in (top_policy.gen_dir / "model.h").read_text()


def test_top_m_bad_input_and_one_link(top_policy):
    s = sc.generate(1, 6, NT, 962, "iid")
    H = _unit(s, 0)
    rc, _ = top_policy.infer_raw(np.where(np.arange(6)[:, None, None] == 2, np.nan, H))
    assert rc == W.ERR["nonfinite"]
    rc, _ = top_policy.infer_raw(
        np.where((np.arange(6) == 0)[:, None, None] & (np.arange(6) == 0)[None, :, None], np.inf, H)
    )
    assert rc == W.ERR["nonfinite"]  # a direct link: the sparse gains, not the ranking, see it
    assert top_policy.infer_raw(H, k=0)[0] == W.ERR["k"]
    rc, v = top_policy.infer_raw(H[:1, :1], k=1)  # one link, nothing to rank: MRT at full power
    assert rc == 0 and abs(float((np.abs(v[0]) ** 2).sum()) - 1.0) < 1e-5


def test_top_m_cli(tmp_path):
    r = CliRunner()
    res = r.invoke(app, ["export", "wmmse", "--out", str(tmp_path / "t"), "--top-m", "4", "--iters", "3"])
    assert res.exit_code == 0, res.output
    assert "top-4 interferers" in res.output
    for args, why in (
        (["--top-m", "0"], "--top-m must be in [1, K_MAX - 1]"),
        (["--top-m", "50"], "--top-m must be in [1, K_MAX - 1]"),
        (["--top-m", "4", "--nt", "4"], "Nt = 2"),
    ):
        out = tmp_path / "out"
        res = r.invoke(app, ["export", "wmmse", *args, "--out", str(out)])
        assert res.exit_code == 2, res.output
        lines = res.output.strip().splitlines()
        assert len(lines) == 1 and why in lines[0], res.output
        assert not out.exists()


def test_evaluate_c_top_m(tmp_path):
    s = sc.generate(2, 12, NT, 973, "iid")
    sc.save(s, tmp_path / "s.npz")
    args = ["evaluate", "--scenes", str(tmp_path / "s.npz"), "--backend", "c", "--policy", "wmmse"]
    res = CliRunner().invoke(app, [*args, "--iters", "2", "--top-m", "3", "--json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    Vp = wmmse(s.H, s.p_max, s.noise_var, max_iter=2, tol=0.0, top_m=3, progress=False)
    rp = float(sum_rate(s.H, Vp, s.noise_var).mean())
    assert rep["top_m"] == 3 and abs(rep["sum_rate"]["wmmse2_top3_c"] - rp) <= 1e-4 * rp
    res = CliRunner().invoke(app, ["evaluate", "--scenes", str(tmp_path / "s.npz"), "--top-m", "3"])
    assert res.exit_code == 2 and "--top-m is the WMMSE policy's" in res.output
