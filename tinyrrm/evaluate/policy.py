"""``tinyrrm evaluate --policy wmmse --iters K``: the WMMSE policy as generated C, evaluated
like the learned models.

* ``c``    — the generated policy (:mod:`tinyrrm.codegen.wmmse`) built for the host;
  each scene's rate weights are set as its parameters.
* ``qemu`` — the same C in the HIL firmware for a core, under QEMU (or on a board with
  ``port``), with ``instructions_per_decision`` from SysTick under ``-icount``; the firmware
  runs the policy's default parameters (iterations K, unit weights, power and noise).

Both give ``W_wmmse<K>_<backend>`` complex64 ``[N, K, Nt]`` with ``||v_k||^2 <= p_max``,
beside the Python WMMSE to convergence (``W_wmmse``) and MRT (``W_mrt``).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from tinyrrm import paths
from tinyrrm.codegen import wmmse as wpolicy
from tinyrrm.errors import UsageError
from tinyrrm.evaluate import header, save_beamformers, with_baselines
from tinyrrm.hil.protocol import check_hello
from tinyrrm.hil.run import build_firmware, infer_scenes, instructions, open_target
from tinyrrm.training.fileio import check_out_file
from tinyrrm.training.scenes import Scenes
from tinyrrm.training.scenes import load as load_scenes

#: the backends that run the WMMSE policy
BACKENDS = ("c", "qemu")


def generated(target: str, scenes: Scenes, iters: int, top_m: int | None = None) -> Path:
    """The policy for ``scenes``' K and Nt with ``iters`` iterations by default (on each
    receiver's ``top_m`` strongest interferers), under build/gen."""
    out = wpolicy.build_dir(target, scenes.K, scenes.Nt, iters, top_m)
    return wpolicy.generate(target, out, scenes.K, scenes.Nt, iters, top_m=top_m)


def policy_name(iters: int, top_m: int | None) -> str:
    """``wmmse<K>`` or ``wmmse<K>_top<m>``: the policy's name in reports and beamformer files."""
    return f"wmmse{iters}" if top_m is None else f"wmmse{iters}_top{top_m}"


def host_beamformers(scenes: Scenes, iters: int, progress: bool = True, top_m: int | None = None) -> np.ndarray:
    """The generated C on the host -> V ``[N, K, Nt]`` (scaled by sqrt(p_max))."""
    pol = wpolicy.HostPolicy(generated("host", scenes, iters, top_m))
    H = scenes.H * math.sqrt(scenes.p_max / scenes.noise_var)
    V = []
    for i in tqdm(
        range(scenes.N), desc=f"WMMSE-{iters} on generated C", leave=False, disable=None if progress else True
    ):
        if pol.set_params(iters=iters, alpha=scenes.weights[i]) != wpolicy.ERR["ok"]:
            raise UsageError(f"scene {i}: rate weights the policy refuses")
        V.append(pol.infer(H[i]))
    return (np.stack(V) * math.sqrt(scenes.p_max)).astype(np.complex64)


def target_beamformers(
    scenes: Scenes,
    iters: int,
    target: str,
    port: str | None = None,
    progress: bool = True,
    top_m: int | None = None,
) -> tuple[np.ndarray, float, dict]:
    """The policy in the HIL firmware for ``target`` -> (V, mean instructions per decision, ELF path)."""
    if not np.all(scenes.weights == 1.0):
        raise UsageError(
            "the qemu backend runs the policy's default parameters (unit rate weights); "
            "scenes with other weights: --backend c"
        )
    gen = generated(target, scenes, iters, top_m)
    elf = build_firmware(target, gen, paths.BUILD_FW / target / gen.name)
    with open_target(target, elf, port) as client:
        if port:
            want = {"prefix": wpolicy.DEFAULT_PREFIX, "k_max": str(scenes.K), "nt": str(scenes.Nt), "iters": str(iters)}
            check_hello(client.hello(), want, f"the board on {port}", f"WMMSE-{iters}")
        stats = client.stats()
        V, ticks = infer_scenes(client, scenes, None, progress=progress)
    per = float(np.mean([float(t) if port else instructions(t, stats) for t in ticks]))
    return V, per, {"elf": str(elf), "count_unit": "cycles" if port else "instructions"}


def evaluate(
    scenes_path,
    backend: str,
    iters: int | None = None,
    out_path=None,
    target: str = "cortex-m4",
    port: str | None = None,
    progress: bool = True,
    top_m: int | None = None,
) -> dict:
    """Sum rate of WMMSE-``iters`` as generated C on ``backend`` beside Python WMMSE and MRT
    (``iters`` None: the policy's default; ``top_m``: on each receiver's top_m strongest
    interferers, judged on the full channels)."""
    iters = wpolicy.DEFAULT_ITERS if iters is None else iters
    if backend not in BACKENDS:
        raise UsageError(f"--policy wmmse runs on --backend {' or '.join(BACKENDS)}, not {backend!r}")
    wpolicy.check_args(1, 1, iters)
    if out_path is not None:
        check_out_file(out_path)
    scenes = load_scenes(scenes_path)
    if top_m is not None:
        wpolicy.check_args(scenes.K, scenes.Nt, iters, top_m)
    name = f"{policy_name(iters, top_m)}_{backend}"
    extra: dict = {}
    if backend == "c":
        V = host_beamformers(scenes, iters, progress, top_m)
    else:
        V, per, info = target_beamformers(scenes, iters, target, port, progress, top_m)
        key = "instructions_per_decision" if info["count_unit"] == "instructions" else "cycles_per_decision"
        extra = {"target": target, key: per, "firmware_elf": info["elf"]}
    W = {f"W_{name}": V}
    rate = with_baselines(W, scenes, progress)
    report = {
        **header(scenes_path, scenes, backend),
        "policy": "wmmse",
        "iters": iters,
        "top_m": top_m,
        "sum_rate": rate,
        "ratio": {f"{name}/wmmse": rate[name] / rate["wmmse"] if rate["wmmse"] else None},
        **extra,
    }
    if out_path is not None:
        save_beamformers(out_path, W)
    return report


def format_report(rep: dict) -> str:
    r = rep["sum_rate"]
    name = f"{policy_name(rep['iters'], rep.get('top_m'))}_{rep['backend']}"
    top = "" if rep.get("top_m") is None else f" on each receiver's top-{rep['top_m']}"
    lines = [
        f"{rep['n_scenes']} scenes from {rep['scenes']} (K={rep['K']}, Nt={rep['Nt']}), "
        f"WMMSE-{rep['iters']}{top} as generated C, backend {rep['backend']}",
        f"  {'method':<26}{'sum rate':>12}",
        f"  {'WMMSE (converged)':<26}{r['wmmse']:>12.3f}",
        f"  {'MRT (full power)':<26}{r['mrt']:>12.3f}",
        f"  {'WMMSE-' + str(rep['iters']) + ' (C)':<26}{r[name]:>12.3f}",
        f"  {name + '/wmmse':<26}{rep['ratio'][name + '/wmmse']:>12.4f}",
    ]
    for key in ("instructions_per_decision", "cycles_per_decision"):
        if key in rep:
            lines.append(f"  {key.replace('_', ' ') + ' on ' + rep['target']:<26}{rep[key]:>12,.0f}")
    return "\n".join(lines)
