"""The pages of the last benchmark scripts moved to benchmarks/templates, rendered on fixed records.

Each test renders a page (or a section) from made-up numbers, checks its paragraphs word for
word and that no template field is left unfilled (a ``$`` in the text).
"""

from __future__ import annotations

import importlib

#: The script the ``bench`` fixture imports; the others are imported from the same checkout.
BENCHMARK = "bench_scale"


def _script(name: str):
    return importlib.import_module(f"benchmarks.{name}")


# ----------------------------------------------------------------------------- bench_scale


def _scale_records() -> dict[str, dict[str, dict]]:
    """dmqpm-default in three modes and iit-dense, two images at D20 and two at x1.

    At x1 the automatic size loses 0.300 and 0.020 F1 against the oracle (mean 0.160: the goal
    is missed because of img_001-x1, estimated 30 px for 40 px).
    """
    model: dict[str, dict] = {}
    classic: dict[str, dict] = {}
    cases = {
        "sim-D20-0": ("D20", 20.0, 0.0), "sim-D20-1": ("D20", 20.0, 0.01),
        "img_001-x1": ("x1", 40.0, 0.3), "img_002-x1": ("x1", 40.0, 0.02),
    }  # fmt: skip
    for case, (group, true_d, gap) in cases.items():
        base = {"case": case, "group": group, "true_diameter_px": true_d, "cpu_s": 30.0}
        estimate = {"diameter_px": 30.0 if case == "img_001-x1" else true_d}
        model[f"{case}|auto"] = {
            **base, "mode": "auto", "f1": 0.9 - gap, "dice": 0.95, "estimate": estimate,
            "commit": "aaa1111",
        }  # fmt: skip
        model[f"{case}|oracle"] = {**base, "mode": "oracle", "f1": 0.9, "dice": 0.96}
        model[f"{case}|none"] = {**base, "mode": "none", "f1": 0.5, "dice": 0.9}
        classic[f"{case}|none"] = {**base, "mode": "none", "f1": 0.6, "dice": 0.8}
    return {"dmqpm-default": model, "iit-dense": classic}


def test_the_scale_page_renders_its_paragraphs_word_for_word(bench):
    text = bench.report(_scale_records(), header=["HEADER"])
    assert "$" not in text
    lines = text.splitlines()
    assert lines[:4] == ["# Results across magnifications (scale sweep)", "", "HEADER", ""]
    assert lines.count("F1 at IoU 0.5, mean over images (foreground Dice below).") == 2
    assert (
        "**`dmqpm-default`, automatic size against the oracle** (goal: F1 within 0.03 of the "
        "oracle and median diameter error under 10 %):" in lines
    )
    assert (
        "- x1: missed because of `img_001-x1` (F1 0.300 below the oracle; estimated 30 px for "
        "40 px); without it the gap is +0.020 (within 0.03)." in lines
    )
    assert (
        "Why the real-map targets are missed: not the cell size. With the true diameter given "
        "(oracle) no shipped model passes F1 0.900 at any resampling, so the automatic size "
        "costs at most what the rows above show. IIT (both presets) reaches 0.60-0.60 there. "
        "The foreground Dice is 0.960-0.960 (the cells are found); what is lost are touching "
        "cells merged or split (docs/results.md, real maps), which needs training on real or "
        "more realistic touching cells, not resampling. Part of it is the watershed's "
        "thresholds, tuned on simulated fields: tuned on 14 real maps instead, they lift F1 on "
        "the 15th (docs/results_loo.md, leave-one-out)." in lines
    )
    simulated_only = {
        method: {k: r for k, r in records.items() if r["group"] == "D20"}
        for method, records in _scale_records().items()
    }
    text = bench.report(simulated_only, header=[])
    assert "## Real Q-PHASE maps, resampled\n\nNot run (the real data folder is absent).\n" in text
    assert "Why the real-map" not in text and "$" not in text


def test_one_scale_table_serves_the_scale_page_and_the_results_page(bench):
    records = _scale_records()
    page = bench.report(records, header=[]).splitlines()
    start = page.index("## Simulated fields") + 4
    assert page[start : start + 4] == [
        "| scale | true diameter, px | `dmqpm-default` auto | `dmqpm-default` oracle "
        "| `dmqpm-default` none | iit-dense |",
        "|---|---|---|---|---|---|",
        "| D20 | 20.0 | 0.895 | 0.900 | 0.500 | 0.600 |",
        "| D20 (Dice) | 20.0 | 0.950 | 0.960 | 0.900 | 0.800 |",
    ]
    numbers = {"scale": {"summary": bench.summarize(records), "cpu_minutes": 4.0, "records": "r"}}
    section = _script("results_report").scale_section(numbers)
    assert "$" not in "\n".join(section)
    start = section.index("Foreground Dice, mean over images:") + 2
    assert section[start : start + 4] == [
        "| images | true diameter, px | `dmqpm-default` auto | `dmqpm-default` oracle "
        "| iit-dense |",
        "|---|---|---|---|---|",
        "| D20 | 20.0 | 0.950 | 0.960 | 0.800 |",
        "| x1 | 40.0 | 0.950 | 0.960 | 0.800 |",
    ]


def test_the_scale_header_fills_every_field(bench, monkeypatch):
    import torch

    monkeypatch.setattr(bench, "_commit", lambda: "c0ffee1")
    monkeypatch.setattr(bench.platform, "processor", lambda: "cpu9")
    monkeypatch.setattr(bench.os, "cpu_count", lambda: 3)
    monkeypatch.setattr(bench.time, "strftime", lambda fmt, t=None: "2026-01-02 03:04 UTC")
    lines = bench.header_lines(600.0, "python benchmarks/bench_scale.py", "4 at aaa1111 (auto)")
    assert "$" not in "\n".join(lines)
    assert lines[0] == (
        "Generated by `python benchmarks/bench_scale.py`; do not edit by hand. Records "
        "computed in 10 min of CPU time (cached per method and image)."
    )
    assert lines[2].startswith("- Machine: cpu9, 3 cores; Python ")
    assert lines[2].endswith(f"torch {torch.__version__} ({torch.get_num_threads()} threads)")
    assert lines[3] == (
        "- Commit: c0ffee1; date 2026-01-02 03:04 UTC; cached records computed: 4 at aaa1111 (auto)"
    )
    assert lines[5] == (
        '- The estimate: docs/inference.md ("Cell size"). The models: each checkpoint\'s model '
        "card; the shipped ones were fine-tuned with scale augmentation over cell diameters of "
        "10-120 px (docs/training.md), which is what the `none` columns test."
    )
    assert bench.header_lines(60.0, "c")[3] == "- Commit: c0ffee1; date 2026-01-02 03:04 UTC"
