"""Scenes of a multi-user MISO interference network.

A scene holds K transceiver pairs; every transmitter has Nt antennas and every
receiver a single antenna.  A batch of N scenes is stored as

* ``H``         complex64 ``[N, K, K, Nt]`` (a file may hold complex128: it is converted
  to complex64 on load) -- ``H[n, j, k, :]`` is the channel
  from **transmitter j to receiver k** in scene n, so ``H[n, k, k]`` is the
  direct link of pair k and ``H[n, j, k]`` with ``j != k`` is interference;
* ``weights``   float32 ``[N, K]`` -- rate weights (finite, >= 0, some > 0 in every scene; default 1);
* ``dist``      float32 ``[N, K, K]`` metres, ``dist[n, j, k]`` = distance
  tx j -> rx k (optional, ``None`` for synthetic i.i.d. channels);
* ``noise_var`` scalar > 0 and ``p_max`` scalar > 0, the per-transmitter power
  limit ``||v_k||^2 <= p_max``.

The public file format is an ``.npz`` with exactly these keys (unknown keys are
ignored). ``weights`` is optional (default 1). ``dist`` is optional, but a model
with a distance cut needs it (:func:`check_cut`). ``noise_var`` and ``p_max`` may be
left out only when the channels are *normalised*, i.e. already in units of the
noise: the median of ``|H[n, k, k, a]|^2`` over all scenes, pairs and antennas (the
per-antenna SNR of a direct link at unit power) lies in :data:`NORMALISED` (-30 dB
to +60 dB); then both default to 1.0. Channels in physical units (path gains of
1e-6 and below) must give both, in the same units. :func:`save` always writes both.
Files are never loaded with ``allow_pickle=True``.

Channel models (:func:`generate`):

* ``"geometric"`` (geometry of the reference MPGNN beamforming code):
  transmitters uniform in a ``field_m x field_m`` square, receiver k at a
  distance ``U[d_min, d_max]`` from transmitter k at a uniform random angle;
  large-scale POWER gain per link

      g_jk = 4.4e5 / (dist_jk ** 1.88 * 10 ** (s_jk * 6.3 / 20)),  s_jk ~ N(0, 1)

  and Rayleigh small-scale fading per antenna,
  ``H[j, k, :] = sqrt(g_jk) * (randn(Nt) + 1j * randn(Nt)) / sqrt(2)``,
  so ``E|H[j, k, a]|^2 = g_jk``.
* ``"iid"``: i.i.d. CN(0, 1) entries, ``dist = None``.
"""

from __future__ import annotations

import math
import numbers
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyrrm.errors import TinyrrmError

from .fileio import atomic_write, npz_bytes

__all__ = ["SceneError", "Scenes", "edge_mask", "top_m_links", "generate", "save", "load", "validate"]

MODES = ("geometric", "iid")

_H_SPEC = "complex64 [N, K, K, Nt] with K >= 2"
#: what a file's H may be (complex128 is converted)
_H_FILE_SPEC = "complex64 or complex128 [N, K, K, Nt] with K >= 2"
#: the band of median direct-link power per antenna, |H[n, k, k, a]|^2, in which the
#: channels count as normalised to the noise and noise_var = p_max = 1 may be left out
NORMALISED = (1e-3, 1e6)


class SceneError(TinyrrmError, ValueError):
    """Invalid scenes, scene file or generator argument (one-line message)."""


def top_m_links(H: np.ndarray, m: int) -> np.ndarray:
    """The ``m`` strongest interferers of every receiver, ``[n, K, K]`` bool in ``H``'s order:
    ``links[n, j, k]`` is True if ``j != k`` and ``||h_jk||^2`` is among the ``m`` largest of
    receiver ``k``'s ``K - 1`` interfering links (all of them when ``m >= K - 1``). Ties go to
    the lower transmitter index (a stable sort), so the set is deterministic.

    Shapes: H ``[n, K, K, Nt]`` complex -> ``[n, K, K]`` bool.
    """
    if isinstance(m, bool) or not isinstance(m, (numbers.Integral, np.integer)) or m < 1:
        raise SceneError(f"top_m must be a positive integer (interferers kept per receiver), got {m!r}")
    H = np.asarray(H)
    n, K = H.shape[0], H.shape[1]
    off = ~np.eye(K, dtype=bool)
    if m >= K - 1:
        return np.ascontiguousarray(np.broadcast_to(off, (n, K, K)))
    p = (H.real.astype(np.float64) ** 2 + H.imag.astype(np.float64) ** 2).sum(-1)  # [n, K(tx), K(rx)]
    p[:, ~off] = -np.inf  # the direct link is never an interferer
    order = np.argsort(-p, axis=1, kind="stable")[:, :m, :]  # [n, m, K] strongest tx of each rx
    links = np.zeros((n, K, K), dtype=bool)
    np.put_along_axis(links, order, True, axis=1)
    return links


def edge_mask(
    K: int,
    dist: np.ndarray | None,
    cut_m: float | None,
    n: int,
    H: np.ndarray | None = None,
    top_m: int | None = None,
) -> np.ndarray:
    """Edge mask ``[n, K(recv), K(send)]`` bool: j -> k exists if j != k and
    ``dist[k, j] < cut_m`` (the link from k's transmitter to j's receiver, whose
    channel the edge carries); no cut when ``cut_m`` is None. A cut without ``dist``
    is a :class:`SceneError` (the graph would silently lose its cut).
    With ``top_m`` the edge j -> k also needs that link, ``h_kj``, to be among the
    ``top_m`` strongest interferers of j's receiver (:func:`top_m_links` of ``H``): the
    edge carries ``H[k, j]``, so the mask is the link set in ``H``'s own order.
    The one definition of the graph: training (``models.edge_mask``), export and HIL."""
    mask = np.broadcast_to(~np.eye(K, dtype=bool), (n, K, K))
    if cut_m is not None:
        if dist is None:
            raise SceneError(_no_dist(cut_m, "scenes"))
        mask = mask & (np.asarray(dist) < cut_m)
    if top_m is not None:
        if H is None:
            raise SceneError(f"a top-{top_m} interferer graph needs the channels H")
        mask = mask & top_m_links(H, top_m)
    return np.ascontiguousarray(mask)


def _no_dist(cut_m: float, source: str) -> str:
    return (
        f"{source}: no field 'dist' [N, K, K] (metres), but the model drops links longer than {cut_m:g} m; "
        "add dist to the file, or pass --cut 0 to run without the cut"
    )


def check_cut(scenes: Scenes, cut_m: float | None, source: str) -> None:
    """One clear error, naming ``source``, when a distance cut meets scenes without ``dist``."""
    if cut_m is not None and scenes.dist is None:
        raise SceneError(_no_dist(cut_m, source))


@dataclass(frozen=True)
class Scenes:
    """A batch of N scenes (see the module docstring for the conventions)."""

    H: np.ndarray  # complex64 [N, K, K, Nt]; H[n, j, k] = tx j -> rx k
    weights: np.ndarray  # float32 [N, K]
    dist: np.ndarray | None  # float32 [N, K, K] metres, or None
    noise_var: float = 1.0
    p_max: float = 1.0

    @property
    def N(self) -> int:
        return int(self.H.shape[0])

    @property
    def K(self) -> int:
        return int(self.H.shape[1])

    @property
    def Nt(self) -> int:
        return int(self.H.shape[3])

    def edge_mask(self, cut_m: float | None, top_m: int | None = None) -> np.ndarray:
        """The scenes' graphs, ``[N, K, K]`` bool (see :func:`edge_mask`)."""
        return edge_mask(self.K, self.dist, cut_m, self.N, self.H, top_m)

    def subset(self, idx) -> Scenes:
        """Scenes selected by ``idx`` (int, slice, index array or bool mask); copies."""
        if isinstance(idx, (numbers.Integral, np.integer)) and not isinstance(idx, bool):
            idx = [int(idx)]
        H = np.ascontiguousarray(self.H[idx])
        if H.ndim != 4 or H.shape[0] == 0:
            raise SceneError(f"subset: index {idx!r} selects no scenes")
        return Scenes(
            H=H,
            weights=np.ascontiguousarray(self.weights[idx]),
            dist=None if self.dist is None else np.ascontiguousarray(self.dist[idx]),
            noise_var=self.noise_var,
            p_max=self.p_max,
        )

    # Arrays make the generated tuple-comparison ambiguous; compare by value.
    def __eq__(self, other):
        if not isinstance(other, Scenes):
            return NotImplemented
        return (
            _arr_eq(self.H, other.H)
            and _arr_eq(self.weights, other.weights)
            and _arr_eq(self.dist, other.dist)
            and self.noise_var == other.noise_var
            and self.p_max == other.p_max
        )

    def __repr__(self) -> str:
        def d(a):
            return None if a is None else f"{getattr(a, 'dtype', type(a).__name__)}{tuple(np.shape(a))}"

        return (
            f"Scenes(H={d(self.H)}, weights={d(self.weights)}, dist={d(self.dist)}, "
            f"noise_var={self.noise_var!r}, p_max={self.p_max!r})"
        )


def _arr_eq(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and bool(np.array_equal(a, b))


# --------------------------------------------------------------------------
# generation
# --------------------------------------------------------------------------


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        raise SceneError(f"generate: {name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise SceneError(f"generate: {name} must be >= {minimum}, got {value}")
    return int(value)


def _check_real(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise SceneError(f"generate: {name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise SceneError(f"generate: {name} must be finite, got {value}")
    return value


def _geometric(
    rng: np.random.Generator, n: int, K: int, Nt: int, field_m: float, d_min: float, d_max: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Geometric channels; returns (H complex64 [n,K,K,Nt], dist float32 [n,K,K], gain float64 [n,K,K]).

    ``gain`` is the large-scale power gain g_jk (shadowing included), i.e.
    ``E|H[..., a]|^2 = gain``.  Draw order: tx positions, direct distances,
    angles, shadowing, fading.
    """
    tx = rng.uniform(0.0, field_m, size=(n, K, 2))  # [n, K, 2] transmitter xy
    r = rng.uniform(d_min, d_max, size=(n, K))  # [n, K] direct distance
    theta = rng.uniform(0.0, 2.0 * np.pi, size=(n, K))  # [n, K]
    rx = tx + r[..., None] * np.stack([np.cos(theta), np.sin(theta)], axis=-1)  # [n, K, 2]

    dx = tx[:, :, None, 0] - rx[:, None, :, 0]  # [n, K(tx j), K(rx k)]
    dy = tx[:, :, None, 1] - rx[:, None, :, 1]  # [n, K, K]
    dx *= dx
    dy *= dy
    dx += dy
    del dy
    dist = np.sqrt(dx, out=dx)  # [n, K, K] float64, dist[:, j, k] = |tx j - rx k|
    kk = np.arange(K)
    dist[:, kk, kk] = r  # exact direct distances (no rounding outside [d_min, d_max])

    s = rng.standard_normal(size=(n, K, K))  # [n, K, K] shadowing, N(0, 1)
    # g = 4.4e5 / (dist**1.88 * 10**(s*6.3/20)), evaluated in the log domain
    log_g = np.log(dist)
    log_g *= -1.88
    log_g -= s * (6.3 / 20.0 * math.log(10.0))
    log_g += math.log(4.4e5)
    del s
    gain = np.exp(log_g)  # [n, K, K] large-scale power gain
    log_g *= 0.5
    amp = np.exp(log_g).astype(np.float32)  # [n, K, K] sqrt(gain)
    del log_g

    H = _rayleigh(rng, (n, K, K, Nt), amp)  # [n, K, K, Nt] sqrt(g) * CN(0, 1)
    return H, dist.astype(np.float32), gain


def _rayleigh(rng: np.random.Generator, shape: tuple[int, ...], amp: np.ndarray | None = None) -> np.ndarray:
    """complex64 ``amp[..., None] * CN(0, 1)`` of ``shape`` (amp: float32 shape[:-1]).

    Drawn in place as interleaved (re, im) float32 normals, no complex128
    temporaries.
    """
    H = np.empty(shape, dtype=np.complex64)
    parts = H.view(np.float32).reshape(*shape, 2)  # [..., (re, im)]
    rng.standard_normal(dtype=np.float32, out=parts)
    if amp is None:
        parts *= np.float32(1.0 / math.sqrt(2.0))
    else:
        parts *= (amp * np.float32(1.0 / math.sqrt(2.0)))[..., None, None]
    return H


def generate(
    n: int,
    K: int,
    Nt: int,
    seed: int,
    mode: str = "geometric",
    *,
    field_m: float = 1000.0,
    d_min: float = 2.0,
    d_max: float = 65.0,
) -> Scenes:
    """Draw ``n`` scenes of ``K`` pairs with ``Nt`` transmit antennas.

    Deterministic: the same arguments give byte-identical arrays.  Weights are
    all 1, ``noise_var = p_max = 1``.  Raises :class:`SceneError` on bad
    arguments.
    """
    n = _check_int("n", n, 1)
    K = _check_int("K", K, 2)
    Nt = _check_int("Nt", Nt, 1)
    seed = _check_int("seed", seed, 0)
    if mode not in MODES:
        raise SceneError(f"generate: unknown mode {mode!r}, expected one of {', '.join(MODES)}")
    field_m = _check_real("field_m", field_m)
    d_min = _check_real("d_min", d_min)
    d_max = _check_real("d_max", d_max)
    if field_m <= 0:
        raise SceneError(f"generate: field_m must be > 0, got {field_m}")
    if d_min <= 0:
        raise SceneError(f"generate: d_min must be > 0, got {d_min}")
    if d_min > d_max:
        raise SceneError(f"generate: d_min must be <= d_max, got d_min={d_min} > d_max={d_max}")

    rng = np.random.default_rng(seed)
    if mode == "geometric":
        H, dist, _ = _geometric(rng, n, K, Nt, field_m, d_min, d_max)
    else:
        H, dist = _rayleigh(rng, (n, K, K, Nt)), None
    weights = np.ones((n, K), dtype=np.float32)  # [n, K]
    return Scenes(H=H, weights=weights, dist=dist)


# --------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------


def _desc(a) -> str:
    if isinstance(a, np.ndarray):
        return f"{a.dtype} {a.shape}"
    return f"{type(a).__name__} {a!r}" if np.isscalar(a) or a is None else type(a).__name__


def _bad_scenes(bad: np.ndarray) -> str:
    """'3 of 10 scenes (first: scene 4)' for a bool [N] mask."""
    idx = np.flatnonzero(bad)
    return f"{idx.size} of {bad.size} scenes (first: scene {idx[0]})"


def _check_H(H, source: str, coerce: bool) -> np.ndarray:
    def fail():
        raise SceneError(f"{source}: field 'H' must be {_H_FILE_SPEC if coerce else _H_SPEC}, got {_desc(H)}")

    if not isinstance(H, np.ndarray):
        fail()
    if coerce:
        if H.dtype not in (np.complex64, np.complex128):
            fail()
    elif H.dtype != np.complex64:
        fail()
    if H.ndim != 4 or H.shape[1] != H.shape[2] or H.shape[1] < 2 or H.shape[3] < 1:
        fail()
    if H.shape[0] == 0:
        raise SceneError(f"{source}: field 'H' must be {_H_SPEC} and N >= 1, got {_desc(H)} (no scenes)")
    if H.dtype != np.complex64:
        with np.errstate(over="ignore"):
            H = H.astype(np.complex64)
    bad = ~np.isfinite(H.view(np.float32).reshape(H.shape[0], -1)).all(axis=1)  # [N]
    if bad.any():
        raise SceneError(f"{source}: field 'H' contains NaN or Inf in {_bad_scenes(bad)}")
    return H


def _check_real_array(a, name: str, spec: str, shape: tuple[int, ...], source: str, coerce: bool) -> np.ndarray:
    want = f"float32 {spec} = {list(shape)}"
    if not isinstance(a, np.ndarray):
        raise SceneError(f"{source}: field '{name}' must be {want}, got {_desc(a)}")
    if coerce:
        ok = np.issubdtype(a.dtype, np.floating) or (np.issubdtype(a.dtype, np.integer) and a.dtype != np.bool_)
    else:
        ok = a.dtype == np.float32
    if not ok or a.shape != shape:
        raise SceneError(f"{source}: field '{name}' must be {want}, got {_desc(a)}")
    if a.dtype != np.float32:
        with np.errstate(over="ignore"):
            a = a.astype(np.float32)
    flat = a.reshape(shape[0], -1)  # [N, ...]
    bad = ~np.isfinite(flat).all(axis=1)
    if bad.any():
        raise SceneError(f"{source}: field '{name}' contains NaN or Inf in {_bad_scenes(bad)}")
    bad = (flat < 0).any(axis=1)
    if bad.any():
        raise SceneError(f"{source}: field '{name}' must be >= 0, has negative values in {_bad_scenes(bad)}")
    return a


def _check_scalar(v, name: str, source: str) -> float:
    def fail(why: str):
        raise SceneError(f"{source}: field '{name}' must be a positive finite scalar, got {why}")

    if isinstance(v, np.ndarray):
        if v.size != 1 or v.ndim > 1:
            fail(_desc(v))
        if v.dtype == np.bool_ or not (np.issubdtype(v.dtype, np.floating) or np.issubdtype(v.dtype, np.integer)):
            fail(_desc(v))
        v = v.reshape(()).item()
    elif isinstance(v, bool) or not isinstance(v, (numbers.Real, np.floating, np.integer)):
        fail(_desc(v))
    v = float(v)
    if not (math.isfinite(v) and v > 0):
        fail(repr(v))
    return v


def _checked(H, weights, dist, noise_var, p_max, source: str, coerce: bool) -> Scenes:
    H = _check_H(H, source, coerce)
    N, K = H.shape[0], H.shape[1]
    weights = _check_real_array(weights, "weights", "[N, K]", (N, K), source, coerce)
    bad = ~(weights > 0).any(axis=1)
    if bad.any():  # its weighted sum rate is 0 whatever the beams: nothing to train on or compare
        raise SceneError(
            f"{source}: field 'weights' is all zero in {_bad_scenes(bad)}; every scene needs a positive weight"
        )
    if dist is not None:
        dist = _check_real_array(dist, "dist", "[N, K, K]", (N, K, K), source, coerce)
    noise_var = _check_scalar(noise_var, "noise_var", source)
    p_max = _check_scalar(p_max, "p_max", source)
    return Scenes(H=H, weights=weights, dist=dist, noise_var=noise_var, p_max=p_max)


def validate(scenes: Scenes, source: str = "scenes") -> None:
    """Check in-memory scenes (strict dtypes); raise :class:`SceneError` on the first problem."""
    if not isinstance(scenes, Scenes):
        raise SceneError(f"{source}: expected a Scenes object, got {type(scenes).__name__}")
    _checked(scenes.H, scenes.weights, scenes.dist, scenes.noise_var, scenes.p_max, source, coerce=False)


# --------------------------------------------------------------------------
# file I/O
# --------------------------------------------------------------------------


def _write_npz(scenes: Scenes, f) -> None:
    """Write an np.load-compatible npz to binary file ``f``.

    Fixed key order (H, weights, [dist], noise_var, p_max) and fixed member
    timestamps, so identical scenes give byte-identical files (np.savez would
    stamp each member with the current time).
    """
    arrays = [("H", scenes.H), ("weights", scenes.weights)]
    if scenes.dist is not None:
        arrays.append(("dist", scenes.dist))
    arrays += [("noise_var", np.float64(scenes.noise_var)), ("p_max", np.float64(scenes.p_max))]
    f.write(npz_bytes(arrays))


def save(scenes: Scenes, path) -> Path:
    """Validate and write ``scenes`` to ``path`` (.npz) atomically; returns the path.

    The file is written to a temporary file in the same folder and moved into
    place with ``os.replace``; parent folders are created.  Identical scenes
    give byte-identical files.  Invalid scenes raise :class:`SceneError` and
    leave no file behind (an existing file at ``path`` is left untouched).
    """
    path = Path(path)
    validate(scenes, source=str(path))
    return atomic_write(path, lambda f: _write_npz(scenes, f))


def load(path) -> Scenes:
    """Read and strictly validate a scene file; raise :class:`SceneError` on any problem.

    ``H`` may be complex64 or complex128 (converted); ``weights``/``dist`` may
    be any real float or integer dtype (converted to float32).  ``noise_var`` and
    ``p_max`` default to 1.0 only for normalised channels (module docstring).
    Unknown keys are ignored.  Pickled (object) arrays are refused.
    """
    path = Path(path)
    src = str(path)
    if not path.is_file():
        raise SceneError(f"{src}: file not found" if not path.exists() else f"{src}: not a regular file")
    if not zipfile.is_zipfile(path):  # np.load would call a text file "pickled data"
        raise SceneError(f"{src}: not an .npz archive (an .npz is a zip of .npy arrays, e.g. from np.savez)")
    try:
        npz = np.load(path, allow_pickle=False)
    except Exception as e:  # BadZipFile, OSError, ValueError, EOFError, ...
        raise SceneError(f"{src}: not a readable .npz archive ({type(e).__name__}: {e})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise SceneError(f"{src}: not a .npz archive (got a single {_desc(npz)} array)")
    with npz:
        fields = {}
        for key in ("H", "weights", "dist", "noise_var", "p_max"):
            if key not in npz.files:
                continue
            try:
                fields[key] = npz[key]
            except Exception as e:
                raise SceneError(f"{src}: field '{key}' could not be read ({type(e).__name__}: {e})") from None
    if "H" not in fields:
        raise SceneError(f"{src}: missing required field 'H' ({_H_SPEC}); found keys {sorted(npz.files)}")
    H = fields["H"]
    weights = fields.get("weights")
    if weights is None:
        shape = H.shape[:2] if isinstance(H, np.ndarray) and H.ndim == 4 else (0, 0)
        weights = np.ones(shape, dtype=np.float32)  # [N, K]
    scenes = _checked(
        H,
        weights,
        fields.get("dist"),
        fields.get("noise_var", 1.0),
        fields.get("p_max", 1.0),
        src,
        coerce=True,
    )
    missing = [k for k in ("noise_var", "p_max") if k not in fields]
    if missing:
        _require_units(scenes.H, missing, src)
    return scenes


def direct_power(H: np.ndarray) -> float:
    """Median of ``|H[n, k, k, a]|^2`` over scenes, pairs and antennas (see :data:`NORMALISED`)."""
    K = H.shape[1]
    d = H[:, np.arange(K), np.arange(K)]  # [N, K, Nt] direct links
    return float(np.median(d.real.astype(np.float64) ** 2 + d.imag.astype(np.float64) ** 2))


def _require_units(H: np.ndarray, missing: list[str], src: str) -> None:
    """Defaults of 1.0 for ``missing`` are right only for channels normalised to the noise."""
    p = direct_power(H)
    lo, hi = NORMALISED
    if not lo <= p <= hi:
        raise SceneError(
            f"{src}: field {' and '.join(repr(k) for k in missing)} missing, and the channels are not normalised to "
            f"the noise (median direct-link power per antenna {p:.3g}, outside [{lo:g}, {hi:g}]): give noise_var "
            "and p_max in the units of H (e.g. watts)"
        )
