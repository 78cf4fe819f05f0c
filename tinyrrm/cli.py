"""``tinyrrm`` command line: a thin layer over the stage functions.

Every command maps its options onto one stage call; errors the user can fix
(bad scene files, mismatched checkpoints, bad ranks) become one line on stderr
and exit code 2, with nothing half-written.
"""

from __future__ import annotations

import enum
import functools
import json
import sys
from pathlib import Path

import typer
from typer.core import TyperGroup

from tinyrrm import paths
from tinyrrm.codegen import targets as _targets  # the target table only: no torch, no TensorFlow
from tinyrrm.errors import InputError, TinyrrmError, UsageError


def _choices(name: str, values) -> type[enum.StrEnum]:
    """The choices of one option: typer checks them before the command runs. Each holds the
    names of one stage's table (a test keeps them equal); the stages are imported only inside
    the commands, so a bad choice fails before torch or TensorFlow is loaded."""
    return enum.StrEnum(name, {v: v for v in values})


TargetName = _choices("TargetName", _targets.TARGETS)  # the target table itself
Backend = _choices("Backend", ("torch", "onnx", "tflite", "tflite_fp32", "tflm", "c", "qemu"))  # evaluate.BACKENDS
Arch = _choices("Arch", ("shen", "paper", "tiny", "small", "mid"))  # models.ARCHS
SceneMode = _choices("SceneMode", ("geometric", "iid"))  # scenes.MODES
TrainMode = _choices("TrainMode", ("scratch", "svd", "finetune"))  # TrainConfig.mode
BenchPart = _choices("BenchPart", ("train", "export", "codegen", "firmware"))  # the parts of `bench`
Policy = _choices("Policy", ("lrmpgnn", "wmmse"))  # evaluate: the learned models, or WMMSE as generated C


class _Group(TyperGroup):
    """The app's command group: a bad option value (an unknown ``--target``, a ``--n`` that
    is not a number, a missing option) is one error line and exit 2, like every user error,
    not click's usage box."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except typer.BadParameter as e:  # typer's own click
            # the validator's "Value error, " names its exception class, not what is wrong
            typer.echo(f"tinyrrm: error: {e.format_message().replace(': Value error, ', ': ')}", err=True)
            raise typer.Exit(2) from None


app = typer.Typer(cls=_Group, add_completion=False, no_args_is_help=True, help=__doc__.splitlines()[0])


#: errors of opening, reading or writing the user's own files: one line, like a TinyrrmError
FILE_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError)


def _user_errors(fn):
    """Turn the errors a user can fix into ``tinyrrm: error: …`` + exit 2.

    User-facing: every :class:`~tinyrrm.errors.TinyrrmError` (bad options, scene files,
    checkpoints, exports, a model that does not fit, a compiler or a target that fails) and
    :data:`FILE_ERRORS`. The error is one line; a compiler's own output, when there is one,
    follows it indented. Any other exception is a bug and keeps its traceback.
    """

    @functools.wraps(fn)
    def wrapper(*a, **kw):
        try:
            return fn(*a, **kw)
        except (TinyrrmError, *FILE_ERRORS) as e:
            head, *rest = (str(e).strip() or type(e).__name__).splitlines()
            typer.echo(f"tinyrrm: error: {head}", err=True)
            for line in rest:
                typer.echo(f"    {line}", err=True)
            raise typer.Exit(2) from None

    return wrapper


def _cut(value: float | None) -> None:
    if value is not None and not 0 <= value < float("inf"):
        raise UsageError(f"--cut must be a distance >= 0 metres (0: no cut), got {value}")


def _rank(value: int | None, name: str) -> int | None:
    if value is not None and value <= 0:
        raise UsageError(f"--{name} must be a positive rank, got {value}")
    return value


@app.command()
@_user_errors
def scenes(
    out: Path = typer.Option(..., "--out", help="scene file to write (.npz)"),
    n: int = typer.Option(500, "--n", help="number of scenes"),
    K: int = typer.Option(50, "--K", help="transceiver pairs"),
    Nt: int = typer.Option(2, "--Nt", help="transmit antennas"),
    seed: int = typer.Option(1, "--seed"),
    mode: SceneMode = typer.Option(SceneMode.geometric, "--mode"),
):
    """Generate scenes (channels) and write a scene file."""
    from tinyrrm.training import scenes as sc
    from tinyrrm.training.fileio import check_out_file

    check_out_file(out)
    s = sc.generate(n, K, Nt, seed, mode.value)
    path = sc.save(s, out)
    typer.echo(f"wrote {path}: {s.N} scenes, K={s.K}, Nt={s.Nt}, mode={mode.value}, seed={seed}")


@app.command()
@_user_errors
def train(
    scenes: Path = typer.Option(..., "--scenes", help="training scene file"),
    out: Path = typer.Option(..., "--out", help="checkpoint folder to write"),
    arch: Arch = typer.Option(Arch.paper, "--arch"),
    a1: int | None = typer.Option(None, "--a1", help="message-network rank (omit: full MPGNN)"),
    a2: int | None = typer.Option(None, "--a2", help="update-network rank (omit: full MPGNN)"),
    mode: TrainMode = typer.Option(TrainMode.scratch, "--mode"),
    init: Path | None = typer.Option(
        None, "--init", help="checkpoint: full MPGNN for --mode svd, the same model for finetune"
    ),
    augment: bool = typer.Option(
        False, "--augment/--no-augment", help="random receiver phases and transmitter unitaries per batch"
    ),
    epochs: int = typer.Option(30, "--epochs"),
    batch: int = typer.Option(8, "--batch"),
    lr: float = typer.Option(1e-3, "--lr"),
    lr_final: float | None = typer.Option(None, "--lr-final", help="cosine-decay the lr to this value"),
    seed: int = typer.Option(0, "--seed"),
    val: Path | None = typer.Option(None, "--val", help="validation scenes; the best epoch is kept"),
    cut: float | None = typer.Option(
        500.0,
        "--cut",
        help="drop links longer than this many metres (0: keep all; a cut needs 'dist' in the scene files)",
    ),
    top_m: int | None = typer.Option(
        None, "--top-m", help="keep only each receiver's M strongest interferers as edges (with the cut, if any)"
    ),
    resume: bool = typer.Option(True, "--resume/--no-resume"),
    compand: bool = typer.Option(True, "--compand/--no-compand", help="log-companded channel features"),
    residual: bool = typer.Option(True, "--residual/--no-residual", help="update net predicts a correction"),
    mrt_start: bool = typer.Option(
        False, "--mrt-start/--random-start", help="plain update: start it as a pass-through of the beam (MRT)"
    ),
    scale_agg: bool = typer.Option(True, "--scale-agg/--no-scale-agg", help="scale wide messages to 64-wide variance"),
    clip_penalty: float = typer.Option(
        0.0, "--clip-penalty", help="weight of a loss term on update outputs beyond unit power"
    ),
    threads: int | None = typer.Option(None, "--threads", help="torch threads (1 for a background run)"),
):
    """Train an MPGNN (no ranks) or LR-MPGNN (--a1/--a2)."""
    from tinyrrm.training import checkpoint as ck
    from tinyrrm.training import scenes as sc
    from tinyrrm.training.models import ModelConfig
    from tinyrrm.training.train import TrainConfig
    from tinyrrm.training.train import train as run

    ck.check_out_dir(out)
    _rank(a1, "a1"), _rank(a2, "a2")
    _cut(cut)
    if (a1 is None) != (a2 is None):
        raise UsageError("give both --a1 and --a2 for an LR-MPGNN, or neither for the full MPGNN")
    tcfg = TrainConfig(
        epochs=epochs,
        batch=batch,
        lr=lr,
        lr_final=lr_final,
        seed=seed,
        mode=mode.value,
        init=str(init) if init else None,
        augment=augment,
        threads=threads,
        mrt_start=mrt_start,
        clip_penalty=clip_penalty,
    )
    head = sc.load(scenes)
    sc.check_cut(head, cut or None, str(scenes))
    mcfg = ModelConfig(
        arch=arch.value,
        K=head.K,
        Nt=head.Nt,
        a1=a1,
        a2=a2,
        cut_m=cut or None,
        top_m=top_m,
        compand=compand,
        residual=residual,
        scale_agg=scale_agg,
    )
    path = run(scenes, out, mcfg, tcfg, val_path=val, resume=resume)
    typer.echo(f"wrote {path}")


#: --calib of every command that may export a checkpoint (no calibration is ever implied)
_CALIB_HELP = (
    "calibration scenes of the int8 export (the model's training scenes); omitted: the calibration its "
    "export folder build/export/<checkpoint> already records"
)


@app.command()
@_user_errors
def evaluate(
    scenes: Path = typer.Option(..., "--scenes", help="scene file to evaluate on"),
    mpgnn: Path = typer.Option(paths.MPGNN, "--mpgnn", help="full MPGNN checkpoint"),
    lrmpgnn: Path = typer.Option(paths.LRMPGNN, "--lrmpgnn", help="LR-MPGNN checkpoint"),
    backend: Backend = typer.Option(Backend.torch, "--backend"),
    out: Path | None = typer.Option(None, "--out", help="write beamformers W_* [N, K, Nt] to this .npz"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table"),
    target: TargetName = typer.Option("cortex-m4", "--target", help="qemu backend: the core"),
    port: str | None = typer.Option(None, "--port", help="qemu backend: a real board's serial port instead"),
    cut: float | None = typer.Option(
        None,
        "--cut",
        help="0: run the models without their distance cut (scenes without 'dist'); omit: the models' own cut",
    ),
    calib: Path | None = typer.Option(None, "--calib", help="exported backends (all but torch): " + _CALIB_HELP),
    policy: Policy = typer.Option(
        Policy.lrmpgnn, "--policy", help="lrmpgnn: the learned models; wmmse: WMMSE-K as generated C (c, qemu)"
    ),
    iters: int | None = typer.Option(
        None, "--iters", help="--policy wmmse: WMMSE iterations K from MRT (default: the policy's, 2)"
    ),
    top_m: int | None = typer.Option(
        None, "--top-m", help="--policy wmmse: the updates keep each receiver's M strongest interferers"
    ),
):
    """Sum rate of WMMSE, the full MPGNN and the LR-MPGNN, and their ratios (--policy wmmse:
    WMMSE-K as the generated C, W_wmmse<K>_<backend>; the qemu backend adds instructions_per_decision)."""
    if policy is Policy.wmmse:
        from tinyrrm.evaluate import policy as pol

        if cut is not None:
            raise UsageError("--cut is the learned models' distance cut; WMMSE uses every link")
        rep = pol.evaluate(
            scenes,
            backend.value,
            iters,
            out,
            target=target.value,
            port=port,
            progress=not as_json,
            top_m=top_m,
        )
        typer.echo(ev_json(rep) if as_json else pol.format_report(rep))
        return
    if iters is not None or top_m is not None:
        raise UsageError(f"{'--iters' if iters is not None else '--top-m'} is the WMMSE policy's: give --policy wmmse")
    from tinyrrm import evaluate as ev

    _cut(cut)
    if cut not in (None, 0):
        raise UsageError(
            f"--cut takes 0 (run without the models' distance cut), got {cut}; the models' own cut "
            "applies when it is omitted"
        )
    opts = {"target": target.value, "port": port} if backend is Backend.qemu else {}
    rep = ev.evaluate(
        scenes,
        mpgnn,
        lrmpgnn,
        backend=backend.value,
        out_path=out,
        progress=not as_json,
        backend_options=opts,
        cut=cut is None,
        calib=calib,
    )
    typer.echo(ev.to_json(rep) if as_json else ev.format_report(rep))


def ev_json(rep: dict) -> str:
    return json.dumps(rep, indent=2, sort_keys=True)


def _int_list(text: str, name: str) -> tuple[int, ...]:
    try:
        vals = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise UsageError(f"--{name} takes comma-separated ranks, got {text!r}") from None
    if not vals or any(v <= 0 for v in vals):
        raise UsageError(f"--{name} ranks must be positive integers, got {text!r}")
    return vals


@app.command()
@_user_errors
def history(
    checkpoints: list[Path] = typer.Argument(..., help="checkpoint folders"),
    as_json: bool = typer.Option(False, "--json"),
    png: Path | None = typer.Option(None, "--png", help="also draw the learning curves to this PNG"),
):
    """Per-epoch training and validation sum rate of checkpoints, side by side."""
    from tinyrrm.training import history as hi
    from tinyrrm.training.fileio import check_out_file, write_bytes

    if png is not None:
        check_out_file(png)
    runs = hi.read(checkpoints)
    if png is not None:
        write_bytes(png, hi.png_bytes(runs))
    if as_json:
        typer.echo(json.dumps(runs, indent=2, sort_keys=True))
        return
    typer.echo(hi.format_table(runs), nl=False)


@app.command()
@_user_errors
def reproduce(
    train: Path = typer.Option(..., "--train", help="training scenes"),
    test: Path = typer.Option(paths.TEST, "--test"),
    val: Path | None = typer.Option(paths.VAL, "--val"),
    out: Path = typer.Option(paths.REPORTS, "--out"),
    jobs: int = typer.Option(2, "--jobs", help="local worker processes (one torch thread each)"),
    ray: str | None = typer.Option(None, "--ray", help="Ray cluster ADDRESS: run the cells there"),
    arch: Arch = typer.Option(Arch.paper, "--arch"),
    epochs: int = typer.Option(30, "--epochs"),
    a1: str = typer.Option("4,16,32,64", "--a1", help="message ranks"),
    a2: str = typer.Option("4,16,32,64,128,256,512", "--a2", help="update ranks"),
    seeds: int = typer.Option(1, "--seeds", help="seeds per cell (a few cells always get 3)"),
    sizes_only: bool = typer.Option(False, "--sizes-only", help="train nothing: size table only"),
    collect: bool = typer.Option(False, "--collect", help="train nothing: report the cells finished so far"),
    status: bool = typer.Option(False, "--status", help="train nothing: each job's epochs and the CPU time left"),
    residual: bool = typer.Option(
        False, "--residual/--no-residual", help="our residual update instead of the paper's plain one (cells *_plain)"
    ),
    clip_penalty: float | None = typer.Option(
        None,
        "--clip-penalty",
        help="weight of the loss on update outputs beyond unit power [default: the grid's 0.1; 0 for cells without it]",
    ),
    cells_dir: Path = typer.Option(paths.RUNS, "--cells-dir", help="where the cells' checkpoints go (DIR/grid/)"),
    carry: Path | None = typer.Option(
        None,
        "--carry",
        help="an earlier paper_grid.json of the same recipe: the cells this run "
        "has not measured are taken from it, rescaled, marked as carried",
    ),
):
    """Train and measure the paper's rank grid -> reports/paper_grid.*; finished cells are skipped
    and the report is rewritten after each one."""
    from tinyrrm.experiments import grid, pace
    from tinyrrm.training.fileio import check_out_dir

    check_out_dir(out)
    a1s, a2s = _int_list(a1, "a1"), _int_list(a2, "a2")
    clip = grid.CLIP_PENALTY if clip_penalty is None else clip_penalty
    if not clip >= 0:
        raise UsageError(f"--clip-penalty must be >= 0, got {clip}")
    recipe = grid.Recipe(
        train,
        test,
        val,
        arch=arch.value,
        epochs=epochs,
        a1s=a1s,
        a2s=a2s,
        seeds=seeds,
        residual=residual,
        clip_penalty=clip,
    )
    if status:
        records = grid.load_records(out / grid.JOBS_FILE)
        plan = grid.plan(recipe, cells_dir)
        typer.echo(pace.format_status(pace.status(plan, records), workers=None if ray else jobs))
        return
    paths = grid.reproduce(
        recipe,
        out,
        workers=jobs,
        ray_address=ray,
        sizes_only=sizes_only,
        collect_only=collect,
        cells_dir=cells_dir,
        carry_from=carry,
    )
    for p in paths:
        typer.echo(f"wrote {p}")


def _opt_int_list(text: str, name: str) -> tuple[int | None, ...]:
    """``dense,24,16``: WMMSE interferer sets (``dense``: every link)."""
    vals = []
    for v in (t.strip() for t in text.split(",")):
        if v == "dense":
            vals.append(None)
        elif v:
            vals.extend(_int_list(v, name))
    if not vals:
        raise UsageError(f"--{name} takes a comma list of 'dense' and interferer counts, got {text!r}")
    return tuple(vals)


def _graphs(text: str) -> tuple[tuple[float | None, int | None], ...]:
    """``cut500,top16,cut500+top8,all``: the learned parts' graphs."""
    out = []
    for g in (t.strip() for t in text.split(",") if t.strip()):
        cut, top = None, None
        for part in g.split("+"):
            try:
                if part.startswith("cut"):
                    cut = float(part[3:])
                elif part.startswith("top"):
                    top = int(part[3:])
                elif part != "all":
                    raise ValueError
            except ValueError:
                raise UsageError(f"--graphs: {g!r} is not cutD, topM, cutD+topM or all") from None
        if (cut is not None and not cut > 0) or (top is not None and top < 1):
            raise UsageError(f"--graphs: {g!r} needs a cut > 0 metres and a top-m >= 1")
        out.append((cut, top))
    if not out:
        raise UsageError("--graphs: give at least one graph")
    return tuple(out)


@app.command()
@_user_errors
def front(
    train: Path = typer.Option(paths.TRAIN, "--train"),
    test: Path = typer.Option(paths.TEST, "--test"),
    val: Path | None = typer.Option(paths.VAL, "--val"),
    out: Path = typer.Option(paths.REPORTS, "--out", help="where front.{json,md,png} and front_jobs.json go"),
    cells_dir: Path = typer.Option(paths.RUNS, "--cells-dir", help="where the jobs' checkpoints go (DIR/front/)"),
    jobs: int = typer.Option(2, "--jobs", help="local worker processes (one torch thread each)"),
    ray: str | None = typer.Option(None, "--ray", help="Ray cluster ADDRESS: run the jobs there"),
    archs: str = typer.Option("tiny,small,shen,mid,paper", "--archs", help="widths of the learned starts"),
    ranks: str = typer.Option("full,4:16", "--ranks", help="'full' and/or a1:a2 pairs"),
    steps: str = typer.Option("1,2,3", "--steps", help="message-passing steps"),
    graphs: str = typer.Option("cut500,top16,top4", "--graphs", help="learned graphs: cutD, topM, cutD+topM, all"),
    sets: str = typer.Option(
        "dense,32,24,16,8", "--sets", help="WMMSE interferer sets from MRT: dense and/or top-m counts"
    ),
    hybrid_sets: str = typer.Option(
        "dense,24,16,8", "--hybrid-sets", help="WMMSE interferer sets after a learned start"
    ),
    iters: int = typer.Option(30, "--iters", help="WMMSE iterations measured from MRT"),
    hybrid_iters: int = typer.Option(5, "--hybrid-iters", help="WMMSE iterations measured after a learned start"),
    epochs: int = typer.Option(30, "--epochs"),
    seeds: int = typer.Option(1, "--seeds"),
    no_learned: bool = typer.Option(False, "--no-learned", help="classical WMMSE only (no training)"),
    checkpoint: list[Path] = typer.Option([], "--checkpoint", help="a trained model measured as it is (repeatable)"),
):
    """The deployment front: rate / WMMSE-100 against estimated instructions on cortex-m4 for
    WMMSE-k (dense and top-m), learned starts and hybrids -> reports/front.*; finished jobs are
    skipped and the report is rewritten after each one."""
    from tinyrrm.experiments import front as fr
    from tinyrrm.training.fileio import check_out_dir

    check_out_dir(out)
    rank_list = []
    for r in (t.strip() for t in ranks.split(",") if t.strip()):
        if r == "full":
            rank_list.append(None)
        else:
            pair = _int_list(r.replace(":", ","), "ranks")
            if len(pair) != 2:
                raise UsageError(f"--ranks takes 'full' and a1:a2 pairs, got {ranks!r}")
            rank_list.append(pair)
    space = fr.Space(
        train=str(train),
        test=str(test),
        val=None if val is None else str(val),
        archs=() if no_learned else tuple(a.strip() for a in archs.split(",") if a.strip()),
        ranks=tuple(rank_list),
        steps=_int_list(steps, "steps"),
        graphs=_graphs(graphs),
        sets=_opt_int_list(sets, "sets"),
        hybrid_sets=_opt_int_list(hybrid_sets, "hybrid-sets"),
        iters=iters,
        hybrid_iters=hybrid_iters,
        epochs=epochs,
        seeds=seeds,
        checkpoints=tuple(str(c) for c in checkpoint),
    )
    for p in fr.run_front(space, out, cells_dir=cells_dir, workers=jobs, ray_address=ray):
        typer.echo(f"wrote {p}")


@app.command("svd-study")
@_user_errors
def svd_study(
    full: Path = typer.Option(paths.MPGNN, "--full", help="trained full MPGNN"),
    train: Path = typer.Option(..., "--train", help="training scenes (of the fine-tune)"),
    val: Path | None = typer.Option(paths.VAL, "--val"),
    test: Path = typer.Option(paths.TEST, "--test"),
    out: Path = typer.Option(paths.REPORTS, "--out"),
    cells: str = typer.Option("4:16,16:4,16:16,64:64", "--cells", help="a1:a2 pairs"),
    finetune: int = typer.Option(2, "--finetune-epochs"),
):
    """SVD-truncate the full MPGNN with and without a short fine-tune -> reports/svd_truncation.*"""
    from tinyrrm.experiments.svd_study import svd_study as run
    from tinyrrm.training.fileio import check_out_dir

    check_out_dir(out)
    try:
        pairs = tuple(tuple(_int_list(c.replace(":", ","), "cells")) for c in cells.split(","))
    except ValueError:
        raise UsageError(f"--cells takes a1:a2 pairs like 16:4,64:64, got {cells!r}") from None
    if any(len(p) != 2 for p in pairs):
        raise UsageError(f"--cells takes a1:a2 pairs like 16:4,64:64, got {cells!r}")
    for p in run(full, train, val, test, out, cells=pairs, finetune_epochs=finetune):
        typer.echo(f"wrote {p}")


@app.command()
@_user_errors
def size(
    mpgnn: Path = typer.Option(paths.MPGNN, "--mpgnn"),
    lrmpgnn: Path = typer.Option(paths.LRMPGNN, "--lrmpgnn"),
    as_json: bool = typer.Option(False, "--json"),
    export: bool = typer.Option(
        True, "--export/--no-export", help="add the deployed int8 bytes and TFLM arena (exports if needed)"
    ),
    calib: Path | None = typer.Option(None, "--calib", help="--export: " + _CALIB_HELP),
):
    """Parameters and bytes per layer of both models and the size ratios."""
    from tinyrrm.export.size import format_size, size_report

    rep = size_report(mpgnn, lrmpgnn, export=export, progress=not as_json, calib=calib)
    typer.echo(json.dumps(rep, indent=2, sort_keys=True) if as_json else format_size(rep))


@app.command()
@_user_errors
def bench(
    train: Path = typer.Option(..., "--train", help="training scenes (and the export's calibration)"),
    test: Path = typer.Option(paths.TEST, "--test"),
    out: Path = typer.Option(paths.BENCH, "--out"),
    train_scenes: int = typer.Option(2000, "--train-scenes", help="scenes in the timed training epoch"),
    parts: str = typer.Option(
        "train,export,codegen,firmware", "--parts", help="comma list of: " + ", ".join(BenchPart)
    ),
    gen_dir: Path = typer.Option(paths.GENERATED / "cortex-m4", "--gen-dir", help="generated C for the codegen part"),
    lrmpgnn: Path = typer.Option(paths.LRMPGNN, "--lrmpgnn", help="model for the export timing"),
):
    """Throughput of WMMSE and the models, training time per epoch, export and TFLM time -> JSON.

    Parts not asked for keep their previous figures in OUT."""
    from tinyrrm.training.fileio import check_out_file, write_text

    check_out_file(out)
    wanted = {p.strip() for p in parts.split(",") if p.strip()}
    if not wanted <= set(BenchPart):
        raise UsageError(f"--parts: unknown part(s) {', '.join(sorted(wanted - set(BenchPart)))}")
    try:
        rep = json.loads(out.read_text()) if out.is_file() else {}
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{out}: not a bench report ({e}); move it away to start a new one") from None
    if not isinstance(rep, dict):
        raise InputError(f"{out}: not a bench report (want a JSON object); move it away to start a new one")
    if "train" in wanted:
        from tinyrrm.bench.training import run_bench

        rep.update(run_bench(train, test, train_scenes=train_scenes))
    if "export" in wanted:
        from tinyrrm.bench.export import export_bench

        rep["export"] = export_bench(lrmpgnn, train, test)
    if "codegen" in wanted:
        from tinyrrm.bench.codegen import codegen_bench

        rep["codegen"] = codegen_bench(gen_dir, test)
    if "firmware" in wanted:
        from tinyrrm.bench.firmware import firmware_bench

        rep["firmware"] = firmware_bench(test)
    write_text(out, json.dumps(rep, indent=2, sort_keys=True) + "\n")
    typer.echo(json.dumps(rep, indent=2, sort_keys=True))


export_app = typer.Typer(no_args_is_help=True, help="Export: ONNX, TFLite int8 / TFLite Micro, generated C.")
app.add_typer(export_app, name="export")


# options shared by the export commands
_CHECKPOINT = typer.Option(paths.LRMPGNN, "--checkpoint", help="checkpoint folder")
_OPSET = typer.Option(17, "--opset", help="ONNX opset (17..21)")
_PREFIX = typer.Option(
    None,
    "--prefix",
    help="C prefix of every generated symbol and macro (default: the model's family, lrmpgnn or mpgnn)",
)


@export_app.command("onnx")
@_user_errors
def export_onnx(
    checkpoint: Path = _CHECKPOINT,
    out: Path = typer.Option(None, "--out", help="folder for model.onnx (default build/export/<checkpoint>)"),
    opset: int = _OPSET,
):
    """model.onnx: fp32, fixed K, all message-passing steps (checked with onnx.checker)."""
    from tinyrrm.export import onnx_export, stage
    from tinyrrm.training import checkpoint as ck
    from tinyrrm.training.fileio import check_out_dir, write_bytes

    folder = check_out_dir(out or stage.default_dir(checkpoint), stage.FOLDER, writes=("model.onnx",))
    model, _ = ck.load(checkpoint)
    data = onnx_export.to_onnx(model, opset)
    path = write_bytes(folder / "model.onnx", data)
    typer.echo(f"wrote {path} ({len(data):,} bytes, opset {opset})")


@export_app.command("model")
@_user_errors
def export_model(
    checkpoint: Path = _CHECKPOINT,
    out: Path = typer.Option(None, "--out", help="export folder (default build/export/<checkpoint>)"),
    calib: Path | None = typer.Option(
        None,
        "--calib",
        help="calibration scenes: the int8 quantization is calibrated on them (the model's training "
        "scenes); recorded in export.json, used by every later use of the folder; omitted: the "
        "calibration the folder already records",
    ),
    n_calib: int | None = typer.Option(
        None,
        "--n-calib",
        help="calibration scenes used (x steps = samples) [default: the folder's count for its own "
        "calibration file, else 200]",
    ),
    opset: int = _OPSET,
    force: bool = typer.Option(
        False, "--force", help="replace an export folder that holds another checkpoint or other calibration"
    ),
):
    """Everything of one checkpoint: model.onnx, model_int8.tflite, model_fp32.tflite,
    model_data.c/.h for the TFLM interpreter, export.json."""
    from tinyrrm.export import stage

    folder = stage.check_out_dir(out or stage.default_dir(checkpoint))
    calib, n_calib = stage.calibration_for(folder, checkpoint, calib, n_calib)
    path = stage.export_model(checkpoint, folder, calib, n_calib, opset, replace=force)
    typer.echo(stage.summary(path))


# `tinyrrm export tflite` is the name the TFLite users look for; same stage
export_app.command("tflite", help="Same as `export model` (the .tflite files come with the rest).")(export_model)


@export_app.command("c")
@_user_errors
def export_c(
    export_dir: Path = typer.Option(
        paths.BUILD_EXPORT / "lrmpgnn_paper", "--export-dir", help="folder written by `tinyrrm export model`"
    ),
    target: TargetName = typer.Option("cortex-m4", "--target"),
    out: Path = typer.Option(None, "--out", help="output folder (default generated/<target>)"),
    prefix: str | None = _PREFIX,
):
    """Generate C for TARGET from an export folder (weights, kernels, arena, test vectors, report)."""
    from tinyrrm.codegen import generate as codegen

    out = codegen.check_out_dir(out or paths.GENERATED / target.value)
    path = codegen.generate(export_dir, target.value, out, prefix)
    _print_generated(path)


def _print_generated(path: Path) -> None:
    from tinyrrm.codegen.host import read_report
    from tinyrrm.codegen.report import codegen_summary

    typer.echo(f"wrote {path}")
    typer.echo(codegen_summary(read_report(path)))


@export_app.command("target")
@_user_errors
def export_target(
    target: TargetName = typer.Option("cortex-m4", "--target"),
    lrmpgnn: Path = typer.Option(paths.LRMPGNN, "--lrmpgnn", help="the model to deploy"),
    calib: Path | None = typer.Option(None, "--calib", help=_CALIB_HELP),
    out: Path = typer.Option(None, "--out", help="output folder (default generated/<target>)"),
    prefix: str | None = _PREFIX,
):
    """The main job: export the deployed model (ONNX, TFLite int8) and generate C for TARGET."""
    from tinyrrm.codegen import generate as codegen
    from tinyrrm.export import cprefix, stage

    if prefix is not None:  # a bad prefix: one clear error before any work
        cprefix.check(prefix)
    out = codegen.check_out_dir(out or paths.GENERATED / target.value)
    stage.check_out_dir(stage.default_dir(lrmpgnn))
    exp = stage.ensure(lrmpgnn, calib_path=calib)
    typer.echo(stage.summary(exp))
    from shlex import quote

    from tinyrrm.training.fileio import portable

    command = (  # the calibration the export records: the one given, or the folder's own
        f"tinyrrm export target --target {target.value} --lrmpgnn {quote(portable(lrmpgnn))} "
        f"--calib {quote(stage.recorded_calibration(exp)['path'])}"
    )
    if prefix is not None:
        command += f" --prefix {prefix}"
    path = codegen.generate(exp, target.value, out, prefix, command=command)
    _print_generated(path)


@export_app.command("wmmse")
@_user_errors
def export_wmmse(
    target: TargetName = typer.Option("cortex-m4", "--target"),
    like: Path = typer.Option(
        paths.LRMPGNN, "--like", help="checkpoint whose K and Nt the policy takes (its config.json)"
    ),
    k_max: int | None = typer.Option(None, "--k-max", help="link capacity (default: --like's K)"),
    nt: int | None = typer.Option(None, "--nt", help="transmit antennas (default: --like's Nt)"),
    iters: int = typer.Option(2, "--iters", help="WMMSE iterations <prefix>_infer runs by default"),
    top_m: int | None = typer.Option(
        None, "--top-m", help="each receiver's updates keep its M strongest interferers, ranked on the chip (Nt = 2)"
    ),
    out: Path = typer.Option(None, "--out", help="output folder (default build/gen/<target>/<prefix>)"),
    prefix: str = typer.Option("wmmse", "--prefix", help="C prefix of every generated symbol and macro"),
):
    """Generate the WMMSE policy in C for TARGET behind the learned model's ABI (same input and output)."""
    from tinyrrm.codegen import wmmse
    from tinyrrm.export import cprefix

    cprefix.check(prefix)
    if k_max is None or nt is None:
        K, Nt = wmmse.shape_like(like)
        k_max, nt = K if k_max is None else k_max, Nt if nt is None else nt
    wmmse.check_args(k_max, nt, iters, top_m)
    out = wmmse.check_out_dir(out or paths.BUILD_GEN / target.value / prefix)
    path = wmmse.generate(target.value, out, k_max, nt, iters, prefix, top_m=top_m)
    rep = json.loads((path / "report.json").read_text())
    typer.echo(f"wrote {path}")
    kind = "" if top_m is None else f" on each receiver's top-{top_m} interferers"
    typer.echo(
        f"{prefix}: WMMSE{kind}, K_MAX={k_max}, Nt={nt}, {iters} iterations by default; RAM {rep['sizes']['ram_need']:,} B "
        f"(CSI input {rep['sizes']['input_bytes']:,} B) of {target.value}'s {rep['target']['ram']:,} B"
    )


@app.command()
@_user_errors
def firmware(
    target: TargetName = typer.Option("cortex-m4", "--target"),
    portable: bool = typer.Option(False, "--portable", help="force the portable kernels (TR_NO_DSP)"),
):
    """Build the HIL firmware of the deployed model for TARGET -> build/fw/<target>/deployed/firmware.elf."""
    from tinyrrm.codegen.host import prefix_of
    from tinyrrm.hil import elfsize
    from tinyrrm.hil.run import build_firmware
    from tinyrrm.hil.session import gen_dir_for

    gen = gen_dir_for(target.value)
    elf = build_firmware(
        target.value,
        gen,
        paths.BUILD_FW / target.value / ("portable" if portable else "deployed"),
        prefix_of(gen),
        "-DTR_NO_DSP=1" if portable else "",
    )
    sz = elfsize.sizes(elf)
    typer.echo(
        f"wrote {elf}: flash {sz['flash']:,} B (.text {sz['text']:,} + .rodata {sz['rodata']:,} + .data "
        f"{sz['data']:,}), static RAM {sz['ram_static']:,} B (.data + .bss)"
    )


_MODEL = typer.Option(
    None,
    "--model",
    help="a checkpoint or an export folder of your own (omit: the committed default deployment); "
    "runs under build/hil/<target>/models/<its name>/",
)
_SCENES = typer.Option(None, "--scenes", help="--model: the scenes the HIL runs (the first --n of them)")


def _hil_model(model: Path | None, scenes: Path | None, **model_only) -> None:
    """--scenes (and ``model_only`` options given) need --model; --model needs --scenes."""
    for name, value in {"scenes": scenes, **model_only}.items():
        if model is None and value is not None:
            raise UsageError(
                f"--{name} goes with --model DIR (without it: the committed default deployment on data/test.npz)"
            )
    if model is not None and scenes is None:
        raise UsageError(f"--model {model} needs --scenes F: the scenes its HIL runs (K and Nt of the model)")


@app.command("hil-prepare")
@_user_errors
def hil_prepare(
    target: TargetName = typer.Option("cortex-m4", "--target"),
    n: int = typer.Option(4, "--n", help="test scenes the HIL runs"),
    calib: Path | None = typer.Option(None, "--calib", help=_CALIB_HELP),
    model: Path | None = _MODEL,
    scenes: Path | None = _SCENES,
):
    """Reference beamformers and the original MPGNN's C for the HIL suite -> build/hil/<target>/;
    with --model, the reference and the generated C of that model."""
    from tinyrrm import prepare as pr

    _hil_model(model, scenes)
    if model is None:
        typer.echo(f"wrote {pr.prepare(target.value, n=n, calib=calib)}")
    else:
        typer.echo(f"wrote {pr.prepare_model(target.value, model, scenes, n=n, calib=calib)}")


@app.command()
@_user_errors
def hil(
    target: TargetName = typer.Option("cortex-m4", "--target"),
    port: str | None = typer.Option(None, "--port", help="a real board's serial port instead of QEMU"),
    model: Path | None = _MODEL,
    scenes: Path | None = _SCENES,
    calib: Path | None = typer.Option(None, "--calib", help="--model, a checkpoint: " + _CALIB_HELP),
    n: int | None = typer.Option(None, "--n", help="--model: scenes the HIL runs [default: 4]"),
):
    """Run the deployed firmware (QEMU or a board) and measure: bit-exactness, flash/RAM, instructions,
    sum rate, the 60x ratios -> build/hil/<target>/hil.json and reports/hil/<target>.{json,md,png}.
    With --model DIR --scenes F: that model's firmware and scenes (prepared here), measured into
    build/hil/<target>/models/<name>/ (reports/ untouched)."""
    from tinyrrm.hil import session

    _hil_model(model, scenes, calib=calib, n=n)
    hil_dir = None
    if model is not None:
        from tinyrrm import prepare as pr

        hil_dir = pr.prepare_model(target.value, model, scenes, n=n or 4, calib=calib, progress=False)
    res = session.run_hil(target.value, port=port, hil_dir=hil_dir)
    path = session.save(res, target.value, hil_dir, publish=model is None)
    typer.echo(json.dumps(session.summary(res), indent=2, sort_keys=True))
    typer.echo(f"wrote {path}")


@app.command()
def version():
    """Print the tinyrrm version."""
    import tinyrrm

    typer.echo(tinyrrm.__version__)


def main():  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
