"""Export stage: core spec, ONNX, TFLite int8, TFLite Micro, model_data.c."""

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from tinyrrm.export import core, frontend, onnx_export, stage, tflite_export, tflite_reader, tflm
from tinyrrm.training import checkpoint as ckpt
from tinyrrm.training import scenes as sc
from tinyrrm.training.train import prepare

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def exported(tiny_ckpts, tiny_data, tmp_path_factory):
    d = tmp_path_factory.mktemp("export")
    return {
        k: stage.export_model(v, d / k, tiny_data["train"], n_calib=32, progress=False) for k, v in tiny_ckpts.items()
    }


@pytest.fixture(scope="module")
def scenes100(tmp_path_factory):
    return sc.save(sc.generate(100, 6, 2, 21), tmp_path_factory.mktemp("s100") / "s100.npz")


@pytest.mark.parametrize("kind", ["full", "lr"])
def test_core_spec_matches_torch(tiny_ckpts, tiny_data, kind):
    """frontend.run over the numpy core == the dense PyTorch model, incl. a receiver without neighbours."""
    model, _ = ckpt.load(tiny_ckpts[kind])
    data = prepare(sc.load(tiny_data["test"]), model.cfg.cut_m)
    mask = data.mask.clone()
    mask[0, 2, :] = False
    with torch.no_grad():
        ref = model(data.H, mask).numpy()
    L = core.core_layers(model)
    fe = frontend.FrontEnd.of(model)
    got = np.stack(
        [
            frontend.run(fe, lambda x, e, m: core.core_numpy(L, x, e, m), data.H[i].numpy(), mask[i].numpy())
            for i in range(len(data))
        ]
    )
    assert np.abs(got - ref).max() < 1e-5


def test_core_layers_keep_low_rank_layout(tiny_ckpts):
    model, _ = ckpt.load(tiny_ckpts["lr"])
    L = core.core_layers(model)
    nt = model.cfg.Nt
    U1, V1 = (f.detach().numpy() for f in model.msg1.factors())
    np.testing.assert_array_equal(np.vstack([L["msg1"].parts["x"].weight, L["msg1"].parts["e"].weight]), U1)
    np.testing.assert_array_equal(L["msg1"].chain[0].weight, V1)
    U3 = model.upd1.factors()[0].detach().numpy()
    np.testing.assert_allclose(L["upd1"].parts["m"].weight, U3[4 * nt :] * model.cfg.agg_scale, rtol=1e-6)
    assert [m.name for m in L["msg2"].chain] == ["msg2.V"]


@pytest.mark.slow
def test_onnx_matches_torch_on_100_scenes(tiny_ckpts, scenes100):
    import onnx

    for kind in ("full", "lr"):
        model, _ = ckpt.load(tiny_ckpts[kind])
        blob = onnx_export.to_onnx(model)
        proto = onnx.load_from_string(blob)
        onnx.checker.check_model(proto, full_check=True)
        assert proto.opset_import[0].version >= 17
        assert [i.name for i in proto.graph.input] == list(onnx_export.INPUTS)
        data = prepare(sc.load(scenes100), model.cfg.cut_m)
        with torch.no_grad():
            x, d, e = model.features(data.H)
            ref = model.propagate(x, d, e, data.mask).numpy()
        got = onnx_export.ORTModel(blob)(x.numpy(), d.numpy(), e.numpy(), data.mask.numpy())
        assert np.abs(got - ref).max() <= 1e-5


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mpgnn_paper", "lrmpgnn_paper"])
def test_onnx_matches_torch_for_the_committed_models(name, tmp_path):
    """README's "<= 1e-5 on 100 scenes": the full-size default models, not only the tiny ones."""
    model, _ = ckpt.load(ROOT / "models" / name)
    blob = onnx_export.to_onnx(model)
    data = prepare(sc.generate(100, model.cfg.K, model.cfg.Nt, 21), model.cfg.cut_m)
    ort = onnx_export.ORTModel(blob)
    worst = 0.0
    for i in range(0, 100, 10):  # 10 scenes at a time: the full model's messages are [10, 50, 50, 3072]
        H, mask = data.H[i : i + 10], data.mask[i : i + 10]
        with torch.no_grad():
            x, d, e = model.features(H)
            ref = model.propagate(x, d, e, mask).numpy()
        got = ort(x.numpy(), d.numpy(), e.numpy(), mask.numpy())
        worst = max(worst, float(np.abs(got - ref).max()))
    assert worst <= 1e-5


def test_onnx_bad_opset(tiny_ckpts):
    model, _ = ckpt.load(tiny_ckpts["lr"])
    with pytest.raises(ValueError, match="unsupported ONNX opset 11"):
        onnx_export.to_onnx(model, 11)


def _fc_weights(g):
    return [g.tensors[op.inputs[1]] for op in g.ops if op.opcode == "FULLY_CONNECTED"]


@pytest.mark.parametrize("kind", ["full", "lr"])
def test_tflite_is_full_integer_with_separate_factors(exported, tiny_ckpts, kind):
    g = tflite_reader.read(exported[kind] / "model_int8.tflite")
    for i in g.inputs + g.outputs:
        assert g.tensors[i].type == "INT8" and g.tensors[i].scale.size == 1
    assert set(g.opcodes) <= {"FULLY_CONNECTED", "ADD", "RESHAPE", "MUL", "REDUCE_MAX"}
    model, _ = ckpt.load(tiny_ckpts[kind])
    mats = [m for layer in core.core_layers(model).values() for m in [*layer.parts.values(), *layer.chain]]
    weights = _fc_weights(g)
    assert len(weights) == len(mats)  # one FULLY_CONNECTED per matrix: U and V stay apart
    unused = list(weights)
    for m in mats:
        want = m.weight.T  # TFLite: [d_out, d_in]
        match = None
        for w in unused:
            if w.shape != want.shape:
                continue
            assert w.type == "INT8" and w.per_channel and not w.zero_point.any()
            deq = w.data.astype(np.float32) * w.scale[:, None]
            if np.all(np.abs(deq - want) <= w.scale[:, None] * 0.5 + 1e-7):
                match = w
                break
        assert match is not None, f"{m.name} {want.shape} not found as a FULLY_CONNECTED weight"
        unused.remove(match)
    fc_bias = [g.tensors[op.inputs[2]] for op in g.ops if op.opcode == "FULLY_CONNECTED" and op.inputs[2] >= 0]
    assert fc_bias and all(b.type == "INT32" for b in fc_bias)
    assert sum(m.bias is not None for m in mats) == len(fc_bias)


def test_tflite_uv_shapes_against_checkpoint(exported, tiny_ckpts):
    """Every low-rank layer's U and V, by shape, in the flatbuffer (U of msg1/upd1 split by input rows)."""
    model, _ = ckpt.load(tiny_ckpts["lr"])
    shapes = sorted(w.shape for w in _fc_weights(tflite_reader.read(exported["lr"] / "model_int8.tflite")))
    nt = model.cfg.Nt
    want = []
    for name in ("msg1", "msg2", "upd1", "upd2"):
        U, V = (tuple(f.shape) for f in getattr(model, name).factors())
        if name in ("msg1", "upd1"):
            want += [(U[1], 4 * nt), (U[1], U[0] - 4 * nt)]
        else:
            want.append((U[1], U[0]))
        want.append((V[1], V[0]))
    assert shapes == sorted(want)


@pytest.mark.parametrize("kind", ["full", "lr"])
def test_tflm_close_to_fp32_and_to_tflite(exported, tiny_ckpts, tiny_data, kind):
    """TFLM int8 vs the fp32 core (a few output LSBs) and vs TFLite's interpreter (<= 2 LSB)."""
    from tinyrrm.evaluate.backends import TFLiteCore

    model, _ = ckpt.load(tiny_ckpts[kind])
    blob = (exported[kind] / "model_int8.tflite").read_bytes()
    ref = tflm.TFLMCore(blob)
    lite = TFLiteCore(blob)
    L = core.core_layers(model)
    fe = frontend.FrontEnd.of(model)
    data = prepare(sc.load(tiny_data["test"]), model.cfg.cut_m)
    scale = ref.output["quantization_parameters"]["scales"][0]
    worst_lite, worst_fp = 0.0, 0.0
    for i in range(len(data)):
        v, d, e = (a[0] for a in frontend.features(fe, data.H[i : i + 1].numpy()))
        x = np.concatenate([v, d], -1)
        m = data.mask[i].numpy().astype(np.float32)[..., None]
        o8 = ref(x, e, m)
        worst_lite = max(worst_lite, float(np.abs(lite(x, e, m) - o8).max()) / scale)
        worst_fp = max(worst_fp, float(np.abs(core.core_numpy(L, x, e, m) - o8).max()) / scale)
    assert worst_lite <= 2.0 + 1e-3
    assert worst_fp < 12  # int8 error through ~9 requantizations, in output LSBs


def test_tflm_arena_parsed(exported):
    m = json.loads((exported["lr"] / "export.json").read_text())
    arena = m["tflm"]["arena"]
    assert arena["total"] == arena["head"] + arena["tail"] > 0
    assert "NodeAndRegistration struct" in arena["parts"]


def test_parse_allocations_text():
    text = (
        "[RecordingMicroAllocator] Arena allocation total 1200 bytes\n"
        "[RecordingMicroAllocator] Arena allocation head 1000 bytes\n"
        "[RecordingMicroAllocator] Arena allocation tail 200 bytes\n"
        "[RecordingMicroAllocator] 'TfLiteEvalTensor data' used 816 bytes with alignment overhead\n"
    )
    assert tflm.parse_allocations(text) == {
        "total": 1200,
        "head": 1000,
        "tail": 200,
        "parts": {"TfLiteEvalTensor data": 816},
    }
    with pytest.raises(RuntimeError, match="no arena total"):
        tflm.parse_allocations("nothing")


def test_quantize_rounds_half_away_from_zero():
    q = tflm.quantize(np.array([0.5, -0.5, 1.5, -1.5, 1000, -1000], np.float32), 1.0, 0)
    assert q.tolist() == [1, -1, 2, -2, 127, -128]


def test_model_data_c_compiles_and_holds_the_flatbuffer(exported, tmp_path):
    out = exported["lr"]
    blob = (out / "model_int8.tflite").read_bytes()
    src = (out / "model_data.c").read_text()
    assert src.startswith("/*\n * Generated by tinyrrm")
    assert stage._sha(blob) in src
    body = src[src.index("= {") + 3 : src.rindex("};")]
    assert bytes(int(v, 16) for v in body.replace(",", " ").split()) == blob
    hdr = (out / "model_data.h").read_text()
    for op in ("AddFullyConnected", "AddAdd", "AddReshape", "AddMul", "AddReduceMax"):
        assert f"resolver.{op}();" in hdr
    main = tmp_path / "main.c"
    main.write_text("#include \"model_data.h\"\nint main(void) { return lrmpgnn_model_data[4] == 'T' ? 0 : 1; }\n")
    exe = tmp_path / "a.out"
    for cc in ("gcc", "clang"):
        if shutil.which(cc) is None:
            pytest.fail(f"{cc} missing: run docker/provision.sh")
        subprocess.run(
            [
                cc,
                "-std=c99",
                "-Wall",
                "-Wextra",
                "-Werror",
                "-I",
                str(out),
                str(main),
                str(out / "model_data.c"),
                "-o",
                str(exe),
            ],
            check=True,
        )
        assert subprocess.run([str(exe)]).returncode == 0


def test_snap_range_widens_outward_by_less_than_an_int8_step():
    rng = np.random.default_rng(0)
    moved = 0
    for _ in range(2000):
        lo, hi = sorted(rng.normal(0, 10 ** rng.uniform(-3, 3), 2).astype(np.float32))
        if rng.random() < 0.3:
            lo, hi = np.float32(0.0), max(-lo, hi)  # ReLU outputs
        a, b = tflite_export.snap_range(lo, hi)
        step = (float(hi) - float(lo)) / 255
        assert a <= lo and b >= hi and lo - a < step and b - hi < step
        assert np.float32(a) == a and np.float32(b) == b
        # the noise seen between CPUs: either end one float32 ulp away (an exact 0 stays 0)
        n_lo = lo and np.nextafter(lo, np.float32(rng.choice([-np.inf, np.inf])))
        n_hi = np.nextafter(hi, np.float32(rng.choice([-np.inf, np.inf])))
        moved += tflite_export.snap_range(n_lo, n_hi) != (a, b)
    assert moved <= 2, f"{moved} of 2000 ranges moved with 1 ulp of noise"
    assert tflite_export.snap_range(0.0, 0.0) == (0.0, 0.0)
    assert tflite_export.snap_range(1.0, 1.0) == (1.0, 1.0)


@pytest.mark.slow
def test_int8_export_does_not_move_with_cpu_rounding_noise(tiny_ckpts, tiny_data, monkeypatch):
    """Calibration inputs one ulp off (what another CPU's float kernels give) make the same
    int8 flatbuffer; without the snap they do not, so this test can fail."""
    model, _ = ckpt.load(tiny_ckpts["lr"])
    calib, _ = stage.calibration(model, tiny_data["train"], 16, progress=False)
    rng = np.random.default_rng(1)

    def ulp(a):
        return np.nextafter(a, np.where(rng.random(a.shape) < 0.5, -np.inf, np.inf).astype(a.dtype))

    noisy = [[ulp(x), ulp(e), m] for x, e, m in calib]
    base = tflite_export.convert(model, calib)
    assert tflite_export.convert(model, noisy) == base
    monkeypatch.setattr(tflite_export, "snap_ranges", lambda b: (b, 1))
    assert tflite_export.convert(model, noisy) != tflite_export.convert(model, calib)


def test_export_is_deterministic_and_reused(tiny_ckpts, tiny_data, exported, tmp_path):
    again = stage.export_model(tiny_ckpts["lr"], tmp_path / "again", tiny_data["train"], n_calib=32, progress=False)
    for f in (
        "model.onnx",
        "model_int8.tflite",
        "model_fp32.tflite",
        "model_data.c",
        "model_data.h",
        stage.SCENE_INPUTS,
        "export.json",
    ):
        assert (again / f).read_bytes() == (exported["lr"] / f).read_bytes(), f
    assert stage.is_current(again, tiny_ckpts["lr"], tiny_data["train"], 32)
    before = (again / "model_int8.tflite").stat().st_mtime_ns
    stage.ensure(tiny_ckpts["lr"], again, tiny_data["train"], 32, progress=False)
    assert (again / "model_int8.tflite").stat().st_mtime_ns == before
    assert not stage.is_current(again, tiny_ckpts["full"], tiny_data["train"], 32)
    # a folder written by other exporter code is stale, though checkpoint and calibration match
    (again / stage.STAMP).write_text("0" * 64 + "\n")
    assert not stage.is_current(again, tiny_ckpts["lr"], tiny_data["train"], 32)
    (again / stage.STAMP).unlink()
    assert not stage.is_current(again, tiny_ckpts["lr"], tiny_data["train"], 32)


def test_source_digest_follows_the_exporter_code(monkeypatch, tmp_path):
    from tinyrrm import paths

    d0 = stage.source_digest()
    assert d0 == stage.source_digest()
    fake = tmp_path / "templates"
    fake.mkdir()
    (fake / "tflm").mkdir()
    monkeypatch.setattr(paths, "TEMPLATES", fake)
    assert stage.source_digest() != d0


def test_bad_calibration_scenes_write_nothing(tiny_ckpts, tmp_path):
    wrong = sc.save(sc.generate(4, 5, 2, 1), tmp_path / "k5.npz")
    with pytest.raises(ckpt.CheckpointError, match="K=5"):
        stage.export_model(tiny_ckpts["lr"], tmp_path / "out", wrong, progress=False)
    assert not (tmp_path / "out").exists()
    with pytest.raises(FileNotFoundError, match="calibration scenes .*missing.npz not found"):
        stage.export_model(tiny_ckpts["lr"], tmp_path / "out", tmp_path / "missing.npz", progress=False)
    assert not (tmp_path / "out").exists()


def test_corrupt_tflite_is_one_clear_error(tmp_path):
    with pytest.raises(tflite_reader.TFLiteError, match="not a TFLite flatbuffer"):
        tflite_reader.read(b"garbage bytes here")
    with pytest.raises(tflite_reader.TFLiteError):
        tflite_reader.read(b"\x10\x00\x00\x00TFL3" + b"\xff" * 16)


@pytest.mark.parametrize("backend", ["onnx", "tflm", "tflite"])
def test_evaluate_exported_backends(tiny_ckpts, tiny_data, exported, backend, tmp_path, monkeypatch):
    """`tinyrrm evaluate --backend onnx|tflm`: same keys as torch; K below K_MAX runs padded."""
    from tinyrrm import evaluate as ev
    from tinyrrm.evaluate import backends

    monkeypatch.setattr(stage, "default_dir", lambda c: exported["full" if c == tiny_ckpts["full"] else "lr"])
    monkeypatch.setattr(stage, "ensure", lambda c, *a, **k: exported["full" if c == tiny_ckpts["full"] else "lr"])
    rep = ev.evaluate(
        tiny_data["test"],
        tiny_ckpts["full"],
        tiny_ckpts["lr"],
        backend=backend,
        out_path=tmp_path / "W.npz",
        progress=False,
    )
    W = np.load(tmp_path / "W.npz")
    assert {f"W_mpgnn_{backend}", f"W_lrmpgnn_{backend}", "W_wmmse"} <= set(W.files)
    assert W[f"W_lrmpgnn_{backend}"].shape == (16, 6, 2)
    torch_rep = ev.evaluate(tiny_data["test"], tiny_ckpts["full"], tiny_ckpts["lr"], progress=False)
    tol = 1e-4 if backend == "onnx" else 0.05  # int8: a few percent on 16 tiny scenes
    assert rep["sum_rate"][f"lrmpgnn_{backend}"] == pytest.approx(torch_rep["sum_rate"]["lrmpgnn_torch"], rel=tol)
    # fewer active links than the export's K: padded with inactive links
    s = sc.load(tiny_data["test"])
    small = sc.Scenes(
        **{
            **s.__dict__,
            "H": s.H[:, :4, :4],
            "dist": None if s.dist is None else s.dist[:, :4, :4],
            "weights": s.weights[:, :4],
        }
    )
    V = backends.BACKENDS[backend](tiny_ckpts["lr"], small)
    assert V.shape == (16, 4, 2) and np.isfinite(V).all()


def test_size_report_reads_the_flatbuffer(tiny_ckpts, exported, monkeypatch):
    from tinyrrm.export import size
    from tinyrrm.training.models import model_bytes

    monkeypatch.setattr(stage, "default_dir", lambda c: exported["full" if c == tiny_ckpts["full"] else "lr"])
    monkeypatch.setattr(stage, "ensure", lambda c, *a, **k: exported["full" if c == tiny_ckpts["full"] else "lr"])
    rep = size.size_report(tiny_ckpts["full"], tiny_ckpts["lr"], progress=False)
    for tag in ("full", "lr"):
        model, _ = ckpt.load(tiny_ckpts[tag])
        d = rep["mpgnn" if tag == "full" else "lrmpgnn"]["deployed_int8"]
        assert d["total"] == size.deployed_bytes_from_checkpoint(model)
        assert d["weight_bytes"] + d["bias_bytes"] == model_bytes(model, "int8")
    assert rep["ratio"]["fp32_over_deployed_int8"] == pytest.approx(
        rep["mpgnn"]["bytes_fp32"] / rep["lrmpgnn"]["deployed_int8"]["total"]
    )
    assert rep["lrmpgnn"]["tflm_arena_bytes"] > 0
    assert "deployed int8 core" in size.format_size(rep)
