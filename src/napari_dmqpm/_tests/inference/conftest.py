"""Tiny models, checkpoints and synthetic probabilities for the inference tests."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy import ndimage

from napari_dmqpm.inference import DEFAULT_CLASS_NAMES, Probabilities
from napari_dmqpm.model import THREE_CLASS, DMQPMNet, HeadConfig, ModelConfig, save_checkpoint
from napari_dmqpm.model.registry import MODELS_ENV, clear_model_cache

DISTANCE_HEAD = HeadConfig(name="distance", kind="sigmoid", channels=("distance",))


def tiny_config(*, inputs: str = "both", distance: bool = False) -> ModelConfig:
    """A 3-stage network (divisor 4) with 4 to 16 features: builds and runs in milliseconds."""
    heads = (THREE_CLASS, DISTANCE_HEAD) if distance else (THREE_CLASS,)
    return ModelConfig(
        inputs=inputs,
        fusion="mha" if inputs == "both" else "early",
        fusion_stage=1,
        features=(4, 8, 16),
        strides=(1, 2, 2),
        n_heads=2,
        heads=heads,
    )


def tiny_net(*, inputs: str = "both", distance: bool = False, seed: int = 0) -> DMQPMNet:
    torch.manual_seed(seed)
    return DMQPMNet(tiny_config(inputs=inputs, distance=distance)).eval()


class PixelNet(torch.nn.Module):
    """A phase-only 'network' whose logits depend on each pixel alone (1x1 convolution).

    Tiled, blended, flipped or not, its output must equal the whole-image output.
    """

    def __init__(self, *, distance: bool = False) -> None:
        super().__init__()
        self.config = tiny_config(inputs="phase", distance=distance)
        self.conv = torch.nn.Conv2d(1, self.config.n_outputs, 1)
        with torch.no_grad():
            self.conv.weight.copy_(
                torch.linspace(-2.0, 2.0, self.config.n_outputs)[:, None, None, None]
            )
            self.conv.bias.copy_(torch.linspace(0.5, -0.5, self.config.n_outputs))

    @property
    def required_divisor(self) -> int:
        return self.config.required_divisor

    def forward(self, angles, phase):
        assert angles is None
        return self.conv(phase)


def save_tiny(folder, *, inputs="both", distance=False, seed=0, **extra):
    """A checkpoint folder of a tiny network; ``extra`` goes into config.json."""
    return save_checkpoint(
        folder, tiny_net(inputs=inputs, distance=distance, seed=seed), extra=extra
    )


@pytest.fixture
def models_dir(tmp_path, monkeypatch):
    """An empty user models folder (NAPARI_DMQPM_MODELS) and an empty model cache."""
    folder = tmp_path / "models"
    folder.mkdir()
    monkeypatch.setenv(MODELS_ENV, str(folder))
    clear_model_cache()
    yield folder
    clear_model_cache()


def disc(shape, centre, radius):
    rows, cols = np.indices(shape)
    return (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius**2


def probabilities_from_labels(labels, *, sigma=1.0, width=2, distance=False, boundary=1.0):
    """Network-like probabilities from instance labels: soft background/interior/boundary.

    ``boundary`` scales the boundary class between cells (1: as trained; lower: the network
    is unsure where one cell ends and the next begins).
    """
    labels = np.asarray(labels)
    footprint = disc((2 * width + 1,) * 2, (width, width), width)
    high = ndimage.maximum_filter(labels, footprint=footprint, mode="nearest")
    low = ndimage.minimum_filter(labels, footprint=footprint, mode="nearest")
    edge = (labels > 0) & (high != low)
    classes = np.stack([labels == 0, (labels > 0) & ~edge, edge]).astype(np.float32)
    touching = edge & (ndimage.minimum_filter(labels, footprint=footprint) > 0)
    classes[1][touching] += 1.0 - boundary
    classes[2][touching] *= boundary
    classes = np.stack([ndimage.gaussian_filter(c, sigma) for c in classes])
    classes /= classes.sum(axis=0, keepdims=True)
    dist = None
    if distance:
        inner = ndimage.distance_transform_edt((labels > 0) & ~edge)
        maxima = ndimage.maximum(inner, labels, index=np.arange(labels.max() + 1))
        maxima = np.where(np.asarray(maxima) > 0, maxima, 1.0)
        dist = ndimage.gaussian_filter((inner / maxima[labels]).astype(np.float32), sigma)
    return Probabilities(classes.astype(np.float32), DEFAULT_CLASS_NAMES, dist)


def f1_at_half(pred, truth):
    """Instance F1 at IoU 0.5 (matches are unique above 0.5, so no assignment is needed)."""
    pairs, overlap = np.unique(np.stack([pred.ravel(), truth.ravel()]), axis=1, return_counts=True)
    keep = (pairs[0] > 0) & (pairs[1] > 0)
    p, t, inter = pairs[0][keep], pairs[1][keep], overlap[keep]
    area_p = np.bincount(pred.ravel())[p]
    area_t = np.bincount(truth.ravel())[t]
    tp = int(np.count_nonzero(inter / (area_p + area_t - inter) > 0.5))
    n_pred, n_true = np.count_nonzero(np.unique(pred)), np.count_nonzero(np.unique(truth))
    return 2 * tp / max(n_pred + n_true, 1)


@pytest.fixture
def helpers():
    """The helpers of this module, for tests (conftest modules are not importable by name)."""
    return SimpleNamespace(
        tiny_config=tiny_config,
        tiny_net=tiny_net,
        PixelNet=PixelNet,
        save_tiny=save_tiny,
        disc=disc,
        probabilities_from_labels=probabilities_from_labels,
        f1_at_half=f1_at_half,
    )
