"""Dice + CE: ~0 when perfect, larger when wrong; deep-supervision weights and resampling."""

import pytest
import torch

from napari_dmqpm.model import THREE_CLASS, HeadConfig
from napari_dmqpm.training.losses import SegmentationLoss, deep_supervision_weights, soft_dice

DISTANCE = HeadConfig(name="distance", kind="sigmoid", channels=("distance",))


def _targets() -> torch.Tensor:
    classes = torch.zeros(2, 16, 16, dtype=torch.int64)
    classes[:, 4:12, 4:12] = 2
    classes[:, 5:11, 5:11] = 1
    return classes


def _confident(classes: torch.Tensor, n_classes: int = 3) -> torch.Tensor:
    return torch.nn.functional.one_hot(classes, n_classes).permute(0, 3, 1, 2).float() * 40.0 - 20.0


def test_perfect_prediction_has_near_zero_loss_and_a_wrong_one_does_not():
    loss = SegmentationLoss([THREE_CLASS])
    classes = _targets()
    perfect = float(loss(_confident(classes), classes))
    wrong = float(loss(_confident((classes + 1) % 3), classes))
    uniform = float(loss(torch.zeros(2, 3, 16, 16), classes))
    assert perfect == pytest.approx(0.0, abs=1e-4)
    assert wrong > uniform > 0.5
    assert float(soft_dice(_confident(classes), classes)) == pytest.approx(1.0, abs=1e-4)


def test_deep_supervision_weights_halve_and_drop_the_lowest():
    weights = deep_supervision_weights(5)
    assert sum(weights) == pytest.approx(1.0)
    assert weights[-1] == 0.0
    assert weights[0] == pytest.approx(2 * weights[1]) and weights[1] == pytest.approx(
        2 * weights[2]
    )
    assert deep_supervision_weights(1) == [1.0]
    with pytest.raises(ValueError):
        deep_supervision_weights(0)


def test_deep_supervision_downsamples_targets_by_nearest_neighbour():
    loss = SegmentationLoss([THREE_CLASS])
    classes = _targets()
    small = classes[:, 1::2, 1::2]  # what nearest-exact picks at half size
    outputs = [_confident(classes), _confident(small), torch.zeros(2, 3, 4, 4)]
    # the last output has weight 0, so a garbage lowest level does not matter
    assert float(loss(outputs, classes)) == pytest.approx(0.0, abs=1e-3)
    outputs[1] = _confident((small + 1) % 3)
    assert float(loss(outputs, classes)) > 1.0


def test_distance_term_is_masked_to_cells():
    loss = SegmentationLoss([THREE_CLASS, DISTANCE], distance_loss="l1")
    classes = _targets()
    distance = (classes > 0).float() * 0.5
    logits = torch.cat([_confident(classes), torch.zeros(2, 1, 16, 16)], dim=1)  # sigmoid(0)=0.5
    assert loss.uses_distance
    assert float(loss(logits, classes, distance)) == pytest.approx(0.0, abs=1e-3)
    wrong = logits.clone()
    wrong[:, 3][classes == 0] = 30.0  # wrong only on the background: ignored
    assert float(loss(wrong, classes, distance)) == pytest.approx(0.0, abs=1e-3)
    wrong[:, 3][classes > 0] = 30.0
    assert float(loss(wrong, classes, distance)) == pytest.approx(0.5, abs=1e-2)


def test_loss_needs_a_softmax_classes_head():
    with pytest.raises(ValueError, match="classes"):
        SegmentationLoss([DISTANCE])
    with pytest.raises(ValueError, match="distance_loss"):
        SegmentationLoss([THREE_CLASS], distance_loss="huber")
