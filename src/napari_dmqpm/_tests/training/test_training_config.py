"""TrainConfig: defaults are nnU-Net's, JSON round trip, errors name the field."""

import json

import pytest

from napari_dmqpm.model import ModelConfig
from napari_dmqpm.training.augment import AugmentConfig
from napari_dmqpm.training.config import SimulatorData, TrainConfig
from napari_dmqpm.training.targets import TargetConfig


def test_defaults_are_the_nnunet_optimiser():
    config = TrainConfig()
    assert (config.learning_rate, config.momentum, config.weight_decay) == (1e-2, 0.99, 3e-5)
    assert config.poly_exponent == 0.9 and config.foreground_fraction == 0.33
    assert config.total_iterations == config.epochs * config.iterations_per_epoch


def test_json_round_trip(tmp_path):
    config = TrainConfig(
        model=ModelConfig(fusion="concat", features=(4, 8, 16, 32, 32)),
        simulator=SimulatorData(densities=("dense", "confluent"), overrides={"debris_count": 1}),
        folders=("a", "b"),
        read_options={"phase_unit": "pg_per_um2", "wavelength_um": 0.65},
        patch_size=128,
        minutes=5.5,
        augment=AugmentConfig(p_noise=0.3),
        targets=TargetConfig(boundary_width=1),
    )
    text = json.dumps(config.to_dict())
    assert TrainConfig.from_dict(json.loads(text)) == config
    assert TrainConfig.load(config.save(tmp_path / "c.json")) == config
    assert config.patch_size == (128, 128)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"epochs": 1.5}, "epochs"),
        ({"minutes": -1.0}, "minutes"),
        ({"momentum": 1.0}, "momentum"),
        ({"device": "tpu"}, "device"),
        ({"patch_size": (8, 8)}, "patch_size"),
        ({"val_fraction": 1.0}, "val_fraction"),
        ({"select_by": "f1"}, "select_by"),
        ({"model": ModelConfig(), "base_checkpoint": "x"}, "not both"),
    ],
)
def test_invalid_values_are_named(changes, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**changes)


def test_simulator_data_validation_and_unknown_keys():
    with pytest.raises(ValueError, match="densities"):
        SimulatorData(densities=("crowded",))
    with pytest.raises(ValueError, match="pixel_size_um"):
        SimulatorData(pixel_size_um=(0.9, 0.4))
    with pytest.raises(ValueError, match="unknown TrainConfig keys"):
        TrainConfig.from_dict({"lr": 0.1})


def test_selection_scores_and_the_fine_tuning_default():
    from napari_dmqpm.training.config import SELECTION_SCORES
    from napari_dmqpm.training.finetune import finetune_config

    assert TrainConfig().select_by == "dice"
    assert SELECTION_SCORES["dice"](0.9, 0.5) == 0.9
    assert SELECTION_SCORES["dice_f1"](0.9, 0.5) == pytest.approx(0.7)
    # the epoch-4 and epoch-22 validations of the dense_011 run (docs/training.md)
    early, late = (0.950, 0.667), (0.949, 0.842)
    assert SELECTION_SCORES["dice"](*early) > SELECTION_SCORES["dice"](*late)
    assert SELECTION_SCORES["dice_f1"](*late) > SELECTION_SCORES["dice_f1"](*early)
    assert finetune_config(base="phase-only", out="x", minutes=1.0).select_by == "dice_f1"


def test_the_model_card_names_how_the_best_epoch_was_chosen():
    from napari_dmqpm.training.card import render_model_card

    history = [
        {"epoch": 3, "val_dice": 0.95, "val_f1": 0.80},
        {"epoch": 5, "val_dice": 0.96, "val_f1": 0.70},
    ]
    training = {"best_epoch": 3, "best_val_dice": 0.95, "history": history}
    content = {"model": ModelConfig().to_dict(), "training": training}
    for select_by, words in (("dice_f1", "mean of foreground Dice and F1"), ("dice", "by fore")):
        training["config"] = {"select_by": select_by}
        card = render_model_card(content, title="t")
        assert words in card
        assert "epoch 3, the best by" in card and "F1@0.5 0.8000" in card
        assert "last report (epoch 5): validation Dice 0.9600, F1@0.5 0.7000" in card
    training["history"] = history[:1]  # a best/ checkpoint: its history ends at its epoch
    assert "last report" not in render_model_card(content, title="t")


def test_the_card_of_a_last_epoch_checkpoint_does_not_call_it_the_best():
    """Shipped weights may be a run's last/ checkpoint: the card says so, with its own scores."""
    from napari_dmqpm.training.card import render_model_card

    history = [
        {"epoch": 3, "val_dice": 0.95, "val_f1": 0.80},
        {"epoch": 9, "val_dice": 0.94, "val_f1": 0.70},
    ]
    training = {"epoch": 9, "best_epoch": 3, "best_val_dice": 0.95, "history": history}
    training["config"] = {"select_by": "dice_f1"}
    card = render_model_card({"model": ModelConfig().to_dict(), "training": training}, title="t")
    assert "these weights: the last epoch, 9 (validation Dice 0.9400, F1@0.5 0.7000)" in card
    assert "which was epoch 3 (Dice 0.9500, F1@0.5 0.8000)" in card
    assert "epoch 3, the best by" not in card
