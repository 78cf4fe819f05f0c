"""``make bench``'s firmware part: instructions per inference and per MAC on every
core under QEMU (``-icount shift=0``), DSP path against the portable one."""

from __future__ import annotations

from pathlib import Path

from tinyrrm.codegen import targets as T
from tinyrrm.codegen.host import read_report
from tinyrrm.codegen.report import macs_per_inference
from tinyrrm.hil.protocol import HILError
from tinyrrm.hil.run import path_instructions
from tinyrrm.hil.session import gen_dir_for
from tinyrrm.paths import BUILD_FW
from tinyrrm.training.scenes import load as load_scenes

TARGETS = ("cortex-m3", "cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55")


def firmware_bench(test_path, n_scenes: int = 1, targets=TARGETS, progress: bool = True) -> dict:
    scenes = load_scenes(test_path).subset(slice(0, n_scenes))
    out: dict = {"scenes": f"{Path(test_path).name}[:{n_scenes}]", "targets": {}}
    for name in targets:
        t = T.get(name)
        gen = gen_dir_for(name)
        rep = read_report(gen)
        mask = scenes.edge_mask(rep["model"]["cut_m"])
        macs = sum(macs_per_inference(rep, int(m.sum()), scenes.K) for m in mask) / scenes.N
        row: dict = {"qemu_machine": t.qemu_machine, "macs_per_inference": macs}
        # the folders `make hil` builds into: make finds those firmwares up to date
        paths = [("dsp", "deployed", "")] if t.dsp else []
        paths.append(("portable", "portable", "-DTR_NO_DSP=1"))
        for label, folder, flags in paths:
            try:
                ins = path_instructions(name, gen, BUILD_FW / name / folder, scenes, flags, progress=progress)
            except HILError as e:
                row[label] = {"error": str(e)}
                continue
            row[label] = {"instructions_per_inference": ins, "instructions_per_mac": ins / macs}
        if "dsp" in row and "instructions_per_inference" in row.get("dsp", {}):
            row["portable_over_dsp"] = (
                row["portable"]["instructions_per_inference"] / row["dsp"]["instructions_per_inference"]
            )
        out["targets"][name] = row
    return out
