"""The yardstick of every HIL report: the WMMSE policy (``tinyrrm export wmmse``) on the same
core and the same scenes as the learned model.

Two halves, made where their tools are:

* :func:`test_rates` (host C, run by ``tinyrrm hil-prepare``): sum rates on the test scenes
  (``data/test.npz``, 500 scenes) of WMMSE-k for every k of :data:`ITERS` as the generated C,
  MRT, the deployed LR-MPGNN's generated C and the full MPGNN's, each over WMMSE-100
  (:data:`REFERENCE`), written as ``build/hil/<target>/yardstick_rates.json``;
* :func:`on_target` (QEMU, run by the HIL session): instructions per decision of WMMSE-k on
  the HIL scenes for every k (one firmware per k: the iteration count is the policy's
  default), the firmware's flash and RAM (CSI input buffer included).

:func:`combine` puts both beside the learned models' own figures (``report["yardstick"]``).

A core whose RAM cannot hold the policy's buffers for the scenes' K (a K = 50 CSI buffer on
cortex-m0) gets the yardstick at the largest K of :data:`LADDER` that fits (:func:`ladder_k`):
both halves then run on the first K links of each scene (:func:`first_links`,
``H[:, :K, :K]``), WMMSE-100 at that K is the reference, and :func:`truncated` labels the
result with its K (``yardstick["k"]``), the scenes' own K and why each larger K was refused.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np

from tinyrrm import paths
from tinyrrm.codegen import wmmse as wpolicy
from tinyrrm.codegen.generate import FitError
from tinyrrm.codegen.host import HostModel
from tinyrrm.training.fileio import portable, write_text
from tinyrrm.training.metrics import sum_rate
from tinyrrm.training.scenes import Scenes
from tinyrrm.training.scenes import load as load_scenes
from tinyrrm.training.wmmse import mrt

from . import elfsize
from .run import build_firmware, infer_scenes, instructions, open_target

#: WMMSE iteration counts the yardstick measures; the last is the reference the rates divide by
ITERS = (1, 2, 3, 5, 10, 20, 50, 100)
REFERENCE = 100
RATES = "yardstick_rates.json"
#: the K a yardstick falls back to, largest first, when the scenes' K does not fit the core
LADDER = (40, 30, 25, 20, 10, 5)


def rates_name(k: int | None = None) -> str:
    """The rates file of the yardstick at ``k`` links (None: the scenes' own K, :data:`RATES`)."""
    return RATES if k is None else f"yardstick_rates_k{k}.json"


def ladder_k(target: str, K: int, nt: int) -> tuple[int | None, dict[str, str]]:
    """The largest of ``K`` and the rungs of :data:`LADDER` below it for which the WMMSE policy's
    buffers fit ``target`` (None: none does), and why each larger one does not (K -> the
    generator's refusal)."""
    refused: dict[str, str] = {}
    for k in (K, *(x for x in LADDER if x < K)):
        why = wpolicy.fit_error(target, k, nt)
        if why is None:
            return k, refused
        refused[str(k)] = why
    return None, refused


def first_links(scenes: Scenes, k: int) -> Scenes:
    """The first ``k`` links of every scene: ``H[:, :k, :k]``, their weights and distances."""
    if not 1 <= k <= scenes.K:
        raise ValueError(f"first_links: k={k} links of scenes with K={scenes.K}")
    return Scenes(
        H=np.ascontiguousarray(scenes.H[:, :k, :k]),
        weights=np.ascontiguousarray(scenes.weights[:, :k]),
        dist=None if scenes.dist is None else np.ascontiguousarray(scenes.dist[:, :k, :k]),
        noise_var=scenes.noise_var,
        p_max=scenes.p_max,
    )


def policy_dir(target: str, scenes: Scenes, iters: int) -> Path:
    """The generated WMMSE-``iters`` policy for ``scenes``' K and Nt, under build/gen."""
    return wpolicy.build_dir(target, scenes.K, scenes.Nt, iters)


def _unit(scenes: Scenes, i: int) -> np.ndarray:
    return scenes.H[i] * math.sqrt(scenes.p_max / scenes.noise_var)


def wmmse_c_beamformers(scenes: Scenes, iters: int, policy: wpolicy.HostPolicy) -> np.ndarray:
    """WMMSE-``iters`` as the generated C on the host, each scene's rate weights as its alpha."""
    V = []
    for i in range(scenes.N):
        if policy.set_params(iters=iters, alpha=scenes.weights[i]) != wpolicy.ERR["ok"]:
            raise ValueError(f"scene {i}: rate weights the WMMSE policy refuses")
        V.append(policy.infer(_unit(scenes, i)))
    return (np.stack(V) * math.sqrt(scenes.p_max)).astype(np.complex64)


def model_c_beamformers(scenes: Scenes, gen_dir, cut_m: float | None) -> np.ndarray:
    """A learned model's generated C (``gen_dir``) on the host."""
    hm = HostModel(gen_dir)
    mask = scenes.edge_mask(cut_m)
    V = [hm.infer(_unit(scenes, i), mask[i]) for i in range(scenes.N)]
    return (np.stack(V) * math.sqrt(scenes.p_max)).astype(np.complex64)


def test_rates(
    scenes: Scenes, scenes_path, models: dict[str, tuple[Path, float | None]], links: int | None = None
) -> dict:
    """Mean weighted sum rates on ``scenes`` (host C) of WMMSE-k for k in :data:`ITERS`, MRT and
    each of ``models`` (name -> (generated folder, edge cut)), and each over WMMSE-:data:`REFERENCE`;
    ``links``: on the first that many links of each scene (:func:`first_links`), WMMSE-100 at
    that K the reference."""
    scenes = scenes if links is None else first_links(scenes, links)
    gen = wpolicy.generate("host", policy_dir("host", scenes, REFERENCE), scenes.K, scenes.Nt, REFERENCE)
    pol = wpolicy.HostPolicy(gen)

    def rate(V) -> float:
        return float(sum_rate(scenes.H, V, scenes.noise_var, scenes.weights).mean())

    wm = {str(k): rate(wmmse_c_beamformers(scenes, k, pol)) for k in ITERS}
    ref = wm[str(REFERENCE)]
    learned = {name: rate(model_c_beamformers(scenes, g, cut)) for name, (g, cut) in models.items()}
    mrt_rate = rate(mrt(scenes.H, scenes.p_max))
    at = {} if links is None else {"k": links}
    how = "" if links is None else f", on the first {links} links of each scene (H[:, :{links}, :{links}])"
    return {
        **at,
        "scenes": str(scenes_path),
        "n_scenes": scenes.N,
        "how": "host C: the generated WMMSE policy" + (" and the learned models' generated C" if models else "") + how,
        "reference": f"wmmse{REFERENCE}",
        "sum_rate": {"wmmse": wm, "mrt": mrt_rate, **learned},
        "over_reference": {
            "wmmse": {k: v / ref for k, v in wm.items()},
            "mrt": mrt_rate / ref,
            **{n: v / ref for n, v in learned.items()},
        },
    }


def rates_key(scenes_path, models: dict[str, tuple[Path, float | None]], links: int | None = None) -> str:
    """What :func:`test_rates` depends on: the scene file, the WMMSE kernel and every C file of
    the models' generated folders (the same for every core), with their edge cuts, and the links."""
    h = hashlib.sha256(Path(scenes_path).read_bytes())
    h.update(wpolicy.sources_sha256().encode())
    if links is not None:
        h.update(f"links:{links}".encode())
    for name, (gen, cut) in sorted(models.items()):
        h.update(f"{name}:{cut}".encode())
        for p in sorted(Path(gen).rglob("*")):
            if p.suffix in (".c", ".h"):
                h.update(p.relative_to(gen).as_posix().encode() + p.read_bytes())
    return h.hexdigest()


def cached_test_rates(
    scenes_path, models: dict[str, tuple[Path, float | None]], cache=None, links: int | None = None
) -> dict:
    """:func:`test_rates` of the scene file, reused from ``cache`` (default
    ``build/hil/`` :func:`rates_name`: every core shares it) while :func:`rates_key` matches."""
    cache = Path(cache) if cache else paths.BUILD_HIL / rates_name(links)
    key = rates_key(scenes_path, models, links)
    if cache.is_file():
        doc = json.loads(cache.read_text())
        if doc.get("key") == key:
            return doc
    doc = {**test_rates(load_scenes(scenes_path), portable(scenes_path), models, links), "key": key}
    write_text(cache, json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return doc


def on_target(target: str, scenes: Scenes, progress: bool = False) -> dict:
    """Instructions per decision of WMMSE-k (k in :data:`ITERS`) on ``target`` under QEMU for
    ``scenes``, with the firmware's flash and RAM; ``{"fits": False, "why": ...}`` when the
    policy's buffers exceed the board (e.g. a K = 50 CSI buffer on cortex-m0)."""
    out: dict = {"k_max": scenes.K, "nt": scenes.Nt, "n_scenes": scenes.N, "iters": {}}
    for k in (0, *ITERS):  # 0: MRT and the gains alone
        try:
            gen = wpolicy.generate(target, policy_dir(target, scenes, k), scenes.K, scenes.Nt, k)
        except FitError as e:
            return {"fits": False, "why": str(e)}
        elf = build_firmware(target, gen, paths.BUILD_FW / target / gen.name)
        with open_target(target, elf) as c:
            stats = c.stats()
            _, ticks = infer_scenes(c, scenes, None, progress=progress)
            peak = c.stats()["stack_peak"]
        per = float(np.mean([instructions(t, stats) for t in ticks]))
        out["iters"][str(k)] = {
            "instructions_per_decision": per,
            "instructions_per_iteration_per_pair": None,
        }
        if k == 0:  # the firmware is the same for every k but one #define
            sz = elfsize.sizes(elf)
            rep = wpolicy.host.read_report(gen)["sizes"]
            out.update(
                fits=True,
                flash_bytes=sz["flash"],
                ram_bytes=sz["ram_static"] + peak,
                stack_peak_bytes=peak,
                csi_input_bytes=rep["input_bytes"],
                policy_state_bytes=rep["state_bytes"],
            )
    # the marginal cost of an iteration, per sender-receiver pair: (k_b - k_a) apart
    ks = [str(k) for k in (0, *ITERS)]
    pairs = scenes.K * scenes.K
    for a, b in zip(ks, ks[1:]):
        d = out["iters"][b]["instructions_per_decision"] - out["iters"][a]["instructions_per_decision"]
        out["iters"][b]["instructions_per_iteration_per_pair"] = d / (int(b) - int(a)) / pairs
    out["iters"][ks[0]].pop("instructions_per_iteration_per_pair")
    out["flops_per_pair_iteration"] = wpolicy.flops_per_pair_iteration(scenes.Nt)
    return out


def combine(
    measured: dict, rates: dict | None, deployed_instructions: float | None, full_instructions: float | None
) -> dict:
    """One table: per policy, instructions per decision on the core (QEMU) and sum rate over
    WMMSE-100 on the test scenes (host C); ``rates`` None: instructions only;
    ``deployed_instructions`` None (no learned model on the core): WMMSE-k and MRT only."""
    over = rates["over_reference"] if rates else None
    points = []
    if measured.get("fits"):
        for k, m in measured["iters"].items():
            if k == "0":
                continue
            points.append(
                {
                    "policy": f"wmmse{k}",
                    "instructions_per_decision": m["instructions_per_decision"],
                    "rate_over_wmmse100": over["wmmse"][k] if over else None,
                }
            )
        points.append(
            {
                "policy": "mrt",
                "instructions_per_decision": measured["iters"]["0"]["instructions_per_decision"],
                "rate_over_wmmse100": over["mrt"] if over else None,
            }
        )
    if deployed_instructions is None:
        return {"wmmse_on_target": measured, "rates": rates, "points": points}
    points.append(
        {
            "policy": "lrmpgnn_deployed",
            "instructions_per_decision": deployed_instructions,
            "rate_over_wmmse100": over.get("lrmpgnn_c") if over else None,
        }
    )
    points.append(
        {
            "policy": "mpgnn_full",
            "instructions_per_decision": full_instructions,
            "rate_over_wmmse100": over.get("mpgnn_c") if over else None,
        }
    )
    return {
        "wmmse_on_target": measured,
        "rates": rates,
        "points": points,
    }


def for_core(
    target: str,
    scenes: Scenes,
    hil_dir,
    deployed_instructions: float | None,
    full_instructions: float | None,
    progress: bool = False,
) -> dict:
    """``report["yardstick"]`` of ``target`` on the HIL ``scenes``, with the rates ``hil_dir``
    holds (``tinyrrm hil-prepare``). At the scenes' own K: :func:`combine` of :func:`on_target`.
    Where that does not fit: :func:`truncated` at :func:`ladder_k`'s K, WMMSE-k and MRT only
    (the learned models serve the scenes' K); no K of the ladder fits: the refusal alone."""
    k, refused = ladder_k(target, scenes.K, scenes.Nt)
    if k == scenes.K:
        rates = _read(Path(hil_dir) / RATES)
        return combine(on_target(target, scenes, progress), rates, deployed_instructions, full_instructions)
    if k is None:
        return {"wmmse_on_target": {"fits": False, "why": refused[str(scenes.K)]}, "rates": None, "points": []}
    measured = on_target(target, first_links(scenes, k), progress)
    return truncated(combine(measured, _read(Path(hil_dir) / rates_name(k)), None, None), k, scenes.K, refused)


def truncated(y: dict, k: int, k_scenes: int, refused: dict[str, str]) -> dict:
    """A yardstick at ``k`` links of scenes of ``k_scenes``, labelled: ``k``, ``k_scenes``, the
    ladder it chose from and why each larger K was refused."""
    return {**y, "k": k, "k_scenes": k_scenes, "ladder": [x for x in LADDER if x < k_scenes], "refused": refused}


def _read(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None
