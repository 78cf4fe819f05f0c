"""The integer reference (the C's arithmetic in numpy) is byte-equal to TFLM."""

import numpy as np
import pytest

from tinyrrm.codegen import intref, program, quant
from tinyrrm.export import stage, tflite_reader, tflm


@pytest.fixture(scope="module")
def exported(tiny_ckpts, tiny_data, tmp_path_factory):
    d = tmp_path_factory.mktemp("export_int")
    return {
        k: stage.export_model(v, d / k, tiny_data["train"], n_calib=32, progress=False) for k, v in tiny_ckpts.items()
    }


def test_quantize_multiplier_known_values():
    assert quant.quantize_multiplier(0.5) == (1 << 30, 0)
    assert quant.quantize_multiplier(1.0) == (1 << 30, 1)
    assert quant.quantize_multiplier(0.0) == (0, 0)
    m, s = quant.quantize_multiplier(0.0038)
    assert abs(m / 2**31 * 2.0**s - 0.0038) < 1e-9 and (1 << 30) <= m < (1 << 31)


def test_fixed_point_primitives():
    assert quant.srdhm(1 << 30, 1 << 30).item() == 1 << 29
    assert quant.srdhm(quant.INT32_MIN, quant.INT32_MIN).item() == quant.INT32_MAX
    assert quant.rdbpot(np.array([5, -5, 6, -6, 7]), 1).tolist() == [3, -3, 3, -3, 4]  # half away from zero
    assert quant.mbqm(100, 1 << 30, 0).item() == 50


@pytest.mark.parametrize("kind", ["full", "lr"])
def test_intref_equals_tflm(exported, kind):
    blob = (exported[kind] / "model_int8.tflite").read_bytes()
    prog = program.match(tflite_reader.read(blob))
    assert prog.low_rank == (kind == "lr")
    ref = tflm.TFLMCore(blob)
    one = intref.quantized_one(prog)
    rng = np.random.default_rng(5)
    K, nt = prog.K, prog.nt
    for density in (0.0, 0.05, 0.5, 1.0):
        for _ in range(10):
            x = rng.integers(-128, 128, (K, 4 * nt), dtype=np.int8)
            e = rng.integers(-128, 128, (K, K, 2 * nt), dtype=np.int8)
            edge = rng.random((K, K)) < density
            mq = np.where(edge, one, -128).astype(np.int8)[..., None]
            np.testing.assert_array_equal(intref.core(prog, x, e, edge), ref.invoke_int8(x, e, mq))


def test_unknown_structure_is_one_clear_error(exported):
    g = tflite_reader.read(exported["lr"] / "model_int8.tflite")
    g.ops[0].opcode = "TANH"
    with pytest.raises(tflite_reader.TFLiteError, match="also uses TANH"):
        program.match(g)
