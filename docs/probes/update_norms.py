"""Probe (not part of the toolchain): where a trained model's update outputs sit against unit power.

For each checkpoint: the norm of the update output ``o`` before the power scaling
``P(o) = o / max(1, ||o||)`` at every message-passing step (median and 90th percentile), the
share of beams at (nearly) full power, and how well beams align with their direct channel,
``|h_kk^H v_k| / (||h_kk|| ||v_k||)`` (MRT: 1). docs/DESIGN-NOTES.md §5 uses it to show a stalled cell:

    python docs/probes/update_norms.py --scenes data/val.npz runs/grid/a1-32_a2-4_seed-0_plain \
        runs/grid/a1-4_a2-4_seed-0_plain
"""

from __future__ import annotations

import argparse

import torch

from tinyrrm.training.checkpoint import load
from tinyrrm.training.scenes import load as load_scenes
from tinyrrm.training.train import prepare


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--scenes", required=True)
    ap.add_argument("--n", type=int, default=50, help="scenes used")
    a = ap.parse_args()
    scenes = load_scenes(a.scenes)
    for path in a.checkpoints:
        model, _ = load(path)
        model.eval()
        data = prepare(scenes, model.cfg.cut_m)
        H, mask = data.H[: a.n], data.mask[: a.n]
        norms = []
        scale = model.power_scale
        model.power_scale = lambda o, norms=norms, scale=scale: (norms.append(o.norm(dim=-1).flatten()), scale(o))[1]
        with torch.no_grad():
            V = model(H, mask)  # [N, K, Nt]
        k = torch.arange(V.shape[1])
        h = H[:, k, k]  # [N, K, Nt] direct channels
        power = V.abs().pow(2).sum(-1)  # [N, K]
        align = (h.conj() * V).sum(-1).abs() / (h.abs().pow(2).sum(-1).sqrt() * power.sqrt().clamp_min(1e-12))
        steps = "  ".join(
            f"step {i}: ||o|| median {n.median():.2f}, p90 {n.quantile(0.9):.2f}" for i, n in enumerate(norms)
        )
        print(
            f"{path}\n  {steps}\n  power mean {power.mean():.3f}, at full power (> 0.99) "
            f"{(power > 0.99).float().mean():.3f}, below 0.1 {(power < 0.1).float().mean():.3f}; "
            f"alignment with h_kk {align.mean():.3f}"
        )


if __name__ == "__main__":
    main()
