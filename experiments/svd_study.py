"""SVD truncation of a trained full MPGNN, without retraining and after a short fine-tune
(``tinyrrm svd-study``): how much of the full model's sum rate each rank pair keeps."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from tqdm.auto import tqdm

from tinyrrm.errors import UsageError
from tinyrrm.training.checkpoint import check_compatible
from tinyrrm.training.checkpoint import load as load_ckpt
from tinyrrm.training.fileio import write_text
from tinyrrm.training.scenes import load as load_scenes
from tinyrrm.training.train import TrainConfig, mean_sum_rate, prepare
from tinyrrm.training.train import train as run_train

SVD_CELLS = ((4, 16), (16, 4), (16, 16), (64, 64))


def svd_study(
    full_dir, train, val, test, out_dir, *, cells=SVD_CELLS, finetune_epochs: int = 2, progress: bool = True
) -> list[Path]:
    """Truncate a trained full MPGNN by SVD (no retraining) and after a short
    fine-tune; measure both against the full model on the test scenes.

    Writes ``svd_truncation.json`` and ``svd_truncation.md`` into ``out_dir``.
    """
    if finetune_epochs < 0:
        raise UsageError(f"--finetune-epochs must be >= 0, got {finetune_epochs}")
    for a1, a2 in cells:
        if min(a1, a2) <= 0:
            raise UsageError(f"ranks must be positive, got a1={a1}, a2={a2}")
    out = Path(out_dir)
    full, _ = load_ckpt(full_dir)
    scenes = {path: load_scenes(path) for path in (train, val, test) if path is not None}
    for path, sc in scenes.items():  # every file checked before anything is written
        check_compatible(full, sc.K, sc.Nt, str(path))
    test_data = prepare(scenes[test], full.cfg.cut_m)
    full_rate = mean_sum_rate(full, test_data)
    rows = []
    for a1, a2 in tqdm(cells, desc="SVD truncation", disable=None if progress else True):
        row = {"a1": a1, "a2": a2}
        for tag, epochs in (("truncated", 0), (f"finetuned_{finetune_epochs}ep", finetune_epochs)):
            cfg = dataclasses.replace(full.cfg, a1=a1, a2=a2)
            ck = run_train(
                train,
                out / "svd" / f"a1-{a1}_a2-{a2}_{tag}",
                cfg,
                TrainConfig(epochs=epochs, mode="svd", init=str(full_dir)),
                val_path=val,
                progress=progress,
            )
            model, _ = load_ckpt(ck)
            rate = mean_sum_rate(model, test_data)
            row[tag] = {"test_rate": rate, "ratio_to_full": rate / full_rate}
        rows.append(row)
    rep = {
        "full_checkpoint": str(full_dir),
        "full_test_rate": full_rate,
        "test": str(test),
        "finetune_epochs": finetune_epochs,
        "cells": rows,
    }
    ft = f"finetuned_{finetune_epochs}ep"
    md = [
        "# SVD truncation of the full MPGNN (no retraining vs short fine-tune)",
        "",
        f"Full MPGNN `{full_dir}`: {full_rate:.3f} bits/s/Hz mean test sum rate on `{test}`.",
        "",
        f"| a1 | a2 | truncated / full | after {finetune_epochs} fine-tune epochs / full |",
        "| --- | --- | --- | --- |",
    ]
    md += [
        f"| {r['a1']} | {r['a2']} | {r['truncated']['ratio_to_full']:.4f} | {r[ft]['ratio_to_full']:.4f} |"
        for r in rows
    ]
    return [
        write_text(out / "svd_truncation.json", json.dumps(rep, indent=2, sort_keys=True) + "\n"),
        write_text(out / "svd_truncation.md", "\n".join(md) + "\n"),
    ]
