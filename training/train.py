"""Training stage: scenes file -> checkpoint folder.

Unsupervised: loss = -mean weighted sum rate of the model's beamformers
(Adam, lr 1e-3, as in the paper). Two modes:

* ``scratch`` — initialise the (LR-)MPGNN at random and train;
* ``svd``     — truncate a trained full MPGNN layer by layer to ranks a1/a2
  (``models.svd_truncate``), then fine-tune for ``epochs`` (0: no retraining);
* ``finetune`` — continue from a checkpoint of the same model (weights and
  normalisation statistics), typically with ``lr_final`` and ``augment``.

``augment`` draws, per batch, a random phase per receiver and a random
unitary (Haar) per transmitter's antenna array and applies them to the
channels: ``h_tr -> e^{iθ_r} Q_t h_tr``. The rates are unchanged under the
receiver phases, the optimal beamformers rotate with ``Q_t``, and i.i.d.
complex-Gaussian fading keeps its distribution, so every epoch sees new
small-scale fading over the same geometry; the loss needs no labels.

Channels enter the model and the loss as ``H·sqrt(p_max/noise_var)``, i.e. at
unit noise and unit power, so one network serves any SNR scaling.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from tinyrrm.errors import InputError, UsageError

from . import checkpoint as ckpt
from .fileio import atomic_write
from .metrics import sum_rate_torch
from .models import MPGNN, ModelConfig, edge_mask, mrt_start_, norm_stats, svd_truncate
from .scenes import Scenes
from .scenes import load as load_scenes

STATE = "train_state.pt"
#: the layout of ``train_state.pt``: a state without this tag is refused, not converted
STATE_FORMAT = "tinyrrm-train-state/1"


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30
    batch: int = 8
    lr: float = 1e-3
    lr_final: float | None = None  # cosine decay to this lr; None: constant (paper)
    seed: int = 0
    mode: str = "scratch"  # "scratch" | "svd" | "finetune"
    init: str | None = None  # checkpoint for modes "svd" (full MPGNN) and "finetune" (same model)
    threads: int | None = None
    augment: bool = False  # random receiver phases and transmitter unitaries per batch
    mrt_start: bool = False  # plain update only: initialise it to pass the beam through (models.mrt_start_)
    clip_penalty: float = 0.0  # weight of the update's squared excess over unit power (see train())

    def __post_init__(self):
        if self.mode not in ("scratch", "svd", "finetune"):
            raise UsageError(f"mode must be 'scratch', 'svd' or 'finetune', got {self.mode!r}")
        if self.mode in ("svd", "finetune") and not self.init:
            raise UsageError(f"mode {self.mode!r} needs --init CHECKPOINT")
        if self.mrt_start and self.mode != "scratch":
            raise UsageError(f"the MRT start is an initialisation: mode 'scratch' only, not {self.mode!r}")
        if not self.clip_penalty >= 0:
            raise UsageError(f"clip_penalty must be >= 0, got {self.clip_penalty}")
        # Adam moves every weight by about lr a step: above 1 nothing trains (1e30 zeroes every beam,
        # 3e38 overflows float32 inside the optimiser)
        if self.epochs < 0 or self.batch < 1 or not 0 < self.lr <= 1:
            raise UsageError(f"need epochs >= 0, batch >= 1, 0 < lr <= 1; got {self.epochs}, {self.batch}, {self.lr}")
        if self.lr_final is not None and not 0 <= self.lr_final <= self.lr:
            raise UsageError(f"lr_final must lie in [0, lr = {self.lr}], got {self.lr_final}")


@dataclass(frozen=True)
class Batchable:
    """Scenes as tensors at unit noise/power. H ``[N,K,K,Nt]`` c64, mask ``[N,K,K]``, w ``[N,K]``."""

    H: torch.Tensor
    mask: torch.Tensor
    weights: torch.Tensor

    def __len__(self):
        return self.H.shape[0]


def prepare(scenes: Scenes, cut_m: float | None, top_m: int | None = None) -> Batchable:
    """``scenes`` at unit noise and power, with the graph of a model's ``cut_m`` and ``top_m``."""
    scale = math.sqrt(scenes.p_max / scenes.noise_var)
    H = torch.from_numpy(np.ascontiguousarray(scenes.H)) * scale  # (N, K, K, Nt)
    dist = None if scenes.dist is None else torch.from_numpy(scenes.dist)
    mask = edge_mask(scenes.K, dist, cut_m, scenes.N, H, top_m)  # (N, K, K)
    return Batchable(H.to(torch.complex64), mask, torch.from_numpy(scenes.weights))


def mean_sum_rate(model: MPGNN, data: Batchable, batch: int = 64) -> float:
    """Mean weighted sum rate (bits/s/Hz) of ``model`` on ``data``."""
    model.eval()
    total = 0.0
    with torch.no_grad():
        for s in range(0, len(data), batch):
            H, m, w = data.H[s : s + batch], data.mask[s : s + batch], data.weights[s : s + batch]
            total += float(sum_rate_torch(H, model(H, m), 1.0, w).sum())
    return total / len(data)


def train(
    scenes_path,
    out_dir,
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    *,
    val_path=None,
    resume: bool = True,
    progress: bool = True,
) -> Path:
    """Train and write a checkpoint folder; returns its path.

    With ``resume`` and a ``train_state.pt`` in ``out_dir`` that belongs to
    the same data and configs, training continues from the last epoch. After
    every epoch the best epoch so far is saved as the checkpoint, and the
    run's state beside it: an interrupted run leaves a usable model.
    """
    ckpt.check_out_dir(out_dir)
    if cfg.mode == "svd" and not model_cfg.low_rank:
        raise UsageError("--mode svd truncates a full MPGNN to ranks a1, a2: give --a1 and --a2")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(out_dir)
    scenes, data, val = _load_data(scenes_path, val_path, model_cfg)
    data_hash = ckpt.file_sha256(scenes_path)
    torch.manual_seed(cfg.seed)
    run = _new_run(_initial_model(model_cfg, cfg, data), cfg, len(data))
    name = run.model.cfg.name
    ident = _identity(run.model.cfg, cfg, data_hash)
    if resume and (out / STATE).is_file():
        _resume(run, out / STATE, ident)
        if progress and run.epoch:
            print(f"resuming {name} at epoch {run.epoch}/{cfg.epochs}")

    def meta() -> dict:
        return _meta(cfg, scenes_path, data_hash, scenes.N, val, run.best, run.history)

    if run.epoch >= cfg.epochs:  # nothing (left) to train: the checkpoint of the run as it stands
        if run.best[1] is None:
            run.best = (mean_sum_rate(run.model, val) if val is not None else math.nan, run.model.state_dict())
        return _save_best(run, out, meta())
    while run.epoch < cfg.epochs:
        rec = _train_epoch(run, data, cfg, out, progress)
        _close_epoch(run, rec, val)
        if progress:
            msg = f"{name} epoch {rec['epoch']}/{cfg.epochs}: train {rec['train_rate']:.3f}"
            msg += f", val {rec['val_rate']:.3f}" if "val_rate" in rec else ""
            print(msg + f" bits/s/Hz ({rec['seconds']:.0f} s)", flush=True)
        _save(run, out, ident, meta())
    return out


@dataclass
class _Run:
    """What a training run carries from epoch to epoch: all of it goes into ``train_state.pt``."""

    model: MPGNN
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler | None  # None: constant lr
    gen: torch.Generator  # shuffles and augmentations
    steps_per_epoch: int
    epoch: int = 0  # epochs done
    history: list[dict] = dataclasses.field(default_factory=list)  # one record per epoch done
    best: tuple = (-math.inf, None)  # (rate, state dict) of the best epoch so far; None: none yet


def _load_data(scenes_path, val_path, model_cfg: ModelConfig) -> tuple[Scenes, Batchable, Batchable | None]:
    """The training scenes, as loaded and as tensors, and the validation tensors (None without
    ``val_path``); both files must hold the model's K and Nt."""
    scenes = load_scenes(scenes_path)
    if scenes.K != model_cfg.K or scenes.Nt != model_cfg.Nt:
        raise UsageError(
            f"{scenes_path}: scenes have K={scenes.K}, Nt={scenes.Nt} but the model is configured for "
            f"K={model_cfg.K}, Nt={model_cfg.Nt}"
        )
    val = None
    if val_path is not None:
        vs = load_scenes(val_path)
        if vs.Nt != scenes.Nt or vs.K > scenes.K:  # fewer pairs are fine, as in evaluate
            raise InputError(
                f"{val_path}: validation scenes have K={vs.K}, Nt={vs.Nt}; training has K={scenes.K}, "
                f"Nt={scenes.Nt} (validation needs the same Nt and K <= {scenes.K})"
            )
        val = prepare(vs, model_cfg.cut_m, model_cfg.top_m)
    return scenes, prepare(scenes, model_cfg.cut_m, model_cfg.top_m), val


def _initial_model(model_cfg: ModelConfig, cfg: TrainConfig, data: Batchable) -> MPGNN:
    """The model before the first epoch: the SVD truncation of ``cfg.init`` (mode ``svd``; its
    config then comes from that checkpoint), ``cfg.init`` itself (``finetune``) or a random one
    with ``data``'s normalisation statistics (``scratch``, optionally at the MRT start)."""
    if cfg.mode == "svd":
        full, _ = ckpt.load(cfg.init)
        if (full.cfg.arch, full.cfg.K, full.cfg.Nt) != (model_cfg.arch, model_cfg.K, model_cfg.Nt):
            raise ckpt.CheckpointError(
                f"{cfg.init}: {full.cfg.name} K={full.cfg.K} Nt={full.cfg.Nt} does not match the requested model"
            )
        return svd_truncate(full, model_cfg.a1, model_cfg.a2)
    if cfg.mode == "finetune":
        model, _ = ckpt.load(cfg.init)
        if model.cfg != model_cfg:
            raise ckpt.CheckpointError(
                f"{cfg.init}: holds {model.cfg.name} ({model.cfg.to_dict()}), "
                f"not the requested {model_cfg.name} ({model_cfg.to_dict()})"
            )
        return model
    model = MPGNN(model_cfg, norm_stats(data.H.numpy(), model_cfg.compand))
    if cfg.mrt_start:
        if model_cfg.residual:
            raise UsageError(
                "the MRT start is for the plain update (--no-residual); the residual one starts at MRT already"
            )
        mrt_start_(model)
    return model


def _new_run(model: MPGNN, cfg: TrainConfig, n: int) -> _Run:
    """A run at epoch 0 over ``n`` scenes: Adam, the cosine schedule (with ``lr_final``), the generator."""
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    steps = math.ceil(n / cfg.batch)
    sched = None
    if cfg.lr_final is not None:
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, cfg.epochs * steps), eta_min=cfg.lr_final)
    return _Run(model, opt, sched, torch.Generator().manual_seed(cfg.seed), steps)


def _identity(model_cfg: ModelConfig, cfg: TrainConfig, data_hash: str) -> dict:
    """What a resumed run must share with the saved one. With a constant lr the epoch count is
    not part of it, so a finished run can be continued longer; how many cores ran it never is."""
    tident = dataclasses.asdict(cfg)
    tident.pop("threads")
    if cfg.lr_final is None:
        tident.pop("epochs")
    return {"model": model_cfg.to_dict(), "train": tident, "data_sha256": data_hash}


def _resume(run: _Run, state_path: Path, ident: dict) -> None:
    """Continue ``run`` from ``state_path``, the state of the run ``ident`` in this format; refuse
    any other (resuming would mix two runs, starting over would overwrite one)."""
    try:  # weights_only: tensors and plain containers, no arbitrary pickled objects
        st = torch.load(state_path, weights_only=True)
    except Exception as e:  # torch raises pickle, zip and key errors of many kinds
        raise _corrupt_state(state_path, e) from None
    if not isinstance(st, dict) or st.get("format") != STATE_FORMAT:
        raise ckpt.CheckpointError(
            f"{state_path}: a training state in an older format (not {STATE_FORMAT}); "
            "delete it or pass --no-resume to start over"
        )
    if st.get("ident") != ident:
        raise ckpt.CheckpointError(
            f"{state_path}: belongs to another run ({_differences(st.get('ident') or {}, ident)}); "
            "pass --no-resume to start over, or another --out"
        )
    try:
        run.model.load_state_dict(st["model"])
        run.opt.load_state_dict(st["opt"])
        if run.sched is not None:
            run.sched.load_state_dict(st["sched"])
        torch.set_rng_state(st["rng"])
        run.gen.set_state(st["gen"])
        run.epoch, run.history, run.best = st["epoch"], st["history"], st["best"]
    except Exception as e:  # a state of the right run whose tensors do not load
        raise _corrupt_state(state_path, e) from None


def _train_epoch(run: _Run, data: Batchable, cfg: TrainConfig, out: Path, progress: bool) -> dict:
    """One pass over ``data`` in a fresh random order (augmented with ``cfg.augment``), one optimiser
    step a batch; returns the epoch's record: number, mean training rate, seconds."""
    model, epoch = run.model, run.epoch + 1
    model.train()
    t0 = time.perf_counter()
    perm = torch.randperm(len(data), generator=run.gen)
    bar = tqdm(
        range(run.steps_per_epoch),
        desc=f"{model.cfg.name} epoch {epoch}/{cfg.epochs}",
        disable=None if progress else True,
        leave=False,
    )
    running = 0.0
    for i in bar:
        idx = perm[i * cfg.batch : (i + 1) * cfg.batch]
        H, m, w = data.H[idx], data.mask[idx], data.weights[idx]
        if cfg.augment:
            H = augment(H, run.gen)
        rate = sum_rate_torch(H, model(H, m), 1.0, w).mean()
        loss = -rate
        if cfg.clip_penalty:
            # power_scale is flat beyond unit power: an update stuck there gets no gradient
            # for power control. Pulling its norm back to 1 leaves every beam unchanged.
            loss = loss + cfg.clip_penalty * model.overshoot
        if not torch.isfinite(loss):
            raise UsageError(
                f"training diverged: the loss is {loss.item()} at epoch {epoch}, step {i + 1} "
                f"(lr {cfg.lr}); {'the last good epoch is saved in ' + str(out) if run.history else 'nothing was saved'}"
            )
        run.opt.zero_grad(set_to_none=True)
        loss.backward()
        run.opt.step()
        if run.sched is not None:
            run.sched.step()
        running += rate.item() * len(idx)
        bar.set_postfix(rate=f"{rate.item():.3f}")
    return {"epoch": epoch, "train_rate": running / len(data), "seconds": time.perf_counter() - t0}


def _close_epoch(run: _Run, rec: dict, val: Batchable | None) -> None:
    """Validate the epoch just trained (``rec`` gains ``val_rate``), keep its weights if they are
    the best so far (by validation rate; without ``val``, the latest epoch), record it."""
    if val is not None:
        rec["val_rate"] = mean_sum_rate(run.model, val)
        if rec["val_rate"] > run.best[0]:
            run.best = (rec["val_rate"], {k: v.clone() for k, v in run.model.state_dict().items()})
    else:
        run.best = (rec["train_rate"], {k: v.clone() for k, v in run.model.state_dict().items()})
    run.history.append(rec)
    run.epoch = rec["epoch"]


def _save_best(run: _Run, out: Path, meta: dict) -> Path:
    """The checkpoint folder ``out`` with the best epoch's weights."""
    return ckpt.save(_with_state(run.model, run.best[1]), out, meta)


def _save(run: _Run, out: Path, ident: dict, meta: dict) -> None:
    """After an epoch: the best-so-far checkpoint, then the state to resume from."""
    _save_best(run, out, meta)
    state = {
        "format": STATE_FORMAT,
        "ident": ident,
        "model": run.model.state_dict(),
        "opt": run.opt.state_dict(),
        "sched": run.sched.state_dict() if run.sched else None,
        "rng": torch.get_rng_state(),
        "gen": run.gen.get_state(),
        "epoch": run.epoch,
        "history": run.history,
        "best": run.best,
    }
    atomic_write(out / STATE, lambda f: torch.save(state, f))


def _corrupt_state(state_path, e: Exception) -> ckpt.CheckpointError:
    """The one-line error for a training state that cannot be read or loaded."""
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return ckpt.CheckpointError(f"{state_path}: corrupt training state ({first}); delete it or pass --no-resume")


def _differences(saved: dict, ident: dict) -> str:
    """What differs between a saved run's identity and this one's, e.g. ``train.seed 0 != 1``."""

    def flat(d, pre=""):
        out = {}
        for k, v in d.items():
            out.update(flat(v, f"{pre}{k}.") if isinstance(v, dict) else {pre + k: v})
        return out

    def short(v):
        return v[:12] + "…" if isinstance(v, str) and len(v) > 16 else v  # hashes

    a = {k: short(v) for k, v in flat(saved).items()}
    b = {k: short(v) for k, v in flat(ident).items()}
    keys = sorted(k for k in a.keys() | b.keys() if a.get(k, "missing") != b.get(k, "missing"))
    shown = [f"{k} {a.get(k, 'missing')} != {b.get(k, 'missing')}" for k in keys[:3]]
    return "; ".join(shown + ([f"and {len(keys) - 3} more"] if len(keys) > 3 else []))


def augment(H: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random receiver phases and transmitter unitaries (see the module docstring).

    Shapes: H ``[B, K(tx), K(rx), Nt]`` complex -> same.
    """
    B, K, _, nt = H.shape
    g = torch.randn(B, K, nt, nt, 2, generator=gen)
    Q, R = torch.linalg.qr(torch.complex(g[..., 0], g[..., 1]))  # (B, K(tx), Nt, Nt)
    d = torch.diagonal(R, dim1=-2, dim2=-1)
    Q = Q * (d / d.abs()).unsqueeze(-2)  # Haar: fix the phases of R's diagonal
    theta = torch.rand(B, 1, K, 1, generator=gen) * (2 * math.pi)  # per receiver
    phase = torch.polar(torch.ones_like(theta), theta)
    return torch.einsum("btuv,btrv->btru", Q.to(H.dtype), H) * phase.to(H.dtype)


def _with_state(model: MPGNN, state: dict | None) -> MPGNN:
    """A copy of ``model`` carrying ``state`` (the best epoch's weights)."""
    if state is None:
        return model
    out = MPGNN(model.cfg)
    out.load_state_dict(state)
    return out


def _meta(cfg, scenes_path, data_hash, n, val, best, history) -> dict:
    return {
        "train": dataclasses.asdict(cfg),
        "data": {"path": Path(scenes_path).name, "sha256": data_hash, "n": n},
        "val_rate": None if val is None else float(best[0]),
        "history": history,
    }


def read_history(out_dir) -> list[dict]:
    return json.loads((Path(out_dir) / ckpt.CONFIG).read_text()).get("history", [])
