"""The rank grid: jobs, skipping finished cells, assembly into the paper's schema."""

import json

import pytest

from tinyrrm.experiments import carry, grid, pace, tables
from tinyrrm.experiments.grid_report import validate_grid
from tinyrrm.experiments.svd_study import svd_study


def test_plan_covers_grid_and_seeds(tmp_path):
    jobs = grid.plan(grid.Recipe("tr.npz", "te.npz", None, a1s=(4, 16), a2s=(4, 8)), tmp_path)
    names = [j.name for j in jobs]
    assert len(set(names)) == len(names)
    # (4,4) and (16,4) take 3 seeds, so there are 3 full references too
    assert sum(j.a1 is None for j in jobs) == 3
    assert sum((j.a1, j.a2) == (16, 4) for j in jobs) == 3
    assert sum((j.a1, j.a2) == (16, 8) for j in jobs) == 1
    # smallest model first (the deployment candidates), so (16, 4) before (4, 16), each cell with
    # all its seeds; the full model's extra seeds last
    jobs = grid.plan(grid.Recipe("tr.npz", "te.npz", None, a1s=(4, 16), a2s=(4, 16)), tmp_path)
    assert [(j.a1, j.a2, j.seed) for j in jobs] == [
        (None, None, 0),
        (4, 4, 0),
        (4, 4, 1),
        (4, 4, 2),
        (16, 4, 0),
        (16, 4, 1),
        (16, 4, 2),
        (4, 16, 0),
        (4, 16, 1),
        (4, 16, 2),
        (16, 16, 0),
        (None, None, 1),
        (None, None, 2),
    ]
    sizes = tables.size_ratios("paper", (4, 16), (4, 16))
    assert sizes[0][0] > sizes[1][0] > sizes[0][1] > sizes[1][1]


def test_grid_runs_skips_and_assembles(tiny_data, tmp_path):
    jobs = grid.plan(
        grid.Recipe(
            tiny_data["train"],
            tiny_data["test"],
            tiny_data["val"],
            arch="tiny",
            epochs=1,
            a1s=(2,),
            a2s=(2, 3),
            multi_seed={(2, 2): 2},
        ),
        tmp_path,
    )
    res = grid.run_jobs(jobs, workers=1, progress=False)
    assert len(res) == len(jobs) == 2 + 3
    stamp = (tmp_path / "grid" / jobs[-1].name / "result.json").stat().st_mtime_ns
    again = grid.run_jobs(jobs, workers=1, progress=False)  # finished cells are reused
    assert (tmp_path / "grid" / jobs[-1].name / "result.json").stat().st_mtime_ns == stamp
    assert sorted(r["name"] for r in again) == sorted(r["name"] for r in res)
    g = tables.assemble(res, a1s=(2,), a2s=(2, 3), arch="tiny")
    validate_grid(g)
    assert g["sum_rate_ratio"]["n_seeds"] == [[2, 1]]
    assert g["sum_rate_ratio"]["std"][0][0] is not None and g["sum_rate_ratio"]["std"][0][1] is None
    full = [r for r in res if r["a1"] is None]
    cell = [r for r in res if (r["a1"], r["a2"]) == (2, 3)][0]
    assert g["sum_rate_ratio"]["rows"][0][1] == pytest.approx(
        cell["test_rate"] / (sum(r["test_rate"] for r in full) / len(full)), abs=1e-4
    )
    assert g["model_size_ratio"]["rows"][0][1] == pytest.approx(full[0]["bytes_fp32"] / cell["bytes_fp32"], abs=1e-4)


@pytest.mark.slow
def test_reproduce_writes_report(tiny_data, tmp_path):
    paths = grid.reproduce(
        grid.Recipe(tiny_data["train"], tiny_data["test"], None, arch="tiny", epochs=1, a1s=(2,), a2s=(2,)),
        tmp_path,
        workers=1,
        progress=False,
    )
    names = {p.name for p in paths}
    assert {"paper_grid.json", "paper_grid.csv", "paper_grid.md", "paper_grid_size.png"} <= names
    g = json.loads((tmp_path / "paper_grid.json").read_text())
    assert g["sum_rate_ratio"]["a1"] == [2]


@pytest.mark.slow
def test_cut_short_grid_reports_what_finished(tiny_data, tmp_path):
    """Each cell with its seeds, the full model's extra seeds last; --collect reports finished cells only."""
    kw = dict(arch="tiny", epochs=1, a1s=(2,), a2s=(2, 3))
    jobs = grid.plan(grid.Recipe(tiny_data["train"], tiny_data["test"], None, multi_seed={(2, 2): 2}, **kw), tmp_path)
    assert [(j.a1, j.a2, j.seed) for j in jobs] == [(None, None, 0), (2, 2, 0), (2, 2, 1), (2, 3, 0), (None, None, 1)]
    with pytest.raises(ValueError, match="no finished full-MPGNN"):
        grid.reproduce(
            grid.Recipe(tiny_data["train"], tiny_data["test"], None, **kw), tmp_path, collect_only=True, progress=False
        )
    grid.run_jobs(jobs[:1] + jobs[3:4], workers=1, progress=False)  # the full reference and cell (2, 3)
    grid.reproduce(
        grid.Recipe(tiny_data["train"], tiny_data["test"], None, **kw), tmp_path, collect_only=True, progress=False
    )
    g = json.loads((tmp_path / "paper_grid.json").read_text())
    assert g["sum_rate_ratio"]["rows"][0][0] is None and g["sum_rate_ratio"]["rows"][0][1] is not None
    assert g["meta"]["jobs_finished"] == 2 and g["meta"]["jobs_planned"] == 3
    assert not (tmp_path / "grid" / jobs[1].name).exists()  # collecting trained nothing


def test_finished_cells_are_reported_before_anything_trains(tiny_data, tmp_path):
    """A finished cell queued behind an unfinished one is in the very first report."""
    kw = dict(arch="tiny", epochs=1, a1s=(2,), a2s=(2, 3), multi_seed={(2, 2): 2})
    jobs = grid.plan(grid.Recipe(tiny_data["train"], tiny_data["test"], None, **kw), tmp_path)
    grid.run_jobs([jobs[0], jobs[3]], workers=1, progress=False)  # the full reference and cell (2, 3)
    reports = []
    res = grid.run_jobs(jobs, workers=1, progress=False, on_result=lambda r: reports.append([x["name"] for x in r]))
    assert reports[0] == [jobs[0].name, jobs[3].name]
    assert len(reports) == 1 + 3 and sorted(x["name"] for x in res) == sorted(j.name for j in jobs)


def test_ray_missing_is_a_clear_error(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_ray(name, *a, **k):
        if name == "ray":
            raise ImportError("no ray")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(ValueError, match="tinyrrm\\[ray\\]"):
        grid.run_jobs([], ray_address="127.0.0.1:6379")


def test_svd_study_reports_truncation_and_finetune(tiny_data, tiny_ckpts, tmp_path):
    paths = svd_study(
        tiny_ckpts["full"],
        tiny_data["train"],
        tiny_data["val"],
        tiny_data["test"],
        tmp_path,
        cells=((2, 2), (8, 8)),
        finetune_epochs=1,
        progress=False,
    )
    rep = json.loads(paths[0].read_text())
    big = rep["cells"][1]
    # rank 8 >= every layer's min(d_in, d_out) of the tiny widths: truncation is exact
    assert big["truncated"]["ratio_to_full"] == pytest.approx(1.0, abs=1e-5)
    assert abs(rep["cells"][0]["truncated"]["ratio_to_full"] - 1.0) > 1e-4  # rank 2 is lossy
    assert "finetuned_1ep" in big and "| 2 | 2 |" in paths[1].read_text()


@pytest.mark.slow
def test_sizes_only_report_trains_nothing(tmp_path):
    paths = grid.reproduce(grid.Recipe("unused.npz", "unused.npz", None), tmp_path, sizes_only=True, progress=False)
    g = json.loads(paths[0].read_text())
    assert g["sum_rate_ratio"]["rows"][0] == [None] * 7
    assert g["model_size_ratio"]["rows"][0][0] == pytest.approx(55.31, abs=0.01)  # paper: 58.82
    assert not (tmp_path / "grid").exists()


def test_targets_name_failing_cells_and_the_deployment_pick():
    a1s, a2s = (4, 16), (4, 16, 32)
    mean = [[0.90, 0.98, None], [0.99, 0.96, 0.975]]
    t = tables.targets(mean, a1s, a2s, arch="paper")
    wide = t["a1_a2_ge_16"]
    assert (wide["cells"], wide["measured"], wide["passing"]) == (2, 2, 1)
    assert wide["failing"] == [[16, 16, 0.96]]
    assert t["a1_4_a2_4"] == {"threshold": 0.95, "ratio": 0.90, "pass": False}
    dep = t["deployment"]
    # only (4, 4), (4, 16), (16, 4) are 60x below the fp32 full MPGNN in int8 (docs/DESIGN-NOTES.md §6)
    assert [(c["a1"], c["a2"]) for c in dep["candidates"]] == [(4, 4), (4, 16), (16, 4)]
    assert all(c["int8_shrink"] >= 60 for c in dep["candidates"])
    assert dep["best"] == [16, 4] and dep["all_measured"]
    mean[1][0] = None
    assert tables.targets(mean, a1s, a2s)["deployment"]["best"] == [4, 16]


def test_status_shows_done_started_and_waiting_jobs(tiny_data, tmp_path):
    jobs = grid.plan(
        grid.Recipe(
            tiny_data["train"], tiny_data["test"], None, arch="tiny", epochs=2, a1s=(2,), a2s=(2, 3), multi_seed={}
        ),
        tmp_path,
    )
    grid.run_jobs(jobs[:2], workers=1, progress=False)  # the full reference and (2, 2)
    st = pace.status(jobs)
    assert [r["state"] for r in st["jobs"]] == ["done", "done", "waiting"]
    assert st["jobs"][1]["epochs"] == 2 and st["jobs"][1]["s_per_epoch"] > 0 and st["jobs"][1]["test_rate"] > 0
    # (2, 3): one update rank timed so far, so no slope; its two epochs are paced by (2, 2)'s
    assert st["cpu_hours_left"] * 3600 == pytest.approx(2 * st["jobs"][1]["s_per_epoch"])
    assert st["jobs_without_estimate"] == 0
    text = pace.format_status(st, workers=2)
    assert "2/3 jobs done" in text and "a1-2_a2-3_seed-0" in text and "h of wall time at --jobs 2" in text


def test_epoch_seconds_fits_the_update_rank_slope_and_the_message_rank_intercepts():
    row = lambda a1, a2, t: {"a1": a1, "a2": a2, "s_per_epoch": t}  # noqa: E731
    timed = [
        row(4, 4, 40 + 0.25 * 4),
        row(4, 128, 40 + 0.25 * 128),
        row(16, 16, 50 + 0.25 * 16),
        row(None, None, 100.0),
        row(None, None, 110.0),
    ]
    fit = pace.epoch_seconds(timed)
    assert fit(4, 512) == pytest.approx(40 + 0.25 * 512)  # extrapolated along the fitted slope
    assert fit(16, 256) == pytest.approx(50 + 0.25 * 256)
    assert fit(64, 4) == pytest.approx(45 + 0.25 * 4)  # an a1 not timed yet: the mean intercept
    assert fit(None, None) == pytest.approx(105.0)  # the full MPGNN by its own runs
    # a slope below 0 is noise: flat at each a1's mean
    flat = pace.epoch_seconds([row(4, 4, 60.0), row(4, 64, 50.0)])
    assert flat(4, 512) == pytest.approx(55.0)
    nothing = pace.epoch_seconds([])
    assert nothing(4, 4) is None and nothing(None, None) is None


def test_wall_hours_follow_the_pools_order():
    """Started jobs hold their workers; waiting ones take the first worker to come free, in plan order."""
    job = lambda state, h: {"state": state, "seconds_left": None if h is None else h * 3600.0}  # noqa: E731
    st = {
        "jobs": [
            job("done", 0),
            job("waiting", 1),
            job("started", 3),
            job("waiting", 2),
            job("started", 0.5),
            job("waiting", None),
        ]
    }
    # workers: [3, 0.5] -> the 1 h job on the second (1.5), then the 2 h job on it (3.5); the untimed counts 0
    assert pace.wall_hours(st, 2) == pytest.approx(3.5)
    assert pace.wall_hours(st, 1) == pytest.approx(6.5)
    assert pace.wall_hours(st, 8) == pytest.approx(3.0)


@pytest.mark.slow
def test_grid_runs_on_a_local_ray_cluster(tiny_data, tmp_path):
    """--ray ADDRESS for real: a local Ray instance runs the cells; results match the job plan."""
    import ray

    jobs = grid.plan(
        grid.Recipe(
            tiny_data["train"], tiny_data["test"], None, arch="tiny", epochs=1, a1s=(2,), a2s=(2, 3), multi_seed={}
        ),
        tmp_path,
    )
    try:
        res = grid.run_jobs(jobs, ray_address="local", progress=False)
    finally:
        ray.shutdown()
    assert sorted(r["name"] for r in res) == sorted(j.name for j in jobs)
    assert all((tmp_path / "grid" / j.name / "result.json").is_file() for j in jobs)
    assert all(r["test_rate"] > 0 for r in res)


def test_plain_update_cells_are_their_own_jobs(tiny_data, tmp_path):
    """Plain and residual cells are separate jobs (*_plain); results stored before the field existed count
    as residual."""
    kw = dict(arch="tiny", epochs=1, a1s=(2,), a2s=(2,), multi_seed={})
    res_jobs = grid.plan(
        grid.Recipe(tiny_data["train"], tiny_data["test"], None, residual=True, clip_penalty=0.0, **kw), tmp_path
    )
    plain = grid.plan(
        grid.Recipe(tiny_data["train"], tiny_data["test"], None, residual=False, clip_penalty=0.0, **kw), tmp_path
    )
    assert [j.name for j in plain] == ["full_seed-0_plain", "a1-2_a2-2_seed-0_plain"]
    grid.run_jobs(res_jobs, workers=1, progress=False)
    assert all(grid.finished(j) is None for j in plain)
    path = tmp_path / "grid" / res_jobs[1].name / "result.json"
    doc = json.loads(path.read_text())
    assert doc["job"].pop("residual") is True
    path.write_text(json.dumps(doc))
    assert grid.finished(res_jobs[1]) is not None
    from tinyrrm.training.checkpoint import load

    r = grid.run_jobs(plain[1:], workers=1, progress=False)[0]
    assert r["name"] == "a1-2_a2-2_seed-0_plain"
    assert load(tmp_path / "grid" / r["name"])[0].cfg.residual is False


def test_clip_penalty_cells_are_their_own_jobs(tiny_data, tmp_path):
    """The grid's default recipe trains with the clip penalty in cells of their own (*_clip0.1);
    results stored before the field existed count as trained without it."""
    kw = dict(arch="tiny", epochs=1, a1s=(2,), a2s=(4,), multi_seed={}, residual=False)
    clip = grid.plan(grid.Recipe(tiny_data["train"], tiny_data["test"], None, **kw), tmp_path)
    bare = grid.plan(grid.Recipe(tiny_data["train"], tiny_data["test"], None, clip_penalty=0.0, **kw), tmp_path)
    assert grid.CLIP_PENALTY == 0.1 and [j.name for j in clip] == [
        "full_seed-0_plain_clip0.1",
        "a1-2_a2-4_seed-0_plain_clip0.1",
    ]
    r = grid.run_jobs(bare[1:], workers=1, progress=False)[0]
    path = tmp_path / "grid" / r["name"] / "result.json"
    doc = json.loads(path.read_text())
    assert doc["job"].pop("clip_penalty") == 0.0
    path.write_text(json.dumps(doc))
    assert grid.finished(bare[1]) is not None and grid.finished(clip[1]) is None
    r = grid.run_jobs(clip[1:], workers=1, progress=False)[0]
    from tinyrrm.training.checkpoint import load

    assert load(tmp_path / "grid" / r["name"])[1]["train"]["clip_penalty"] == 0.1


@pytest.mark.slow
def test_job_records_let_a_fresh_checkout_resume(tiny_data, tmp_path, monkeypatch):
    """paper_grid_jobs.json (committed beside the report) stands in for the cell folders (not committed)."""
    import shutil

    recipe = grid.Recipe(tiny_data["train"], tiny_data["test"], None, arch="tiny", epochs=1, a1s=(2,), a2s=(2, 3))
    run = dict(workers=1, progress=False)
    out, cells = tmp_path / "reports", tmp_path / "runs"
    grid.reproduce(recipe, out, cells_dir=cells, **run)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    records = grid.load_records(out / grid.JOBS_FILE)
    assert sorted(r["name"] for r in records) == sorted(j.name for j in grid.plan(recipe, cells))
    shutil.rmtree(cells)  # a fresh checkout: no checkpoints, no result.json

    def no_training(job, progress=False):
        raise AssertionError(f"{job.name} trained again")

    monkeypatch.setattr(grid, "run_cell", no_training)
    grid.reproduce(recipe, out, cells_dir=cells, **run)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    st = pace.status(
        grid.plan(recipe, cells),
        records,
    )
    assert st["done"] == st["total"]
    # a job of another recipe does not match a record
    other = grid.plan(
        grid.Recipe(tiny_data["train"], tiny_data["test"], None, arch="tiny", epochs=2, a1s=(2,), a2s=(2,)), cells
    )
    assert all(grid.finished(j, records) is None for j in other)
    (out / grid.JOBS_FILE).write_text('{"cells": []}')
    with pytest.raises(ValueError, match="not a grid job-records file"):
        grid.reproduce(recipe, out, cells_dir=cells, **run)


def _fake_grid(cells: dict, full_rate: float, meta=None, a1s=(2,), a2s=(2, 3)):
    results = [{"a1": None, "a2": None, "test_rate": full_rate}]
    results += [{"a1": a1, "a2": a2, "test_rate": r * full_rate} for (a1, a2), rs in cells.items() for r in rs]
    base = {"arch": "tiny", "epochs": 1, "residual": False, "clip_penalty": 0.1, "train": "tr", "test": "te"}
    return tables.assemble(results, a1s, a2s, meta={**base, **(meta or {})}, arch="tiny")


def test_carry_fills_unmeasured_cells_rescaled_and_marks_them(tmp_path):
    from tinyrrm.experiments.grid_report import write_grid_report

    old = _fake_grid({(2, 2): [0.5], (2, 3): [0.94, 0.95, 0.96]}, full_rate=110.0)
    new = _fake_grid({(2, 2): [0.98]}, full_rate=100.0)
    carry.check_carry(old, new["meta"], "old.json")
    g = carry.carry(new, old, "old.json", arch="tiny")
    validate_grid(g)
    sr = g["sum_rate_ratio"]
    assert sr["rows"][0] == [0.98, round(0.95 * 1.1, 4)]  # measured cell kept, carried one rescaled 110/100
    assert sr["std"][0] == [None, round(0.01 * 1.1, 4)] and sr["n_seeds"][0] == [1, 3]
    assert g["meta"]["carried"] == {"from": "old.json", "full_mpgnn_test_rate": 110.0, "cells": [[2, 3]]}
    assert new["sum_rate_ratio"]["rows"][0][1] is None  # the input is not changed
    assert g["targets"] == tables.targets(sr["rows"], (2,), (2, 3), "tiny")
    paper = {k: {**g[k], "rows": [[None, None]]} for k in ("model_size_ratio", "sum_rate_ratio")}
    md = [p for p in write_grid_report(g, paper, tmp_path) if p.suffix == ".md"][0].read_text()
    assert "Carried from `old.json`" in md and "1 cells, (2, 3)." in md


@pytest.mark.parametrize(
    "meta, match",
    [
        ({"epochs": 2}, "epochs 1 there, 2 here"),
        ({"test": "other.npz"}, "test 'te' there, 'other.npz' here"),
        ({"clip_penalty": 0.0}, "clip_penalty"),
    ],
)
def test_carry_refuses_cells_of_another_recipe(meta, match):
    old = _fake_grid({(2, 3): [0.95]}, full_rate=110.0)
    new = _fake_grid({}, full_rate=100.0, meta=meta)
    with pytest.raises(ValueError, match=f"another grid run .*{match}"):
        carry.check_carry(old, new["meta"], "old.json")


def test_reproduce_checks_the_carried_report_before_training(tiny_data, tmp_path):
    bad = tmp_path / "old.json"
    bad.write_text(json.dumps(_fake_grid({(2, 3): [0.95]}, full_rate=110.0, meta={"epochs": 5})))
    with pytest.raises(ValueError, match="another grid run"):
        grid.reproduce(
            grid.Recipe(tiny_data["train"], tiny_data["test"], None, arch="tiny", epochs=1, a1s=(2,), a2s=(2,)),
            tmp_path / "out",
            workers=1,
            progress=False,
            cells_dir=tmp_path / "runs",
            carry_from=bad,
        )
    assert not (tmp_path / "runs").exists() and not (tmp_path / "out").exists()


def test_the_library_never_imports_the_experiments():
    """tinyrrm.experiments uses the library; training/ and export/ stand without it."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    for path in [*(root / "training").glob("*.py"), *(root / "export").glob("*.py")]:
        tree = ast.parse(path.read_text(), str(path))
        names = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        names += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        assert not [n for n in names if "experiments" in n.split(".")], path
