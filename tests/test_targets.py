"""``codegen/targets.py`` is the one table of target facts: the firmware's board files, the
firmware README and every list of targets are held equal to it here (the top README's HIL
table is rendered from it and ``reports/hil``: ``tests/test_docs.py``)."""

import re
from pathlib import Path

import pytest

from tinyrrm import cli
from tinyrrm.codegen import targets as T
from tinyrrm.hil import flash

ROOT = Path(__file__).resolve().parents[1]
BOARDS = ROOT / "firmware_templates/firmware/boards"
KB = 1024


def board_mk(folder: str) -> dict[str, str]:
    """The variables of ``boards/<folder>/board.mk`` as Make sees them (``:=`` lines and
    ``include $(HERE)/...`` of shared files), and the text of its comment."""
    out: dict[str, str] = {}

    def read(path: Path) -> None:
        for line in path.read_text().splitlines():
            if m := re.match(r"(\w+)\s*:=\s*(.*?)\s*$", line):
                out[m[1]] = m[2]
            elif m := re.match(r"include \$\(HERE\)/(\S+)$", line):
                read(BOARDS.parent / m[1])

    path = BOARDS / folder / "board.mk"
    read(path)
    out["#"] = " ".join(ln.lstrip("# ") for ln in path.read_text().splitlines() if ln.startswith("#"))
    return out


def test_every_board_folder_is_a_target_or_a_port_of_one():
    ports = {b.port: b.target for b in flash.BOARDS.values()}
    assert {p.name for p in BOARDS.iterdir() if p.is_dir()} == set(T.TARGETS) | set(ports)
    assert set(ports.values()) <= set(T.TARGETS)


@pytest.mark.parametrize("name", list(T.TARGETS))
def test_board_mk_holds_the_tables_facts(name):
    t, mk = T.TARGETS[name], board_mk(name)
    assert mk["QEMU_MACHINE"] == t.qemu_machine
    assert mk["CPU_FLAGS"] == " ".join(t.cflags())
    assert int(mk["FLASH_BYTES"], 0) == t.flash and int(mk["RAM_BYTES"], 0) == t.ram
    # the comment names the board and its limits: "with the Arduino Due's limits (flash 512 KB, RAM 96 KB)"
    m = re.search(r"with the (.+?)'s limits \((?:flash|code) (\d+) KB, RAM (\d+) KB\)", mk["#"])
    assert m, mk["#"]
    assert m[1].split()[-1] in t.board and (int(m[2]) * KB, int(m[3]) * KB) == (t.flash, t.ram)


@pytest.mark.parametrize("port", sorted({b.port for b in flash.BOARDS.values()}))
def test_a_board_port_has_its_targets_core_and_limits(port):
    """A port (``stm32f405``) runs on a board of its target's reference part: same core, same limits."""
    t = T.TARGETS[next(b.target for b in flash.BOARDS.values() if b.port == port)]
    mk = board_mk(port)
    assert mk["CPU_FLAGS"] == " ".join(t.cflags())
    assert int(mk["FLASH_BYTES"], 0) == t.flash and int(mk["RAM_BYTES"], 0) == t.ram


def _rows(text: str, first: str) -> dict[str, list[str]]:
    """The rows of the Markdown table whose header starts with ``| first |``, by their first cell."""
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(f"| {first} |"))
    rows = {}
    for ln in lines[start + 2 :]:
        if not ln.startswith("|"):
            break
        cells = [c.strip() for c in ln.strip("|").split("|")]
        rows[cells[0]] = cells[1:]
    return rows


def test_firmware_readme_table_is_the_tables():
    rows = _rows((ROOT / "firmware_templates/firmware/README.md").read_text(), "target")
    ports = {b.port: b.target for b in flash.BOARDS.values()}
    assert set(rows) == set(T.TARGETS) | set(ports)
    for name, (machine, code, ram, *_) in rows.items():
        t = T.TARGETS[ports.get(name, name)]
        if name in T.TARGETS:
            assert machine == t.qemu_machine, name
        assert code.endswith(f", {t.flash // KB} KB") and ram.endswith(f", {t.ram // KB} KB"), name


def test_every_target_list_is_the_tables_names():
    names = list(T.TARGETS)
    make = re.search(r"^TARGETS\s*:=\s*(.*)$", (ROOT / "Makefile").read_text(), re.M)[1].split()
    assert make == names
    assert [t.value for t in cli.TargetName] == names
    conftest = (ROOT / "hil_tests/conftest.py").read_text()
    assert "TARGETS" in conftest and "cortex-m3, -m4" not in conftest  # its --target help comes from the table
    from tinyrrm.bench import firmware as bench

    assert set(bench.TARGETS) <= set(names)  # the cores the firmware benchmark runs (the ones that fit)
