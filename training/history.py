"""Training histories of checkpoints: a side-by-side table and learning curves.

A history is the checkpoint JSON's ``history`` list, one dict per epoch with
``epoch``, ``train_rate``, ``val_rate`` (when validation scenes were given)
and ``seconds``. ``runs`` maps a label to a history.
"""

from __future__ import annotations

import io
from pathlib import Path

from tinyrrm.errors import InputError

from . import checkpoint as ckpt


def read(paths) -> dict[str, list[dict]]:
    """``{label: history}`` of checkpoint folders; labels are the folder names
    (the whole path where two folders share a name). Raises CheckpointError."""
    paths = [Path(p) for p in paths]
    names = [p.name for p in paths]
    runs = {}
    for p, name in zip(paths, names):
        _, doc = ckpt.load(p)
        runs[name if names.count(name) == 1 else str(p)] = doc.get("history", [])
    return runs


def _rate(h: dict) -> float:
    return h.get("val_rate", h["train_rate"])


def format_table(runs: dict[str, list[dict]]) -> str:
    """Validation sum rate per epoch (training rate where a run had no validation), a column per run."""
    width = max([9, *(len(k) for k in runs)])
    n = max((len(h) for h in runs.values()), default=0)
    lines = ["epoch  " + "  ".join(f"{k:>{width}}" for k in runs) + "   (val sum rate, bits/s/Hz)"]
    for e in range(n):
        cells = [f"{_rate(h[e]):>{width}.3f}" if e < len(h) else " " * width for h in runs.values()]
        lines.append(f"{e + 1:>5}  " + "  ".join(cells))
    return "\n".join(lines) + "\n"


def png_bytes(runs: dict[str, list[dict]], title: str = "Training history") -> bytes:
    """Learning curves: validation sum rate (solid) and training sum rate (dashed) per epoch,
    one colour per run, the best validation epoch marked. Deterministic bytes for the same input."""
    import matplotlib as mpl
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not any(runs.values()):
        raise InputError("no training history to plot (the checkpoints record no epochs)")
    with mpl.rc_context({"font.family": "DejaVu Sans", "font.size": 9}):
        fig = Figure(figsize=(9.0, 4.2), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.subplots()
        colors = mpl.colormaps["tab10"].colors
        for i, (label, hist) in enumerate(runs.items()):
            if not hist:
                continue
            c = colors[i % len(colors)]
            ep = [h["epoch"] for h in hist]
            has_val = all("val_rate" in h for h in hist)
            best = max(hist, key=_rate)
            kind = "val" if has_val else "train"
            ax.plot(
                ep,
                [_rate(h) for h in hist],
                color=c,
                lw=1.6,
                label=f"{label} (best {kind} {_rate(best):.2f} @ {best['epoch']})",
            )
            if has_val:
                ax.plot(ep, [h["train_rate"] for h in hist], color=c, lw=1.0, ls="--", alpha=0.7)
            ax.plot([best["epoch"]], [_rate(best)], marker="o", color=c, ms=4)
        # the first epochs of a run can sit far below (MRT start): scale to the last two thirds
        tails = [x for h in runs.values() for x in h[len(h) // 3 :]]
        ys = [_rate(x) for x in tails] + [x["train_rate"] for x in tails]
        lo, hi = min(ys), max(ys)
        pad = 0.05 * (hi - lo) + 0.1
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_xlabel("epoch")
        ax.set_ylabel("mean sum rate (bits/s/Hz)")
        ax.grid(alpha=0.3)
        ax.legend(
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            fontsize=8,
            title="solid: validation, dashed: training",
            title_fontsize=8,
        )
        ax.set_title(title)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    return buf.getvalue()
