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


def test_deep_supervision_weights_are_nnunets_exactly():
    assert deep_supervision_weights(4) == pytest.approx([4 / 7, 2 / 7, 1 / 7, 0.0])
    assert deep_supervision_weights(2) == pytest.approx([1.0, 0.0])


def _reference_loss(logits: torch.Tensor, classes: torch.Tensor) -> float:
    """Cross-entropy + 1 - batch soft Dice of the foreground classes, written out by hand."""
    ce = torch.nn.functional.cross_entropy(logits, classes)
    p = torch.softmax(logits, dim=1)
    dices = []
    for k in (1, 2):
        truth = (classes == k).float()
        inter, total = (p[:, k] * truth).sum(), p[:, k].sum() + truth.sum()
        dices.append((2 * inter + 1e-5) / (total + 1e-5))
    return float(ce + 1.0 - sum(dices) / 2)


def test_the_loss_is_cross_entropy_plus_one_minus_dice():
    """Each term counts: dropping either changes the value (here CE 1.3, 1 - Dice 0.6)."""
    classes = _targets()
    logits = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    value = float(SegmentationLoss([THREE_CLASS])(logits, classes))
    assert value == pytest.approx(_reference_loss(logits, classes), rel=1e-5)
    ce = float(torch.nn.functional.cross_entropy(logits, classes))
    assert value - ce > 0.3 and ce > 0.3


def test_deep_supervision_sums_each_level_with_its_weight():
    loss = SegmentationLoss([THREE_CLASS])
    classes = _targets()
    generator = torch.Generator().manual_seed(1)
    outputs = [torch.randn(2, 3, n, n, generator=generator) for n in (16, 8, 4, 2)]
    # nearest-exact resampling by s picks rows and columns s // 2, s // 2 + s, ...
    picks = [classes[:, s // 2 :: s, s // 2 :: s] for s in (1, 2, 4, 8)]
    levels = [_reference_loss(o, c) for o, c in zip(outputs, picks, strict=True)]
    expected = sum(w * v for w, v in zip([4 / 7, 2 / 7, 1 / 7, 0.0], levels, strict=True))
    assert float(loss(outputs, classes)) == pytest.approx(expected, rel=1e-5)
