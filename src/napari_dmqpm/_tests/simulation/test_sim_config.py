import json

import pytest

from napari_dmqpm.simulation import DENSITY_PRESETS, SimulationConfig


def test_json_round_trip_keeps_every_parameter():
    config = SimulationConfig(
        shape=(96, 128),
        density=0.42,
        debris_count=3,
        sign=-1,
        spread_fraction=0.4,
        lamellipodium_width_um=2.5,
        lamellipodium_rad=0.2,
        organelle_count=3.0,
        residual_offset_rad=0.3,
        residual_tilt_rad=0.1,
        residual_curvature_rad=0.05,
    )
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
        ({"spread_fraction": 1.5}, "spread_fraction"),
        ({"spread_area_factor": 0.5}, "spread_area_factor"),
        ({"lamellipodium_width_um": -1.0}, "lamellipodium_width_um"),
        ({"lamellipodium_rad": float("inf")}, "lamellipodium_rad"),
        ({"organelle_count": -2.0}, "organelle_count"),
        ({"organelle_contrast": 9.0}, "organelle_contrast"),
        ({"residual_offset_rad": -0.3}, "residual_offset_rad"),
        ({"residual_tilt_rad": float("nan")}, "residual_tilt_rad"),
        ({"residual_curvature_rad": "flat"}, "residual_curvature_rad"),
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


def test_new_parameters_default_to_the_earlier_simulator():
    config = SimulationConfig()
    assert config.spread_fraction == 0.0
    assert config.residual_offset_rad == config.residual_tilt_rad == 0.0
    assert config.residual_curvature_rad == 0.0
    # configs written before these parameters existed still load
    new = ("spread", "lamellipodium", "organelle", "residual")
    old = {k: v for k, v in config.to_dict().items() if not k.startswith(new)}
    assert len(old) == len(config.to_dict()) - 9
    assert SimulationConfig.from_dict(old) == config
