"""benchmarks/bench_thresholds.py: the presets change what they name; the report's means."""

from __future__ import annotations

import pytest

BENCHMARK = "bench_thresholds"


def test_each_preset_changes_only_what_the_folds_chose(bench):
    from dataclasses import asdict

    from napari_dmqpm.inference import PostprocessConfig

    stored = PostprocessConfig(foreground_threshold=0.6, seed_h=0.1, smooth_sigma_px=3.0)
    presets = bench.presets("dmqpm-default", stored)
    assert presets["stored"] is stored
    changed = {k for k, v in asdict(presets["real-loo"]).items() if asdict(stored)[k] != v}
    assert changed == {"seed_h", "seed_threshold", "smooth_sigma_px"}
    assert presets["real-loo"].seed_h == 0.05 and presets["real-loo"].seed_threshold == 0.7
    seeds = asdict(presets["seeds"])
    assert {k for k, v in seeds.items() if asdict(stored)[k] != v} == {"seed_h", "seed_threshold"}


def test_the_report_gives_means_per_scale_and_the_change(bench):
    def record(group, stored, loo):
        scores = {"f1": stored, "dice": 0.9}
        return {"group": group, "cpu_s": 1.0, "stored": scores, "seeds": scores,
                "real-loo": {"f1": loo, "dice": 0.9}}  # fmt: skip

    records = {
        "a-x1": record("x1", 0.7, 0.8), "b-x1": record("x1", 0.8, 0.9),
        "sim-D20-0": record("D20", 0.95, 0.90), "sim-D50-0": record("D50", 0.97, 0.96),
    }  # fmt: skip
    text = bench.report({"phase-only": records}, header=["head"])
    assert "| x1 | 2 | 0.750 | 0.850 | 0.750 |" in text
    assert text.index("| D20 |") < text.index("| D50 |") < text.index("| x1 |")
    assert "F1 by +0.100 to +0.100 over the resamplings" in text
    assert "fields' by -0.050 to -0.010 (lowest simulated scale 0.900)" in text


def test_an_unknown_model_is_named(bench):
    with pytest.raises(SystemExit):
        bench.main(["--models", "big", "--report-only"])
