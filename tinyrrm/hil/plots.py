"""The HIL report's picture: flash and RAM against the board, size ratios against the paper,
and (with the yardstick) sum rate against instructions per decision beside WMMSE-k."""

from __future__ import annotations

import io
import json

import numpy as np

from tinyrrm import paths


def hil_png(res: dict) -> bytes:
    """Two panels as PNG bytes: (1) deployed and original firmware flash/RAM vs the board's limits
    (log scale); (2) our model-size ratios per rank cell vs the paper's, the deployed cell
    (``res["model"]``'s ranks) marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    third = has_yardstick(res)
    fig, axes = plt.subplots(1, 3 if third else 2, figsize=(16.5 if third else 11, 4.2))
    a, b = axes[0], axes[1]
    labels = ["flash", "RAM"]
    dep = [res["flash_bytes"], res["ram_bytes"]]
    lim = [res["flash_limit_bytes"], res["ram_limit_bytes"]]
    x = np.arange(2)
    a.bar(x - 0.2, dep, 0.4, label="deployed LR-MPGNN firmware")
    orig = res.get("original_firmware")
    if orig:
        a.bar(x + 0.2, [orig["flash_bytes"], orig["ram_static_bytes"]], 0.4, label="original MPGNN firmware")
    for i, v in enumerate(lim):
        a.hlines(v, i - 0.45, i + 0.45, colors="k", linestyles="--", label="board limit" if i == 0 else None)
    a.set_xticks(x, labels)
    a.set_yscale("log")
    a.set_ylabel("bytes")
    a.set_title(f"{res['target']} — {res['board']}", fontsize=9)
    a.legend(fontsize=8)

    ours = json.loads(paths.GRID_REPORT.read_text())["model_size_ratio"]
    paper = json.loads(paths.PAPER_TABLES.read_text())["model_size_ratio"]
    o, p = np.asarray(ours["rows"], float), np.asarray(paper["rows"], float)
    for i, a1 in enumerate(ours["a1"]):
        (line,) = b.plot(ours["a2"], o[i], "o-", label=f"ours a1={a1}")
        b.plot(paper["a2"], p[i], "x--", color=line.get_color(), alpha=0.6)
    b.plot([], [], "kx--", alpha=0.6, label="paper (same colour)")
    b.axhline(60, color="r", lw=0.8, ls=":", label="60×")
    a1, a2 = res["model"]["a1"], res["model"]["a2"]
    if a2 is not None:
        b.scatter(
            [a2],
            [res["model_size_ratio"]],
            marker="*",
            s=160,
            color="k",
            zorder=5,
            label=f"deployed ({a1}, {a2}), int8: {res['model_size_ratio']:.1f}×",
        )
    b.set_xscale("log", base=2)
    b.set_yscale("log")
    b.set_xlabel("a2 (update-network rank)")
    b.set_ylabel("original size / LR size")
    b.set_title("model size ratio (fp32/fp32 grid; deployed: fp32/int8)", fontsize=9)
    b.legend(fontsize=7, ncol=2)
    if third:
        yardstick_axes(axes[2], res)
    return _png(fig)


def _png(fig) -> bytes:
    """``fig`` laid out, as PNG bytes without the Matplotlib version (the same figure, the same
    bytes), and closed."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def has_yardstick(res: dict) -> bool:
    """The run has a yardstick to draw: WMMSE fits the core and the rates are there."""
    y = res.get("yardstick")
    return bool(y and y.get("rates") and y["wmmse_on_target"].get("fits"))


def yardstick_png(res: dict) -> bytes:
    """The yardstick alone (:func:`yardstick_axes`) as PNG bytes: a core the deployed model does not fit."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    yardstick_axes(ax, res)
    return _png(fig)


def yardstick_axes(ax, res: dict) -> None:
    """Sum rate / WMMSE-100 (test scenes, host C) against instructions per decision on the core
    (QEMU, log x): the WMMSE-k curve, MRT, the deployed model and the full MPGNN. A yardstick at
    fewer links than the scenes' (``yardstick["k"]``) says its K in the title and the axes."""
    pts = {p["policy"]: p for p in res["yardstick"]["points"]}
    wm = [p for name, p in pts.items() if name.startswith("wmmse")]
    x = [p["instructions_per_decision"] for p in wm]
    ax.plot(x, [p["rate_over_wmmse100"] for p in wm], "o-", color="C0", label="WMMSE-k (generated C)")
    for p in wm:
        ax.annotate(
            p["policy"][5:],
            (p["instructions_per_decision"], p["rate_over_wmmse100"]),
            fontsize=7,
            textcoords="offset points",
            xytext=(3, -9),
        )
    for name, style, label in (
        ("mrt", "s", "MRT"),
        ("lrmpgnn_deployed", "*", "deployed LR-MPGNN (int8)"),
        ("mpgnn_full", "D", "full MPGNN (int8)"),
    ):
        p = pts.get(name)
        if p and p["instructions_per_decision"] and p["rate_over_wmmse100"] is not None:
            ax.scatter(
                [p["instructions_per_decision"]],
                [p["rate_over_wmmse100"]],
                marker=style,
                s=140 if style == "*" else 50,
                zorder=5,
                label=label,
            )
    k = res["yardstick"].get("k")
    at = "" if k is None else f" at K = {k}"
    ax.set_xscale("log")
    ax.set_xlabel(f"instructions per decision{at} on {res['target']} (QEMU icount)")
    ax.set_ylabel(f"sum rate / WMMSE-100{at} (test scenes)")
    title = "the yardstick: WMMSE-k on the same core"
    if k is not None:
        title += f"\nat K = {k}: the first {k} links of each scene (K = {res['yardstick']['k_scenes']} does not fit)"
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
