"""Targets: three classes with shared borders as boundary, and the per-cell distance map."""

import numpy as np
import pytest

from napari_dmqpm.training.targets import (
    BACKGROUND,
    BOUNDARY,
    INTERIOR,
    TargetConfig,
    boundary_mask,
    make_targets,
    normalized_distance,
)


def _two_touching_squares() -> np.ndarray:
    labels = np.zeros((20, 30), dtype=np.int32)
    labels[4:16, 3:15] = 1
    labels[4:16, 15:27] = 2  # shares the border between columns 14 and 15
    return labels


def test_touching_squares_are_separated_by_boundary_class():
    labels = _two_touching_squares()
    classes = make_targets(labels, config=TargetConfig(boundary_width=1)).classes
    assert classes.dtype == np.uint8
    assert np.all(classes[labels == 0] == BACKGROUND)
    # both sides of the shared border are boundary, the rows inside the squares included
    assert np.all(classes[5:15, 14] == BOUNDARY)
    assert np.all(classes[5:15, 15] == BOUNDARY)
    # outer edges are boundary, the inside is interior
    assert np.all(classes[4, 3:27] == BOUNDARY) and np.all(classes[15, 3:27] == BOUNDARY)
    assert np.all(classes[5:15, 5:13] == INTERIOR)
    assert np.all(classes[5:15, 17:25] == INTERIOR)
    # interior components are the two cells, not one
    from scipy import ndimage

    assert ndimage.label(classes == INTERIOR)[1] == 2


def test_boundary_width_two_and_image_border_is_not_a_cell_border():
    labels = np.zeros((12, 12), dtype=np.int32)
    labels[:, :6] = 1  # touches the image border on three sides
    labels[:, 6:] = 2
    mask = boundary_mask(labels, width=2)
    assert mask[:, 4:8].all()  # two pixels on each side of the shared border
    assert not mask[:, :4].any() and not mask[:, 8:].any()  # image edges are not borders


def test_distance_is_in_unit_interval_with_max_one_per_cell():
    labels = _two_touching_squares()
    labels[17:19, 1:3] = 9  # a tiny cell
    distance = normalized_distance(labels)
    assert distance.dtype == np.float32
    assert np.all(distance[labels == 0] == 0)
    assert np.all(distance[labels > 0] > 0) and distance.max() <= 1.0
    for value in (1, 2, 9):
        assert distance[labels == value].max() == pytest.approx(1.0)
    # the distance falls towards the shared border
    assert distance[10, 14] < distance[10, 10]


def test_targets_do_not_mutate_and_reject_bad_input():
    labels = _two_touching_squares()
    before = labels.copy()
    targets = make_targets(labels)
    assert np.array_equal(labels, before)
    assert targets.distance is not None
    assert make_targets(labels, config=TargetConfig(distance=False)).distance is None
    with pytest.raises(ValueError, match="labels must have shape"):
        make_targets(labels[None])
    with pytest.raises(ValueError, match="integer"):
        make_targets(labels.astype(float))
    with pytest.raises(ValueError, match="boundary_width"):
        TargetConfig(boundary_width=0)
