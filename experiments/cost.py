"""Instructions per decision on a core, estimated from the measured points.

A decision is one scene's beams: a learned policy (int8, the generated C), WMMSE
iterations (float32, ``wmmse_f32.c``), or a learned start followed by WMMSE
iterations. The model is linear in counted work, with coefficients fitted to the
committed measurements under QEMU:

* **learned int8**: ``instructions = c_mac * MACs`` with ``MACs = steps * (E *
  per_edge + K * per_node)`` (:func:`macs`, the count of the generated C's report)
  and ``c_mac`` the least-squares slope through the origin of the HIL report's and
  the firmware bench's (MACs, instructions) points of the deployed model.
* **dense WMMSE** (``wmmse_f32.c``): ``instructions = base + k * iteration`` with

      base      = b_pair * K * K                   (MRT and the first gain sweep)
      iteration = c_pair * K * K + c_user * K      (pair loops, then each user's solve)

  ``b_pair`` is the WMMSE bench's ``iters = 0`` run per pair, ``c_pair`` the
  least-squares slope of its other runs through that point, per ``Nt``; ``c_user`` is the per-user solve's flop count
  stated in ``wmmse_f32.h`` (NT = 2) times the bench's instructions per flop (at
  ``K = 50`` the bench cannot tell per-user from per-pair work).
* **top-m WMMSE** (``wmmse_rank_f32.c`` + ``wmmse_sparse_f32.c``, NT = 2), fitted by least
  squares to the sparse bench (``wmmse_sparse_bench.json``: m in {8, 16, 24}, k up to 15):

      rank      = r_link * K * (K - 1) + r_keep * K * m      (ranking every candidate link)
      wmmse     = K * (m + 1) * (s_link + k * t_link) + K * (s_user + k * t_user)

  A learned start on a top-m graph pays the same ranking (once per decision: the ranking
  lists the strongest first, so the largest m serves a smaller one too).

Every estimate is a prior for pruning: a design on the front is measured under QEMU
before it counts. :func:`calibration_errors` gives the model's error on each point
it was fitted to.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyrrm import paths
from tinyrrm.errors import InputError
from tinyrrm.training.models import ModelConfig

#: flops of one user's solve per WMMSE iteration, NT = 2 (wmmse_f32.h: about 70 flops plus 12 per
#: Newton step; 4 steps, the middle of its "typically 3-5"); other Nt: not stated, taken as 0
USER_FLOPS = {2: 70 + 12 * 4}
#: the measurements the model is fitted to
WMMSE_BENCH = paths.REPORTS / "wmmse_bench.json"
SPARSE_BENCH = paths.REPORTS / "wmmse_sparse_bench.json"
HIL_REPORT = paths.REPORTS / "hil" / "cortex-m4.json"
FIRMWARE_BENCH = paths.REPORTS / "bench.json"


def macs(cfg: ModelConfig) -> tuple[int, int]:
    """MACs ``(per_edge, per_node)`` of one message-passing step of ``cfg`` as the generated C runs it.

    msg1's rows split into the sender's state (4 Nt, per node) and the edge features (2 Nt, per
    edge); every further factor of msg1 and msg2 is per edge, upd1 and upd2 per node. A layer of
    rank r costs r (d_in + d_out), a full one d_in d_out.
    """
    nt = cfg.Nt
    per_edge = per_node = 0
    for name, (d_in, d_out, rank) in cfg.layer_dims().items():
        first = d_out if rank is None else rank  # width after the first factor
        rest = 0 if rank is None else rank * d_out
        if name == "msg1":
            per_node += 4 * nt * first
            per_edge += 2 * nt * first + rest
        elif name == "msg2":
            per_edge += d_in * first + rest
        else:
            per_node += d_in * first + rest
    return per_edge, per_node


def learned_macs(cfg: ModelConfig, edges: float) -> float:
    """MACs of one decision of ``cfg`` on a graph of ``edges`` edges (all steps)."""
    e, n = macs(cfg)
    return cfg.steps * (edges * e + cfg.K * n)


@dataclass(frozen=True)
class WmmseFit:
    """WMMSE coefficients for one ``Nt`` on one core (see the module docstring)."""

    nt: int
    b_pair: float  # instructions per pair of the fixed part (MRT, first gain sweep)
    c_pair: float  # instructions per pair per iteration
    c_user: float  # instructions per user per iteration
    points: tuple  # ((K, iters, instructions), ...) measured


@dataclass(frozen=True)
class SparseFit:
    """Top-m ranking and sparse WMMSE coefficients on one core (see the module docstring)."""

    nt: int
    r_link: float  # ranking: instructions per candidate link
    r_keep: float  # ranking: instructions per kept entry
    s_link: float  # sparse WMMSE fixed part, per kept link (direct included)
    s_user: float  # sparse WMMSE fixed part, per user
    t_link: float  # per kept link per iteration
    t_user: float  # per user per iteration
    points: tuple  # ((K, m, iters, rank instructions, WMMSE instructions), ...) measured


@dataclass(frozen=True)
class CostModel:
    """Instructions per decision on one core (see the module docstring)."""

    core: str
    c_mac: float  # learned int8: instructions per MAC
    mac_points: tuple  # ((source, MACs, instructions), ...) measured
    wmmse: dict  # Nt -> WmmseFit
    sparse: SparseFit

    def learned(self, cfg: ModelConfig, edges: float) -> float:
        """A learned decision on a graph of ``edges`` edges, with its top-m selection if it has one."""
        return self.c_mac * learned_macs(cfg, edges) + self.select(cfg.K, cfg.top_m)

    def select(self, K: int, top_m: int | None) -> float:
        """Ranking every receiver's interferers for a top-m set (0 without one)."""
        if top_m is None or top_m >= K - 1:
            return 0.0
        return self.sparse.r_link * K * (K - 1) + self.sparse.r_keep * K * top_m

    def wmmse_cost(self, K: int, nt: int, iters: int, top_m: int | None = None) -> float:
        """Instructions of ``iters`` WMMSE iterations from MRT (dense, or on the top-m set with its ranking)."""
        if top_m is None or top_m >= K - 1:
            f = self._fit(nt)
            return f.b_pair * K * K + iters * (f.c_pair * K * K + f.c_user * K)
        s = self.sparse
        if nt != s.nt:
            raise InputError(f"no top-m WMMSE measurement for Nt={nt} on {self.core}; measured: Nt={s.nt}")
        links = K * (top_m + 1)
        return self.select(K, top_m) + links * (s.s_link + iters * s.t_link) + K * (s.s_user + iters * s.t_user)

    def hybrid(self, cfg: ModelConfig, edges: float, iters: int, top_m: int | None = None) -> float:
        """A learned start, then ``iters`` WMMSE iterations (the learned beams replace MRT); one
        ranking serves both top-m sets."""
        shared = min(self.select(cfg.K, cfg.top_m), self.select(cfg.K, top_m))
        return self.learned(cfg, edges) + self.wmmse_cost(cfg.K, cfg.Nt, iters, top_m) - shared

    def _fit(self, nt: int) -> WmmseFit:
        if nt not in self.wmmse:
            raise InputError(f"no WMMSE measurement for Nt={nt} on {self.core}; measured: {sorted(self.wmmse)}")
        return self.wmmse[nt]

    def to_dict(self) -> dict:
        return {
            "core": self.core,
            "c_mac": self.c_mac,
            "wmmse": {
                str(nt): {"b_pair": f.b_pair, "c_pair": f.c_pair, "c_user": f.c_user} for nt, f in self.wmmse.items()
            },
            "top_m": {
                k: getattr(self.sparse, k) for k in ("nt", "r_link", "r_keep", "s_link", "s_user", "t_link", "t_user")
            },
        }


def _read(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: cannot read the measurement ({e})") from None


def fit_sparse(core: str, sparse_bench=SPARSE_BENCH) -> SparseFit:
    """The ranking and sparse WMMSE coefficients of ``core`` by least squares on the sparse bench."""
    sp = _read(sparse_bench)
    if sp.get("target") != core:
        raise InputError(f"{sparse_bench}: measured on {sp.get('target')}, not {core}")
    K = sp["k"]
    pts = tuple(
        (K, c["top_m"], int(r["iters"]), float(r["rank_instructions"]), float(r["wmmse_instructions"]))
        for c in sp["cases"]
        for r in c["runs"]
    )
    rank_rows = {(K, m): y for K, m, _, y, _ in pts}  # the ranking does not depend on the iterations
    A = np.array([[k * (k - 1), k * m] for k, m in rank_rows], float)
    r_link, r_keep = np.linalg.lstsq(A, np.array(list(rank_rows.values())), rcond=None)[0]
    B = np.array([[k * (m + 1), k, it * k * (m + 1), it * k] for k, m, it, _, _ in pts], float)
    s_link, s_user, t_link, t_user = np.linalg.lstsq(B, np.array([p[4] for p in pts]), rcond=None)[0]
    return SparseFit(
        nt=int(sp["nt"]),
        r_link=float(r_link),
        r_keep=float(r_keep),
        s_link=float(s_link),
        s_user=float(s_user),
        t_link=float(t_link),
        t_user=float(t_user),
        points=pts,
    )


def fit(
    core: str = "cortex-m4",
    wmmse_bench=WMMSE_BENCH,
    hil_report=HIL_REPORT,
    firmware_bench=FIRMWARE_BENCH,
    sparse_bench=SPARSE_BENCH,
) -> CostModel:
    """The cost model of ``core`` fitted to the committed measurements."""
    wm = _read(wmmse_bench)
    fits = {}
    for case in wm["cases"]:
        if case["target"] != core:
            continue
        K, nt = case["k"], case["nt"]
        runs = case["runs"]
        iters = np.array([r["iters"] for r in runs], float)
        instr = np.array([r["instructions"] for r in runs], float)
        if 0 not in iters:
            raise InputError(f"{wmmse_bench}: the {core} K={K} Nt={nt} case has no iters = 0 run (the fixed part)")
        base = float(instr[iters == 0][0])  # MRT and gains, measured alone
        slope = float(iters @ (instr - base) / (iters @ iters))  # per iteration, through the fixed part
        per_flop = float(np.mean([r["instructions_per_flop"] for r in runs if "instructions_per_flop" in r]))
        c_user = USER_FLOPS.get(nt, 0) * per_flop
        fits[nt] = WmmseFit(
            nt=nt,
            b_pair=float(base) / (K * K),
            c_pair=(float(slope) - c_user * K) / (K * K),
            c_user=c_user,
            points=tuple((K, int(r["iters"]), float(r["instructions"])) for r in runs),
        )
    points = []
    hil = _read(hil_report)
    if hil.get("target") == core:
        points.append(("hil", float(hil["macs_per_inference"]), float(hil["instructions_per_inference"])))
    fw = _read(firmware_bench).get("firmware", {}).get("targets", {}).get(core)
    if fw and "dsp" in fw:
        points.append(
            ("firmware bench", float(fw["macs_per_inference"]), float(fw["dsp"]["instructions_per_inference"]))
        )
    if not points or not fits:
        raise InputError(
            f"no learned or no WMMSE measurement of {core} in {hil_report}, {firmware_bench}, {wmmse_bench}"
        )
    m = np.array([p[1] for p in points])
    y = np.array([p[2] for p in points])
    c_mac = float(m @ y / (m @ m))  # least squares through the origin
    return CostModel(
        core=core, c_mac=c_mac, mac_points=tuple(points), wmmse=fits, sparse=fit_sparse(core, sparse_bench)
    )


def calibration_errors(model: CostModel) -> list[dict]:
    """The model's relative error on every point it was fitted to."""
    rows = []
    for src, m, y in model.mac_points:
        est = model.c_mac * m
        rows.append({"point": f"learned int8 ({src}, {m:.0f} MACs)", "measured": y, "model": est, "error": est / y - 1})
    for nt, f in sorted(model.wmmse.items()):
        for K, k, y in f.points:
            est = model.wmmse_cost(K, nt, k)
            rows.append(
                {"point": f"WMMSE-{k} dense (K={K}, Nt={nt})", "measured": y, "model": est, "error": est / y - 1}
            )
    s = model.sparse
    for K, m, k, rank, y in s.points:
        est = model.wmmse_cost(K, s.nt, k, m)
        rows.append(
            {
                "point": f"WMMSE-{k} top-{m} with its ranking (K={K}, Nt={s.nt})",
                "measured": rank + y,
                "model": est,
                "error": est / (rank + y) - 1,
            }
        )
    return rows
