import json

import pytest

from napari_dmqpm.inference import InferenceConfig, PostprocessConfig


@pytest.mark.parametrize("cls", [InferenceConfig, PostprocessConfig])
def test_configs_round_trip_through_json(cls):
    config = cls()
    assert cls.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_inference_config_round_trips_non_defaults():
    config = InferenceConfig(
        tile_size=256, overlap=0.25, batch_size=8, tta=True, device="cuda:1", diameter_px=31.5,
        use_pixel_size=False, amp="float16", channels_last=False,
    )  # fmt: skip
    assert InferenceConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"tile_size": 8}, "tile_size must be an integer >= 16; got tile_size=8"),
        ({"tile_size": 256.0}, "tile_size"),
        ({"overlap": 1.0}, r"overlap must be a number in \[0.0, 1.0\)"),
        ({"batch_size": 0}, "batch_size"),
        ({"tta": 1}, "tta must be True or False"),
        ({"device": "gpu"}, "device must be one of"),
        ({"device": "cpu:0"}, "device must be one of"),
        ({"diameter_px": 0.0}, "diameter_px"),
        ({"amp": "fp8"}, "amp must be one of"),
    ],
)
def test_inference_config_names_the_bad_value(changes, message):
    with pytest.raises(ValueError, match=message):
        InferenceConfig(**changes)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"foreground_threshold": 0.0}, "foreground_threshold must be in"),
        ({"seed_threshold": 1.0}, "seed_threshold"),
        ({"seed_source": "nuclei"}, "seed_source must be one of"),
        ({"seed_h": -0.1}, "seed_h"),
        ({"min_cell_area_px": -1}, "min_cell_area_px"),
        ({"fill_holes": "yes"}, "fill_holes must be True or False"),
    ],
)
def test_postprocess_config_names_the_bad_value(changes, message):
    with pytest.raises(ValueError, match=message):
        PostprocessConfig(**changes)


def test_unknown_keys_are_refused_and_missing_keys_default():
    with pytest.raises(ValueError, match=r"unknown PostprocessConfig keys: \['seed_treshold'\]"):
        PostprocessConfig.from_dict({"seed_treshold": 0.4})
    assert PostprocessConfig.from_dict({"seed_h": 0.2}) == PostprocessConfig(seed_h=0.2)
    with pytest.raises(ValueError, match="must be a dict"):
        InferenceConfig.from_dict([("tta", True)])


def test_configs_are_frozen_and_keyword_only():
    config = InferenceConfig()
    with pytest.raises(AttributeError):
        config.tta = True
    with pytest.raises(TypeError):
        InferenceConfig(512)
    assert config.replace(tta=True).tta and not config.tta
