"""The package's layers import one way, and the folders show them.

    tinyrrm.errors, tinyrrm.paths          leaves: import nothing of the project
    tinyrrm.training                       scenes, metrics, WMMSE, models, training
    tinyrrm.export                         ONNX, TFLite int8, TFLite Micro
    tinyrrm.codegen                        the generated C, its targets and host build
    tinyrrm.hil                            firmware builds, QEMU and boards
    tinyrrm.evaluate, .prepare, .bench,    evaluation backends, the HIL reference, benchmarks,
    .experiments, .docs                    the rank grid, the docs' figures
    tinyrrm.cli                            the command line

A module imports only its own layer or those above it in this list. Imports
inside functions are kept for heavy optional dependencies (and the CLI, whose
commands import their stage when they run, so that ``--help`` and a bad option
answer at once); a project module imported inside a function elsewhere is a
hidden cycle.
"""

from __future__ import annotations

import ast
import importlib.util
import pkgutil
from pathlib import Path

import pytest

import tinyrrm

LAYERS = [
    ("tinyrrm.errors", "tinyrrm.paths", "tinyrrm"),
    ("tinyrrm.training",),
    ("tinyrrm.export",),
    ("tinyrrm.codegen",),
    ("tinyrrm.hil",),
    ("tinyrrm.evaluate", "tinyrrm.prepare", "tinyrrm.bench", "tinyrrm.experiments", "tinyrrm.docs"),
    ("tinyrrm.cli",),
]
#: third-party modules a function may import when it needs them (slow to import, or absent from the
#: lean HIL image, which has no torch, TensorFlow or matplotlib)
HEAVY = {
    "torch",
    "torch_geometric",
    "tensorflow",
    "onnx",
    "onnxruntime",
    "tflite_micro",
    "matplotlib",
    "serial",
    "ray",
    "elftools",
    "scipy",
}


def _layer(module: str) -> int:
    best, rank = -1, None
    for i, names in enumerate(LAYERS):
        for n in names:
            if (module == n or module.startswith(n + ".")) and len(n) > best:
                best, rank = len(n), i
    assert rank is not None, module
    return rank


def _modules() -> dict[str, Path]:
    """Every module of the installed package, by dotted name (editable or not: an editable
    install maps the stage folders onto subpackages, which ``tinyrrm.__path__`` does not list)."""
    out = {"tinyrrm": Path(tinyrrm.__file__)}
    roots = [("tinyrrm.", tinyrrm.__path__)]
    for names in LAYERS:
        for n in names:
            spec = importlib.util.find_spec(n)
            assert spec is not None, n
            if spec.submodule_search_locations:
                out[n] = Path(spec.origin)
                roots.append((n + ".", spec.submodule_search_locations))
    for prefix, where in roots:
        for info in pkgutil.walk_packages(where, prefix):
            spec = info.module_finder.find_spec(info.name)
            if spec is not None and spec.origin and spec.origin.endswith(".py"):
                out[info.name] = Path(spec.origin)
    return out


def _imports(module: str, path: Path):
    """(imported name, line, inside a function, names a module) for every import of ``path``
    (``from m import x`` gives ``m``, a module, and ``m.x``, a module or an attribute)."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                for a in child.names:
                    yield a.name, child.lineno, in_function, True
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.rsplit(".", child.level - 1)[0] if child.level > 1 else package
                    name = f"{base}.{child.module}" if child.module else base
                else:
                    name = child.module
                names = [f"{name}.{a.name}" for a in child.names]
                yield name, child.lineno, in_function, True
                for n in names:  # `from pkg import module`
                    yield n, child.lineno, in_function, False
            else:
                yield from visit(child, inner)

    yield from visit(tree, False)


MODULES = _modules()


def test_the_layers_cover_every_module():
    assert {
        "tinyrrm.cli",
        "tinyrrm.paths",
        "tinyrrm.training.models",
        "tinyrrm.export.stage",
        "tinyrrm.codegen.generate",
        "tinyrrm.hil.run",
        "tinyrrm.evaluate.backends",
        "tinyrrm.bench.firmware",
        "tinyrrm.experiments.grid",
    } <= set(MODULES)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_run_one_way(module):
    own = _layer(module)
    wrong = []
    for name, line, in_function, is_module in _imports(module, MODULES[module]):
        if name not in MODULES:
            if is_module and name.split(".")[0] == "tinyrrm":
                wrong.append(f"line {line}: imports {name}, which is no module of the package")
            top = name.split(".")[0]
            if in_function and top not in HEAVY and module != "tinyrrm.cli" and top != "tinyrrm":
                wrong.append(f"line {line}: `{name}` imported inside a function (not a heavy optional dependency)")
            continue
        if _layer(name) > own and name != "tinyrrm":
            wrong.append(f"line {line}: imports {name}, a layer above {module}")
        if in_function and module != "tinyrrm.cli":
            wrong.append(f"line {line}: imports {name} inside a function")
    assert not wrong, f"{module}:\n" + "\n".join(wrong)
