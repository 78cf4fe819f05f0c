"""Probe (not part of the toolchain): an LR-MPGNN whose update net sees x_k through a full-rank path.

The paper's LR-MPGNN factorises the update net's first layer as a whole, so with rank a2 the
update sees ``[x_k, s·m̄_k]`` only through a2 linear features. This probe gives x_k (4·Nt reals:
current beam and direct channel) its own full-rank weights and keeps the message part low-rank:

    upd1([x_k, s·m̄_k]) = x_k · W_x + ((s·m̄_k) · U_m) · V + b,   W_x: [4·Nt, u1]

(+4,608 parameters at Nt = 2 with the ``paper`` widths). ``--x-rank r`` factorises W_x as well,
W_x = A·B with A: [4·Nt, r], B: [r, u1] (+584·r parameters); ``--x-rank -1`` keeps the paper's
layer, and ``--x-scale c`` multiplies x_k by c before upd1 (with or without its own path).
``--shared-x`` keeps the paper's layer whole (x_k also enters its a2 shared features) and adds
the x path on top: without it the x path replaces x_k's rows of the paper's first factor.
Training otherwise follows the grid's recipe (plain update, clip penalty 0.1 unless
``--clip-penalty`` says otherwise, 30 epochs,
batch 8, cosine lr 1e-3 -> 1e-5). It writes
a checkpoint folder whose weights ``tinyrrm`` cannot load (the extra tensor); read its history
with ``tinyrrm history`` or config.json. docs/DESIGN-NOTES.md §5 has the result:

    tinyrrm scenes --n 400 --seed 1 --out probe/train400.npz
    tinyrrm scenes --n 100 --seed 3 --out probe/val100.npz
    python docs/probes/x_path_probe.py --scenes probe/train400.npz --val probe/val100.npz --out probe/xpath44
"""

from __future__ import annotations

import argparse
import math

import torch
from torch import nn

import tinyrrm.training.checkpoint as ckpt
import tinyrrm.training.train as tr
from tinyrrm.training.layers import matmul
from tinyrrm.training.models import MPGNN, ModelConfig, model_bytes
from tinyrrm.training.scenes import load as load_scenes

X_RANK = 0  # 0: full-rank x path; r > 0: W_x = A·B with A: [4·Nt, r], B: [r, u1]; -1: no own path
X_SCALE = 1.0  # constant factor on x_k before upd1 (set by --x-scale)
SHARED_X = False  # x_k also enters the paper's a2 shared features (set by --shared-x)


class XPathMPGNN(MPGNN):
    def __init__(self, cfg: ModelConfig, stats=None):
        super().__init__(cfg, stats)
        d_x, u1 = 4 * cfg.Nt, self.upd1.d_out
        # Var of the product as nn.Linear's default initialisation (see layers.LowRankLinear)
        if X_RANK == 0:
            self.upd1_x = nn.Parameter(torch.randn(d_x, u1) / math.sqrt(3 * d_x))
        elif X_RANK > 0:
            self.upd1_xa = nn.Parameter(torch.randn(d_x, X_RANK) / math.sqrt(d_x))
            self.upd1_xb = nn.Parameter(torch.randn(X_RANK, u1) / math.sqrt(3 * X_RANK))

    def x_weight(self) -> torch.Tensor:
        return self.upd1_x if X_RANK == 0 else self.upd1_xa @ self.upd1_xb  # [4·Nt, u1]

    def update(self, x: torch.Tensor, agg: torch.Tensor) -> torch.Tensor:
        x = x * X_SCALE
        if X_RANK < 0:  # the paper's layer, x_k scaled (cfg.residual is off: x is not reused)
            return super().update(x, agg)
        U, V = self.upd1.factors()
        u_x, u_m = U.split([x.shape[-1], agg.shape[-1]])  # the x rows of U: used with --shared-x only
        z = matmul(agg, u_m) * self.cfg.agg_scale  # [..., a2]
        if SHARED_X:
            z = z + matmul(x, u_x)
        t = matmul(z, V) + matmul(x, self.x_weight())  # [..., u1]
        o = self.upd2(torch.relu(t + self.upd1.bias))  # [..., 2Nt]
        if self.training and torch.is_grad_enabled():
            self.overshoot = self.overshoot + (o.norm(dim=-1) - 1.0).clamp_min(0.0).pow(2).mean()
        return self.power_scale(o)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", required=True)
    ap.add_argument("--val", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--a1", type=int, default=4)
    ap.add_argument("--a2", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--x-rank", type=int, default=0, help="rank of the x path (0: full rank, -1: none)")
    ap.add_argument("--x-scale", type=float, default=1.0, help="constant factor on x_k before upd1")
    ap.add_argument(
        "--shared-x",
        action="store_true",
        help="keep the paper's layer whole (x_k in its a2 features too) and add the x path on top",
    )
    ap.add_argument(
        "--clip-penalty", type=float, default=0.1, help="weight of train.py's clip penalty (the grid's: 0.1)"
    )
    ap.add_argument("--test", help="scenes to report the best epoch's sum rate on (the grid's test_rate)")
    ap.add_argument(
        "--report", help="JSON file to merge this run's result into (with --test), e.g. reports/x_path_probe.json"
    )
    a = ap.parse_args()
    global X_RANK, X_SCALE, SHARED_X
    X_RANK, X_SCALE, SHARED_X = a.x_rank, a.x_scale, a.shared_x
    tr.MPGNN = ckpt.MPGNN = XPathMPGNN  # train() and checkpoint.load() build their model through this name
    cfg = ModelConfig(a1=a.a1, a2=a.a2, residual=False)
    tcfg = tr.TrainConfig(
        epochs=a.epochs, batch=8, lr=1e-3, lr_final=1e-5, seed=a.seed, threads=1, clip_penalty=a.clip_penalty
    )
    folder = tr.train(a.scenes, a.out, cfg, tcfg, val_path=a.val, progress=True)
    if a.test:
        model, _ = ckpt.load(folder)
        rate = tr.mean_sum_rate(model, tr.prepare(load_scenes(a.test), cfg.cut_m))
        extra = sum(t.numel() for n, t in model.named_parameters() if n.startswith("upd1_x"))  # not in layer_table
        print(
            f"test sum rate {rate:.4f} on {a.test}; the paper's layers {model_bytes(model):,} B fp32 / "
            f"{model_bytes(model, 'int8'):,} B int8, plus the x path's {extra:,} parameters"
        )
        if a.report:
            import json
            from pathlib import Path

            from tinyrrm.training.fileio import portable, write_text

            path = Path(a.report)
            rep = json.loads(path.read_text()) if path.is_file() else {}
            rep[Path(a.out).name] = {
                "command": "python docs/probes/x_path_probe.py "
                + " ".join(
                    f"--{k.replace('_', '-')}" + ("" if v is True else f" {v}")
                    for k, v in sorted(vars(a).items())
                    if v is not None and v is not False and k != "report"
                ),
                "a1": a.a1,
                "a2": a.a2,
                "seed": a.seed,
                "x_rank": a.x_rank,
                "shared_x": a.shared_x,
                "clip_penalty": a.clip_penalty,
                "epochs": a.epochs,
                "test": portable(a.test),
                "test_rate": rate,
                "extra_params": extra,
                "paper_layers_bytes_fp32": model_bytes(model),
            }
            write_text(path, json.dumps(rep, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
