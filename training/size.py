"""Size accounting: parameters and bytes per layer of the full and the
low-rank model, and the ratios the 60x claim stands on (``tinyrrm size``)."""

from __future__ import annotations

from . import checkpoint as ckpt
from .models import model_bytes


def size_report(mpgnn_dir, lrmpgnn_dir) -> dict:
    """``{"mpgnn": {...}, "lrmpgnn": {...}, "ratio": {...}}`` with per-layer tables."""
    rep = {}
    for tag, path in (("mpgnn", mpgnn_dir), ("lrmpgnn", lrmpgnn_dir)):
        m, _ = ckpt.load(path)
        rep[tag] = {
            "checkpoint": str(path),
            "name": m.cfg.name,
            "layers": m.layer_table(),
            "bytes_fp32": model_bytes(m),
            "bytes_int8": model_bytes(m, "int8"),
        }
    rep["ratio"] = {
        "fp32_over_fp32": rep["mpgnn"]["bytes_fp32"] / rep["lrmpgnn"]["bytes_fp32"],
        "fp32_over_int8": rep["mpgnn"]["bytes_fp32"] / rep["lrmpgnn"]["bytes_int8"],
    }
    return rep


def format_size(rep: dict) -> str:
    """A person's view of :func:`size_report`."""
    lines = []
    for tag in ("mpgnn", "lrmpgnn"):
        r = rep[tag]
        lines.append(f"{r['name']} ({r['checkpoint']})")
        lines.append(f"  {'layer':<6}{'d_in':>6}{'d_out':>7}{'rank':>6}{'params':>10}{'fp32 B':>11}{'int8 B':>10}")
        for L in r["layers"]:
            lines.append(
                f"  {L['layer']:<6}{L['d_in']:>6}{L['d_out']:>7}{str(L['rank'] or '-'):>6}"
                f"{L['params']:>10}{L['bytes_fp32']:>11}{L['bytes_int8']:>10}"
            )
        lines.append(f"  {'total':<6}{'':>29}{r['bytes_fp32']:>11}{r['bytes_int8']:>10}")
    lines.append(f"size ratio fp32 MPGNN / fp32 LR-MPGNN: {rep['ratio']['fp32_over_fp32']:.2f}x")
    lines.append(f"size ratio fp32 MPGNN / int8 LR-MPGNN: {rep['ratio']['fp32_over_int8']:.2f}x")
    return "\n".join(lines)
