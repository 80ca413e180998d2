import dataclasses
import json

import numpy as np
import pytest
import torch

from napari_dmqpm.model import (
    HeadConfig,
    ModelConfig,
    NormalizationConfig,
    estimate_normalization,
    make_norm_and_nonlin,
    normalize_angles,
    normalize_phase,
)
from napari_dmqpm.model.config import NONLINS, NORMS


def test_default_config_follows_the_paper():
    config = ModelConfig()
    assert config.fusion == "mha" and config.fusion_stage == 2 and config.inputs == "both"
    assert config.stage_resolutions()[config.fusion_stage] == 4  # stage 2 is H/4
    assert config.required_divisor == 16
    assert config.n_outputs == 3 and config.heads[0].channels[2] == "boundary"


def test_json_round_trip_of_a_non_default_config():
    config = ModelConfig(
        fusion="bidirectional-mha",
        fusion_stage=3,
        features=(8, 16, 32, 64, 64, 64),
        strides=(1, 2, 2, 2, 2, 2),
        attention="windowed",
        window_size=4,
        heads=(
            HeadConfig(name="foreground", kind="sigmoid", channels=("foreground",)),
            HeadConfig(name="distance", kind="linear", channels=("distance",)),
        ),
        normalization=NormalizationConfig(angle_mean=(1, 2, 3, 4), phase_low=-0.5, phase_high=4),
        deep_supervision=False,
    )
    text = json.dumps(config.to_dict())
    again = ModelConfig.from_dict(json.loads(text))
    assert again == config
    assert isinstance(again.heads[1], HeadConfig) and again.features == config.features
    assert again.normalization.angle_mean == (1.0, 2.0, 3.0, 4.0)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"fusion": "sum"}, "fusion"),
        ({"inputs": "phase"}, "fusion='early'"),
        ({"fusion_stage": 4}, "fusion_stage"),
        ({"fusion_stage": 0}, "fusion_stage"),
        ({"features": (8, 16, 32), "strides": (1, 2)}, "same length"),
        ({"strides": (4, 2, 2, 2, 2)}, "strides"),
        ({"features": (8, 16, 0, 32, 32)}, "features"),
        ({"n_heads": 5}, "n_heads=5"),
        ({"attention": "flash"}, "attention"),
        ({"kv_reduction": 0}, "kv_reduction"),
        ({"norm": "layer"}, "norm"),
        ({"mlp_ratio": -1.0}, "mlp_ratio"),
        ({"deep_supervision": 1}, "deep_supervision"),
        ({"heads": ()}, "heads"),
    ],
)
def test_invalid_configs_name_the_parameter(changes, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        ModelConfig(**changes)


def test_config_is_frozen_and_keyword_only():
    with pytest.raises(dataclasses.FrozenInstanceError):
        ModelConfig().fusion = "concat"
    with pytest.raises(TypeError):
        ModelConfig("both")


def test_from_dict_rejects_unknown_keys():
    data = ModelConfig().to_dict()
    data["depth"] = 5
    with pytest.raises(ValueError, match="depth"):
        ModelConfig.from_dict(data)
    data = ModelConfig().to_dict()
    data["normalization"]["phase_scale"] = 2
    with pytest.raises(ValueError, match="phase_scale"):
        ModelConfig.from_dict(data)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "softmax", "channels": ("a",)}, ">= 2 channels"),
        ({"kind": "relu", "channels": ("a",)}, "kind"),
        ({"kind": "sigmoid", "channels": ("a", "a")}, "unique"),
    ],
)
def test_head_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        HeadConfig(name="h", **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"angle_std": (1, 1, 0, 1)}, "angle_std"),
        ({"angle_mean": (0, 0, 0)}, "4 values"),
        ({"phase_low": 3.0, "phase_high": 1.0}, "phase_low"),
        ({"phase_mean": float("nan")}, "finite"),
        ({"low_percentile": 60, "high_percentile": 50}, "percentile"),
    ],
)
def test_normalization_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        NormalizationConfig(**kwargs)


def test_every_config_norm_and_nonlin_maps_to_torch():
    for norm in NORMS:
        for nonlin in NONLINS:
            norm_layer, act = make_norm_and_nonlin(norm, nonlin, 8)
            assert act(norm_layer(torch.randn(2, 8, 4, 4))).shape == (2, 8, 4, 4)
    with pytest.raises(ValueError, match="norm='layer'"):
        make_norm_and_nonlin("layer", "relu", 8)


def test_normalization_functions_use_the_config():
    norm = NormalizationConfig(
        angle_mean=(1, 2, 3, 4), angle_std=(1, 2, 4, 8), phase_low=0, phase_high=2,
        phase_mean=1, phase_std=0.5,
    )  # fmt: skip
    angles = torch.tensor([2.0, 4.0, 7.0, 12.0]).view(1, 4, 1, 1).expand(1, 4, 2, 2)
    assert torch.allclose(normalize_angles(angles, norm), torch.ones(1, 4, 2, 2))
    phase = torch.tensor([-5.0, 0.5, 9.0]).view(1, 1, 1, 3)
    assert normalize_phase(phase, norm).flatten().tolist() == [-2.0, -1.0, 2.0]


def test_estimate_normalization_recovers_statistics():
    rng = np.random.default_rng(0)
    scale = np.array([1.0, 2.0, 3.0, 4.0])[:, None, None]
    angles = [rng.normal(10, 1, (4, 50, 60)) * scale for _ in range(3)]
    phase = [rng.uniform(0, 2, (50, 60)) for _ in range(3)]
    norm = estimate_normalization(angles, phase, rng=1)
    assert np.allclose(norm.angle_mean, 10 * scale.ravel(), rtol=0.02)
    assert np.allclose(norm.angle_std, scale.ravel(), rtol=0.05)
    assert 0 <= norm.phase_low < 0.05 and 1.95 < norm.phase_high <= 2
    again = estimate_normalization(angles, phase, max_pixels=1000, rng=1)
    assert again == estimate_normalization(angles, phase, max_pixels=1000, rng=1)
