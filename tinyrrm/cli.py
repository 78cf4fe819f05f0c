"""``tinyrrm`` command line: a thin layer over the stage functions.

Every command maps its options onto one stage call; errors the user can fix
(bad scene files, mismatched checkpoints, bad ranks) become one line on stderr
and exit code 2, with nothing half-written.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.splitlines()[0])


def _user_errors(fn):
    """Turn the stages' user-facing errors into ``tinyrrm: error: …`` + exit 2."""

    @functools.wraps(fn)
    def wrapper(*a, **kw):
        from tinyrrm.training.checkpoint import CheckpointError
        from tinyrrm.training.scenes import SceneError

        try:
            return fn(*a, **kw)
        except (SceneError, CheckpointError, ValueError, FileNotFoundError) as e:
            typer.echo(f"tinyrrm: error: {e}", err=True)
            raise typer.Exit(2) from None

    return wrapper


def _rank(value: Optional[int], name: str) -> Optional[int]:
    if value is not None and value <= 0:
        raise ValueError(f"--{name} must be a positive rank, got {value}")
    return value


@app.command()
@_user_errors
def scenes(
    out: Path = typer.Option(..., "--out", help="scene file to write (.npz)"),
    n: int = typer.Option(500, "--n", help="number of scenes"),
    K: int = typer.Option(50, "--K", help="transceiver pairs"),
    Nt: int = typer.Option(2, "--Nt", help="transmit antennas"),
    seed: int = typer.Option(1, "--seed"),
    mode: str = typer.Option("geometric", "--mode", help="geometric | iid"),
):
    """Generate scenes (channels) and write a scene file."""
    from tinyrrm.training import scenes as sc

    s = sc.generate(n, K, Nt, seed, mode)
    path = sc.save(s, out)
    typer.echo(f"wrote {path}: {s.N} scenes, K={s.K}, Nt={s.Nt}, mode={mode}, seed={seed}")


@app.command()
@_user_errors
def train(
    scenes: Path = typer.Option(..., "--scenes", help="training scene file"),
    out: Path = typer.Option(..., "--out", help="checkpoint folder to write"),
    arch: str = typer.Option("paper", "--arch", help="shen | paper | tiny"),
    a1: Optional[int] = typer.Option(None, "--a1", help="message-network rank (omit: full MPGNN)"),
    a2: Optional[int] = typer.Option(None, "--a2", help="update-network rank (omit: full MPGNN)"),
    mode: str = typer.Option("scratch", "--mode", help="scratch | svd"),
    init: Optional[Path] = typer.Option(None, "--init", help="full MPGNN checkpoint for --mode svd"),
    epochs: int = typer.Option(30, "--epochs"),
    batch: int = typer.Option(32, "--batch"),
    lr: float = typer.Option(1e-3, "--lr"),
    lr_final: Optional[float] = typer.Option(None, "--lr-final", help="cosine-decay the lr to this value"),
    seed: int = typer.Option(0, "--seed"),
    val: Optional[Path] = typer.Option(None, "--val", help="validation scenes; the best epoch is kept"),
    cut: Optional[float] = typer.Option(500.0, "--cut", help="drop links longer than this many metres (0: keep all)"),
    resume: bool = typer.Option(True, "--resume/--no-resume"),
):
    """Train an MPGNN (no ranks) or LR-MPGNN (--a1/--a2)."""
    from tinyrrm.training import scenes as sc
    from tinyrrm.training.models import ModelConfig
    from tinyrrm.training.train import TrainConfig, train as run

    _rank(a1, "a1"), _rank(a2, "a2")
    if (a1 is None) != (a2 is None):
        raise ValueError("give both --a1 and --a2 for an LR-MPGNN, or neither for the full MPGNN")
    head = sc.load(scenes)
    mcfg = ModelConfig(arch=arch, K=head.K, Nt=head.Nt, a1=a1, a2=a2, cut_m=cut or None)
    tcfg = TrainConfig(epochs=epochs, batch=batch, lr=lr, lr_final=lr_final, seed=seed, mode=mode,
                       init=str(init) if init else None)
    path = run(scenes, out, mcfg, tcfg, val_path=val, resume=resume)
    typer.echo(f"wrote {path}")


@app.command()
@_user_errors
def evaluate(
    scenes: Path = typer.Option(..., "--scenes", help="scene file to evaluate on"),
    mpgnn: Path = typer.Option(Path("models/mpgnn_paper"), "--mpgnn", help="full MPGNN checkpoint"),
    lrmpgnn: Path = typer.Option(Path("models/lrmpgnn_paper"), "--lrmpgnn", help="LR-MPGNN checkpoint"),
    backend: str = typer.Option("torch", "--backend", help="torch (more with the export stages)"),
    out: Optional[Path] = typer.Option(None, "--out", help="write beamformers W_* [N, K, Nt] to this .npz"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table"),
):
    """Sum rate of WMMSE, the full MPGNN and the LR-MPGNN, and their ratios."""
    from tinyrrm.training import evaluate as ev

    rep = ev.evaluate(scenes, mpgnn, lrmpgnn, backend=backend, out_path=out, progress=not as_json)
    typer.echo(ev.to_json(rep) if as_json else ev.format_report(rep))


@app.command()
def version():
    """Print the tinyrrm version."""
    import tinyrrm

    typer.echo(tinyrrm.__version__)


def main():  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
