"""The HIL report's picture: flash and RAM against the board, size ratios against the paper."""

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

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
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
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()
