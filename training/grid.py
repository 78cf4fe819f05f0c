"""The paper's rank grid: train and measure LR-MPGNN for every (a1, a2).

Each cell is an independent job ``run_cell(CellJob) -> dict`` that trains one
model into ``<out>/grid/<name>/`` and writes ``result.json`` there; a cell
whose ``result.json`` matches its job is skipped on a rerun. Jobs run in a
local process pool (``jobs`` workers, one torch thread each) or, with
``ray_address``, as Ray tasks on a cluster (``pip install tinyrrm[ray]``).

The grid is then folded into ``paper_grid.json`` in the schema of
``reference/paper_tables.json`` plus CSV/markdown/heatmaps (``grid_report``),
and every job's result record goes into ``paper_grid_jobs.json`` beside it.
The cell folders hold checkpoints and stay out of git; the records file is
small and committed, so a fresh checkout resumes or extends the grid from it
(a job whose record matches is not trained again) and every figure of the
report can be recomputed from it.  A report can also *carry* cells measured by
an earlier run whose records are gone (``carry``): they are marked as carried
in the report and rescaled to this run's full-MPGNN reference.

* ``model_size_ratio`` = fp32 bytes of the full MPGNN / fp32 bytes of the
  LR-MPGNN (analytic: it only depends on the widths and ranks);
* ``sum_rate_ratio``   = mean test sum rate of the LR-MPGNN / of the full
  MPGNN trained with the same recipe; mean and spread over seeds.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from tinyrrm.errors import InputError, UsageError

from .fileio import write_text

A1 = (4, 16, 32, 64)
A2 = (4, 16, 32, 64, 128, 256, 512)
#: the grid's update form: the paper's plain one. At 30 epochs it is at least as good as our
#: residual one in every cell probed and far better with a rank-4 update net (DESIGN-NOTES §8)
RESIDUAL = False
#: weight of the clip penalty (train.py): a plain update that starts beyond unit power, where the
#: power scaling is flat, can stay there; (32, 4) did for 20+ epochs without it (DESIGN-NOTES §4)
CLIP_PENALTY = 0.1
#: cells measured over several seeds for the spread (the deployed cell, the paper's best, extremes)
MULTI_SEED = {(4, 4): 3, (4, 16): 3, (16, 4): 3, (64, 64): 3}


@dataclass(frozen=True)
class CellJob:
    a1: int | None  # None, None: the full MPGNN reference
    a2: int | None
    seed: int
    train: str
    val: str | None
    test: str
    out: str
    arch: str = "paper"
    epochs: int = 30
    batch: int = 8  # 250 steps an epoch: batch 32 (63) stayed at MRT for 7+ epochs (DESIGN-NOTES §8)
    lr: float = 1e-3
    lr_final: float | None = 1e-5
    residual: bool = True  # False: the paper's plain update v <- P(f_upd(...)) (DESIGN-NOTES §8)
    clip_penalty: float = 0.0  # train.py's loss term on update outputs beyond unit power

    @property
    def name(self) -> str:
        kind = "full" if self.a1 is None else f"a1-{self.a1}_a2-{self.a2}"
        return (f"{kind}_seed-{self.seed}" + ("" if self.residual else "_plain")
                + (f"_clip{self.clip_penalty:g}" if self.clip_penalty else ""))


def run_cell(job: CellJob, progress: bool = False) -> dict:
    """Train one cell (or reuse its finished result) and measure it on the test scenes."""
    import torch

    from .checkpoint import load as load_ckpt
    from .models import ModelConfig, model_bytes
    from .scenes import load as load_scenes
    from .train import TrainConfig, mean_sum_rate, prepare, train

    torch.set_num_threads(1)
    folder = Path(job.out) / "grid" / job.name
    result_path = folder / "result.json"
    done = finished(job)
    if done is not None:
        return done
    head = load_scenes(job.train)
    mcfg = ModelConfig(arch=job.arch, K=head.K, Nt=head.Nt, a1=job.a1, a2=job.a2, residual=job.residual)
    tcfg = TrainConfig(epochs=job.epochs, batch=job.batch, lr=job.lr, lr_final=job.lr_final, seed=job.seed,
                       clip_penalty=job.clip_penalty)
    ck = train(job.train, folder, mcfg, tcfg, val_path=job.val, progress=progress)
    model, _ = load_ckpt(ck)
    rate = mean_sum_rate(model, prepare(load_scenes(job.test), mcfg.cut_m))
    res = {"job": dataclasses.asdict(job), "name": job.name, "a1": job.a1, "a2": job.a2, "seed": job.seed,
           "test_rate": rate, "bytes_fp32": model_bytes(model), "bytes_int8": model_bytes(model, "int8")}
    write_text(result_path, json.dumps(res, indent=2, sort_keys=True) + "\n")
    return res


def plan(train, test, val, out, *, arch="paper", epochs=30, a1s=A1, a2s=A2, seeds=1,
         multi_seed=MULTI_SEED, residual: bool = RESIDUAL, clip_penalty: float = CLIP_PENALTY) -> list[CellJob]:
    """All jobs of a grid run: full MPGNN references (one per seed) and every cell.

    The first full reference, then the cells from the smallest model to the largest, each with
    all its seeds, then the other full references.
    """
    base = dict(train=str(train), val=None if val is None else str(val), test=str(test), out=str(out),
                arch=arch, epochs=epochs, residual=residual, clip_penalty=clip_penalty)
    n_seeds = max([seeds, *[n for (a, b), n in multi_seed.items() if a in a1s and b in a2s]] or [seeds])
    # smallest model first: the cells a deployment can choose from (int8 bytes 60x below the
    # full fp32 MPGNN) are the smallest ones, and they are the cheapest to train; their extra
    # seeds come with them (the spread is part of that choice), the full model's extra seeds
    # (the dearest jobs, which move every ratio by a shared factor only) last
    ratio = size_ratios(arch, a1s, a2s)
    cells = sorted(((a1, a2) for a1 in a1s for a2 in a2s),
                   key=lambda c: (-ratio[a1s.index(c[0])][a2s.index(c[1])], c))
    jobs = [CellJob(None, None, 0, **base)]
    for a1, a2 in cells:
        jobs += [CellJob(a1, a2, s, **base) for s in range(max(seeds, multi_seed.get((a1, a2), 1)))]
    jobs += [CellJob(None, None, s, **base) for s in range(1, n_seeds)]
    return jobs


def _matches(record: dict, job: CellJob) -> bool:
    stored = {"residual": True, "clip_penalty": 0.0, **(record.get("job") or {})}  # cells finished before the fields existed
    return stored == dataclasses.asdict(job)


def finished(job: CellJob, records: list[dict] = ()) -> dict | None:
    """The stored result of ``job`` if its cell has finished with exactly this job, else None:
    its folder's ``result.json``, or else a matching one of ``records`` (``paper_grid_jobs.json``)."""
    path = Path(job.out) / "grid" / job.name / "result.json"
    if path.is_file():
        done = json.loads(path.read_text())
        if _matches(done, job):
            return done
    return next((r for r in records if _matches(r, job)), None)


#: every finished job's result record, written beside ``paper_grid.json``
JOBS_FILE = "paper_grid_jobs.json"


def load_records(path) -> list[dict]:
    """The job records of a ``paper_grid_jobs.json`` ([] when there is none)."""
    path = Path(path)
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text())
        records = data["jobs"]
        if not all(isinstance(r, dict) and isinstance(r.get("job"), dict) and "test_rate" in r for r in records):
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise InputError(f"{path}: not a grid job-records file (want {{\"jobs\": [{{\"job\": ..., "
                         f"\"test_rate\": ...}}, ...]}}); move it away to start without it") from None
    return records


def status(jobs: list[CellJob], records: list[dict] = ()) -> dict:
    """Where a grid run stands: per job its state (``done``, ``started``, ``waiting``), epochs,
    best validation rate, seconds per epoch; and the CPU time left: a started job at its own
    pace, a waiting one at the pace ``epoch_seconds`` fits to the jobs timed so far."""
    import torch

    from .train import STATE

    rows = []
    for job in jobs:
        folder = Path(job.out) / "grid" / job.name
        row = {"name": job.name, "a1": job.a1, "a2": job.a2, "seed": job.seed, "epochs": 0,
               "of": job.epochs, "val_rate": None, "s_per_epoch": None, "test_rate": None}
        done, has_state = finished(job, records), (folder / STATE).is_file()
        if done is not None:
            row.update(state="done", epochs=job.epochs, test_rate=done["test_rate"])
        else:
            row["state"] = "started" if has_state else "waiting"
        if has_state:
            try:
                hist = torch.load(folder / STATE, weights_only=True).get("history") or []
            except Exception:  # being rewritten this instant, or damaged: shown without epochs
                hist = []
            if hist:
                secs = [h["seconds"] for h in hist]
                vals = [h["val_rate"] for h in hist if "val_rate" in h]  # none without --val
                row.update(epochs=len(hist), val_rate=max(vals) if vals else None,
                           s_per_epoch=sum(secs) / len(secs))
        rows.append(row)
    pace = epoch_seconds([r for r in rows if r["s_per_epoch"]])
    left = 0.0
    unknown = 0
    for row in rows:
        row["seconds_left"] = 0.0 if row["state"] == "done" else None
        if row["state"] == "done":
            continue
        secs = row["s_per_epoch"] or pace(row["a1"], row["a2"])
        if secs is None:
            unknown += 1
            continue
        row["seconds_left"] = (row["of"] - row["epochs"]) * secs
        left += row["seconds_left"]
    return {"jobs": rows, "done": sum(r["state"] == "done" for r in rows), "total": len(rows),
            "cpu_hours_left": left / 3600, "jobs_without_estimate": unknown}


def epoch_seconds(timed: list[dict]):
    """A pace model ``(a1, a2) -> seconds per epoch`` (None: nothing to go by) fitted to timed jobs.

    ``timed``: rows with ``a1``, ``a2`` and ``s_per_epoch``. The full MPGNN (a1 = a2 = None) is
    paced by its own runs. A low-rank cell is paced by ``alpha[a1] + beta * a2``, least squares
    over the timed cells: the update net's rank-a2 products run per node over ``d_in + d_out =
    3656`` (``paper``) and grow linearly with a2 (a2 = 512 costs about three times a2 = 16 on this
    machine), while the message rank mostly sets a constant (msg2 runs over h1 = 16 features,
    merged into one product from a1 = 16 on; DESIGN-NOTES §2). With a single a2 timed, beta is 0;
    a fitted slope below 0 (noise) is taken as 0; an a1 not timed yet gets the mean intercept.
    """
    import numpy as np

    full = [r["s_per_epoch"] for r in timed if r["a1"] is None]
    low = [r for r in timed if r["a1"] is not None]
    a1s = sorted({r["a1"] for r in low})
    alpha, beta = {}, 0.0
    if low:
        t = np.array([r["s_per_epoch"] for r in low])  # (n,)
        a2 = np.array([r["a2"] for r in low], float)  # (n,)
        onehot = np.array([[r["a1"] == a for a in a1s] for r in low], float)  # (n, len(a1s))
        if len(set(a2)) > 1:
            coef = np.linalg.lstsq(np.column_stack([onehot, a2]), t, rcond=None)[0]
            beta = max(0.0, float(coef[-1]))
        alpha = {a: float(np.mean((t - beta * a2)[onehot[:, i] > 0])) for i, a in enumerate(a1s)}

    def pace(a1, a2):
        if a1 is None:
            return sum(full) / len(full) if full else None
        if not alpha:
            return None
        return alpha.get(a1, sum(alpha.values()) / len(alpha)) + beta * a2

    return pace


def wall_hours(st: dict, workers: int) -> float:
    """Wall time left with ``workers`` local workers: the pool's own order, simulated. Started
    jobs hold a worker each (their folders are being trained), then every waiting job takes the
    first worker to come free, in plan order. Jobs without an estimate count as 0."""
    import heapq

    free = [0.0] * max(1, workers)
    todo = sorted((r for r in st["jobs"] if r["state"] != "done"), key=lambda r: r["state"] != "started")
    for r in todo:
        heapq.heappush(free, heapq.heappop(free) + (r["seconds_left"] or 0.0))
    return max(free) / 3600


def format_status(st: dict, workers: int | None = None) -> str:
    """``status`` as a plain-text table; with ``workers``, the wall time left at that many."""
    w = max([22, *(len(r["name"]) for r in st["jobs"])])
    out = [f"{'job':<{w}} {'state':<8} {'epochs':>7} {'best val':>9} {'s/epoch':>8} {'test':>8}"]
    for r in st["jobs"]:
        f = lambda v, fmt: "-" if v is None else format(v, fmt)  # noqa: E731
        out.append(f"{r['name']:<{w}} {r['state']:<8} {str(r['epochs']) + '/' + str(r['of']):>7} "
                   f"{f(r['val_rate'], '9.2f')} {f(r['s_per_epoch'], '8.0f')} {f(r['test_rate'], '8.2f')}")
    tail = f"{st['done']}/{st['total']} jobs done; about {st['cpu_hours_left']:.1f} CPU-hours left"
    if workers:
        tail += f", {wall_hours(st, workers):.1f} h of wall time at --jobs {workers}"
    if st["jobs_without_estimate"]:
        tail += f" (+ {st['jobs_without_estimate']} jobs not timed yet)"
    out.append(tail)
    return "\n".join(out)


def run_jobs(jobs: list[CellJob], workers: int = 2, ray_address: str | None = None,
             progress: bool = True, on_result=None, records: list[dict] = ()) -> list[dict]:
    """Results of ``jobs`` (finished cells and matching ``records`` reused);
    ``on_result(results_so_far)`` after each one.

    Finished cells are read here, before anything trains, and reported at once: a pool works
    through the jobs in plan order, and a finished cell queued behind one that trains for
    half an hour would otherwise drop out of the report until the pool reached it.
    """
    stored = [finished(j, records) for j in jobs]
    results = [r for r in stored if r is not None]
    n_all, jobs = len(jobs), [j for j, r in zip(jobs, stored) if r is None]
    if results and on_result is not None:
        on_result(results)

    def add(r: dict) -> None:
        results.append(r)
        if on_result is not None:
            on_result(results)

    if ray_address:
        try:
            import ray
        except ImportError:
            raise UsageError("--ray needs the optional extra: pip install 'tinyrrm[ray]'") from None
        ray.init(address=ray_address)
        remote = ray.remote(num_cpus=1)(run_cell)
        refs = [remote.remote(j) for j in jobs]
        with tqdm(total=n_all, initial=len(results), desc="grid cells (ray)",
                  disable=None if progress else True) as bar:
            pending = list(refs)
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                for r in ray.get(ready):
                    add(r)
                bar.update(len(ready))
        return results
    with tqdm(total=n_all, initial=len(results), desc="grid cells", disable=None if progress else True) as bar:
        if workers <= 1:
            for j in jobs:
                add(run_cell(j))
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                for fut in as_completed([pool.submit(run_cell, j) for j in jobs]):
                    add(fut.result())
                    bar.update()
    return results


def size_ratios(arch: str, a1s=A1, a2s=A2, dtype: str = "fp32") -> list[list[float]]:
    """fp32 bytes of the full MPGNN / ``dtype`` bytes of each LR-MPGNN: analytic, no training needed."""
    import torch

    from .models import MPGNN, ModelConfig, model_bytes

    with torch.device("meta"):  # shapes only: no memory, no initialisation
        full = model_bytes(MPGNN(ModelConfig(arch=arch)))
        return [[round(full / model_bytes(MPGNN(ModelConfig(arch=arch, a1=a1, a2=a2)), dtype), 4)
                 for a2 in a2s] for a1 in a1s]


#: issue 2's targets for the sum-rate ratio, and the deployment rule (DESIGN-NOTES §9)
TARGET_WIDE = 0.97  # every cell with a1, a2 >= 16
TARGET_4_4 = 0.95
DEPLOY_SHRINK = 60  # int8 LR-MPGNN at least this many times smaller than the fp32 full MPGNN


def targets(mean: list[list[float | None]], a1s=A1, a2s=A2, arch: str = "paper") -> dict:
    """Which measured cells meet issue 2's targets, and which cell the deployment rule picks."""
    cells = {(a1, a2): mean[i][j] for i, a1 in enumerate(a1s) for j, a2 in enumerate(a2s)}
    wide = {c: v for c, v in cells.items() if min(c) >= 16}
    measured = {c: v for c, v in wide.items() if v is not None}
    shrink = size_ratios(arch, a1s, a2s, "int8")
    cand = [{"a1": a1, "a2": a2, "int8_shrink": shrink[i][j], "sum_rate_ratio": cells[(a1, a2)]}
            for i, a1 in enumerate(a1s) for j, a2 in enumerate(a2s) if shrink[i][j] >= DEPLOY_SHRINK]
    scored = [c for c in cand if c["sum_rate_ratio"] is not None]
    best = max(scored, key=lambda c: c["sum_rate_ratio"]) if scored else None
    r44 = cells.get((4, 4))
    return {
        "a1_a2_ge_16": {"threshold": TARGET_WIDE, "cells": len(wide), "measured": len(measured),
                        "passing": sum(v >= TARGET_WIDE for v in measured.values()),
                        "failing": [[a1, a2, v] for (a1, a2), v in sorted(measured.items()) if v < TARGET_WIDE]},
        "a1_4_a2_4": {"threshold": TARGET_4_4, "ratio": r44, "pass": None if r44 is None else r44 >= TARGET_4_4},
        "deployment": {"rule": f"int8 bytes at least {DEPLOY_SHRINK}x below the fp32 full MPGNN, best sum rate",
                       "candidates": cand, "all_measured": len(scored) == len(cand),
                       "best": None if best is None else [best["a1"], best["a2"]]},
    }


def assemble(results: list[dict], a1s=A1, a2s=A2, meta: dict | None = None, arch: str = "paper") -> dict:
    """Fold cell results into the ``paper_tables.json`` schema (``None`` = not measured).

    With no results at all, only the (analytic) size table is filled.
    """
    full = [r for r in results if r["a1"] is None]
    if results and not full:
        raise InputError("grid results hold no full-MPGNN reference")
    full_rate = statistics.fmean(r["test_rate"] for r in full) if full else None
    size, mean, std, count = size_ratios(arch, a1s, a2s), [], [], []
    for a1 in a1s:
        mrow, drow, crow = [], [], []
        for a2 in a2s:
            cell = [r for r in results if r["a1"] == a1 and r["a2"] == a2]
            if not cell:
                mrow.append(None), drow.append(None), crow.append(0)
                continue
            ratios = [r["test_rate"] / full_rate for r in cell]
            mrow.append(round(statistics.fmean(ratios), 4))
            drow.append(round(statistics.stdev(ratios), 4) if len(ratios) > 1 else None)
            crow.append(len(ratios))
        mean.append(mrow), std.append(drow), count.append(crow)
    return {
        "model_size_ratio": {"meaning": "original MPGNN size / LR-MPGNN size (fp32 bytes)",
                             "a1": list(a1s), "a2": list(a2s), "rows": size},
        "sum_rate_ratio": {"meaning": "LR-MPGNN sum rate / original MPGNN sum rate on the test set",
                           "a1": list(a1s), "a2": list(a2s), "rows": mean, "std": std, "n_seeds": count},
        "targets": targets(mean, a1s, a2s, arch) if results else None,
        "meta": {"full_mpgnn_test_rate": full_rate, **(meta or {})},
    }


#: what two grid runs must share for one's cells to be carried into the other's report
CARRY_KEYS = ("arch", "epochs", "residual", "clip_penalty", "train", "test")


def check_carry(old: dict, meta: dict, where) -> None:
    """Raise ValueError unless the grid report ``old`` (from file ``where``) was measured with the
    recipe and scene files of ``meta``, and holds a full-MPGNN reference rate to rescale by."""
    from .grid_report import validate_grid

    try:
        validate_grid(old, str(where))
    except ValueError as e:
        raise InputError(f"--carry {where}: {e}") from None
    om = old.get("meta") or {}
    for k in CARRY_KEYS:
        if om.get(k) != meta.get(k):
            raise InputError(f"--carry {where}: its cells come from another grid run "
                             f"({k} {om.get(k)!r} there, {meta.get(k)!r} here)")
    rate = om.get("full_mpgnn_test_rate")
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0:
        raise InputError(f"--carry {where}: meta.full_mpgnn_test_rate must be a positive number, got {rate!r}")


def carry(grid: dict, old: dict, where, arch: str = "paper") -> dict:
    """``grid`` with every cell it has not measured taken from the earlier report ``old``.

    A carried cell's mean and spread are rescaled from ``old``'s full-MPGNN reference to this
    grid's (ratios over one reference scale by one factor), its seed count is kept, and the
    report's ``meta.carried`` names the cells, the file and the reference they came with; the
    targets are judged again over measured and carried cells together. ``check_carry`` first.
    """
    g = json.loads(json.dumps(grid))  # a copy
    sr, osr = g["sum_rate_ratio"], old["sum_rate_ratio"]
    old_rate, new_rate = old["meta"]["full_mpgnn_test_rate"], g["meta"]["full_mpgnn_test_rate"]
    if new_rate is None:
        raise UsageError("--carry needs this run's full-MPGNN reference: nothing to rescale to")
    scale = old_rate / new_rate
    o_std, o_n = osr.get("std"), osr.get("n_seeds")
    cells = []
    for i, a1 in enumerate(sr["a1"]):
        for j, a2 in enumerate(sr["a2"]):
            if sr["rows"][i][j] is not None or a1 not in osr["a1"] or a2 not in osr["a2"]:
                continue
            oi, oj = osr["a1"].index(a1), osr["a2"].index(a2)
            mean = osr["rows"][oi][oj]
            if mean is None:
                continue
            sd = o_std[oi][oj] if o_std else None
            sr["rows"][i][j] = round(mean * scale, 4)
            sr["std"][i][j] = None if sd is None else round(sd * scale, 4)
            sr["n_seeds"][i][j] = (o_n[oi][oj] if o_n else None) or 1
            cells.append([a1, a2])
    before = old["meta"].get("carried") or {}
    g["meta"]["carried"] = {"from": str(where), "full_mpgnn_test_rate": old_rate, "cells": cells,
                            **({"carried_before_from": before.get("from")} if before else {})}
    g["targets"] = targets(sr["rows"], sr["a1"], sr["a2"], arch)
    return g


def reproduce(train, test, val, out_dir, *, workers=2, ray_address=None, arch="paper", epochs=30,
              a1s=A1, a2s=A2, seeds=1, paper_path=None, progress=True, sizes_only=False,
              collect_only=False, cells_dir=None, residual: bool = RESIDUAL,
              clip_penalty: float = CLIP_PENALTY, carry_from=None) -> list[Path]:
    """Run the grid and write ``paper_grid.{json,csv,md}`` + heatmaps and the job records
    ``paper_grid_jobs.json`` into ``out_dir``; the cells (checkpoints, ``result.json``) live in
    ``<cells_dir>/grid/`` (default ``out_dir``).

    The report is rewritten after every finished cell (once a full-MPGNN
    reference exists), so a run cut short leaves the cells it measured.
    A job with a matching record in ``out_dir``'s ``paper_grid_jobs.json``
    counts as finished (a fresh checkout resumes from the committed records).
    ``sizes_only`` trains nothing: the size table is filled, sum rates stay
    ``null``. ``collect_only`` trains nothing either but reports every cell
    of the plan that has already finished. ``carry_from`` (an earlier
    ``paper_grid.json`` of the same recipe) fills the cells this run has not
    measured; see :func:`carry`.
    """
    from .grid_report import write_grid_report

    out = Path(out_dir)
    cells = Path(cells_dir) if cells_dir else out
    jobs = [] if sizes_only else plan(train, test, val, cells, arch=arch, epochs=epochs, a1s=a1s, a2s=a2s,
                                      seeds=seeds, residual=residual, clip_penalty=clip_penalty)
    records = load_records(out / JOBS_FILE)
    paper_path = Path(paper_path) if paper_path else Path(__file__).resolve().parents[1] / "reference/paper_tables.json"
    paper = json.loads(paper_path.read_text())
    meta = {"arch": arch, "epochs": None if sizes_only else epochs, "residual": residual,
            "clip_penalty": clip_penalty, "train": str(train), "test": str(test), "jobs_planned": len(jobs)}
    old = None
    if carry_from is not None:
        if sizes_only:
            raise UsageError("--carry needs a run with sum rates, not --sizes-only")
        try:
            old = json.loads(Path(carry_from).read_text())
        except json.JSONDecodeError as e:
            raise InputError(f"--carry {carry_from}: not JSON ({e})") from None
        check_carry(old, meta, carry_from)  # before anything trains
    written: list[Path] = []

    def report(results: list[dict]) -> None:
        if results and not any(r["a1"] is None for r in results):
            return  # ratios need the full-MPGNN reference first
        grid = assemble(results, a1s, a2s, arch=arch, meta={**meta, "jobs_finished": len(results)})
        if old is not None:
            grid = carry(grid, old, carry_from, arch)
        grid_path = write_text(out / "paper_grid.json", json.dumps(grid, indent=2, sort_keys=True) + "\n")
        written[:] = [grid_path, *write_grid_report(grid, paper, out)]
        if results:
            rec = sorted(results, key=lambda r: r["name"])
            written.append(write_text(out / JOBS_FILE, json.dumps({"jobs": rec}, indent=2, sort_keys=True) + "\n"))

    if collect_only:
        done = [r for r in (finished(j, records) for j in jobs) if r is not None]
        if not any(r["a1"] is None for r in done):
            raise InputError(f"no finished full-MPGNN reference cell under {cells / 'grid'} yet: nothing to report")
        report(done)
    elif jobs:
        _check_scene_files(train, val, test)  # before any cell trains: a bad test file would show after the first
        run_jobs(jobs, workers, ray_address, progress, on_result=report, records=records)
    else:
        report([])
    return written


def _check_scene_files(train, val, test) -> None:
    """Every scene file of a run loads (strict validation) and they agree on K and Nt."""
    from .scenes import load as load_scenes

    head = load_scenes(train)
    for path in (val, test):
        if path is not None:
            sc = load_scenes(path)
            if (sc.K, sc.Nt) != (head.K, head.Nt):
                raise InputError(f"{path}: scenes have K={sc.K}, Nt={sc.Nt} but the training scenes {train} "
                                 f"have K={head.K}, Nt={head.Nt}")


SVD_CELLS = ((4, 16), (16, 4), (16, 16), (64, 64))


def svd_study(full_dir, train, val, test, out_dir, *, cells=SVD_CELLS, finetune_epochs: int = 2,
              progress: bool = True) -> list[Path]:
    """Truncate a trained full MPGNN by SVD (no retraining) and after a short
    fine-tune; measure both against the full model on the test scenes.

    Writes ``svd_truncation.json`` and ``svd_truncation.md`` into ``out_dir``.
    """
    from .checkpoint import check_compatible, load as load_ckpt
    from .scenes import load as load_scenes
    from .train import TrainConfig, mean_sum_rate, prepare, train as run_train

    if finetune_epochs < 0:
        raise UsageError(f"--finetune-epochs must be >= 0, got {finetune_epochs}")
    for a1, a2 in cells:
        if min(a1, a2) <= 0:
            raise UsageError(f"ranks must be positive, got a1={a1}, a2={a2}")
    out = Path(out_dir)
    full, _ = load_ckpt(full_dir)
    scenes = {path: load_scenes(path) for path in (train, val, test) if path is not None}
    for path, sc in scenes.items():  # every file checked before anything is written
        check_compatible(full, sc.K, sc.Nt, str(path))
    test_data = prepare(scenes[test], full.cfg.cut_m)
    full_rate = mean_sum_rate(full, test_data)
    rows = []
    for a1, a2 in tqdm(cells, desc="SVD truncation", disable=None if progress else True):
        row = {"a1": a1, "a2": a2}
        for tag, epochs in (("truncated", 0), (f"finetuned_{finetune_epochs}ep", finetune_epochs)):
            cfg = dataclasses.replace(full.cfg, a1=a1, a2=a2)
            ck = run_train(train, out / "svd" / f"a1-{a1}_a2-{a2}_{tag}", cfg,
                           TrainConfig(epochs=epochs, mode="svd", init=str(full_dir)), val_path=val,
                           progress=progress)
            model, _ = load_ckpt(ck)
            rate = mean_sum_rate(model, test_data)
            row[tag] = {"test_rate": rate, "ratio_to_full": rate / full_rate}
        rows.append(row)
    rep = {"full_checkpoint": str(full_dir), "full_test_rate": full_rate, "test": str(test),
           "finetune_epochs": finetune_epochs, "cells": rows}
    ft = f"finetuned_{finetune_epochs}ep"
    md = ["# SVD truncation of the full MPGNN (no retraining vs short fine-tune)", "",
          f"Full MPGNN `{full_dir}`: {full_rate:.3f} bits/s/Hz mean test sum rate on `{test}`.", "",
          f"| a1 | a2 | truncated / full | after {finetune_epochs} fine-tune epochs / full |",
          "| --- | --- | --- | --- |"]
    md += [f"| {r['a1']} | {r['a2']} | {r['truncated']['ratio_to_full']:.4f} | {r[ft]['ratio_to_full']:.4f} |"
           for r in rows]
    return [write_text(out / "svd_truncation.json", json.dumps(rep, indent=2, sort_keys=True) + "\n"),
            write_text(out / "svd_truncation.md", "\n".join(md) + "\n")]
