"""Post-processing tuning: coordinate ascent never worse than its start, stored atomically."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from napari_dmqpm.inference import PostprocessConfig, probabilities_to_labels
from napari_dmqpm.inference.predict import Probabilities
from napari_dmqpm.model import THREE_CLASS, DMQPMNet, HeadConfig, ModelConfig, save_checkpoint
from napari_dmqpm.model.registry import load_model
from napari_dmqpm.training.metrics import score_image
from napari_dmqpm.training.tuning import store_postprocess, tune_postprocess

NAMES = ("background", "interior", "boundary")


def two_touching_cells(gap_depth: float) -> tuple[Probabilities, np.ndarray]:
    """Two 10x10 cells side by side whose distance map dips to ``gap_depth`` between them."""
    truth = np.zeros((20, 32), dtype=np.int32)
    truth[5:15, 5:15], truth[5:15, 15:25] = 1, 2
    classes = np.zeros((3, 20, 32), np.float32)
    classes[0] = 1.0
    classes[:, truth > 0] = np.array([0.0, 1.0, 0.0])[:, None]
    cols = np.arange(32, dtype=np.float32)
    profile = np.clip(1.0 - np.minimum(np.abs(cols - 10), np.abs(cols - 20)) / 5.0, 0, 1)
    profile[14:16] = gap_depth  # a shallow dip between the two centres
    distance = np.where(truth > 0, profile[None, :], 0.0).astype(np.float32)
    return Probabilities(classes, NAMES, distance=distance), truth


def test_tuning_finds_the_thresholds_that_split_touching_cells():
    probs, truth = two_touching_cells(gap_depth=0.55)
    start = PostprocessConfig(seed_source="distance", seed_threshold=0.5, seed_h=0.0,
                              smooth_sigma_px=0.0, min_cell_area_px=4)  # fmt: skip
    assert score_image(probabilities_to_labels(probs, config=start), truth).f1 < 1.0  # merged
    result = tune_postprocess([probs], [truth], start=start)
    assert result.before[0] < 1.0 and result.after[0] == pytest.approx(1.0)
    labels = probabilities_to_labels(probs, config=result.config)
    assert score_image(labels, truth).f1 == pytest.approx(1.0)
    assert result.trials and all(isinstance(changes, dict) for changes, _, _ in result.trials)


def test_tuning_keeps_the_start_when_nothing_is_better():
    probs, truth = two_touching_cells(gap_depth=0.0)
    start = PostprocessConfig(seed_source="distance", seed_h=0.0, smooth_sigma_px=0.0,
                              min_cell_area_px=4)  # fmt: skip
    result = tune_postprocess([probs], [truth], start=start, grid={"seed_h": (0.0, 0.1)})
    assert result.after == result.before and result.config == start


def test_tuning_checks_its_inputs():
    probs, truth = two_touching_cells(0.5)
    with pytest.raises(ValueError, match="as many label images"):
        tune_postprocess([probs], [truth, truth])
    with pytest.raises(ValueError, match="not PostprocessConfig fields"):
        tune_postprocess([probs], [truth], grid={"threshold": (0.5,)})


def test_stored_thresholds_are_what_the_loaded_model_uses(tmp_path):
    torch.manual_seed(0)
    config = ModelConfig(inputs="phase", fusion="early", features=(4, 8), strides=(1, 2),
                         heads=(THREE_CLASS, HeadConfig(name="distance", kind="sigmoid",
                                                        channels=("distance",))))  # fmt: skip
    save_checkpoint(tmp_path / "m", DMQPMNet(config).eval())
    sha = load_model(tmp_path / "m", device="cpu").info.sha256
    probs, truth = two_touching_cells(gap_depth=0.55)
    result = tune_postprocess([probs], [truth], grid={"seed_h": (0.0, 0.3)})
    entry = store_postprocess(tmp_path / "m", result, tuned_on="two cells")
    content = json.loads((tmp_path / "m" / "config.json").read_text())
    assert content["postprocessing_tuning"]["tuned_on"] == "two cells"
    loaded = load_model(tmp_path / "m", device="cpu")
    assert loaded.info.sha256 == sha  # weights untouched
    assert PostprocessConfig.from_dict(loaded.info.postprocessing) == result.config
    assert entry == result.config.to_dict()
    assert not list((tmp_path / "m").glob(".*.tmp"))


def test_a_shared_cache_gives_the_same_result_and_post_processes_each_map_once(monkeypatch):
    """Leave-one-out folds share one cache: same answer as without it, no setting redone."""
    from napari_dmqpm.training import tuning

    maps = [two_touching_cells(depth) for depth in (0.55, 0.3, 0.0)]
    probabilities, truths = [m[0] for m in maps], [m[1] for m in maps]
    start = PostprocessConfig(seed_source="distance", seed_h=0.0, smooth_sigma_px=0.0,
                              min_cell_area_px=4)  # fmt: skip
    grid = {"seed_threshold": (0.4, 0.5, 0.6), "seed_h": (0.0, 0.1)}
    calls = []
    real = tuning.probabilities_to_labels
    monkeypatch.setattr(
        tuning,
        "probabilities_to_labels",
        lambda p, config: calls.append(1) or real(p, config=config),
    )
    plain = tune_postprocess(probabilities[:2], truths[:2], start=start, grid=grid)
    without = len(calls)
    cache: dict = {}
    cached = tune_postprocess(probabilities[:2], truths[:2], start=start, grid=grid, cache=cache)
    assert (cached.config, cached.after) == (plain.config, plain.after)
    first = len(calls) - without
    assert 0 < first < without  # the second pass revisits settings of the first
    tune_postprocess(probabilities[:2], truths[:2], start=start, grid=grid, cache=cache)
    assert len(calls) == without + first  # every (setting, map) was in the cache
    tune_postprocess(probabilities[1:], truths[1:], start=start, grid=grid, cache=cache)
    assert len(calls) < without + 2 * first  # the shared map was not redone
