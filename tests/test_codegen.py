"""Code generation: bit-exact with TFLM, layouts, flags, determinism, bad input."""

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tinyrrm.codegen import generate as codegen
from tinyrrm.codegen import host, intref, program, quant, targets
from tinyrrm.export import cprefix, frontend, stage, tflite_reader, tflm
from tinyrrm.training import checkpoint as ckpt
from tinyrrm.training import scenes as sc
from tinyrrm.training.train import prepare

ROOT = Path(__file__).resolve().parents[1]
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-Wdouble-promotion", "-Wfloat-conversion"]


@pytest.fixture(scope="module")
def gen(tiny_ckpts, tiny_data, tmp_path_factory):
    d = tmp_path_factory.mktemp("gen")
    out = {}
    for kind in ("full", "lr"):
        exp = stage.export_model(tiny_ckpts[kind], d / f"export_{kind}", tiny_data["train"], n_calib=32, progress=False)
        out[kind] = {"export": exp, "gen": codegen.generate(exp, "cortex-m4", d / f"gen_{kind}")}
    return out


def _cases(prog, ref, model, scenes_path, rng):
    """>= 100 core inputs per model: every step of real scenes, then the hard cases."""
    K, nt = prog.K, prog.nt
    fe = frontend.FrontEnd.of(model)
    data = prepare(sc.load(scenes_path), model.cfg.cut_m)
    for i in range(len(data)):
        seen = []

        def core(x, e, m, seen=seen, i=i):
            xq, eq = (
                tflm.quantize(x, prog.x.scale, prog.x.zero_point),
                tflm.quantize(e, prog.e.scale, prog.e.zero_point),
            )
            seen.append((f"scene {i}", K, xq, eq, m[..., 0] > 0.5))
            return ref(x, e, m)

        frontend.run(fe, core, data.H[i].numpy(), data.mask[i].numpy())
        yield from seen
    full = ~np.eye(K, dtype=bool)
    for _ in range(12):
        rx = rng.integers(-128, 128, (K, 4 * nt), dtype=np.int8)
        re_ = rng.integers(-128, 128, (K, K, 2 * nt), dtype=np.int8)
        yield "random int8", K, rx, re_, rng.random((K, K)) < rng.random()
        yield "zero channels", K, np.full_like(rx, prog.x.zero_point), np.full_like(re_, prog.e.zero_point), full
        sat = np.where(rng.random(re_.shape) < 0.5, -128, 127).astype(np.int8)
        yield "saturating", K, np.where(rng.random(rx.shape) < 0.5, -128, 127).astype(np.int8), sat, full
        yield "single link", 1, rx, re_, full
        k = int(rng.integers(2, K))
        yield f"k={k}", k, rx, re_, full
        yield "no edges", K, rx, re_, np.zeros((K, K), bool)


@pytest.mark.parametrize("kind", ["full", "lr"])
def test_c_core_bit_exact_with_tflm(gen, tiny_ckpts, tiny_data, kind):
    """>= 200 invokes (scenes x steps and hard cases): every output byte equals TFLM's, both kernel paths."""
    blob = (gen[kind]["export"] / "model_int8.tflite").read_bytes()
    prog = program.match(tflite_reader.read(blob))
    ref = tflm.TFLMCore(blob)
    model, _ = ckpt.load(tiny_ckpts[kind])
    portable, dsp = host.HostModel(gen[kind]["gen"]), host.HostModel(gen[kind]["gen"], dsp=True)
    one = intref.quantized_one(prog)
    n = 0
    for path in (tiny_data["test"], tiny_data["train"]):
        for name, k, x, e, edge in _cases(prog, ref, model, path, np.random.default_rng(n)):
            edge = edge.copy()
            edge[k:, :] = False
            edge[:, k:] = False
            want = ref.invoke_int8(x, e, np.where(edge, one, -128).astype(np.int8)[..., None])[:k]
            for m in (portable, dsp):
                got = m.core(x, e, edge, k)[:k]
                assert np.array_equal(got, want), f"{name}: {np.abs(got.astype(int) - want).max()} LSB off"
            n += 1
    assert n >= 200


@pytest.mark.parametrize("kind", ["full", "lr"])
def test_float_front_end_within_one_lsb(gen, tiny_ckpts, kind):
    blob = (gen[kind]["export"] / "model_int8.tflite").read_bytes()
    prog = program.match(tflite_reader.read(blob))
    model, _ = ckpt.load(tiny_ckpts[kind])
    fe = frontend.FrontEnd.of(model)
    m = host.HostModel(gen[kind]["gen"])
    rng = np.random.default_rng(3)
    s = sc.generate(40, prog.K, prog.nt, 77)
    H = frontend.unit_noise(s)
    H[0] = 0  # all-zero channels
    H[1] *= 1e6  # far beyond the calibrated range
    H[2] = (rng.standard_normal(H[2].shape) + 1j * rng.standard_normal(H[2].shape)) * 1e-20
    worst = 0
    for i in range(s.N):
        edge = rng.random((prog.K, prog.K)) < 0.5
        xq, eq = m.features(H[i], edge)
        v, d, e = (a[0] for a in frontend.features(fe, H[i][None]))
        xp = tflm.quantize(np.concatenate([v, d], -1), prog.x.scale, prog.x.zero_point)
        ep = tflm.quantize(e, prog.e.scale, prog.e.zero_point)
        worst = max(worst, int(np.abs(xq.astype(int) - xp).max()), int(np.abs(eq.astype(int) - ep).max()))
        V = m.infer(H[i], edge)
        assert np.isfinite(V).all() and (np.abs(V) ** 2).sum(-1).max() <= 1 + 1e-5
    assert worst <= 1


def test_quantize_rounds_like_c_roundf():
    """tflm.quantize is the Python twin of the generated front end's ``roundf(x / scale)``:
    equal to libm's roundf on the float32 quotient, also just below a half."""
    import ctypes
    import ctypes.util

    roundf = ctypes.CDLL(ctypes.util.find_library("m")).roundf
    roundf.restype, roundf.argtypes = ctypes.c_float, [ctypes.c_float]
    below_half = np.nextafter(np.float32(0.5), np.float32(0))  # 0.49999997
    x = np.concatenate(
        [
            np.float32([0.5, -0.5, 1.5, -2.5, below_half, -below_half, 2.5 - 2**-22]),
            np.random.default_rng(5).standard_normal(2000).astype(np.float32) * 40,
        ]
    )
    scale, zp = 0.37, -3
    y = x / np.float32(scale)
    want = np.clip(np.array([roundf(float(v)) for v in y]) + zp, -128, 127).astype(np.int8)
    assert np.array_equal(tflm.quantize(x, scale, zp), want)
    assert list(tflm.quantize(np.float32([0.5, -0.5, below_half, -below_half]), 1.0, 0)) == [1, -1, 0, 0]


def _member(src: str, name: str) -> np.ndarray:
    m = re.search(rf"\.{name} = \{{(.*?)\n    \}},", src, re.S)
    assert m, name
    return np.array([int(v) for v in re.findall(r"-?\d+", m.group(1).replace("(-2147483647 - 1)", "-2147483648"))])


@pytest.mark.parametrize("kind", ["full", "lr"])
def test_weights_read_back_equal_the_flatbuffer(gen, kind):
    """U and V (and biases, multipliers, shifts) parsed from weights.c == the .tflite's tensors."""
    g = tflite_reader.read(gen[kind]["export"] / "model_int8.tflite")
    prog = program.match(g)
    src = (gen[kind]["gen"] / "weights.c").read_text()
    hdr = (gen[kind]["gen"] / "weights.h").read_text()
    fc_weights = {
        g.tensors[op.inputs[1]].name: g.tensors[op.inputs[1]] for op in g.ops if op.opcode == "FULLY_CONNECTED"
    }
    assert len(fc_weights) == len(prog.fcs())
    for f in prog.fcs():
        n = codegen.cname(f.name)
        w = _member(src, f"{n}_w")
        match = [t for t in fc_weights.values() if t.shape == f.weight.shape and np.array_equal(t.data.reshape(-1), w)]
        assert match, f"{f.name}: weights differ from every FULLY_CONNECTED tensor"
        if f.bias is not None:
            np.testing.assert_array_equal(_member(src, f"{n}_bias"), f.bias)
        mult, shift = quant.fc_params(f.inp.scale, f.w_scale, f.out.scale)
        np.testing.assert_array_equal(_member(src, f"{n}_mult"), mult)
        np.testing.assert_array_equal(_member(src, f"{n}_shift"), shift)
        assert re.search(rf"\s{n}_w\[{f.d_out}, {f.d_in}\]", hdr), f"{n}_w not documented in weights.h"
    if kind == "lr":
        names = {codegen.cname(f.name) for f in prog.fcs()}
        assert {
            "msg1_U_e",
            "msg1_U_x",
            "msg1_V",
            "msg2_U",
            "msg2_V",
            "upd1_U_m",
            "upd1_U_x",
            "upd1_V",
            "upd2_U",
            "upd2_V",
        } == names


def _compile(cc, gen_dir, flags, out):
    srcs = [str(p) for p in host.sources(gen_dir)] + [str(gen_dir / "test_vectors.c")]
    r = subprocess.run([cc, *flags, "-I", str(gen_dir), "-c", *srcs], cwd=out, capture_output=True, text=True)
    assert r.returncode == 0, f"{cc} {' '.join(flags)}:\n{r.stderr[-3000:]}"


@pytest.mark.slow
@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_generated_code_compiles_warning_free_on_the_host(gen, cc, tmp_path):
    if shutil.which(cc) is None:
        pytest.fail(f"{cc} missing: run docker/provision.sh")
    for kind in ("full", "lr"):
        for path in ("-DTR_NO_DSP=1", "-DTR_EMULATE_DSP=1"):
            _compile(cc, gen[kind]["gen"], STRICT + ["-O2", path], tmp_path)


@pytest.mark.parametrize("target", [t for t in targets.TARGETS])
def test_generated_code_compiles_for_every_core(gen, target, tmp_path):
    """arm-none-eabi-gcc with each core's flags: the real SMLAD path where the core has DSP."""
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.fail("arm-none-eabi-gcc missing: run docker/provision.sh")
    t = targets.get(target)
    _compile("arm-none-eabi-gcc", gen["lr"]["gen"], STRICT + ["-O2"] + t.cflags(), tmp_path)
    r = subprocess.run(
        ["arm-none-eabi-gcc", *t.cflags(), "-dM", "-E", "-x", "c", "/dev/null"], capture_output=True, text=True
    )
    assert ("__ARM_FEATURE_DSP 1" in r.stdout) == t.dsp


def test_host_vector_driver(gen, tmp_path):
    """tests/c/vectors_main.c over the generated test vectors (the check a port runs)."""
    for kind, prefix in (("full", "mpgnn"), ("lr", "lrmpgnn")):
        g = gen[kind]["gen"]
        exe = tmp_path / f"vec_{kind}"
        srcs = [str(p) for p in host.sources(g)] + [str(g / "test_vectors.c"), str(ROOT / "tests/c/vectors_main.c")]
        subprocess.run(
            ["gcc", *STRICT, "-O2", f"-DPREFIX={prefix}", "-I", str(g), *srcs, "-o", str(exe), "-lm"], check=True
        )
        r = subprocess.run([str(exe)], capture_output=True, text=True)
        assert r.returncode == 0 and "ok: 8 of 8 vectors bit-exact" in r.stdout, r.stdout


def _refuse_text_for_people(monkeypatch):
    """Path.read_text fails on the files written for people (model.h, report.md)."""
    real = Path.read_text

    def guarded(self, *a, **k):
        if self.name in ("model.h", "report.md"):
            raise AssertionError(f"read {self}: text written for people")
        return real(self, *a, **k)

    monkeypatch.setattr(Path, "read_text", guarded)


def test_host_model_reads_its_facts_from_report_json(gen, monkeypatch):
    _refuse_text_for_people(monkeypatch)
    for kind, prefix in (("full", "mpgnn"), ("lr", "lrmpgnn")):
        m = host.HostModel(gen[kind]["gen"])
        assert (m.prefix, m.K, m.nt, m.steps, m.edge_bytes) == (prefix, 6, 2, 3, 5)


def test_export_c_prints_the_summary_from_json(gen, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from tinyrrm.cli import app

    _refuse_text_for_people(monkeypatch)
    r = CliRunner().invoke(
        app,
        [
            "export",
            "c",
            "--export-dir",
            str(gen["lr"]["export"]),
            "--target",
            "cortex-m4",
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "on cortex-m4" in r.output and "| static arena (`LRMPGNN_ARENA_BYTES`) |" in r.output


def _host_exe(gen_dir, main, exe, *flags):
    srcs = [str(p) for p in host.sources(gen_dir)] + [str(ROOT / "tests/c" / main)]
    subprocess.run(["gcc", *STRICT, "-O2", *flags, "-I", str(gen_dir), *srcs, "-o", str(exe), "-lm"], check=True)
    return subprocess.run([str(exe)], capture_output=True, text=True)


def test_infer_refuses_non_finite_channels_with_its_code(gen, tmp_path):
    """tests/c/nonfinite_main.c: NaN, +-Inf or an overflowing |h|^2 on an active link ->
    <PREFIX>_ERR_NONFINITE (documented in model.h) and the output untouched; inactive links unread."""
    for kind, prefix in (("full", "mpgnn"), ("lr", "lrmpgnn")):
        g = gen[kind]["gen"]
        hdr = (g / "model.h").read_text()
        P = prefix.upper()
        for code in ("OK", "ERR_K", "ERR_NONFINITE"):
            assert f"#define {P}_{code} " in hdr and f" *         {P}_{code} " in hdr, f"{code} not documented"
        r = _host_exe(g, "nonfinite_main.c", tmp_path / f"nf_{kind}", f"-DPREFIX={prefix}", f"-DPREFIX_UC={P}")
        assert r.returncode == 0 and "ok: 0 case(s) failed" in r.stdout, r.stdout
        m = host.HostModel(g)
        H = np.ones((m.K, m.K, m.nt), np.complex64)
        H[0, 1, 0] = np.nan
        with pytest.raises(ValueError, match=r"_infer returned -2"):
            m.infer(H, np.ones((m.K, m.K), bool))


def test_two_models_with_two_prefixes_link_into_one_program(gen, tmp_path):
    """Two models generated with --prefix beam_a / beam_b into two folders, both model.c and
    weights.c with one copy of the kernels in one program: each passes its own TFLM vectors,
    and each inference equals that model's own host build."""
    import json

    dirs = {}
    for kind, prefix in (("full", "beam_a"), ("lr", "beam_b")):
        dirs[prefix] = codegen.generate(gen[kind]["export"], "cortex-m4", tmp_path / prefix, prefix=prefix)
        assert json.loads((dirs[prefix] / "report.json").read_text())["model"]["prefix"] == prefix
        assert f"--prefix {prefix}" in (dirs[prefix] / "model.c").read_text()[:600]
        assert (dirs[prefix] / "model.mk").read_text().splitlines()[-2:] == [
            f"MODEL_PREFIX := {prefix}",
            f"MODEL_PREFIX_UC := {prefix.upper()}",
        ]
        _all_names_carry_the_prefix(dirs[prefix], prefix, tmp_path)
    a, b = dirs["beam_a"], dirs["beam_b"]
    srcs = [
        a / "model.c",
        a / "weights.c",
        a / "test_vectors.c",
        b / "model.c",
        b / "weights.c",
        b / "test_vectors.c",
        *sorted((a / "kernels").glob("*.c")),
        ROOT / "tests/c/two_models_main.c",
    ]
    defs = [
        "-DMODEL_A=beam_a",
        "-DMODEL_B=beam_b",
        f'-DA_MODEL_H="{a}/model.h"',
        f'-DA_VECTORS_H="{a}/test_vectors.h"',
        f'-DB_MODEL_H="{b}/model.h"',
        f'-DB_VECTORS_H="{b}/test_vectors.h"',
    ]
    exe = tmp_path / "two"
    # no -I: every generated file includes its own folder's headers ("model.h", "kernels/...")
    subprocess.run(
        ["gcc", *STRICT, "-O2", "-ffp-contract=off", "-DTR_NO_DSP=1", *defs, *map(str, srcs), "-o", str(exe), "-lm"],
        check=True,
    )
    r = subprocess.run([str(exe)], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.rstrip().endswith("ok"), r.stdout
    lines = r.stdout.splitlines()
    for prefix, d in dirs.items():
        assert sum(ln.startswith(f"{prefix} vector ") and ln.endswith("mismatches=0") for ln in lines) == 8
        got = np.array(
            [
                float.fromhex(v)
                for v in next(ln for ln in lines if ln.startswith(f"{prefix} infer rc=0")).split("v=")[1].split()
            ],
            np.float32,
        )
        m = host.HostModel(d)
        h = ((np.arange(m.K * m.K * m.nt * 2) % 11 - 5) * 0.25).astype(np.float32).reshape(m.K, m.K, m.nt, 2)
        want = m.infer(h[..., 0] + 1j * h[..., 1], np.ones((m.K, m.K), bool))
        np.testing.assert_array_equal(got.reshape(m.K, m.nt, 2), np.stack([want.real, want.imag], -1))


def _all_names_carry_the_prefix(g: Path, prefix: str, tmp_path: Path) -> None:
    """Every macro of the generated headers and every external symbol of the model's objects
    starts with the prefix (the kernels' tr_ names are the one shared copy)."""
    for h in ("model.h", "weights.h", "test_vectors.h"):
        for name in re.findall(r"^#define (\w+)", (g / h).read_text(), re.M):
            assert name.startswith(prefix.upper() + "_"), f"{h}: {name}"
    for src in ("model.c", "weights.c", "test_vectors.c"):
        obj = tmp_path / f"{prefix}_{src}.o"
        subprocess.run(["gcc", "-std=c99", "-O2", "-I", str(g), "-c", str(g / src), "-o", str(obj)], check=True)
        nm = subprocess.run(
            ["nm", "--extern-only", "--defined-only", str(obj)], capture_output=True, text=True, check=True
        ).stdout
        for name in (ln.split()[-1] for ln in nm.splitlines() if ln.strip()):
            assert name.startswith(prefix + "_"), f"{src}: {name}"


@pytest.mark.parametrize(
    "prefix, needle",
    [
        ("Lrmpgnn", "lower-case letter"),
        ("2net", "lower-case letter"),
        ("net-a", "a-z, 0-9 and _"),
        ("_net", "lower-case letter"),
        ("int", "C keyword"),
        ("static", "C keyword"),
        ("tr", "shared kernels"),
        ("net__a", "C reserves"),
        ("a" * 21, "at most 20"),
        ("", "lower-case letter"),
    ],
)
def test_bad_prefix_is_one_clear_error_and_writes_nothing(gen, prefix, needle, tmp_path):
    with pytest.raises(cprefix.PrefixError, match=needle) as err:
        codegen.generate(gen["lr"]["export"], "cortex-m4", tmp_path / "x", prefix=prefix)
    assert "\n" not in str(err.value) and "not a valid C prefix" in str(err.value)
    assert not (tmp_path / "x").exists()


def test_default_prefix_is_the_model_family():
    assert cprefix.default("lrmpgnn_paper_a1-4_a2-16") == "lrmpgnn" == cprefix.resolve(None, "lrmpgnn_paper")
    assert cprefix.default("mpgnn_paper") == "mpgnn"
    assert cprefix.resolve("beam_a", "mpgnn_paper") == "beam_a"


def test_report_sizes_are_the_c_structs_and_the_linker_stack(gen, tmp_path):
    """io_bytes is sizeof(input) + sizeof(output) as the compiler lays them out for the target
    (arm-none-eabi-gcc); the stack in ram_need is the one the firmware's linker script reserves."""
    import json
    import re as _re

    g = gen["lr"]["gen"]
    rep = json.loads((g / "report.json").read_text())
    (tmp_path / "sz.c").write_text('#include "model.h"\nchar io[sizeof(lrmpgnn_input) + sizeof(lrmpgnn_output)];\n')
    subprocess.run(
        [
            "arm-none-eabi-gcc",
            "-mcpu=cortex-m4",
            "-mthumb",
            "-c",
            "-I",
            str(g),
            str(tmp_path / "sz.c"),
            "-o",
            str(tmp_path / "sz.o"),
        ],
        check=True,
    )
    nm = subprocess.run(["arm-none-eabi-nm", "-S", str(tmp_path / "sz.o")], capture_output=True, text=True).stdout
    size = int(next(ln.split()[1] for ln in nm.splitlines() if ln.endswith(" io")), 16)
    assert rep["sizes"]["io_bytes"] == size
    ld = (ROOT / "firmware_templates/firmware/common/sections.ld").read_text()
    assert (
        rep["sizes"]["stack_bytes"]
        == codegen.STACK_BYTES
        == int(_re.search(r"__stack_size = (\d+)K;", ld).group(1)) * 1024
    )
    assert rep["sizes"]["ram_need_bytes"] == rep["sizes"]["arena_bytes"] + size + codegen.STACK_BYTES


@pytest.mark.parametrize(
    "broken, needle",
    [
        (lambda p: p.mask_mul.__setattr__("mult", 0), "multiplier is 0"),
        (lambda p: p.msg_chain[-1].__setattr__("act_min", p.mask_mul.in1.zero_point - 1), "the wide layer's ReLU"),
        (lambda p: p.mask_mul.__setattr__("in2", program.QParam(p.mask.scale, 127)), "code of 1.0"),
    ],
)
def test_fused_max_preconditions_are_checked(gen, broken, needle):
    """The generated C's max-before-requantize equals TFLM only under three conditions; a model
    that breaks one is refused by program.match, not turned into C that is not bit-exact."""
    prog = program.match(tflite_reader.read((gen["lr"]["export"] / "model_int8.tflite").read_bytes()))
    broken(prog)
    with pytest.raises(tflite_reader.TFLiteError, match=needle):
        program._check_fused_max(prog)


def test_deterministic_with_provenance(gen, tmp_path):
    import json

    again = codegen.generate(gen["lr"]["export"], "cortex-m4", tmp_path / "again")
    a = sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    b = sorted(p.relative_to(gen["lr"]["gen"]) for p in gen["lr"]["gen"].rglob("*") if p.is_file())
    assert a == b
    sha = stage._sha((gen["lr"]["export"] / "model_int8.tflite").read_bytes())
    kernels = {k["file"]: k for k in json.loads((again / "report.json").read_text())["kernels"]}
    for rel in a:
        data = (again / rel).read_bytes()
        assert data == (gen["lr"]["gen"] / rel).read_bytes(), rel
        if rel.parts[0] == "kernels":  # a verbatim copy: its provenance is its source and that file's hash
            k = kernels.pop(rel.as_posix())
            assert data == (ROOT / k["source"]).read_bytes() and k["sha256"] == stage._sha(data), rel
        elif rel.suffix not in (".json", ".tflite", ".npz"):  # JSON carries the hash as a field; the rest are inputs
            head = data[:600].decode(errors="replace")
            assert "Generated by tinyrrm" in head and sha in head, rel
    assert not kernels


def test_kernels_are_verbatim_and_do_not_depend_on_the_model(gen):
    """Two models (full and low-rank) give the same kernel files: byte copies of firmware_templates/kernels/."""
    src = ROOT / "firmware_templates/kernels"
    want = sorted(p.name for p in src.iterdir() if p.suffix in (".c", ".h"))
    for kind in ("full", "lr"):
        k = gen[kind]["gen"] / "kernels"
        assert sorted(p.name for p in k.iterdir()) == want
        for name in want:
            assert (k / name).read_bytes() == (src / name).read_bytes(), f"{kind}: kernels/{name}"


def test_codegen_reads_only_the_export_folder(gen, tmp_path, monkeypatch):
    """A copy of the generated tflm/ folder regenerates the folder byte for byte with the checkpoint
    and every scene file out of reach (neither is opened), from another working directory."""
    from tinyrrm.training import scenes as scn

    def refuse(*a, **k):
        raise AssertionError("codegen opened a checkpoint or a scene file")

    monkeypatch.setattr(ckpt, "load", refuse)
    monkeypatch.setattr(scn, "load", refuse)
    src = gen["lr"]["gen"]
    shutil.copytree(src / "tflm", tmp_path / "exp")
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    command = re.search(r"command: (.*)", (src / "model.c").read_text()).group(1)
    out = codegen.generate(tmp_path / "exp", "cortex-m4", tmp_path / "out", command=command)
    got = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert got == sorted(p.relative_to(src) for p in src.rglob("*") if p.is_file())
    for rel in got:
        assert (out / rel).read_bytes() == (src / rel).read_bytes(), rel


def test_regeneration_keeps_nothing_of_the_previous_output(gen, tmp_path):
    """generated/<target> is a function of its inputs: figures or files left in the folder by
    anyone are gone after a regeneration, also one that changes no source byte."""
    import json

    out = codegen.generate(gen["lr"]["export"], "cortex-m4", tmp_path / "g")
    rep = json.loads((out / "report.json").read_text())
    rep["measured"] = {"hil": {"instructions_per_inference": 1}}
    (out / "report.json").write_text(json.dumps(rep, indent=2, sort_keys=True) + "\n")
    (out / "report_hil.png").write_bytes(b"png")
    codegen.generate(gen["lr"]["export"], "cortex-m4", out)
    assert not (out / "report_hil.png").exists()
    for p in gen["lr"]["gen"].rglob("*"):
        if p.is_file():
            assert (out / p.relative_to(gen["lr"]["gen"])).read_bytes() == p.read_bytes()


def test_templates_do_no_size_arithmetic():
    """Sizes, offsets and padding come from codegen.layout() and the Context, not from a template."""
    for p in sorted((ROOT / "firmware_templates/model").glob("*.j2")):
        for n, line in enumerate(p.read_text().splitlines(), 1):
            for expr in re.findall(r"\{[{%](.*?)[}%]\}", line):
                expr = re.sub(r'"[^"]*"', '""', expr)  # format strings are not arithmetic
                assert not re.search(r"\d\s*[*%]|[*%]\s*\d|\b(offset|size)\b\s*[-+%]", expr), f"{p.name}:{n}: {expr}"


def test_export_and_report_carry_the_deployment_facts(gen, tiny_ckpts):
    """What codegen and the HIL need is machine-readable: the export's `codegen` section (front end,
    edge cut, K, Nt, prefix) equals the checkpoint's, and report.json names prefix, cut and symbol."""
    import json

    for kind in ("full", "lr"):
        model, _ = ckpt.load(tiny_ckpts[kind])
        man = stage.read_manifest(gen[kind]["export"])
        fe = frontend.FrontEnd.of(model)
        back = frontend.FrontEnd.from_dict(json.loads(json.dumps(man["codegen"]["frontend"])))
        for k in ("direct_mean", "direct_std", "cross_mean", "cross_std"):
            assert np.array_equal(getattr(back, k), getattr(fe, k)) and getattr(back, k).dtype == np.float32
        assert (back.steps, back.residual, back.compand) == (fe.steps, fe.residual, fe.compand)
        assert man["codegen"]["cut_m"] == model.cfg.cut_m and man["files"][stage.SCENE_INPUTS]["sha256"]
        rep = json.loads((gen[kind]["gen"] / "report.json").read_text())
        prefix = "lrmpgnn" if kind == "lr" else "mpgnn"
        assert rep["model"]["prefix"] == man["codegen"]["prefix"] == prefix
        assert rep["model"]["weights_symbol"] == f"{prefix}_weights" and rep["model"]["cut_m"] == model.cfg.cut_m
        assert (rep["model"]["a1"], rep["model"]["a2"]) == (model.cfg.a1, model.cfg.a2)
        readme = (gen[kind]["gen"] / "README.md").read_text()
        assert f"in.k = {model.cfg.K};" in readme and f"within {model.cfg.cut_m:g} m" in readme


def test_unknown_target_and_misfit_leave_nothing(gen, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="unknown target 'cortex-m99'"):
        codegen.generate(gen["lr"]["export"], "cortex-m99", tmp_path / "x")
    assert not (tmp_path / "x").exists()
    small = targets.Target("cortex-m4", "cortex-m4", "mps2-an386", "a tiny board", 2048, 1024, True, "fpv4-sp-d16")
    monkeypatch.setitem(targets.TARGETS, "cortex-m4", small)
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "old.c").write_text("old")
    with pytest.raises(codegen.FitError, match=r"needs flash [\d,]+ B .* has 2,048 B; needs RAM"):
        codegen.generate(gen["lr"]["export"], "cortex-m4", keep)
    assert [p.name for p in keep.iterdir()] == ["old.c"]


def test_committed_cortex_m4_vectors_pass_on_host(tmp_path):
    g = ROOT / "generated/cortex-m4"
    exe = tmp_path / "vec"
    srcs = [str(p) for p in host.sources(g)] + [str(g / "test_vectors.c"), str(ROOT / "tests/c/vectors_main.c")]
    for path in ("-DTR_NO_DSP=1", "-DTR_EMULATE_DSP=1"):
        subprocess.run(
            ["gcc", *STRICT, "-O2", path, "-DPREFIX=lrmpgnn", "-I", str(g), *srcs, "-o", str(exe), "-lm"], check=True
        )
        r = subprocess.run([str(exe)], capture_output=True, text=True)
        assert r.returncode == 0 and "ok: 8 of 8 vectors bit-exact" in r.stdout, r.stdout


def test_committed_cortex_m4_regenerates_byte_for_byte(tmp_path, monkeypatch):
    """generated/cortex-m4 is committed: codegen from a copy of its own tflm/ folder, run from a
    working directory where no models/ and no data/ are reachable, gives every committed file
    of it byte for byte (and no other file)."""
    g = ROOT / "generated/cortex-m4"
    command = re.search(r"command: (.*)", (g / "model.c").read_text()).group(1)
    exp = tmp_path / "exp"
    shutil.copytree(g / "tflm", exp)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert not Path("models").exists() and not Path("data").exists()
    out = codegen.generate(exp, "cortex-m4", tmp_path / "out", command=command)
    committed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "generated/cortex-m4"], capture_output=True, text=True, check=True
    ).stdout.split()
    got = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert got == sorted(Path(c).relative_to("generated/cortex-m4").as_posix() for c in committed)
    for rel in got:
        assert (out / rel).read_bytes() == (g / rel).read_bytes(), f"{rel} changed on regeneration"


def _committed_calibration(g: Path) -> dict:
    """The manifest of ``g/tflm``, with its calibration scenes on disk (run from the repo root)."""
    import json

    from tinyrrm.training.scenes import generate, save

    man = json.loads((g / "tflm/export.json").read_text())
    calib = ROOT / man["calibration"]["path"]
    if not calib.is_file():  # `make data` writes it; the same seeded scenes, bit for bit
        save(generate(2000, 50, 2, seed=1), calib)
    assert ckpt.file_sha256(calib) == man["calibration"]["sha256"]
    return man


@pytest.mark.slow
def test_committed_tflm_folder_is_the_export_of_the_committed_model(tmp_path, monkeypatch):
    """generated/cortex-m4/tflm/ must be what the current exporter makes of the committed
    checkpoint: otherwise `make export` on a fresh clone rewrites committed files.
    The manifest holds the hashes of the files not committed (model.onnx, model_fp32.tflite)."""
    g = ROOT / "generated/cortex-m4"
    monkeypatch.chdir(ROOT)
    man = _committed_calibration(g)
    out = stage.export_model(
        man["checkpoint"]["path"],
        tmp_path / "exp",
        man["calibration"]["path"],
        man["calibration"]["n_scenes"],
        progress=False,
    )
    committed = sorted(p.name for p in (g / "tflm").iterdir())
    assert stage.MANIFEST in committed and "model_int8.tflite" in committed
    for name in committed:
        assert (out / name).read_bytes() == (g / "tflm" / name).read_bytes(), (
            f"{name} is stale: regenerate generated/ (make export, then make hil)"
        )


@pytest.mark.parametrize("target", [t for t in targets.TARGETS])
def test_every_target_generates_or_says_why_not(target, tmp_path, monkeypatch):
    """The committed export through codegen for each core: cortex-m0 (16 KB RAM) is the one that does not fit."""
    import json

    g = ROOT / "generated/cortex-m4"
    monkeypatch.chdir(tmp_path)  # the export copy is all codegen reads
    out = tmp_path / target
    if target == "cortex-m0":
        with pytest.raises(codegen.FitError, match=r"needs RAM [\d,]+ B .* has 16,384 B"):
            codegen.generate(g / "tflm", target, out)
        assert not out.exists()
    else:
        codegen.generate(g / "tflm", target, out)
        rep = json.loads((out / "report.json").read_text())
        assert rep["target"]["name"] == target and rep["sizes"]["ram_need_bytes"] <= rep["target"]["ram_bytes"]


def test_model_code_has_no_malloc_and_no_stdio():
    g = ROOT / "generated/cortex-m4"
    for p in [g / "model.c", g / "weights.c", *sorted((g / "kernels").iterdir())]:
        src = p.read_text()
        for bad in ("malloc", "calloc", "free(", "printf", "<stdio.h>", "FILE"):
            assert bad not in src, f"{p.name} uses {bad}"


def test_committed_full_size_core_bit_exact_with_tflm():
    """The deployed model at full size (K=50): random, saturating, sparse and K < K_MAX invokes,
    every byte of the committed generated C (both kernel paths) equals TFLM's."""
    g = ROOT / "generated/cortex-m4"
    blob = (g / "tflm/model_int8.tflite").read_bytes()
    prog = program.match(tflite_reader.read(blob))
    ref = tflm.TFLMCore(blob)
    one = intref.quantized_one(prog)
    models = (host.HostModel(g), host.HostModel(g, dsp=True))
    rng = np.random.default_rng(2026)
    K, nt = prog.K, prog.nt
    for i in range(16):
        x = rng.integers(-128, 128, (K, 4 * nt), dtype=np.int8)
        e = rng.integers(-128, 128, (K, K, 2 * nt), dtype=np.int8)
        if i % 4 == 1:
            x, e = np.sign(x).astype(np.int8) * 127, np.where(e < 0, -128, 127).astype(np.int8)
        k = (K, K, 1, int(rng.integers(2, K)))[i % 4]
        edge = rng.random((K, K)) < (0.05, 0.5, 1.0, 0.3)[i % 4]
        edge[k:], edge[:, k:] = False, False
        want = ref.invoke_int8(x, e, np.where(edge, one, -128).astype(np.int8)[..., None])[:k]
        for m in models:
            np.testing.assert_array_equal(m.core(x, e, edge, k)[:k], want)


def test_fast_requantization_equals_tflms_rounding(tmp_path):
    """tr_mbqm_fast (one add and shift) equals TFLM's MultiplyByQuantizedMultiplier
    (quant.mbqm, itself tested against TFLM) on its whole precondition: shifts
    -1..-31, |x| < 2^29, exact ties included; tr_sat8 is the int8 clamp."""
    exe = tmp_path / "requant"
    subprocess.run(
        [
            "gcc",
            *STRICT,
            "-O2",
            "-I",
            str(ROOT / "firmware_templates"),
            str(ROOT / "tests/c/requant_main.c"),
            "-o",
            str(exe),
        ],
        check=True,
    )
    rng = np.random.default_rng(11)
    rows = []
    lim = (1 << 29) - 1
    for e in range(1, 32):
        m = rng.integers(1 << 30, 1 << 31, 200)
        x = rng.integers(-lim, lim + 1, 200)
        rows += list(zip(x, m, [e] * 200))
        # m = 2^30 halves x exactly, so x = 2 (q 2^e +- 2^(e-1)) + {-2..2} lands on and around ties
        q = rng.integers(-(lim >> (e + 1)), (lim >> (e + 1)) + 1, 40)
        for sign in (1, -1):
            for d in (-2, -1, 0, 1, 2):
                x = np.clip(2 * (q * (1 << e) + sign * (1 << (e - 1))) + d, -lim, lim)
                rows += list(zip(x, [1 << 30] * len(x), [e] * len(x)))
        rows += [(lim, (1 << 31) - 1, e), (-lim, (1 << 31) - 1, e), (0, 1 << 30, e), (-1, 1 << 30, e)]
    x, m, e = (np.array(c, np.int64) for c in zip(*rows))
    r = subprocess.run(
        [str(exe)], input="".join(f"{a} {b} {c}\n" for a, b, c in rows), capture_output=True, text=True, check=True
    )
    fast, slow, sat = np.array([ln.split() for ln in r.stdout.splitlines()], np.int64).T
    want = quant.mbqm(x, m, -e)
    assert len(fast) == len(rows)
    np.testing.assert_array_equal(slow, want)
    np.testing.assert_array_equal(fast, want)
    np.testing.assert_array_equal(sat, np.clip(x, -128, 127))


def test_fast_requantization_flag_follows_its_precondition():
    """fast_rq is set only where tr_mbqm_fast is exact (shift <= -1, |accumulator| < 2^29)."""
    w = np.full((2, 4), 127, np.int8)
    qp = program.QParam(0.1, 0)
    f = program.FC(
        "t",
        w,
        np.zeros(2, np.int32),
        np.ones(2, np.float32),
        qp,
        qp,
        np.full(2, 1 << 30),
        np.array([-1, -3]),
        -128,
        127,
    )
    assert codegen.fast_requant(f)
    f.shift = np.array([0, -3])
    assert not codegen.fast_requant(f)
    f.shift = np.array([-1, -3])
    f.bias = np.array([0, (1 << 29) - 255 * 127 * 4], np.int32)
    assert not codegen.fast_requant(f)


def test_recorded_paths_do_not_depend_on_their_spelling(monkeypatch, tmp_path):
    """Manifests and provenance lines record a path inside the working directory relative to
    it: `--lrmpgnn $PWD/models/x` writes the same bytes as `--lrmpgnn models/x`."""
    from tinyrrm.training.fileio import portable

    monkeypatch.chdir(tmp_path)
    assert portable(tmp_path / "models" / "x") == portable("models/x") == "models/x"
    assert portable(tmp_path.parent / "y") == (tmp_path.parent / "y").as_posix()  # outside: as given


def test_report_of_a_board_run_shows_cycles():
    """A HIL run on a board (`tinyrrm hil --port`) measures SysTick cycles, not icount
    instructions: the HIL report's markdown says so in its rows."""
    import json

    from tinyrrm.hil import session

    hil = json.loads((ROOT / "reports/hil/cortex-m4.json").read_text())
    # a board run has no QEMU counts: no instructions, no portable path, no WMMSE yardstick
    board = {k: v for k, v in hil.items() if not k.startswith(("instructions_", "portable", "yardstick"))}
    board.update(count_unit="cycles", qemu_machine=None, cycles_per_inference=123_456_789.0, cycles_per_mac=2.24)
    md = session.markdown(board)
    assert "On target (a board;" in md
    assert "| cycles per inference (SysTick) | 123,456,789 |" in md and "| cycles per MAC | 2.24 |" in md
    assert "instructions per" not in md


def test_output_folders_know_themselves(gen):
    """A real generated folder and a real export folder pass their own output checks (and hold
    no file beyond their marks' lists); the report's format is the one the check looks for."""
    import json

    g = gen["lr"]["gen"]
    assert json.loads((g / "report.json").read_text())["format"] == codegen.REPORT_FORMAT
    assert codegen.check_out_dir(g) == g
    codegen.check_out_dir(ROOT / "generated/cortex-m4")  # make export may replace the committed folder
    exp = gen["lr"]["export"]
    assert sorted(p.name for p in exp.iterdir()) == sorted(stage.WRITES)
    assert stage.FOLDER.files(exp) == set(stage.WRITES)
    assert stage.check_out_dir(exp) == exp
