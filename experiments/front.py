"""The deployment front: sum rate against instructions per decision, over designs.

A design is a *start* (MRT, or the beams of a learned (LR-)MPGNN) followed by ``k``
WMMSE iterations on an interferer set (every link, or each receiver's ``m``
strongest: :func:`~tinyrrm.training.scenes.top_m_links`): classical WMMSE-k is the
MRT start, a learned policy alone is its start with ``k = 0``, a hybrid is both.
Every job measures one start on the test scenes followed by ``0..iters`` WMMSE
iterations on each of its interferer sets (one run gives every ``k``: the rate
history), so a record holds a curve per set.  One job, the *reference*, runs dense
WMMSE to convergence (at most 100 iterations): the rates are reported as ratios to it.

Jobs run through the rank grid's machinery (:func:`tinyrrm.experiments.grid.run_jobs`:
a local pool, or Ray with ``ray_address``); a job's result lives in
``<cells>/front/<name>/result.json`` and every finished job's record in
``front_jobs.json`` beside the report, committed, so a rerun (or a fresh checkout)
trains and measures only what is missing.

Instructions come from :mod:`.cost` (fitted to the committed QEMU measurements;
estimates for pruning, not measurements). ``report`` writes ``front.json`` (every
point, the Pareto front, the cost model and its calibration errors, the targets),
``front.md`` and ``front.png`` (rate / WMMSE-100 against instructions, log x).
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tinyrrm.errors import InputError, UsageError
from tinyrrm.training.checkpoint import load as load_ckpt
from tinyrrm.training.fileio import write_bytes, write_text
from tinyrrm.training.models import ARCHS, ModelConfig, model_bytes
from tinyrrm.training.scenes import Scenes
from tinyrrm.training.scenes import load as load_scenes
from tinyrrm.training.train import TrainConfig, prepare
from tinyrrm.training.train import train as run_train
from tinyrrm.training.wmmse import wmmse

from . import cost as costs
from .grid import run_jobs

#: the WMMSE iterations of the reference (WMMSE-100; it stops earlier where it has converged)
REFERENCE_ITERS = 100
#: the yardstick: at least WMMSE-k's rate at no more than this share of its instructions, k >= 2
YARDSTICK_SHARE = 0.5
#: the stretch target: this rate ratio at no more than this many instructions
STRETCH = (0.99, 1e6)
JOBS_FILE = "front_jobs.json"


@dataclass(frozen=True)
class Learned:
    """The learned start of a design: what is trained (one seed) and on which graph, or a
    trained ``checkpoint`` as it is (then the other fields are not used)."""

    arch: str = "tiny"
    a1: int | None = None
    a2: int | None = None
    steps: int = 3
    cut_m: float | None = 500.0
    top_m: int | None = None
    epochs: int = 30
    batch: int = 8
    lr: float = 1e-3
    lr_final: float | None = 1e-5
    seed: int = 0
    checkpoint: str | None = None

    @property
    def name(self) -> str:
        if self.checkpoint is not None:
            return "checkpoint_" + Path(self.checkpoint).name
        ranks = "" if self.a1 is None else f"_a1-{self.a1}_a2-{self.a2}"
        graph = ("_cut" + format(self.cut_m, "g") if self.cut_m else "") + (f"_top{self.top_m}" if self.top_m else "")
        return f"{self.arch}{ranks}_s{self.steps}{graph}_e{self.epochs}_seed{self.seed}"

    def config(self, K: int, Nt: int) -> ModelConfig:
        return ModelConfig(
            arch=self.arch, K=K, Nt=Nt, a1=self.a1, a2=self.a2, steps=self.steps, cut_m=self.cut_m, top_m=self.top_m
        )


@dataclass(frozen=True)
class FrontJob:
    """One start measured on ``test`` with ``0..iters`` WMMSE iterations on each of ``sets``
    (``None``: every link; ``m``: the top-m interferers); ``learned`` None: the MRT start."""

    learned: Learned | None
    sets: tuple[int | None, ...]
    iters: int
    train: str
    val: str | None
    test: str
    out: str
    reference: bool = False  # dense WMMSE to convergence: the 1.0 of every ratio

    @property
    def name(self) -> str:
        if self.reference:
            return "reference_wmmse"
        start = "mrt" if self.learned is None else self.learned.name
        sets = "-".join("dense" if m is None else f"top{m}" for m in self.sets)
        return f"{start}__{sets}_k{self.iters}"

    def record_key(self) -> dict:
        """The job as its record stores it (JSON types: tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))


def set_name(m: int | None) -> str:
    return "dense" if m is None else f"top-{m}"


def _result_path(job: FrontJob) -> Path:
    return Path(job.out) / "front" / job.name / "result.json"


def _matches(record: dict, key: dict) -> bool:
    """A record's job is ``key``; a learned start's fields added since it was written take
    their defaults."""
    stored = record.get("job")
    if not isinstance(stored, dict):
        return False
    if isinstance(stored.get("learned"), dict):
        defaults = {f.name: f.default for f in dataclasses.fields(Learned)}
        stored = {**stored, "learned": {**defaults, **stored["learned"]}}
    return stored == key


def finished(job: FrontJob, records: list[dict] = ()) -> dict | None:
    """The stored result of ``job`` (its ``result.json``, or a matching record), else None."""
    key = job.record_key()
    path = _result_path(job)
    if path.is_file():
        done = json.loads(path.read_text())
        if _matches(done, key):
            return done
    return next((r for r in records if _matches(r, key)), None)


def start_beams(model, scenes: Scenes) -> np.ndarray:
    """A model's beams of ``scenes`` in their units (``||v_k||^2 <= p_max``), complex ``[N, K, Nt]``."""
    data = prepare(scenes, model.cfg.cut_m, model.cfg.top_m)
    out = []
    model.eval()
    with torch.no_grad():
        for s in range(0, len(data), 50):
            out.append(model(data.H[s : s + 50], data.mask[s : s + 50]))
    V = torch.cat(out).numpy().astype(np.complex128) * math.sqrt(scenes.p_max)
    # float32 rounding may put a unit-norm beam a hair above the limit
    pw = (np.abs(V) ** 2).sum(-1, keepdims=True)
    return V * np.sqrt(np.minimum(1.0, scenes.p_max / np.maximum(pw, 1e-300)))


def curves(scenes: Scenes, V0: np.ndarray | None, sets, iters: int) -> dict[str, list[float]]:
    """Mean sum rate after ``0..iters`` WMMSE iterations from ``V0`` (None: MRT), per set."""
    out = {}
    for m in sets:
        hist = _history(scenes, max_iter=iters, tol=0.0, init=V0, top_m=m)
        out[set_name(m)] = [float(v) for v in hist.mean(axis=0)[: iters + 1]]
    return out


def _history(scenes: Scenes, **kw) -> np.ndarray:
    """WMMSE's per-scene rate history ``[N, T + 1]`` on ``scenes`` (``kw``: :func:`wmmse`'s options)."""
    return wmmse(scenes.H, scenes.p_max, scenes.noise_var, scenes.weights, progress=False, return_history=True, **kw)[1]


def run_front_job(job: FrontJob, progress: bool = False) -> dict:
    """Train the job's learned start if it has one (or reuse its checkpoint), then measure."""
    torch.set_num_threads(1)
    done = finished(job)
    if done is not None:
        return done
    test = load_scenes(job.test)
    res = {"job": job.record_key(), "name": job.name, "K": test.K, "Nt": test.Nt, "n_test": test.N}
    if job.reference:
        hist = _history(test, max_iter=REFERENCE_ITERS)
        res.update(reference_rate=float(hist[:, -1].mean()), mrt_rate=float(hist[:, 0].mean()))
    else:
        V0 = None
        if job.learned is not None:
            L = job.learned
            if L.checkpoint is None:
                head = load_scenes(job.train)
                tcfg = TrainConfig(epochs=L.epochs, batch=L.batch, lr=L.lr, lr_final=L.lr_final, seed=L.seed)
                folder = Path(job.out) / "front" / "models" / L.name  # shared by every job of this start
                ck = run_train(job.train, folder, L.config(head.K, head.Nt), tcfg, val_path=job.val, progress=progress)
            else:
                ck = L.checkpoint
            model, _ = load_ckpt(ck)
            V0 = start_beams(model, test)
            pe, pn = costs.macs(model.cfg)
            res.update(
                model=model.cfg.to_dict(),
                edges=float(model.cfg.graph(test).sum(axis=(1, 2)).mean()),
                macs_per_edge=pe,
                macs_per_node=pn,
                bytes_int8=model_bytes(model, "int8"),
            )
        res["rates"] = curves(test, V0, job.sets, job.iters)
    path = _result_path(job)
    write_text(path, json.dumps(res, indent=2, sort_keys=True) + "\n")
    return res


# --------------------------------------------------------------------------
# the candidate space
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Space:
    """The designs of a front run: learned starts (every arch x rank x steps x graph) and the
    WMMSE interferer sets that follow each start (MRT included)."""

    train: str
    test: str
    val: str | None
    archs: tuple[str, ...] = ("tiny", "small", "shen", "mid", "paper")
    ranks: tuple[tuple[int, int] | None, ...] = (None, (4, 16))  # (a1, a2) or None (full)
    steps: tuple[int, ...] = (1, 2, 3)
    graphs: tuple[tuple[float | None, int | None], ...] = ((500.0, None), (None, 16), (None, 4))  # (cut_m, top_m)
    sets: tuple[int | None, ...] = (None, 32, 24, 16, 8)  # WMMSE interferer sets from MRT
    hybrid_sets: tuple[int | None, ...] = (None, 24, 16, 8)  # ... after a learned start
    iters: int = 30  # WMMSE iterations measured after a start (every k up to this)
    hybrid_iters: int = 5  # ... after a learned start
    epochs: int = 30
    seeds: int = 1
    checkpoints: tuple[str, ...] = ()  # trained models measured as they are (no training)

    def __post_init__(self):
        bad = [a for a in self.archs if a not in ARCHS]
        if bad:
            raise UsageError(f"unknown arch(s) {', '.join(bad)}; choose from {', '.join(ARCHS)}")
        if self.iters < 1 or self.hybrid_iters < 0 or self.epochs < 1 or self.seeds < 1:
            raise UsageError("need iters >= 1, hybrid_iters >= 0, epochs >= 1, seeds >= 1")


def plan(space: Space, out) -> list[FrontJob]:
    """The reference, the classical curves (MRT start), then the learned starts from the cheapest
    (fewest MACs per decision on the full graph) to the dearest."""
    s = space
    base = dict(train=str(s.train), val=None if s.val is None else str(s.val), test=str(s.test), out=str(out))
    jobs = [
        FrontJob(None, (None,), REFERENCE_ITERS, reference=True, **base),
        FrontJob(None, tuple(s.sets), s.iters, **base),
    ]
    learned = [
        Learned(
            arch=a,
            a1=r[0] if r else None,
            a2=r[1] if r else None,
            steps=t,
            cut_m=g[0],
            top_m=g[1],
            epochs=s.epochs,
            seed=seed,
        )
        for a in s.archs
        for r in s.ranks
        for t in s.steps
        for g in s.graphs
        for seed in range(s.seeds)
    ]
    head = load_scenes(s.train)
    learned += [Learned(checkpoint=str(c)) for c in s.checkpoints]

    def dearness(L: Learned) -> float:
        if L.checkpoint is not None:
            return math.inf  # after the trained ones: a checkpoint may be of any size
        edges = head.K * (head.K - 1) if L.top_m is None else head.K * min(L.top_m, head.K - 1)
        return costs.learned_macs(L.config(head.K, head.Nt), edges)

    for L in sorted(learned, key=lambda L: (dearness(L), L.name)):
        jobs.append(FrontJob(L, tuple(s.hybrid_sets), s.hybrid_iters, **base))
    return jobs


# --------------------------------------------------------------------------
# the report
# --------------------------------------------------------------------------


def points(records: list[dict], model: costs.CostModel) -> list[dict]:
    """Every (design, k) of ``records`` with its rate ratio and estimated instructions."""
    ref = next((r for r in records if r["job"]["reference"]), None)
    if ref is None:
        raise InputError("no reference WMMSE record yet: the ratios need it")
    R = ref["reference_rate"]
    K, nt = ref["K"], ref["Nt"]
    out = [
        {
            "design": "MRT",
            "family": "mrt",
            "k": 0,
            "set": None,
            "rate": ref["mrt_rate"],
            "ratio": ref["mrt_rate"] / R,
            "instructions": model.wmmse_cost(K, nt, 0),
        }
    ]
    for r in records:
        if r["job"]["reference"]:
            continue
        L = r["job"]["learned"]
        cfg = None if L is None else Learned(**L).config(K, nt)
        if L is not None and L.get("checkpoint"):
            cfg = ModelConfig.from_dict(r["model"])
        for set_key, rates in sorted(r["rates"].items()):
            m = None if set_key == "dense" else int(set_key.split("-")[1])
            for k, rate in enumerate(rates):
                if L is None and k == 0:
                    continue  # MRT, once
                if L is None:
                    design, family, instr = f"WMMSE-{k} {set_key}", f"wmmse {set_key}", model.wmmse_cost(K, nt, k, m)
                else:
                    name = Learned(**L).name
                    design = name if k == 0 else f"{name} + WMMSE-{k} {set_key}"
                    family = "learned" if k == 0 else f"hybrid {set_key}"
                    instr = model.hybrid(cfg, r["edges"], k, m) if k else model.learned(cfg, r["edges"])
                    if k == 0 and set_key != sorted(r["rates"])[0]:
                        continue  # the learned start alone, once
                out.append(
                    {
                        "design": design,
                        "family": family,
                        "k": k,
                        "set": set_key,
                        "rate": rate,
                        "ratio": rate / R,
                        "instructions": instr,
                    }
                )
    return out


def pareto(pts: list[dict]) -> list[dict]:
    """Mark ``on_front``: no other point has at least the ratio at no more instructions (and is
    better in one of them)."""
    order = sorted(range(len(pts)), key=lambda i: (pts[i]["instructions"], -pts[i]["ratio"]))
    best = -math.inf
    for i in order:
        pts[i]["on_front"] = pts[i]["ratio"] > best
        best = max(best, pts[i]["ratio"])
    return pts


def targets(pts: list[dict]) -> dict:
    """The yardstick (some k >= 2: WMMSE-k's rate at half its instructions) and the stretch."""
    dense = {p["k"]: p for p in pts if p["family"] == "wmmse dense"}
    yard = []
    for k in sorted(dense):
        if k < 2:
            continue
        w = dense[k]
        budget = YARDSTICK_SHARE * w["instructions"]
        within = [p for p in pts if p["instructions"] <= budget]
        best = max(within, key=lambda p: p["ratio"], default=None)
        yard.append(
            {
                "k": k,
                "wmmse_ratio": w["ratio"],
                "budget_instructions": budget,
                "best_within_budget": None if best is None else best["design"],
                "best_ratio": None if best is None else best["ratio"],
                "met": best is not None and best["ratio"] >= w["ratio"],
            }
        )
    ratio, budget = STRETCH
    within = [p for p in pts if p["instructions"] <= budget]
    best = max(within, key=lambda p: p["ratio"], default=None)
    return {
        "yardstick": yard,
        "yardstick_met": any(y["met"] for y in yard),
        "stretch": {
            "ratio": ratio,
            "budget_instructions": budget,
            "best_within_budget": None if best is None else best["design"],
            "best_ratio": None if best is None else best["ratio"],
            "met": best is not None and best["ratio"] >= ratio,
        },
    }


def measured_points(pts: list[dict], model: costs.CostModel) -> list[dict]:
    """The designs whose instructions were measured under QEMU (the dense WMMSE bench's and the
    sparse bench's runs, MRT as the dense iters = 0 run), with their rate ratios from ``pts``."""
    ratio = {p["design"]: p["ratio"] for p in pts}
    out = []
    for f in model.wmmse.values():
        for _, k, y in f.points:
            design = "MRT" if k == 0 else f"WMMSE-{k} dense"
            if f.nt == model.sparse.nt and design in ratio:
                fam = "mrt" if k == 0 else "wmmse dense"
                out.append({"design": design, "family": fam, "k": k, "ratio": ratio[design], "instructions": y})
    for _, m, k, rank, y in model.sparse.points:
        design = "MRT" if k == 0 else f"WMMSE-{k} top-{m}"
        if k and design in ratio:
            out.append(
                {"design": design, "family": f"wmmse top-{m}", "k": k, "ratio": ratio[design], "instructions": rank + y}
            )
    return sorted(pareto(out), key=lambda p: (p["instructions"], p["design"]))


def build_report(records: list[dict], model: costs.CostModel, meta: dict) -> dict:
    pts = pareto(points(records, model))
    pts.sort(key=lambda p: (p["instructions"], p["design"]))
    measured = measured_points(pts, model)
    return {
        "meta": meta,
        "cost_model": model.to_dict(),
        "calibration": costs.calibration_errors(model),
        "points": pts,
        "targets": targets(pts),
        "measured": {"points": measured, "targets": targets(measured)},
    }


def _fmt_instr(x: float) -> str:
    return f"{x / 1e6:.3g} M"


def _yardstick_rows(t: dict) -> list[str]:
    """The yardstick table of ``targets()``'s result, header included."""
    rows = [
        "| yardstick k | WMMSE-k ratio | budget | best within budget | its ratio | met |",
        "| ---: | ---: | ---: | --- | ---: | --- |",
    ]
    for y in t["yardstick"]:
        best = "-" if y["best_ratio"] is None else f"{y['best_ratio']:.4f}"
        rows.append(
            f"| {y['k']} | {y['wmmse_ratio']:.4f} | {_fmt_instr(y['budget_instructions'])} | {y['best_within_budget'] or '-'} | {best} | {'yes' if y['met'] else 'no'} |"
        )
    return rows


def markdown(rep: dict) -> str:
    sp = rep["meta"].get("space", {})
    lines = [
        f"# Deployment front ({rep['cost_model']['core']})",
        "",
        "Sum rate on the test scenes as a ratio to WMMSE-100, against instructions per decision "
        "estimated by the cost model (fitted to the QEMU measurements below; an estimate, not a measurement). "
        "MRT is priced as the WMMSE bench's iters = 0 run (MRT and one gain sweep).",
        "",
        f"Jobs: {rep['meta'].get('jobs_finished')} of {rep['meta'].get('jobs_planned')} finished. "
        + ", ".join(
            f"{k}: {sp[k]}"
            for k in ("archs", "ranks", "steps", "graphs", "sets", "hybrid_sets", "epochs", "checkpoints")
            if k in sp
        ),
        "",
        "## Pareto front",
        "",
        "| design | rate / WMMSE-100 | instructions (est.) |",
        "| --- | ---: | ---: |",
    ]
    lines += [
        f"| {p['design']} | {p['ratio']:.4f} | {_fmt_instr(p['instructions'])} |"
        for p in rep["points"]
        if p["on_front"]
    ]
    t = rep["targets"]
    lines += [
        "",
        "## Targets",
        "",
        *_yardstick_rows(t),
    ]
    s = t["stretch"]
    best = "-" if s["best_ratio"] is None else f"{s['best_ratio']:.4f}"
    lines += [
        "",
        f"Stretch (>= {s['ratio']} at <= {_fmt_instr(s['budget_instructions'])}): best {s['best_within_budget'] or '-'} at {best}: {'met' if s['met'] else 'not met'}.",
        "",
        "## Targets on measured points only",
        "",
        "The same rule on the designs whose instructions were measured under QEMU (the dense and the "
        "top-m WMMSE benches; rates as above):",
        "",
        *_yardstick_rows(rep["measured"]["targets"]),
    ]
    s = rep["measured"]["targets"]["stretch"]
    best = "-" if s["best_ratio"] is None else f"{s['best_ratio']:.4f}"
    lines += [
        "",
        f"Stretch on measured points: best {s['best_within_budget'] or '-'} at {best}: {'met' if s['met'] else 'not met'}.",
        "",
        "## Cost model calibration",
        "",
        "| point | measured | model | error |",
        "| --- | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {c['point']} | {c['measured']:.0f} | {c['model']:.0f} | {c['error']:+.2%} |" for c in rep["calibration"]
    ]
    lines += [
        "",
        "Top-m points: the ranking (wmmse_rank_f32.c) and the sparse WMMSE (wmmse_sparse_f32.c) fitted to "
        "their QEMU measurements (reports/wmmse_sparse_bench.json): "
        f"{rep['cost_model']['top_m']['r_link']:.1f} instructions per candidate link and "
        f"{rep['cost_model']['top_m']['r_keep']:.1f} per kept entry to rank, "
        f"{rep['cost_model']['top_m']['t_link']:.1f} per kept link per iteration.",
        "",
        "## All points",
        "",
        "| design | rate / WMMSE-100 | instructions (est.) | on front |",
        "| --- | ---: | ---: | --- |",
    ]
    lines += [
        f"| {p['design']} | {p['ratio']:.4f} | {_fmt_instr(p['instructions'])} | {'yes' if p['on_front'] else ''} |"
        for p in rep["points"]
    ]
    return "\n".join(lines) + "\n"


def png_bytes(rep: dict) -> bytes:
    """rate / WMMSE-100 against instructions (log x): WMMSE-k curves, learned and hybrid points, MRT,
    the Pareto front."""
    import matplotlib as mpl
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    pts = rep["points"]
    with mpl.rc_context({"font.family": "DejaVu Sans", "font.size": 9}):
        fig = Figure(figsize=(8.0, 5.0), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.subplots()
        families = sorted({p["family"] for p in pts})
        for fam in families:
            ps = sorted((p for p in pts if p["family"] == fam), key=lambda p: p["instructions"])
            x, y = [p["instructions"] for p in ps], [p["ratio"] for p in ps]
            if fam.startswith("wmmse"):
                ax.plot(x, y, "-o", ms=3, lw=1.2 if fam == "wmmse dense" else 0.8, label=f"WMMSE-k ({fam[6:]})")
            elif fam == "mrt":
                ax.plot(x, y, "kD", ms=6, label="MRT")
            else:
                ax.plot(x, y, "^" if fam == "learned" else ".", ms=5 if fam == "learned" else 4, alpha=0.8, label=fam)
        front = sorted((p for p in pts if p["on_front"]), key=lambda p: p["instructions"])
        ax.step(
            [p["instructions"] for p in front],
            [p["ratio"] for p in front],
            "k--",
            where="post",
            lw=0.8,
            label="Pareto front",
        )
        ax.set_xscale("log")
        ax.set_xlabel(f"instructions per decision on {rep['cost_model']['core']} (estimated)")
        ax.set_ylabel("sum rate / WMMSE-100")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    return buf.getvalue()


def load_records(path) -> list[dict]:
    """The job records of a ``front_jobs.json`` ([] when there is none)."""
    path = Path(path)
    if not path.is_file():
        return []
    try:
        records = json.loads(path.read_text())["jobs"]
        if not all(isinstance(r, dict) and isinstance(r.get("job"), dict) for r in records):
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise InputError(
            f'{path}: not a front job-records file (want {{"jobs": [{{"job": ...}}, ...]}}); move it away to start without it'
        ) from None
    return records


def run_front(
    space: Space,
    out_dir,
    *,
    cells_dir=None,
    workers: int = 2,
    ray_address=None,
    core: str = "cortex-m4",
    progress: bool = True,
) -> list[Path]:
    """Run (or resume) every job of ``space`` and write ``front_jobs.json`` and
    ``front.{json,md,png}`` into ``out_dir`` after each finished job (once the reference is in)."""
    out = Path(out_dir)
    cells = Path(cells_dir) if cells_dir else out
    model = costs.fit(core)  # before anything trains: a missing measurement shows at once
    jobs = plan(space, cells)
    records = load_records(out / JOBS_FILE)
    meta = {"space": json.loads(json.dumps(dataclasses.asdict(space))), "jobs_planned": len(jobs), "core": core}
    written: list[Path] = []

    def report(results: list[dict]) -> None:
        rec = sorted(results, key=lambda r: r["name"])
        files = [write_text(out / JOBS_FILE, json.dumps({"jobs": rec}, indent=2, sort_keys=True) + "\n")]
        if any(r["job"]["reference"] for r in rec):
            rep = build_report(rec, model, {**meta, "jobs_finished": len(rec)})
            files.append(write_text(out / "front.json", json.dumps(rep, indent=2, sort_keys=True) + "\n"))
            files.append(write_text(out / "front.md", markdown(rep)))
            files.append(write_bytes(out / "front.png", png_bytes(rep)))
        written[:] = files

    run_jobs(jobs, workers, ray_address, progress, on_result=report, records=records, run=run_front_job, done=finished)
    return written
