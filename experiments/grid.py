"""The paper's rank grid: train and measure LR-MPGNN for every (a1, a2).

Each cell is an independent job ``run_cell(CellJob) -> dict`` that trains one
model into ``<out>/grid/<name>/`` and writes ``result.json`` there; a cell
whose ``result.json`` matches its job is skipped on a rerun. Jobs run in a
local process pool (``jobs`` workers, one torch thread each) or, with
``ray_address``, as Ray tasks on a cluster (``pip install tinyrrm[ray]``).

``reproduce`` folds the results into ``paper_grid.json`` in the schema of
``reference/paper_tables.json`` (``tables``) plus CSV/markdown/heatmaps
(``grid_report``), and every job's result record goes into
``paper_grid_jobs.json`` beside it. The cell folders hold checkpoints and stay
out of git; the records file is small and committed, so a fresh checkout
resumes or extends the grid from it (a job whose record matches is not trained
again) and every figure of the report can be recomputed from it.  A report can
also *carry* cells measured by an earlier run whose records are gone
(``carry``). Where a run stands and how long it has left: ``pace``.
"""

from __future__ import annotations

import dataclasses
import json
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from tinyrrm import paths
from tinyrrm.errors import InputError, UsageError
from tinyrrm.training.checkpoint import load as load_ckpt
from tinyrrm.training.fileio import write_text
from tinyrrm.training.models import ModelConfig, model_bytes
from tinyrrm.training.scenes import load as load_scenes
from tinyrrm.training.train import TrainConfig, mean_sum_rate, prepare
from tinyrrm.training.train import train as run_train

from .carry import carry, check_carry
from .grid_report import write_grid_report
from .tables import A1, A2, assemble, size_ratios

#: the grid's update form: the paper's plain one. At 30 epochs it is at least as good as our
#: residual one in every cell probed and far better with a rank-4 update net (docs/DESIGN-NOTES.md §5)
RESIDUAL = False
#: weight of the clip penalty (train.py): a plain update that starts beyond unit power, where the
#: power scaling is flat, can stay there; (32, 4) did for 20+ epochs without it (docs/DESIGN-NOTES.md §5)
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
    batch: int = 8  # 250 steps an epoch: batch 32 (63) stayed at MRT for 7+ epochs (docs/DESIGN-NOTES.md §4)
    lr: float = 1e-3
    lr_final: float | None = 1e-5
    residual: bool = True  # False: the paper's plain update v <- P(f_upd(...)) (docs/DESIGN-NOTES.md §2)
    clip_penalty: float = 0.0  # train.py's loss term on update outputs beyond unit power

    @property
    def name(self) -> str:
        kind = "full" if self.a1 is None else f"a1-{self.a1}_a2-{self.a2}"
        return (
            f"{kind}_seed-{self.seed}"
            + ("" if self.residual else "_plain")
            + (f"_clip{self.clip_penalty:g}" if self.clip_penalty else "")
        )


@dataclass(frozen=True)
class Recipe:
    """What a grid run trains and measures: the scene files, the widths, the cells, the seeds and
    the training settings. :func:`plan` turns it into jobs; ``tinyrrm reproduce`` builds one."""

    train: str
    test: str
    val: str | None
    arch: str = "paper"
    epochs: int = 30
    a1s: tuple[int, ...] = A1
    a2s: tuple[int, ...] = A2
    seeds: int = 1
    #: cells measured over more seeds than ``seeds``
    multi_seed: dict = dataclasses.field(default_factory=lambda: dict(MULTI_SEED))
    residual: bool = RESIDUAL
    clip_penalty: float = CLIP_PENALTY


def run_cell(job: CellJob, progress: bool = False) -> dict:
    """Train one cell (or reuse its finished result) and measure it on the test scenes."""
    torch.set_num_threads(1)
    folder = Path(job.out) / "grid" / job.name
    result_path = folder / "result.json"
    done = finished(job)
    if done is not None:
        return done
    head = load_scenes(job.train)
    mcfg = ModelConfig(arch=job.arch, K=head.K, Nt=head.Nt, a1=job.a1, a2=job.a2, residual=job.residual)
    tcfg = TrainConfig(
        epochs=job.epochs,
        batch=job.batch,
        lr=job.lr,
        lr_final=job.lr_final,
        seed=job.seed,
        clip_penalty=job.clip_penalty,
    )
    ck = run_train(job.train, folder, mcfg, tcfg, val_path=job.val, progress=progress)
    model, _ = load_ckpt(ck)
    rate = mean_sum_rate(model, prepare(load_scenes(job.test), mcfg.cut_m))
    res = {
        "job": dataclasses.asdict(job),
        "name": job.name,
        "a1": job.a1,
        "a2": job.a2,
        "seed": job.seed,
        "test_rate": rate,
        "bytes_fp32": model_bytes(model),
        "bytes_int8": model_bytes(model, "int8"),
    }
    write_text(result_path, json.dumps(res, indent=2, sort_keys=True) + "\n")
    return res


def plan(recipe: Recipe, out) -> list[CellJob]:
    """All jobs of a grid run: full MPGNN references (one per seed) and every cell.

    The first full reference, then the cells from the smallest model to the largest, each with
    all its seeds, then the other full references.
    """
    r = recipe
    base = dict(
        train=str(r.train),
        val=None if r.val is None else str(r.val),
        test=str(r.test),
        out=str(out),
        arch=r.arch,
        epochs=r.epochs,
        residual=r.residual,
        clip_penalty=r.clip_penalty,
    )
    a1s, a2s, seeds, multi_seed = r.a1s, r.a2s, r.seeds, r.multi_seed
    n_seeds = max([seeds, *[n for (a, b), n in multi_seed.items() if a in a1s and b in a2s]] or [seeds])
    # smallest model first: the cells a deployment can choose from (int8 bytes 60x below the
    # full fp32 MPGNN) are the smallest ones, and they are the cheapest to train; their extra
    # seeds come with them (the spread is part of that choice), the full model's extra seeds
    # (the dearest jobs, which move every ratio by a shared factor only) last
    ratio = size_ratios(r.arch, a1s, a2s)
    cells = sorted(((a1, a2) for a1 in a1s for a2 in a2s), key=lambda c: (-ratio[a1s.index(c[0])][a2s.index(c[1])], c))
    jobs = [CellJob(None, None, 0, **base)]
    for a1, a2 in cells:
        jobs += [CellJob(a1, a2, s, **base) for s in range(max(seeds, multi_seed.get((a1, a2), 1)))]
    jobs += [CellJob(None, None, s, **base) for s in range(1, n_seeds)]
    return jobs


def _matches(record: dict, job: CellJob) -> bool:
    stored = {
        "residual": True,
        "clip_penalty": 0.0,
        **(record.get("job") or {}),
    }  # cells finished before the fields existed
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
        raise InputError(
            f'{path}: not a grid job-records file (want {{"jobs": [{{"job": ..., '
            f'"test_rate": ...}}, ...]}}); move it away to start without it'
        ) from None
    return records


def run_jobs(
    jobs: list,
    workers: int = 2,
    ray_address: str | None = None,
    progress: bool = True,
    on_result=None,
    records: list[dict] = (),
    run=run_cell,
    done=finished,
) -> list[dict]:
    """Results of ``jobs`` (finished cells and matching ``records`` reused);
    ``on_result(results_so_far)`` after each one.

    ``run(job) -> dict`` does a job and ``done(job, records) -> dict | None`` finds its stored
    result: the grid's cells by default, any picklable job and top-level functions otherwise
    (the deployment front's).

    Finished cells are read here, before anything trains, and reported at once: a pool works
    through the jobs in plan order, and a finished cell queued behind one that trains for
    half an hour would otherwise drop out of the report until the pool reached it.
    """
    stored = [done(j, records) for j in jobs]
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
        remote = ray.remote(num_cpus=1)(run)
        refs = [remote.remote(j) for j in jobs]
        with tqdm(
            total=n_all, initial=len(results), desc="grid cells (ray)", disable=None if progress else True
        ) as bar:
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
                add(run(j))
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                for fut in as_completed([pool.submit(run, j) for j in jobs]):
                    add(fut.result())
                    bar.update()
    return results


def reproduce(
    recipe: Recipe,
    out_dir,
    *,
    workers=2,
    ray_address=None,
    paper_path=None,
    progress=True,
    sizes_only=False,
    collect_only=False,
    cells_dir=None,
    carry_from=None,
) -> list[Path]:
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
    measured; see :func:`carry.carry`.
    """
    out = Path(out_dir)
    cells = Path(cells_dir) if cells_dir else out
    jobs = [] if sizes_only else plan(recipe, cells)
    train, test, val, arch, a1s, a2s = recipe.train, recipe.test, recipe.val, recipe.arch, recipe.a1s, recipe.a2s
    records = load_records(out / JOBS_FILE)
    paper_path = Path(paper_path) if paper_path else paths.PAPER_TABLES
    paper = json.loads(paper_path.read_text())
    meta = {
        "arch": arch,
        "epochs": None if sizes_only else recipe.epochs,
        "residual": recipe.residual,
        "clip_penalty": recipe.clip_penalty,
        "train": str(train),
        "test": str(test),
        "jobs_planned": len(jobs),
    }
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
    head = load_scenes(train)
    for path in (val, test):
        if path is not None:
            sc = load_scenes(path)
            if (sc.K, sc.Nt) != (head.K, head.Nt):
                raise InputError(
                    f"{path}: scenes have K={sc.K}, Nt={sc.Nt} but the training scenes {train} "
                    f"have K={head.K}, Nt={head.Nt}"
                )
