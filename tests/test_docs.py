"""Every measured figure of the docs is rendered from ``reports/`` (``make docs``): the committed
docs are what the committed reports render to, and no measured-looking number stands outside a
generated span (``tinyrrm/docs.py`` states the rule)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from tinyrrm import docs
from tinyrrm.codegen import targets as T
from tinyrrm.errors import InputError, UsageError

ROOT = Path(__file__).resolve().parents[1]
FILES = docs.doc_files(ROOT)
REPORTS = docs.Reports(ROOT / "reports")


def test_the_docs_are_the_readme_and_docs():
    assert ROOT / "README.md" in FILES and ROOT / "docs/DESIGN-NOTES.md" in FILES
    assert all(p.is_file() for p in FILES)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_committed_doc_is_what_the_reports_render_to(path):
    text = path.read_text()
    assert docs.render(text, REPORTS, str(path)) == text, f"{path.name} is stale: run `make docs`"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_no_figure_is_typed_outside_a_generated_span(path):
    loose = docs.loose_figures(path.read_text())
    assert not loose, f"{path.name}: measured-looking numbers outside generated spans:\n" + "\n".join(loose)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_no_doc_cites_a_tracker_a_session_or_a_file_outside_the_repository(path):
    text = docs._prose(path.read_text())  # code may say `#31` (an immediate)
    for pattern in (
        r"\bissue \d",
        r"(?<![\w&])#\d",
        r"\bsessions?\b(?! of)",
        r"\.\./shared",
        r"DESIGN\.md",
        r"DESIGN §",
    ):
        assert not re.search(pattern, text, re.I), (path.name, pattern, re.search(pattern, text, re.I)[0])


def test_the_readme_hil_table_is_every_core_of_the_targets_table_with_its_report():
    """Rows in the targets table's order, machines and board limits from it, figures from
    ``reports/hil/<core>.json``: a core without a report says so."""
    table = docs.hil_table(REPORTS).splitlines()[2:]
    assert [row.split("|")[1].strip() for row in table] == list(T.TARGETS)
    for row, (name, t) in zip(table, T.TARGETS.items(), strict=True):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[1] == t.qemu_machine and cells[2].endswith(f"/ {t.flash:,}") and cells[3].endswith(f"/ {t.ram:,}")
        report = ROOT / "reports/hil" / f"{name}.json"
        if report.is_file() and json.loads(report.read_text()).get("fits", True):
            h = json.loads(report.read_text())
            assert cells[2] == f"{h['flash_bytes']:,} / {h['flash_limit_bytes']:,}"
            assert cells[-1] == f"{h['bit_exact']['equal']} / {h['bit_exact']['total']}"
        elif report.is_file():  # the HIL's refusal, named under the table
            assert cells[-1] == "does not fit (below)"
            assert json.loads(report.read_text())["why"] in docs.hil_no_fit(REPORTS)
        else:
            assert cells[-1] == "no report"
    readme = (ROOT / "README.md").read_text()
    assert "<!-- generated: hil_table -->\n" + docs.hil_table(REPORTS) + "\n<!-- /generated -->" in readme


def test_a_changed_report_changes_the_rendered_doc(tmp_path):
    shutil.copytree(ROOT / "reports", tmp_path / "reports")
    path = tmp_path / "reports/hil/cortex-m4.json"
    h = json.loads(path.read_text())
    h["bit_exact"]["equal"] = 7
    path.write_text(json.dumps(h))
    text = (ROOT / "README.md").read_text()
    new = docs.render(text, docs.Reports(tmp_path / "reports"))
    assert new != text and "| 7 / 8 |" in new
    (tmp_path / "reports/hil/cortex-m3.json").unlink()
    new = docs.render(text, docs.Reports(tmp_path / "reports"))
    assert re.search(r"\| cortex-m3 \| mps2-an385 \| — / 524,288 \| — / 98,304 \|[ |]*\| no report \|", new)


def test_spans_render_inline_and_as_blocks():
    text = (
        "fp32 <!-- generated: value size.json mpgnn.bytes_fp32 , -->old<!-- /generated --> B\n"
        "<!-- generated: svd_truncation -->\nold\n<!-- /generated -->\n"
    )
    out = docs.render(text, REPORTS)
    size = json.loads((ROOT / "reports/size.json").read_text())
    assert f"value size.json mpgnn.bytes_fp32 , -->{size['mpgnn']['bytes_fp32']:,}<!--" in out
    assert out.split("\n")[1:3] == [
        "<!-- generated: svd_truncation -->",
        "| (a1, a2) | truncated, no retraining | after 1 fine-tune epoch(s) |",
    ]
    assert docs.render(out, REPORTS) == out  # a second run changes nothing


def test_a_bad_marker_is_one_clear_error():
    with pytest.raises(UsageError, match="unknown renderer 'nope'"):
        docs.render("<!-- generated: nope -->x<!-- /generated -->", REPORTS, "X.md")
    with pytest.raises(UsageError, match="bad arguments for 'value'"):
        docs.render("<!-- generated: value -->x<!-- /generated -->", REPORTS, "X.md")
    with pytest.raises(InputError, match="no 'sum_rate.nope'"):
        docs.render("<!-- generated: value evaluate_c.json sum_rate.nope .2f -->x<!-- /generated -->", REPORTS)
    with pytest.raises(InputError, match="no such report"):
        docs.render("<!-- generated: value nope.json a .2f -->x<!-- /generated -->", REPORTS)


@pytest.mark.parametrize(
    "line, loose",
    [
        ("reaches 121.16 bits/s/Hz", ["121.16"]),
        ("is 7,317,584 B", ["7,317,584"]),
        ("took 1221 edges", ["1221"]),
        ("three steps, 16 KB of RAM, K = 50", []),
        ("the target is ≥ 0.95 of WMMSE, ≤ 1e-5", []),
        ("`--n 2000` and `0.9505` in code", []),
        ("at 0x08000000, `115200 8N1`, lr 1e-3, 2^29", []),
        ("<!-- generated: x -->0.97<!-- /generated --> and 0.5", ["0.5"]),
        ("```\n123.45\n```", []),
    ],
)
def test_the_loose_figure_rule(line, loose):
    assert [f.split("'")[1] for f in docs.loose_figures(line)] == loose


def test_the_readmes_yardstick_sentence_holds_on_every_core():
    """README: "two of its iterations pass the deployed LR-MPGNN's rate and three the full
    MPGNN's, each at a small fraction of the model's instructions" (a tenth at most)."""
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "two of its iterations pass the deployed LR-MPGNN's rate and three the full MPGNN's" in readme
    for h in REPORTS.hil().values():
        pts = {p["policy"]: p for p in h.get("yardstick", {}).get("points", [])}
        if not pts or not h.get("fits", True):  # no learned model on the core to compare with
            continue
        for k, model in (("wmmse2", "lrmpgnn_deployed"), ("wmmse3", "mpgnn_full")):
            w, m = pts[k], pts[model]
            assert w["rate_over_wmmse100"] > m["rate_over_wmmse100"], (h["target"], k, model)
            assert w["instructions_per_decision"] <= 0.1 * m["instructions_per_decision"], (h["target"], k, model)


def test_the_readmes_front_sentence_holds():
    """README: "on measured points top-m WMMSE does not yet reach a dense WMMSE-k's rate at half
    its instructions": reports/front.json judges the yardstick on measured points unmet."""
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "on measured points top-m WMMSE does not yet reach a dense WMMSE-k's rate at half its instructions" in readme
    front = json.loads((ROOT / "reports/front.json").read_text())
    assert front["measured"]["targets"]["yardstick_met"] is False
