"""benchmarks/templates: the pages' prose is in template files, filled by the report writers."""

from __future__ import annotations

import re
from pathlib import Path
from string import Template

import pytest

#: The script under test (the ``bench`` fixture of conftest imports it).
BENCHMARK = "results_report"
BENCHMARKS = Path(__file__).resolve().parents[3] / "benchmarks"
TEMPLATES = BENCHMARKS / "templates"


def _templates() -> list[Path]:
    return sorted(p for p in TEMPLATES.rglob("*.md"))


def test_every_template_is_used_and_its_fields_are_well_formed(bench):
    sources = "\n".join(p.read_text() for p in BENCHMARKS.glob("*.py"))
    assert _templates()
    for path in _templates():
        name = path.relative_to(TEMPLATES).as_posix()
        assert f'"{name}"' in sources, f"{name} is not rendered by any script"
        matches = list(Template.pattern.finditer(path.read_text("utf-8")))
        assert not [m for m in matches if m.group("invalid") is not None], name


def test_render_fills_the_fields_and_refuses_a_missing_one(bench):
    from benchmarks.templates import render

    lines = render("results/scale.md", cpu_minutes="7", records="abc1234")
    assert len(lines) == 1 and lines[0].endswith("computed in 7 min of CPU: abc1234.")
    with pytest.raises(KeyError, match="records"):
        render("results/scale.md", cpu_minutes="7")


def _record(name: str, dice: float, f1: float) -> dict:
    counts = dict(n_true=10, n_pred=9, tp=8, fp=1, fn=2, merges=1, merged_cells=2, splits=0)
    counts |= dict(split_fragments=0, missed=1, spurious=1, fg_pred=90, fg_true=100)
    scores = dict(dice=dice, iou=dice - 0.1, f1=f1, mean_matched_iou=0.8, dice_grown_1px=0.9)
    return {"name": name, **scores, **counts}


def test_a_missed_target_is_explained_in_the_words_of_the_template(bench):
    records = [_record("a", 0.85, 0.70), _record("b", 0.95, 0.90)]
    numbers = {"models": {}, "real": {"available": False}}
    lines = bench._why(numbers, "otsu", "synthetic dense", records)
    assert lines == [
        "- Otsu + watershed (classical), synthetic dense: foreground Dice 0.900, F1 0.800, "
        "mean matched IoU 0.800; predicted / true foreground pixels 0.90, Dice with the "
        "predicted foreground grown by 1 px 0.900. 20 true cells, 18 predicted: 16 matched, "
        "4 false negatives, 2 false positives. 2 merges swallow 4 true cells; 0 split cells "
        "give 0 fragments; 2 true cells missed (> half on predicted background), 2 spurious "
        "predictions. Worst: a (Dice 0.850, F1 0.700, 10 / 9 cells, 1 merges, 0 splits); "
        "b (Dice 0.950, F1 0.900, 10 / 9 cells, 1 merges, 0 splits)."
    ]


def test_the_training_section_keeps_its_table_head(bench):
    lines = bench.training_section({"models": {}})
    assert lines[0].startswith("## 7. Training budgets")
    assert re.fullmatch(r"(\|---){11}\|", lines[-2]) and lines[-1] == ""


def _finetune_run(image: str, strip_f1: float | None) -> dict:
    from types import SimpleNamespace

    result = SimpleNamespace(dice_before=0.8, dice_after=0.9, f1_before=0.6, f1_after=0.7)
    return {
        "image": image, "n_cells": 40, "seconds": 180.0, "n_epochs": 20, "tuned": False,
        "before": {"dice": (0.85, 0.05), "f1": (0.70, 0.10)},
        "after": {"dice": (0.90, 0.04), "f1": (0.75, 0.08)},
        "result": result, "n_others": 14,
        "strip_tuned": None if strip_f1 is None else {"f1": (strip_f1, 0.2)},
    }  # fmt: skip


def test_the_fine_tuning_page_fills_its_template_and_notes_qpi15_only_when_used(bench):
    from benchmarks import finetune_real

    runs = [_finetune_run("dense_011", 0.5), _finetune_run("qpi15", None)]
    text = finetune_real.report(runs, base="phase-only", minutes=3.0, threads=2)
    assert "Base model `phase-only`. Each row fine-tunes it" in text
    assert "for at most 3 min of wall time on the CPU (2 threads;" in text
    assert "the OTHER 14 images of the set" in text
    assert "| `qpi15` | 40 | 3.0 (20) | 0.850 ± 0.050 | **0.900 ± 0.040** |" in text
    assert "`dense_011` Dice +0.050, F1 +0.050; `qpi15` Dice +0.050, F1 +0.050." in text
    assert "score on the other images: `dense_011` F1 0.500 ± 0.200." in text
    assert "`qpi15` is not like the images" in text
    assert text.endswith("(about 8 minutes).\n")  # 2 x (3 + 0.7) + 0.5
    alone = finetune_real.report(runs[:1], base="phase-only", minutes=3.0, threads=2)
    assert "`qpi15` is not like" not in alone and "$" not in alone
