"""benchmarks/bench_shifts.py and loo_thresholds.py: the shifts are what they say, no fold leaks."""

from __future__ import annotations

import numpy as np
import pytest

BENCHMARK = "bench_shifts"


def test_each_shift_changes_the_map_as_named(bench):
    from napari_dmqpm.simulation import SimulationConfig
    from napari_dmqpm.simulation.optics import residual_background

    phase = np.random.default_rng(0).random((40, 50)).astype(np.float32)
    assert bench.shift_phase(phase, "none", index=3) is phase
    np.testing.assert_allclose(bench.shift_phase(phase, "offset +0.3", index=0), phase + 0.3)
    np.testing.assert_allclose(bench.shift_phase(phase, "scale x0.5", index=0), phase * 0.5)
    foreign = bench.shift_phase(phase, "foreign background", index=7) - phase
    config = SimulationConfig(shape=phase.shape, **bench.FOREIGN)
    expected = residual_background(config, np.random.default_rng((bench.SHIFT_SEED, 7)))
    np.testing.assert_allclose(foreign, expected, atol=1e-6)
    other = bench.shift_phase(phase, "foreign background", index=8) - phase
    assert not np.allclose(foreign, other)  # one surface per image
    with pytest.raises(ValueError, match="unknown shift"):
        bench.shift_phase(phase, "rotate 90", index=0)


def test_the_report_gives_the_change_from_the_unshifted_maps(bench):
    records = {
        "a|none": {"shift": "none", "f1": 0.8, "dice": 0.9, "cpu_s": 1.0},
        "b|none": {"shift": "none", "f1": 0.6, "dice": 0.9, "cpu_s": 1.0},
        "a|scale x2": {"shift": "scale x2", "f1": 0.5, "dice": 0.8, "cpu_s": 1.0},
        "b|scale x2": {"shift": "scale x2", "f1": 0.3, "dice": 0.8, "cpu_s": 1.0},
    }
    text = bench.report({"phase-only": records}, header=["head"])
    assert "| none | 0.700 |" in text and "| scale x2 | 0.400 (-0.300) |" in text
    assert "| offset +0.3 | – |" in text


def test_leave_one_out_never_tunes_on_the_map_it_scores(bench, monkeypatch):
    from benchmarks import loo_thresholds as loo

    from napari_dmqpm import training

    seen = []
    real = training.tune_postprocess

    def spy(probabilities, truths, **kwargs):
        seen.append({id(t) for t in truths})
        return real(probabilities, truths, grid={"seed_threshold": (0.4, 0.6)}, **kwargs)

    monkeypatch.setattr(training, "tune_postprocess", spy)
    from napari_dmqpm.inference import PostprocessConfig
    from napari_dmqpm.inference.predict import Probabilities

    truths, maps = [], []
    for shift in range(4):
        truth = np.zeros((24, 24), np.int32)
        truth[4 + shift : 14 + shift, 4:14] = 1
        classes = np.zeros((3, 24, 24), np.float32)
        classes[0] = 1.0
        classes[:, truth > 0] = np.array([0.0, 1.0, 0.0])[:, None]
        truths.append(truth)
        maps.append(Probabilities(classes, ("background", "interior", "boundary")))
    start = PostprocessConfig(seed_source="interior", min_cell_area_px=4)
    result = loo.leave_one_out(maps, truths, start)
    assert len(seen) == 5  # one fold per map, then all maps together (in-sample)
    for index, fold in enumerate(seen[:4]):
        assert id(truths[index]) not in fold and len(fold) == 3
    assert seen[4] == {id(t) for t in truths}
    assert len(result["loo"]) == len(result["stored"]) == 4
    assert result["stored"][0] == pytest.approx((1.0, 1.0))
