"""Tests for tinyrrm.training.scenes (generation, file format, validation)."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from tinyrrm.training import scenes as S
from tinyrrm.training.scenes import SceneError, Scenes, generate, load, save, validate

N, K, NT = 6, 4, 3


@pytest.fixture(scope="module")
def geo() -> Scenes:
    return generate(N, K, NT, seed=7)


# --------------------------------------------------------------------------
# generation
# --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["geometric", "iid"])
def test_shapes_and_dtypes(mode):
    s = generate(N, K, NT, seed=0, mode=mode)
    assert (s.N, s.K, s.Nt) == (N, K, NT)
    assert s.H.dtype == np.complex64 and s.H.shape == (N, K, K, NT)
    assert s.weights.dtype == np.float32 and s.weights.shape == (N, K)
    assert np.all(s.weights == 1)
    assert s.noise_var == 1.0 and s.p_max == 1.0
    if mode == "geometric":
        assert s.dist.dtype == np.float32 and s.dist.shape == (N, K, K)
    else:
        assert s.dist is None
    validate(s)


@pytest.mark.parametrize("mode", ["geometric", "iid"])
def test_determinism(mode):
    a = generate(N, K, NT, seed=3, mode=mode)
    b = generate(N, K, NT, seed=3, mode=mode)
    c = generate(N, K, NT, seed=4, mode=mode)
    assert a.H.tobytes() == b.H.tobytes()
    assert a == b
    assert not np.array_equal(a.H, c.H)
    if mode == "geometric":
        assert a.dist.tobytes() == b.dist.tobytes()
        assert not np.array_equal(a.dist, c.dist)


def test_geometry_distances():
    d_min, d_max, field = 5.0, 20.0, 300.0
    s = generate(50, 8, 1, seed=1, field_m=field, d_min=d_min, d_max=d_max)
    kk = np.arange(8)
    direct = s.dist[:, kk, kk]  # [N, K]
    assert direct.min() >= d_min and direct.max() <= d_max
    assert np.all(s.dist > 0)
    # receivers lie within d_max of the square: no link longer than the diagonal + d_max
    assert s.dist.max() <= field * math.sqrt(2) + d_max
    # direct links are much stronger than typical cross links on average
    p = (np.abs(s.H) ** 2).sum(-1)  # [N, K, K]
    off = ~np.eye(8, dtype=bool)
    assert np.median(p[:, kk, kk]) > 10 * np.median(p[:, off])


def test_power_gain_convention_replayed():
    """|H|^2 / g has mean 1, with g the large-scale POWER gain used by generate()."""
    n, k, nt, seed = 300, 8, 4, 11
    H, dist, gain = S._geometric(np.random.default_rng(seed), n, k, nt, 1000.0, 2.0, 65.0)
    s = generate(n, k, nt, seed=seed)
    assert np.array_equal(H, s.H) and np.array_equal(dist, s.dist)
    ratio = np.abs(s.H) ** 2 / gain[..., None]  # [n, k, k, nt], Exp(1) entries
    assert abs(ratio.mean() - 1.0) < 0.03
    # g itself follows the documented formula up to the N(0,1) shadowing term
    shadow_db = -20.0 / 6.3 * np.log10(gain * dist.astype(np.float64) ** 1.88 / 4.4e5)  # = s
    assert abs(shadow_db.mean()) < 0.05 and abs(shadow_db.std() - 1.0) < 0.05


def test_power_gain_convention_statistics():
    """Without internals: log(|H|^2 d^1.88 / 4.4e5) = log Exp(1) - s * 6.3/20 * ln 10."""
    s = generate(300, 8, 4, seed=5)
    x = np.log((np.abs(s.H) ** 2).astype(np.float64) * s.dist[..., None].astype(np.float64) ** 1.88 / 4.4e5)
    sigma = 6.3 / 20 * math.log(10)
    assert abs(x.mean() - (-np.euler_gamma)) < 0.05  # E ln Exp(1) = -gamma, E s = 0
    assert abs(x.var() - (math.pi**2 / 6 + sigma**2)) < 0.1


def test_iid_unit_power():
    s = generate(200, 6, 4, seed=2, mode="iid")
    p = np.abs(s.H) ** 2
    assert abs(p.mean() - 1.0) < 0.03
    assert abs(s.H.real.var() - 0.5) < 0.02 and abs(s.H.imag.var() - 0.5) < 0.02


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(n=0),
        dict(K=1),
        dict(Nt=0),
        dict(n=2.5),
        dict(n=True),
        dict(seed=-1),
        dict(seed=None),
        dict(mode="rician"),
        dict(d_min=10.0, d_max=5.0),
        dict(d_min=0.0),
        dict(field_m=0.0),
        dict(field_m=float("nan")),
    ],
    ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()),
)
def test_generate_bad_arguments(kwargs):
    args = dict(n=2, K=3, Nt=2, seed=0) | kwargs
    with pytest.raises(SceneError) as e:
        generate(**args)
    assert isinstance(e.value, ValueError)
    name = next(iter(kwargs))
    assert name in str(e.value)


# --------------------------------------------------------------------------
# subset
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "idx, expect",
    [
        (slice(1, 4), [1, 2, 3]),
        (np.array([5, 0]), [5, 0]),
        ([2], [2]),
        (3, [3]),
        (np.arange(N) % 2 == 0, [0, 2, 4]),
    ],
)
def test_subset(geo, idx, expect):
    sub = geo.subset(idx)
    assert sub.N == len(expect) and (sub.K, sub.Nt) == (K, NT)
    assert np.array_equal(sub.H, geo.H[expect])
    assert np.array_equal(sub.weights, geo.weights[expect])
    assert np.array_equal(sub.dist, geo.dist[expect])
    validate(sub)


def test_subset_iid_and_empty():
    s = generate(3, 2, 1, seed=0, mode="iid")
    assert s.subset([0, 2]).dist is None
    with pytest.raises(SceneError):
        s.subset(slice(5, 9))


# --------------------------------------------------------------------------
# save / load
# --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["geometric", "iid"])
def test_roundtrip_byte_identical(tmp_path, monkeypatch, mode):
    s = generate(N, K, NT, seed=9, mode=mode)
    a = save(s, tmp_path / "deep" / "er" / "a.npz")
    assert a == tmp_path / "deep" / "er" / "a.npz" and a.is_file()
    back = load(a)
    assert back == s
    assert back.H.dtype == np.complex64 and back.weights.dtype == np.float32
    # a later save (clock moved on a day) of freshly regenerated scenes: same bytes
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 86400.0)
    b = save(generate(N, K, NT, seed=9, mode=mode), tmp_path / "b.npz")
    assert a.read_bytes() == b.read_bytes()
    c = save(back, tmp_path / "c.npz")
    assert a.read_bytes() == c.read_bytes()
    # plain numpy can read it, keys in fixed order, no pickles needed
    with np.load(a, allow_pickle=False) as z:
        keys = ["H", "weights"] + (["dist"] if mode == "geometric" else []) + ["noise_var", "p_max"]
        assert z.files == keys


def test_roundtrip_scalars(tmp_path):
    s = generate(2, 3, 2, seed=0)
    s = Scenes(H=s.H, weights=np.full((2, 3), 0.5, np.float32), dist=s.dist, noise_var=0.25, p_max=4.0)
    back = load(save(s, tmp_path / "s.npz"))
    assert back.noise_var == 0.25 and back.p_max == 4.0 and np.all(back.weights == 0.5)


def test_save_invalid_leaves_no_file(tmp_path, geo):
    bad = Scenes(H=geo.H, weights=-geo.weights, dist=geo.dist)
    target = tmp_path / "out" / "bad.npz"
    with pytest.raises(SceneError, match="weights"):
        save(bad, target)
    assert not target.exists()
    assert not target.parent.exists() or list(target.parent.iterdir()) == []


def test_save_failure_midway_is_atomic(tmp_path, monkeypatch, geo):
    target = tmp_path / "scenes.npz"
    save(geo, target)
    before = target.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np.lib.format, "write_array", boom)
    with pytest.raises(OSError, match="disk full"):
        save(generate(N, K, NT, seed=99), target)
    assert target.read_bytes() == before  # old file untouched
    assert [p.name for p in tmp_path.iterdir()] == ["scenes.npz"]  # no temp file left


def _arrays(n=5, k=4, nt=2):
    """Valid raw arrays in the public file format."""
    s = generate(n, k, nt, seed=1)
    return dict(H=s.H, dist=s.dist, weights=s.weights, noise_var=np.float64(1.0), p_max=np.float64(1.0))


def _with_nan(key, idx, value=np.nan):
    def edit(d):
        a = d[key].copy()
        for i in idx:
            a[i].flat[0] = value
        d[key] = a

    return edit


def _set(key, value):
    def edit(d):
        d[key] = value(d) if callable(value) else value

    return edit


def _drop(key):
    def edit(d):
        del d[key]

    return edit


# (id, edit of the raw arrays, field named in the message, extra substrings)
BAD_FILES = [
    ("missing-H", _drop("H"), "H", []),
    ("H-real", _set("H", lambda d: d["H"].real.astype(np.float64)), "H", ["complex64", "float64", "(5, 4, 4, 2)"]),
    ("H-int", _set("H", lambda d: np.zeros((5, 4, 4, 2), np.int32)), "H", ["int32"]),
    ("H-ndim3", _set("H", lambda d: d["H"][..., 0]), "H", ["(5, 4, 4)"]),
    ("H-ndim5", _set("H", lambda d: d["H"][..., None]), "H", []),
    ("H-not-square", _set("H", lambda d: d["H"][:, :, :3]), "H", ["(5, 4, 3, 2)"]),
    ("H-K1", _set("H", lambda d: d["H"][:, :1, :1]), "H", ["K >= 2"]),
    ("H-Nt0", _set("H", lambda d: d["H"][..., :0]), "H", []),
    ("H-N0", _set("H", lambda d: d["H"][:0]), "H", ["no scenes"]),
    ("H-nan", _with_nan("H", [3, 1]), "H", ["NaN", "2 of 5 scenes", "first: scene 1"]),
    ("H-inf", _with_nan("H", [4], np.inf), "H", ["1 of 5 scenes", "scene 4"]),
    ("H-object", _set("H", lambda d: np.array([None, 1], dtype=object)), "H", []),
    ("weights-shape", _set("weights", lambda d: d["weights"][:, :3]), "weights", ["[5, 4]", "(5, 3)"]),
    ("weights-N", _set("weights", lambda d: d["weights"][:4]), "weights", ["(4, 4)"]),
    ("weights-complex", _set("weights", lambda d: d["weights"].astype(np.complex64)), "weights", ["complex64"]),
    ("weights-bool", _set("weights", lambda d: d["weights"] > 0), "weights", ["bool"]),
    ("weights-nan", _with_nan("weights", [2]), "weights", ["1 of 5 scenes", "scene 2"]),
    ("weights-negative", _with_nan("weights", [0, 4], -1.0), "weights", [">= 0", "2 of 5", "scene 0"]),
    ("dist-shape", _set("dist", lambda d: d["dist"][:, :, :2]), "dist", ["[5, 4, 4]"]),
    ("dist-inf", _with_nan("dist", [1], np.inf), "dist", ["scene 1"]),
    ("dist-negative", _with_nan("dist", [3], -2.0), "dist", [">= 0", "scene 3"]),
    ("dist-overflow-float32", _set("dist", lambda d: d["dist"].astype(np.float64) * 1e300), "dist", []),
    ("noise_var-zero", _set("noise_var", 0.0), "noise_var", ["positive"]),
    ("noise_var-negative", _set("noise_var", -1.0), "noise_var", []),
    ("noise_var-nan", _set("noise_var", np.nan), "noise_var", []),
    ("noise_var-vector", _set("noise_var", np.ones(3)), "noise_var", ["(3,)"]),
    ("noise_var-string", _set("noise_var", "loud"), "noise_var", []),
    ("noise_var-complex", _set("noise_var", 1 + 1j), "noise_var", []),
    ("p_max-inf", _set("p_max", np.inf), "p_max", []),
    ("p_max-zero", _set("p_max", 0), "p_max", []),
]


@pytest.mark.parametrize("edit, field, extra", [c[1:] for c in BAD_FILES], ids=[c[0] for c in BAD_FILES])
def test_load_rejects(tmp_path, edit, field, extra):
    d = _arrays()
    edit(d)
    path = tmp_path / "scenes.npz"
    np.savez(path, **d)  # what a user would write
    with pytest.raises(SceneError) as e:
        load(path)
    msg = str(e.value)
    assert "\n" not in msg
    assert str(path) in msg
    assert f"'{field}'" in msg
    for sub in extra:
        assert sub in msg, msg


def test_load_not_found(tmp_path):
    path = tmp_path / "nope.npz"
    with pytest.raises(SceneError, match="not found") as e:
        load(path)
    assert str(path) in str(e.value)


@pytest.mark.parametrize(
    "content",
    [b"", b"definitely not a zip archive", b"PK\x03\x04truncated"],
    ids=["empty", "garbage", "truncated-zip"],
)
def test_load_not_npz(tmp_path, content):
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    with pytest.raises(SceneError, match="npz") as e:
        load(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_load_npy_is_not_npz(tmp_path):
    path = tmp_path / "H.npy"
    np.save(path, _arrays()["H"])
    with pytest.raises(SceneError, match="npz"):
        load(path)


def test_load_directory(tmp_path):
    with pytest.raises(SceneError):
        load(tmp_path)


def test_load_accepts_user_variants(tmp_path):
    """complex128 H, float64/int extras, missing optionals, unknown keys."""
    d = _arrays()
    path = tmp_path / "user.npz"
    np.savez(
        path,
        H=d["H"].astype(np.complex128),
        dist=d["dist"].astype(np.float64),
        noise_var=2,
        comment=np.array("measured on the roof"),
        positions=np.zeros((5, 4, 2)),
    )
    s = load(path)
    assert s.H.dtype == np.complex64 and np.array_equal(s.H, d["H"])
    assert s.dist.dtype == np.float32 and np.array_equal(s.dist, d["dist"])
    assert s.weights.dtype == np.float32 and s.weights.shape == (5, 4) and np.all(s.weights == 1)
    assert s.noise_var == 2.0 and s.p_max == 1.0
    np.savez(path, H=d["H"], weights=np.arange(20).reshape(5, 4))
    s = load(path)
    assert s.dist is None and s.weights.dtype == np.float32 and s.weights[4, 3] == 19


# --------------------------------------------------------------------------
# in-memory validation
# --------------------------------------------------------------------------


def _scenes_edit(geo, **changes):
    base = dict(H=geo.H, weights=geo.weights, dist=geo.dist, noise_var=1.0, p_max=1.0)
    return Scenes(**(base | changes))


BAD_SCENES = [
    ("H-complex128", dict(H=lambda g: g.H.astype(np.complex128)), "H"),  # strict in memory
    ("H-list", dict(H=lambda g: g.H.tolist()), "H"),
    (
        "H-nan",
        dict(H=lambda g: np.where(np.arange(N)[:, None, None, None] == 2, np.nan, g.H).astype(np.complex64)),
        "H",
    ),
    ("weights-float64", dict(weights=lambda g: g.weights.astype(np.float64)), "weights"),
    ("weights-shape", dict(weights=lambda g: g.weights[:, :2]), "weights"),
    ("dist-negative", dict(dist=lambda g: -g.dist), "dist"),
    ("dist-shape", dict(dist=lambda g: g.dist[:, 0]), "dist"),
    ("noise_var", dict(noise_var=lambda g: -0.1), "noise_var"),
    ("p_max", dict(p_max=lambda g: float("inf")), "p_max"),
    ("p_max-none", dict(p_max=lambda g: None), "p_max"),
]


@pytest.mark.parametrize("changes, field", [c[1:] for c in BAD_SCENES], ids=[c[0] for c in BAD_SCENES])
def test_validate_rejects(geo, changes, field):
    bad = _scenes_edit(geo, **{k: f(geo) for k, f in changes.items()})
    with pytest.raises(SceneError) as e:
        validate(bad, source="mine")
    assert str(e.value).startswith("mine: ") and f"'{field}'" in str(e.value)


def test_validate_not_scenes():
    with pytest.raises(SceneError):
        validate({"H": None})


def test_repr_is_short(geo):
    r = repr(generate(200, 10, 4, seed=0))
    assert len(r) < 200 and "complex64(200, 10, 10, 4)" in r


# --------------------------------------------------------------------------
# a user's own channels: no silent defaults
# --------------------------------------------------------------------------


@pytest.mark.parametrize("drop", [["noise_var"], ["p_max"], ["noise_var", "p_max"]])
def test_physical_units_need_noise_var_and_p_max(tmp_path, drop):
    d = _arrays()
    d["H"] = (d["H"] * np.float32(1e-5)).astype(np.complex64)  # path gains ~1e-7: watts, not SNR
    for k in drop:
        del d[k]
    path = tmp_path / "phys.npz"
    np.savez(path, **d)
    with pytest.raises(SceneError) as e:
        load(path)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg and "not normalised" in msg
    assert all(f"'{k}'" in msg for k in drop), msg
    np.savez(path, **(d | {"noise_var": 1e-13, "p_max": 0.1}))
    s = load(path)
    assert (s.noise_var, s.p_max) == (1e-13, 0.1)


def test_normalised_channels_keep_the_defaults(tmp_path):
    """The band of 'normalised' covers both generator modes (and their files always carry both fields)."""
    for mode in ("geometric", "iid"):
        s = generate(20, 6, 2, seed=3, mode=mode)
        lo, hi = S.NORMALISED
        assert lo <= S.direct_power(s.H) <= hi
        np.savez(tmp_path / "n.npz", H=s.H, dist=s.dist if s.dist is not None else np.zeros((20, 6, 6)))
        assert (load(tmp_path / "n.npz").noise_var, load(tmp_path / "n.npz").p_max) == (1.0, 1.0)
        with np.load(save(s, tmp_path / "saved.npz")) as f:
            assert {"noise_var", "p_max"} <= set(f.files)


def test_a_cut_without_dist_is_an_error():
    s = generate(3, 4, 2, seed=0, mode="iid")
    with pytest.raises(SceneError, match="no field 'dist'.*500 m.*--cut 0"):
        s.edge_mask(500.0)
    with pytest.raises(SceneError, match="mine.npz: no field 'dist'"):
        S.check_cut(s, 500.0, "mine.npz")
    S.check_cut(s, None, "mine.npz")
    assert s.edge_mask(None).sum() == 3 * 4 * 3


def test_top_m_links_by_hand():
    # receiver 0 hears tx 1 at power 4, tx 2 at 9, tx 3 at 1; receiver 2 hears 0, 1, 3 equally
    H = np.zeros((1, 4, 4, 1), np.complex64)
    H[0, :, 0, 0] = [100, 2, 3, 1]
    H[0, :, 1, 0] = [1, 100, 1, 1j * 5]
    H[0, :, 2, 0] = [1, 1, 100, 1]
    H[0, :, 3, 0] = [3, 2, 1, 100]
    L = S.top_m_links(H, 1)[0]  # [tx, rx]
    assert L.sum(axis=0).tolist() == [1, 1, 1, 1] and not L.diagonal().any()
    assert L[2, 0] and L[3, 1] and L[0, 2] and L[0, 3]  # the strongest; rx 2's tie to the lowest tx
    L2 = S.top_m_links(H, 2)[0]
    assert L2[:, 0].tolist() == [False, True, True, False]
    assert S.top_m_links(H, 3).sum() == S.top_m_links(H, 99).sum() == 12
    for bad in (0, -1, 1.5, True):
        with pytest.raises(SceneError, match="top_m"):
            S.top_m_links(H, bad)


def test_top_m_graph_is_the_link_set_in_h_order(geo):
    # the edge j -> k at mask[k, j] carries h_kj = H[k, j]: it is kept with that link
    m = 2
    mask = geo.edge_mask(None, m)
    np.testing.assert_array_equal(mask, S.top_m_links(geo.H, m))
    cut = geo.edge_mask(500.0)
    np.testing.assert_array_equal(geo.edge_mask(500.0, m), cut & mask)
    assert (mask.sum(axis=1) == m).all()  # every receiver keeps m interferers
    with pytest.raises(SceneError, match="needs the channels"):
        S.edge_mask(K, None, None, N, None, 2)


def test_text_file_is_not_an_npz_archive(tmp_path):
    path = tmp_path / "notes.npz"
    path.write_text("H = [[1, 2], [3, 4]]\n")
    with pytest.raises(SceneError) as e:
        load(path)
    assert "not an .npz archive" in str(e.value) and "pickle" not in str(e.value)


def test_complex128_is_converted_and_the_error_says_so(tmp_path):
    d = _arrays()
    np.savez(tmp_path / "c128.npz", **(d | {"H": d["H"].astype(np.complex128)}))
    assert load(tmp_path / "c128.npz").H.dtype == np.complex64
    np.savez(tmp_path / "real.npz", **(d | {"H": d["H"].real}))
    with pytest.raises(SceneError, match="complex64 or complex128"):
        load(tmp_path / "real.npz")
    if hasattr(np, "complex256"):
        np.savez(tmp_path / "c256.npz", **(d | {"H": d["H"].astype(np.complex256)}))
        with pytest.raises(SceneError, match="complex64 or complex128"):
            load(tmp_path / "c256.npz")


def test_readme_states_the_normalised_band():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert S.NORMALISED == (1e-3, 1e6) and "in [1e-3, 1e6]" in readme
