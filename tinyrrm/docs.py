"""The figures of the docs, rendered from ``reports/`` (``make docs``, ``python -m tinyrrm.docs``).

``README.md`` and ``docs/*.md`` are prose written by hand with generated spans in it::

    <!-- generated: NAME [ARG ...] -->...<!-- /generated -->

``NAME`` is one of the renderers below: a small function of the committed reports (the JSON
files in ``reports/``, read through :class:`Reports`) and the marker's arguments that returns
Markdown. A marker that ends its line opens a *block* (a table, a list): the rendered text
stands on lines of its own between the two markers. Any other span is *inline*, a figure in
a sentence. :func:`render` rewrites every span of a text; ``make docs`` writes the results
back. ``tests/test_docs.py`` holds the committed docs equal to what the committed reports
render to, and holds every measured-looking number of the prose inside a span
(:func:`loose_figures`), so no figure is typed by hand.

Adding a figure: write a function ``(reports, *args) -> str`` decorated with
``@renderer("name")`` and put ``<!-- generated: name -->`` where it goes; ``make docs`` fills
it in. One-off figures need no function: ``value FILE KEY FORMAT`` prints one number of one
report (``<!-- generated: value size.json ratio.fp32_over_deployed_int8 .1f -->``).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tinyrrm import paths
from tinyrrm.codegen import host
from tinyrrm.codegen import targets as T
from tinyrrm.errors import InputError, TinyrrmError, UsageError
from tinyrrm.training.models import ARCHS, MPGNN, ModelConfig

#: a generated span: its renderer's name, its arguments, the text between the markers
SPAN = re.compile(r"<!-- generated: (?P<head>[^>]*?) -->(?P<body>.*?)<!-- /generated -->", re.S)

Renderer = Callable[..., str]
RENDERERS: dict[str, Renderer] = {}


def renderer(name: str) -> Callable[[Renderer], Renderer]:
    """Register ``fn`` as the renderer of ``<!-- generated: name ... -->``."""

    def register(fn: Renderer) -> Renderer:
        RENDERERS[name] = fn
        return fn

    return register


class Reports:
    """The JSON reports under one folder (``reports/``), each read once."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._cache: dict[str, object] = {}

    def __call__(self, name: str):
        if name not in self._cache:
            path = self.root / name
            if not path.is_file():
                raise InputError(f"{path}: no such report (the command that writes it has not run)")
            self._cache[name] = json.loads(path.read_text())
        return self._cache[name]

    def get(self, name: str, key: str):
        """One value: ``key`` is a dotted path of dict keys and list indices (``ratio.mpgnn/wmmse``)."""
        node = self(name)
        for part in key.split("."):
            if isinstance(node, list) and part.lstrip("-").isdigit():
                node = node[int(part)]
            elif isinstance(node, dict) and part in node:
                node = node[part]
            else:
                raise InputError(f"{self.root / name}: no {key!r} (stopped at {part!r})")
        return node

    def hil(self) -> dict[str, dict]:
        """``reports/hil/<core>.json`` of every core measured, in the targets table's order."""
        out = {}
        for name in T.TARGETS:
            if (self.root / "hil" / f"{name}.json").is_file():
                out[name] = self(f"hil/{name}.json")
        return out


def fmt(x, spec: str) -> str:
    """``format(x, spec)``, with ``M`` after the spec for millions (``.1fM`` -> ``101.5 M``)."""
    if spec.endswith("M"):
        return f"{format(x / 1e6, spec[:-1])} M"
    return format(x, spec)


# ------------------------------------------------------------------- small figures


@renderer("value")
def value(r: Reports, name: str, key: str, spec: str = "") -> str:
    """One number of one report: ``value size.json mpgnn.bytes_fp32 ,``."""
    return fmt(r.get(name, key), spec)


@renderer("quotient")
def quotient(r: Reports, name: str, key: str, name2: str, key2: str, spec: str) -> str:
    """The ratio of two reported numbers (``quotient evaluate_tflm.json sum_rate.lrmpgnn_tflm
    evaluate_test.json sum_rate.lrmpgnn_torch .4f``: int8 over fp32)."""
    return fmt(r.get(name, key) / r.get(name2, key2), spec)


@renderer("span")
def span(r: Reports, name: str, key: str, spec: str) -> str:
    """The range of a list of numbers (or of a dict's values) as ``lo–hi``."""
    xs = r.get(name, key)
    xs = list(xs.values()) if isinstance(xs, dict) else xs
    return f"{fmt(min(xs), spec)}–{fmt(max(xs), spec)}"


@renderer("text")
def text(r: Reports, name: str) -> str:
    """A text report (``make ablation``'s table) as it was written, in a code block."""
    path = r.root / name
    if not path.is_file():
        raise InputError(f"{path}: no such report (the command that writes it has not run)")
    return f"```\n{path.read_text().rstrip()}\n```"


# ------------------------------------------------------------------- the models


@renderer("archs")
def archs(r: Reports, a1: str = "4", a2: str = "16") -> str:
    """The width presets of ``tinyrrm train --arch`` with their parameter counts (Nt = 2), from
    the model code (``training/models.py``: the layers ``tinyrrm size`` counts)."""

    def params(**kw) -> int:
        return sum(row["params"] for row in MPGNN(ModelConfig(**kw)).layer_table())

    lines = [
        f"| `--arch` | msg1 → msg2 → upd1 widths | layers (Nt = 2) | parameters, MPGNN | parameters, LR-MPGNN ({a1}, {a2}) |",
        "| --- | --- | --- | ---: | ---: |",
    ]
    for arch in ARCHS:
        cfg = ModelConfig(arch=arch)
        dims = " · ".join(f"{n} {i}→{o}" for n, (i, o, _) in cfg.layer_dims().items())
        h1, h2, u1 = cfg.widths
        lines.append(
            f"| `{arch}` | {h1} → {h2} → {u1} | {dims} | {params(arch=arch):,} "
            f"| {params(arch=arch, a1=int(a1), a2=int(a2)):,} |"
        )
    return "\n".join(lines)


@renderer("default_models")
def default_models(r: Reports) -> str:
    """The committed checkpoints and their sizes (``tinyrrm size --json`` -> ``size.json``)."""
    s = r("size.json")
    m, lr = s["mpgnn"], s["lrmpgnn"]
    return "\n".join(
        [
            "| checkpoint | model | fp32 bytes | int8 bytes as deployed |",
            "| --- | --- | ---: | ---: |",
            f"| `{m['checkpoint']}` | `{m['name']}`: the full MPGNN | {m['bytes_fp32']:,} "
            f"| {m['deployed_int8']['total']:,} |",
            f"| `{lr['checkpoint']}` | `{lr['name']}`: the deployed LR-MPGNN | {lr['bytes_fp32']:,} "
            f"| {lr['deployed_int8']['total']:,} |",
        ]
    )


@renderer("infer_bytes")
def infer_bytes(r: Reports, k_max: str, nt: str) -> str:
    """The INFER payload for one model size, as the host packs it (``codegen/host.py``)."""
    k, n = int(k_max), int(nt)
    packed = host.input_bytes(np.zeros((k, k, n), np.complex64), np.zeros((k, k), bool), k)
    unpadded = 4 + 8 * k * k * n + -(-k * k // 8)
    return f"{len(packed):,} for K_MAX = {k}, Nt = {n} ({unpadded:,} before the padding)"


# ------------------------------------------------------------------- results


#: the backends of ``tinyrrm evaluate`` with a committed report, and what each runs
EVALUATIONS = (
    ("evaluate_test.json", "fp32, PyTorch"),
    ("evaluate_onnx.json", "fp32, ONNX Runtime (`--backend onnx`)"),
    ("evaluate_tflm.json", "int8, TFLite Micro (`--backend tflm`)"),
    ("evaluate_c.json", "int8, the generated C on the host (`--backend c`)"),
)


@renderer("sum_rates")
def sum_rates(r: Reports) -> str:
    """Sum rates and ratios of every committed ``tinyrrm evaluate --json`` report."""
    base = r("evaluate_test.json")
    ref = {m: base["sum_rate"][f"{m}_{base['backend']}"] for m in ("mpgnn", "lrmpgnn")}
    lines = [
        "| method | MPGNN | LR-MPGNN | LR-MPGNN / MPGNN | MPGNN / WMMSE | each / its fp32 PyTorch (MPGNN, LR) |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, what in EVALUATIONS:
        e = r(name)
        rate = {m: e["sum_rate"][f"{m}_{e['backend']}"] for m in ("mpgnn", "lrmpgnn")}
        lines.append(
            f"| {what} | {rate['mpgnn']:.2f} | {rate['lrmpgnn']:.2f} | {e['ratio']['lrmpgnn/mpgnn']:.4f} "
            f"| {e['ratio']['mpgnn/wmmse']:.4f} | {rate['mpgnn'] / ref['mpgnn']:.4f}, {rate['lrmpgnn'] / ref['lrmpgnn']:.4f} |"
        )
    return "\n".join(
        [
            f"WMMSE reaches {base['sum_rate']['wmmse']:.2f} bits/s/Hz and full-power MRT (the floor) "
            f"{base['sum_rate']['mrt']:.2f} on the {base['n_scenes']} scenes of `{base['scenes']}` "
            f"(K = {base['K']}, Nt = {base['Nt']}); the models, in bits/s/Hz:",
            "",
            *lines,
        ]
    )


@renderer("sizes")
def sizes(r: Reports) -> str:
    """The size accounting of the two default models (``size.json``)."""
    s = r("size.json")
    m, lr, q = s["mpgnn"], s["lrmpgnn"], s["ratio"]
    d = lr["deployed_int8"]
    rows = [
        ("fp32 MPGNN", f"{m['bytes_fp32']:,}", "1"),
        ("fp32 LR-MPGNN", f"{lr['bytes_fp32']:,}", f"{q['fp32_over_fp32']:.1f}×"),
        ("int8 LR-MPGNN, weights and biases", f"{lr['bytes_int8']:,}", f"{q['fp32_over_int8']:.1f}×"),
        (
            "int8 LR-MPGNN as deployed (weights, biases, requantization, ADD/MUL constants)",
            f"{d['total']:,}",
            f"**{q['fp32_over_deployed_int8']:.1f}×**",
        ),
        (
            "int8 LR-MPGNN as a `.tflite` flatbuffer",
            f"{d['flatbuffer_bytes']:,}",
            f"{q['fp32_over_tflite_flatbuffer']:.1f}×",
        ),
    ]
    lines = ["| model | bytes | fp32 MPGNN / it |", "| --- | ---: | ---: |"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


def _bits(h: dict) -> str:
    return f"{h['bit_exact']['equal']} / {h['bit_exact']['total']}"


#: the columns of the README's HIL table after core and machine: (header, the cell of one
#: ``reports/hil/<core>.json``); a new measured column is one more row here
HIL_COLUMNS: tuple[tuple[str, Callable[[dict], str]], ...] = (
    ("flash / board", lambda h: f"{h['flash_bytes']:,} / {h['flash_limit_bytes']:,}"),
    ("RAM / board", lambda h: f"{h['ram_bytes']:,} / {h['ram_limit_bytes']:,}"),
    ("instructions per inference", lambda h: fmt(h["instructions_per_inference"], ".1fM")),
    ("per MAC", lambda h: f"{h['instructions_per_mac']:.2f}"),
    (
        "SMLAD over portable C",
        lambda h: f"{h['portable_over_dsp']:.2f}×" if "portable_over_dsp" in h else "— (no DSP extension)",
    ),
    ("int8 on target / fp32 MPGNN", lambda h: f"{h['sum_rate_ratio']:.4f}"),
    ("vectors bit-exact", _bits),
)


@renderer("hil_table")
def hil_table(r: Reports) -> str:
    """One row per core of the targets table: what ``make hil TARGET=<core>`` measured
    (``reports/hil/<core>.json``, :data:`HIL_COLUMNS`); a core without a report is named with
    its machine and its board's limits."""
    hil = r.hil()
    lines = [
        "| core | QEMU machine | " + " | ".join(head for head, _ in HIL_COLUMNS) + " |",
        "| --- | --- | " + " | ".join("---:" for _ in HIL_COLUMNS) + " |",
    ]
    for name, t in T.TARGETS.items():
        h = hil.get(name)
        if h is not None and h.get("fits", True):
            cells = [cell(h) for _, cell in HIL_COLUMNS]
        else:
            last = "does not fit (below)" if h is not None else "no report"
            cells = [f"— / {t.flash:,}", f"— / {t.ram:,}"] + [""] * (len(HIL_COLUMNS) - 3) + [last]
        lines.append(f"| {name} | {t.qemu_machine} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


@renderer("hil_no_fit")
def hil_no_fit(r: Reports) -> str:
    """The cores the deployed model does not fit, each with the HIL's own refusal."""
    hil = r.hil()
    return "\n".join(f"- {name}: {h['why']}" for name, h in hil.items() if not h.get("fits", True))


#: the yardstick table's rows: (the report's policy name, what a reader calls it)
_POLICIES = (
    ("mrt", "MRT at full power (WMMSE-0)"),
    *((f"wmmse{k}", f"WMMSE-{k}") for k in (1, 2, 3, 5, 10, 20, 50, 100)),
    ("lrmpgnn_deployed", "deployed LR-MPGNN, int8"),
    ("mpgnn_full", "full MPGNN, int8"),
)


@renderer("yardstick")
def yardstick(r: Reports) -> str:
    """Every policy of the HIL reports' yardstick: its sum rate over WMMSE-100 (host C, the test
    scenes) and its instructions per decision on each core that measured it (QEMU), then the
    WMMSE firmware's flash and RAM per core."""
    # a yardstick at fewer links than the scenes' (``yardstick.k``: a core the K = 50 policy does
    # not fit) has rates of its own K: its core's report shows it, not this table
    hil = {n: h for n, h in r.hil().items() if h.get("yardstick", {}).get("points") and "k" not in h["yardstick"]}
    if not hil:
        raise InputError("no reports/hil/<core>.json has a yardstick: run make hil TARGET=<core>")
    cores = [n for n in T.TARGETS if n in hil]
    points = {n: {p["policy"]: p for p in hil[n]["yardstick"]["points"]} for n in cores}
    rates = hil[cores[0]]["yardstick"]["rates"]
    lines = [
        f"| policy | sum rate / WMMSE-100 ({rates['n_scenes']} scenes, host C) | "
        + " | ".join(f"{n}, instructions" for n in cores)
        + " |",
        "| --- | ---: | " + " | ".join("---:" for _ in cores) + " |",
    ]
    for key, label in _POLICIES:
        first = next((points[n][key] for n in cores if key in points[n]), None)
        if first is None:
            continue
        row = [label, f"{first['rate_over_wmmse100']:.4f}"]
        row += [_instr(points[n][key]["instructions_per_decision"]) if key in points[n] else "" for n in cores]
        lines.append("| " + " | ".join(row) + " |")
    w = [hil[n]["yardstick"]["wmmse_on_target"] for n in cores]
    lines.append(
        "| WMMSE firmware: flash / RAM (CSI buffer included) | | "
        + " | ".join(f"{x['flash_bytes']:,} / {x['ram_bytes']:,}" for x in w)
        + " |"
    )
    return "\n".join(lines)


@renderer("yardstick_fewer_links")
def yardstick_fewer_links(r: Reports) -> str:
    """The cores whose yardstick ran at fewer links than the scenes' (``yardstick.k``: the
    scenes' K does not fit them): per core the K it ran at, why the larger ones were refused,
    and WMMSE-k's rate (over WMMSE-100 at that K) and instructions."""
    out = []
    for name, h in r.hil().items():
        y = h.get("yardstick", {})
        if "k" not in y or not y.get("points"):
            continue
        w, rates = y["wmmse_on_target"], y["rates"]
        out += [
            f"{name} at K = {y['k']} (the first {y['k']} links of each scene; K = "
            f"{', '.join(sorted(y['refused'], key=int, reverse=True))} do not fit its RAM, the refusals are in "
            f"`reports/hil/{name}.md`): firmware flash {w['flash_bytes']:,} B, "
            f"RAM {w['ram_bytes']:,} B with the CSI buffer; rates over WMMSE-100 at K = {y['k']} on "
            f"{rates['n_scenes']} scenes (host C)",
            "",
            "| policy | sum rate / WMMSE-100 | instructions |",
            "| --- | ---: | ---: |",
        ]
        pts = {p["policy"]: p for p in y["points"]}
        for key, label in _POLICIES:
            if key in pts:
                p = pts[key]
                out.append(f"| {label} | {p['rate_over_wmmse100']:.4f} | {_instr(p['instructions_per_decision'])} |")
        out.append("")
    if not out:
        raise InputError("no reports/hil/<core>.json has a yardstick at fewer links: run make hil TARGET=cortex-m0")
    return "\n".join(out).rstrip()


@renderer("wmmse_bench")
def wmmse_bench(r: Reports) -> str:
    """The WMMSE kernel's cost per iteration on every core (``reports/wmmse_bench.json``, written
    by ``python -m tinyrrm.hil.wmmse_bench``): the mean over the iterations measured."""
    b = r("wmmse_bench.json")
    lines = [
        "| core | K, Nt | MRT and gains | instructions per iteration | per pair and iteration | per flop |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for c in b["cases"]:
        runs = [x for x in c["runs"] if "instructions_per_iteration" in x]

        def mean(key, runs=runs):
            return sum(x[key] for x in runs) / len(runs)

        lines.append(
            f"| {c['target']} | {c['k']}, {c['nt']} | {_instr(c['mrt_and_gains_instructions'])} | "
            f"{_instr(mean('instructions_per_iteration'))} | {mean('instructions_per_pair_iteration'):.1f} | "
            f"{mean('instructions_per_flop'):.2f} |"
        )
    return "\n".join(lines)


@renderer("wmmse_sparse_bench")
def wmmse_sparse_bench(r: Reports) -> str:
    """The top-m WMMSE on one core (``reports/wmmse_sparse_bench.json``, written by
    ``python -m tinyrrm.hil.wmmse_sparse_bench``): the ranking apart, then WMMSE-k's own
    instructions on the kept links, for every m and k measured."""
    b = r("wmmse_sparse_bench.json")
    iters = [x["iters"] for x in b["cases"][0]["runs"]]
    lines = [
        f"| top-m ({b['target']}, K = {b['k']}, Nt = {b['nt']}) | ranking | "
        + " | ".join(f"WMMSE-{k}" if k else "MRT and gains" for k in iters)
        + " | RAM |",
        "| --- | ---: | " + " | ".join("---:" for _ in iters) + " | ---: |",
    ]
    for c in b["cases"]:
        runs = {x["iters"]: x for x in c["runs"]}
        rank = runs[iters[0]]["rank_instructions"]
        lines.append(
            f"| {c['top_m']} | {_instr(rank)} | "
            + " | ".join(_instr(runs[k]["wmmse_instructions"]) for k in iters)
            + f" | {c['ram_bytes']['total']:,} |"
        )
    return "\n".join(lines)


def _instr(x: float) -> str:
    """Instructions in the unit a reader compares: K below a million, M below a billion, G above."""
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if x >= scale:
            return f"{x / scale:.3g} {unit}"
    return f"{x:.0f}"


@renderer("hil_original")
def hil_original(r: Reports, core: str = "cortex-m4") -> str:
    """The original full MPGNN's firmware beside the deployed one on one core."""
    h = r(f"hil/{core}.json")
    o = h["original_firmware"]
    return (
        f"{o['flash_bytes']:,} B of flash on {core} against the deployed firmware's "
        f"{h['flash_bytes']:,} B ({o['flash_bytes'] / h['flash_bytes']:.1f}×, both with their test vectors), "
        f"and passes its own vectors ({_bits(o)})"
    )


@renderer("bench_firmware")
def bench_firmware(r: Reports) -> str:
    """``make bench``'s firmware part: instructions per MAC of both kernel paths per core."""
    b = r("bench.json")["firmware"]
    lines = [
        f"| core | SMLAD path, per MAC | portable C, per MAC | portable / SMLAD | ({b['scenes']}) |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for name, c in b["targets"].items():
        dsp = c.get("dsp")
        smlad = f"{dsp['instructions_per_mac']:.2f}" if dsp else "— (no DSP extension)"
        gain = f"{c['portable_over_dsp']:.2f}×" if dsp else ""
        lines.append(f"| {name} | {smlad} | {c['portable']['instructions_per_mac']:.2f} | {gain} | |")
    return "\n".join(lines)


@renderer("bench_host")
def bench_host(r: Reports) -> str:
    """``make bench``'s host figures (``bench.json``)."""
    b = r("bench.json")
    t, i, e, c = b["train_epoch"], b["inference"], b["export"], b["codegen"]
    epoch = " / ".join(f"{t[k]['seconds']:.0f} s" for k in ("mpgnn_paper", "lrmpgnn_paper_16_4", "lrmpgnn_paper_4_16"))
    m = b["machine"]
    rows = [
        (
            f"training epoch, {t['mpgnn_paper']['scenes']} scenes, batch {t['mpgnn_paper']['batch']}: "
            "MPGNN / LR (16, 4) / LR (4, 16)",
            epoch,
        ),
        (
            "inference, PyTorch: MPGNN / LR (4, 16)",
            f"{i['mpgnn_paper']['scenes_per_s']:.0f} / {i['lrmpgnn_paper_4_16']['scenes_per_s']:.0f} scenes/s",
        ),
        (f"WMMSE (K = {b['wmmse']['K']}, Nt = {b['wmmse']['Nt']})", f"{b['wmmse']['scenes_per_s']:.0f} scenes/s"),
        (
            f"export of the deployed model (calibration on {e['calibration_scenes']} scenes)",
            f"{e['export_seconds']:.0f} s",
        ),
        (
            f"TFLite Micro on the host, one scene ({e['tflm_invokes_per_scene']} invokes of the int8 core)",
            f"{e['tflm_seconds_per_scene']:.2f} s",
        ),
        (
            f"generated C on the host, one inference ({c['tool']})",
            f"{fmt(c['instructions_per_inference'], '.1fM')} instructions ({c['instructions_per_mac']:.2f} per MAC)",
        ),
    ]
    lines = [f"| on {m['cores']} {m['cpu']} cores, torch {m['torch']} | |", "| --- | --- |"]
    lines += [f"| {a} | {b_} |" for a, b_ in rows]
    return "\n".join(lines)


# ------------------------------------------------------------------- the rank grid


def _cell(g: dict, a1: int, a2: int) -> str:
    s = g["sum_rate_ratio"]
    i, j = s["a1"].index(a1), s["a2"].index(a2)
    x, sd, n = s["rows"][i][j], s["std"][i][j], s["n_seeds"][i][j]
    return f"{x:.3f} ± {sd:.3f} ({n} seeds)" if sd is not None else f"{x:.3f}"


@renderer("grid_cell")
def grid_cell(r: Reports, a1: str, a2: str, name: str = "paper_grid.json") -> str:
    """One cell of a rank grid's sum-rate ratios, with its spread over seeds when it has one."""
    return _cell(r(name), int(a1), int(a2))


@renderer("size_fit")
def size_fit(r: Reports) -> str:
    """The largest relative gap between the grid's size ratios and the paper's table
    (``reference/paper_tables.json``), over the cells both have, in percent."""
    ours, paper = (
        r("paper_grid.json")["model_size_ratio"],
        json.loads(paths.PAPER_TABLES.read_text())["model_size_ratio"],
    )
    gaps = [
        abs(ours["rows"][ours["a1"].index(a1)][ours["a2"].index(a2)] / x - 1)
        for i, a1 in enumerate(paper["a1"])
        for j, a2 in enumerate(paper["a2"])
        if (x := paper["rows"][i][j]) is not None and a1 in ours["a1"] and a2 in ours["a2"]
    ]
    return f"{100 * max(gaps):.2f}% over {len(gaps)} cells"


@renderer("grid_targets")
def grid_targets(r: Reports) -> str:
    """The *Targets* of the rank grid (``paper_grid.json``), as a list."""
    g = r("paper_grid.json")
    t = g["targets"]
    hi, low, dep = t["a1_a2_ge_16"], t["a1_4_a2_4"], t["deployment"]
    s = g["sum_rate_ratio"]
    ge16 = [
        x
        for i, a1 in enumerate(s["a1"])
        for j, a2 in enumerate(s["a2"])
        if a1 >= 16 and a2 >= 16
        for x in [s["rows"][i][j]]
        if x is not None
    ]
    cands = ", ".join(
        f"({c['a1']}, {c['a2']}) {c['int8_shrink']:.0f}× {_cell(g, c['a1'], c['a2'])}" for c in dep["candidates"]
    )
    return "\n".join(
        [
            f"- every cell with a1, a2 ≥ 16 at ≥ {hi['threshold']}: {hi['passing']} of {hi['measured']} measured cells "
            f"({hi['cells']} in all), at {min(ge16):.3f}–{max(ge16):.3f};",
            f"- (4, 4) at ≥ {low['threshold']}: {_cell(g, 4, 4)}, {'met' if low['pass'] else 'missed'};",
            f"- deployment ({dep['rule']}): {cands}; the pick is ({dep['best'][0]}, {dep['best'][1]}).",
        ]
    )


@renderer("grid_recipes")
def grid_recipes(r: Reports) -> str:
    """The deployment candidates under each recipe the rank grid was run with."""
    runs = (
        ("the paper's plain update with a clip penalty (the grid's recipe)", "paper_grid.json"),
        ("plain update, no penalty", "grid_plain_noclip/paper_grid.json"),
        ("residual update", "grid_residual/paper_grid.json"),
    )
    cells = ((4, 4), (16, 4), (4, 16))
    lines = [
        "| recipe | " + " | ".join(f"({a}, {b})" for a, b in cells) + " | report |",
        "| --- | " + " | ".join("---:" for _ in cells) + " | --- |",
    ]
    for what, name in runs:
        g = r(name)
        s = g["sum_rate_ratio"]

        def cell(a1, a2, g=g, s=s):
            if a1 in s["a1"] and a2 in s["a2"] and s["rows"][s["a1"].index(a1)][s["a2"].index(a2)] is not None:
                return _cell(g, a1, a2)
            return "–"

        lines.append(f"| {what} | " + " | ".join(cell(a, b) for a, b in cells) + f" | `reports/{name}` |")
    return "\n".join(lines)


@renderer("svd_truncation")
def svd_truncation(r: Reports) -> str:
    """``tinyrrm svd-study`` (``svd_truncation.json``): truncated and fine-tuned cells."""
    s = r("svd_truncation.json")
    lines = [
        f"| (a1, a2) | truncated, no retraining | after {s['finetune_epochs']} fine-tune epoch(s) |",
        "| --- | ---: | ---: |",
    ]
    for c in s["cells"]:
        ft = next(v for k, v in c.items() if k.startswith("finetuned"))
        lines.append(f"| ({c['a1']}, {c['a2']}) | {c['truncated']['ratio_to_full']:.3f} | {ft['ratio_to_full']:.3f} |")
    return "\n".join(lines)


# ------------------------------------------------------------------- rendering

#: numbers that look measured: a decimal (``0.97``), a number of four digits or more, bare or
#: grouped (``2000``, ``7,317,584``); not part of a word, a version or a hex literal
FIGURE = re.compile(r"(?<![\w.,^−-])(?:\d{1,3}(?:,\d{3})+|\d{4,}|\d+\.\d+)(?![\w.]|,\d)")
#: a bound (``≥ 0.95``, ``≤ 1e-5``, ``< 500``) is a specification, not a measurement
BOUND = re.compile(r"[≥≤<>±]\s*$")
#: code (fenced and inline), where a marker is an example and a number a setting
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.S)
COMMENT = re.compile(r"<!--.*?-->", re.S)


def render(text: str, reports: Reports, where: str = "") -> str:
    """``text`` with every generated span rendered afresh (a marker inside code is an example)."""
    code = [m.span() for m in CODE.finditer(text)]

    def one(m: re.Match) -> str:
        if any(a <= m.start() < b for a, b in code):
            return m[0]
        name, *args = m["head"].split()
        if name not in RENDERERS:
            raise UsageError(
                f"{where}: unknown renderer {name!r} in {m[0][:60]!r}; known: {', '.join(sorted(RENDERERS))}"
            )
        try:
            out = RENDERERS[name](reports, *args)
        except TypeError as e:
            raise UsageError(f"{where}: bad arguments for {name!r}: {e}") from e
        opening = f"<!-- generated: {m['head']} -->"
        if m["body"].startswith("\n"):  # a block
            return f"{opening}\n{out}\n<!-- /generated -->"
        return f"{opening}{out}<!-- /generated -->"

    return SPAN.sub(one, text)


def loose_figures(text: str) -> list[str]:
    """The measured-looking numbers outside generated spans, code and comments, with their line.

    A figure outside a span was typed by hand. Settings and inputs (``--n 2000``, ``115200 8N1``)
    are written as code; bounds (``≥ 0.95``) are exempt; numbers under four digits are counts
    and widths of the design (three steps, 16 KB), not measurements."""
    out = []
    for n, line in enumerate(_prose(text).splitlines(), 1):
        for m in FIGURE.finditer(line):
            if not BOUND.search(line[: m.start()]):
                out.append(f"line {n}: {m[0]!r} in {line.strip()[:100]!r}")
    return out


def _prose(text: str) -> str:
    """``text`` with generated spans, code and comments blanked (newlines kept, so line numbers hold)."""
    blank = lambda m: re.sub(r"[^\n]", " ", m[0])  # noqa: E731
    return COMMENT.sub(blank, CODE.sub(blank, SPAN.sub(blank, text)))


def doc_files(root: Path) -> list[Path]:
    """The docs ``make docs`` renders: the README and ``docs/*.md``."""
    return [root / paths.README, *sorted((root / paths.DOCS).glob("*.md"))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tinyrrm.docs", description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 if a doc is not what the reports give")
    args = ap.parse_args(argv)
    reports, stale = Reports(paths.REPORTS), []
    for path in doc_files(Path()):
        old = path.read_text()
        try:
            new = render(old, reports, str(path))
        except TinyrrmError as e:
            print(f"tinyrrm docs: error: {e}", file=sys.stderr)
            return 2
        if new != old:
            stale.append(path)
            if not args.check:
                path.write_text(new)
        for loose in loose_figures(new):
            print(f"{path}: a figure outside a generated span: {loose}", file=sys.stderr)
    verb = "differ from the reports" if args.check else "rewritten"
    print(f"{len(stale)} of {len(doc_files(Path()))} docs {verb}" + "".join(f"\n  {p}" for p in stale))
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
