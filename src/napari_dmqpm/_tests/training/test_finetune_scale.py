"""Fine-tuning shows the network the user's cells at the base model's trained scale."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from napari_dmqpm.inference.diameter import cell_diameters
from napari_dmqpm.model import DMQPMNet, ModelConfig, save_checkpoint
from napari_dmqpm.simulation import SimulationConfig, simulate_field
from napari_dmqpm.training.augment import AugmentConfig
from napari_dmqpm.training.finetune import at_model_scale, finetune, finetune_split

BASE_DIAMETER = 20.0


@pytest.fixture(scope="module")
def big_cells():
    """A field whose cells are about twice the base model's trained diameter."""
    config = SimulationConfig(shape=(192, 192), density="dense", pixel_size_um=0.3)
    field = simulate_field(config, rng=3)
    assert np.median(cell_diameters(field.labels, exclude_border=False)) > 1.6 * BASE_DIAMETER
    return field


@pytest.fixture
def base(tmp_path):
    """A tiny phase-only checkpoint trained (it says) at 20 px with scale augmentation."""
    torch.manual_seed(0)
    network = DMQPMNet(
        ModelConfig(inputs="phase", fusion="early", features=(4, 8, 16, 32), strides=(1, 2, 2, 2))
    )
    augment = AugmentConfig(p_diameter=0.5, p_rotation=0.0).to_dict()
    training = {"cell_diameter_px": BASE_DIAMETER, "config": {"augment": augment}}
    return save_checkpoint(tmp_path / "base", network, extra={"training": training})


def test_images_are_resampled_to_the_base_diameter(big_cells):
    (train,) = at_model_scale(finetune_split(big_cells.phase, big_cells.labels)[0], BASE_DIAMETER)
    median = np.median(cell_diameters(train.labels, exclude_border=False))
    assert abs(median / BASE_DIAMETER - 1.0) < 0.1
    assert train.phase.shape == train.labels.shape and train.phase.shape[0] < 192 * 0.65
    assert set(np.unique(train.labels)) <= set(np.unique(big_cells.labels))  # nearest, no mixing
    assert float(train.phase.max()) == pytest.approx(float(big_cells.phase.max()), rel=0.2)
    (same,) = at_model_scale(finetune_split(big_cells.phase, big_cells.labels)[0], None)
    assert same.phase.shape[0] > 140  # no diameter: as given (the 80 % training strip)


def test_the_fine_tuned_model_keeps_the_base_diameter_and_augmentation(base, big_cells, tmp_path):
    torch.set_num_threads(1)
    finetune(
        big_cells.phase, big_cells.labels, base=base, out=tmp_path / "run", minutes=None,
        epochs=1, iterations_per_epoch=2, patch_size=64, device="cpu",
    )  # fmt: skip
    for folder in ("best", "last/model"):  # written with each save, not mended at the end
        training = json.loads((tmp_path / "run" / folder / "config.json").read_text())["training"]
        assert training["cell_diameter_px"] == BASE_DIAMETER  # the base's, not the ~40 px seen
        assert training["config"]["cell_diameter_px"] == BASE_DIAMETER
        assert training["config"]["augment"]["p_diameter"] == 0.5  # the base's augmentation


def test_an_unreadable_base_augmentation_falls_back_with_a_warning():
    from napari_dmqpm.training.finetune import _base_augment

    assert _base_augment({}) is None
    assert _base_augment({"config": {"augment": {"p_diameter": 0.5}}}).p_diameter == 0.5
    with pytest.warns(UserWarning, match="augmentation cannot be read"):
        assert _base_augment({"config": {"augment": {"p_warp": 0.3}}}) is None
