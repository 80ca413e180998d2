import json

import pytest

from napari_dmqpm.simulation import DENSITY_PRESETS, SimulationConfig


def test_json_round_trip_keeps_every_parameter():
    config = SimulationConfig(shape=(96, 128), density=0.42, debris_count=3, sign=-1)
    restored = SimulationConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert restored == config
    assert restored.shape == (96, 128)
    assert isinstance(restored.shape, tuple)


def test_density_presets_and_fractions():
    assert SimulationConfig(density="confluent").cover_fraction == DENSITY_PRESETS["confluent"]
    assert SimulationConfig(density=0.25).cover_fraction == 0.25
    # the command line passes numbers as strings
    assert SimulationConfig(density="0.25").density == 0.25


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"shape": (8, 64)}, "shape"),
        ({"shape": (64,)}, "shape"),
        ({"density": "packed"}, "density"),
        ({"density": 1.5}, "density"),
        ({"density": 0.0}, "density"),
        ({"pixel_size_um": -0.6}, "pixel_size_um"),
        ({"fringe_visibility": 1.2}, "fringe_visibility"),
        ({"exposure": 0.0}, "exposure"),
        ({"border_dip": float("nan")}, "border_dip"),
        ({"bit_depth": 0}, "bit_depth"),
        ({"sign": 2}, "sign"),
        ({"debris_count": -1}, "debris_count"),
        ({"tilt_rad_per_um": 5.0}, "tilt_rad_per_um"),
        ({"cell_area_um2": "big"}, "cell_area_um2"),
    ],
)
def test_invalid_values_name_the_parameter_and_value(changes, named):
    with pytest.raises(ValueError, match=named) as info:
        SimulationConfig(**changes)
    assert repr(next(iter(changes.values())))[:6] in str(info.value)


def test_unknown_keys_are_rejected():
    with pytest.raises(ValueError, match="cell_radius"):
        SimulationConfig.from_dict({"cell_radius": 3})


def test_frozen_and_keyword_only():
    config = SimulationConfig()
    with pytest.raises(AttributeError):
        config.density = "sparse"  # type: ignore[misc]
    with pytest.raises(TypeError):
        SimulationConfig((64, 64))  # type: ignore[misc]
    assert config.replace(density="sparse").density == "sparse"
