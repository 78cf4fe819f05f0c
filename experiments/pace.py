"""Where a grid run stands and how long the rest will take: each job's epochs and pace, a
timing model fitted to the jobs timed so far, and the wall time simulated in the pool's order
(``tinyrrm reproduce --status``).

It reads the cells' folders (``train_state.pt``'s history, ``result.json``) and the committed
job records; it trains nothing and writes nothing.
"""

from __future__ import annotations

import heapq
from pathlib import Path

import numpy as np
import torch

from tinyrrm.training.train import STATE

from .grid import CellJob, finished


def status(jobs: list[CellJob], records: list[dict] = ()) -> dict:
    """Where a grid run stands: per job its state (``done``, ``started``, ``waiting``), epochs,
    best validation rate, seconds per epoch; and the CPU time left: a started job at its own
    pace, a waiting one at the pace ``epoch_seconds`` fits to the jobs timed so far."""
    rows = []
    for job in jobs:
        folder = Path(job.out) / "grid" / job.name
        row = {
            "name": job.name,
            "a1": job.a1,
            "a2": job.a2,
            "seed": job.seed,
            "epochs": 0,
            "of": job.epochs,
            "val_rate": None,
            "s_per_epoch": None,
            "test_rate": None,
        }
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
                row.update(epochs=len(hist), val_rate=max(vals) if vals else None, s_per_epoch=sum(secs) / len(secs))
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
    return {
        "jobs": rows,
        "done": sum(r["state"] == "done" for r in rows),
        "total": len(rows),
        "cpu_hours_left": left / 3600,
        "jobs_without_estimate": unknown,
    }


def epoch_seconds(timed: list[dict]):
    """A pace model ``(a1, a2) -> seconds per epoch`` (None: nothing to go by) fitted to timed jobs.

    ``timed``: rows with ``a1``, ``a2`` and ``s_per_epoch``. The full MPGNN (a1 = a2 = None) is
    paced by its own runs. A low-rank cell is paced by ``alpha[a1] + beta * a2``, least squares
    over the timed cells: the update net's rank-a2 products run per node over ``d_in + d_out =
    3656`` (``paper``) and grow linearly with a2 (a2 = 512 costs about three times a2 = 16 on this
    machine), while the message rank mostly sets a constant (msg2 runs over h1 = 16 features,
    merged into one product from a1 = 16 on; docs/DESIGN-NOTES.md §3). With a single a2 timed, beta is 0;
    a fitted slope below 0 (noise) is taken as 0; an a1 not timed yet gets the mean intercept.
    """
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
        out.append(
            f"{r['name']:<{w}} {r['state']:<8} {str(r['epochs']) + '/' + str(r['of']):>7} "
            f"{f(r['val_rate'], '9.2f')} {f(r['s_per_epoch'], '8.0f')} {f(r['test_rate'], '8.2f')}"
        )
    tail = f"{st['done']}/{st['total']} jobs done; about {st['cpu_hours_left']:.1f} CPU-hours left"
    if workers:
        tail += f", {wall_hours(st, workers):.1f} h of wall time at --jobs {workers}"
    if st["jobs_without_estimate"]:
        tail += f" (+ {st['jobs_without_estimate']} jobs not timed yet)"
    out.append(tail)
    return "\n".join(out)
