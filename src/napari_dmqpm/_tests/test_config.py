"""The one JSON round-trip of the frozen configs (napari_dmqpm._config)."""

from __future__ import annotations

import json

import pytest

from napari_dmqpm._config import config_from_dict, config_to_dict
from napari_dmqpm.inference.config import InferenceConfig, PostprocessConfig
from napari_dmqpm.model.config import HeadConfig, ModelConfig
from napari_dmqpm.simulation.config import SimulationConfig
from napari_dmqpm.training.augment import AugmentConfig
from napari_dmqpm.training.config import SimulatorData, TrainConfig

CONFIGS = [
    InferenceConfig(tile_size=256, diameter_px=31.5, batch_size=4, backend="torch"),
    PostprocessConfig(seed_threshold=0.6, min_cell_area_px=12),
    ModelConfig(inputs="phase", fusion="early", features=(4, 8, 16, 32, 32)),
    SimulationConfig(shape=(64, 48), density=0.3),
    AugmentConfig(scaling=(0.8, 1.2), p_blur=0.0),
    TrainConfig(
        model=ModelConfig(inputs="phase", fusion="early"),
        simulator=SimulatorData(densities=("dense",), field_shape=(96, 96)),
        augment=AugmentConfig(gamma=(0.8, 1.25)),
        patch_size=(64, 64),
        folders=("a", "b"),
    ),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda config: type(config).__name__)
def test_every_config_round_trips_through_json_text(config):
    text = json.dumps(config_to_dict(config))
    again = config_from_dict(type(config), json.loads(text))
    assert again == config
    assert config.to_dict() == config_to_dict(config)  # the methods are the helper
    assert type(config).from_dict(json.loads(text)) == config


def test_nested_configs_and_tuples_are_rebuilt_from_json_lists_and_objects():
    data = json.loads(json.dumps(TrainConfig(model=ModelConfig()).to_dict()))
    assert isinstance(data["model"]["heads"][0]["channels"], list)
    config = TrainConfig.from_dict(data)
    assert isinstance(config.model.heads[0], HeadConfig)
    assert isinstance(config.model.heads[0].channels, tuple)
    assert isinstance(config.patch_size, tuple) and isinstance(config.augment.gamma, tuple)


def test_missing_keys_take_their_defaults():
    assert config_from_dict(InferenceConfig, {}) == InferenceConfig()
    assert config_from_dict(SimulationConfig, {"shape": [32, 32]}) == SimulationConfig(
        shape=(32, 32)
    )


@pytest.mark.parametrize(
    ("cls", "data", "words"),
    [
        (PostprocessConfig, {"seed_treshold": 0.4},
         "unknown PostprocessConfig keys: ['seed_treshold']"),
        (TrainConfig, {"model": {"depth": 5}}, "unknown ModelConfig keys in 'model': ['depth']"),
        (InferenceConfig, [("tta", True)],
         "InferenceConfig data must be a dict (a JSON object); got list"),
        (TrainConfig, {"learning_rate": "fast"},
         "'learning_rate' must be a JSON number; got \"fast\""),
        (TrainConfig, {"amp": 1}, "'amp' must be a JSON true or false; got 1"),
        (TrainConfig, {"augment": 5}, "'augment' must be a JSON object; got 5"),
        (TrainConfig, {"augment": {"gamma": [0.7]}},
         "'augment.gamma' must be a JSON list of 2 items; got [0.7]"),
        (ModelConfig, {"heads": [{"name": 1}]}, "'heads[0].name' must be a JSON string; got 1"),
        (InferenceConfig, {"diameter_px": [30]},
         "'diameter_px' must be a JSON number or string or null; got [30]"),
        (SimulationConfig, {"shape": "64x64"}, "'shape' must be a JSON list; got \"64x64\""),
        (InferenceConfig, {"tta": None}, "'tta' must be a JSON true or false; got null"),
    ],
)  # fmt: skip
def test_bad_data_is_one_value_error_naming_the_key(cls, data, words):
    with pytest.raises(ValueError) as error:
        config_from_dict(cls, data)
    assert str(error.value) == words


def test_optional_and_union_fields_take_each_of_their_json_types():
    for value in ("auto", 30, 30.5, None):
        assert config_from_dict(InferenceConfig, {"diameter_px": value}).diameter_px == value
    assert config_from_dict(TrainConfig, {"model": None, "simulator": None}).model is None


def test_ranges_are_still_checked_by_the_config():
    with pytest.raises(ValueError, match="tile_size must be an integer >= 16"):
        config_from_dict(InferenceConfig, {"tile_size": 8})


def test_a_backend_check_result_round_trips_through_the_one_mechanism():
    from napari_dmqpm.inference.backends.check import CheckResult

    result = CheckResult(
        passed=False, class_agreement=0.97, label_agreement=0.9, n_cells_torch=12,
        n_cells_backend=11, max_difference=0.25,
    )  # fmt: skip
    text = json.dumps(result.to_dict())
    assert CheckResult.from_dict(json.loads(text)) == result
    assert result.to_dict() == config_to_dict(result)
    # the export record is a file on disk: a stale or damaged entry is a ValueError naming it
    with pytest.raises(ValueError, match=r"unknown CheckResult keys: \['agreement'\]"):
        CheckResult.from_dict(json.loads(text) | {"agreement": 1.0})
    with pytest.raises(ValueError, match="'n_cells_torch'"):
        CheckResult.from_dict(json.loads(text) | {"n_cells_torch": "12"})
