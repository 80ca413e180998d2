"""Tests of benchmarks/bench_scale.py's report: a miss is traced to the image that causes it."""

from __future__ import annotations

BENCHMARK = "bench_scale"


def _records(gaps: dict[str, float]) -> dict:
    records = {}
    for case, gap in gaps.items():
        base = {"group": "x1", "true_diameter_px": 40.0, "dice": 0.9, "cpu_s": 1.0}
        records[f"{case}|oracle"] = {**base, "mode": "oracle", "f1": 0.8}
        records[f"{case}|auto"] = {
            **base, "mode": "auto", "f1": 0.8 - gap, "estimate": {"diameter_px": 12.0}
        }  # fmt: skip
    return records


def test_a_miss_names_the_worst_image_and_the_gap_without_it(bench):
    gaps = {f"img_{i:03d}-x1": 0.01 for i in range(14)} | {"img_006-x1": 0.45}
    (note,) = bench.worst_image_notes(_records(gaps), ["x1"])
    assert "`img_006-x1`" in note and "F1 0.450 below" in note
    assert "estimated 12 px for 40 px" in note and "gap is +0.010 (within 0.03)" in note


def test_no_note_where_the_goal_is_met(bench):
    gaps = {f"img_{i:03d}-x1": 0.02 for i in range(15)}
    assert bench.worst_image_notes(_records(gaps), ["x1"]) == []
