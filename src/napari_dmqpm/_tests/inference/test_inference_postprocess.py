import numpy as np
import pytest

from napari_dmqpm.inference import (
    DEFAULT_CLASS_NAMES,
    PostprocessConfig,
    Probabilities,
    labels_from_probabilities,
    probabilities_to_labels,
)
from napari_dmqpm.inference.postprocess import fill_enclosed_holes
from napari_dmqpm.simulation import SimulationConfig, simulate_field


def discs(helpers, shape, centres, radius):
    labels = np.zeros(shape, np.int32)
    for index, centre in enumerate(centres, start=1):
        labels[helpers.disc(shape, centre, radius) & (labels == 0)] = index
    return labels


def best_iou(pred, truth, label):
    mask = truth == label
    values, counts = np.unique(pred[mask], return_counts=True)
    top = values[np.argmax(counts)]
    return np.count_nonzero(mask & (pred == top)) / np.count_nonzero(mask | (pred == top))


def test_two_touching_discs_are_separated(helpers):
    truth = discs(helpers, (60, 90), [(30, 30), (30, 56)], 14)  # overlapping footprints
    labels = probabilities_to_labels(helpers.probabilities_from_labels(truth, sigma=1.5))
    assert labels.dtype == np.uint32 and labels.shape == truth.shape
    assert labels.max() == 2 and set(np.unique(labels)) == {0, 1, 2}
    assert min(best_iou(labels, truth, k) for k in (1, 2)) > 0.9


def test_three_discs_in_a_row_are_separated(helpers):
    truth = discs(helpers, (50, 120), [(25, 22), (25, 58), (25, 94)], 19)
    labels = probabilities_to_labels(helpers.probabilities_from_labels(truth, sigma=1.5))
    assert labels.max() == 3
    assert min(best_iou(labels, truth, k) for k in (1, 2, 3)) > 0.85


def test_a_weak_boundary_is_split_by_h_maxima_of_the_distance(helpers):
    truth = discs(helpers, (60, 90), [(30, 30), (30, 56)], 14)
    probs = helpers.probabilities_from_labels(truth, sigma=2.0, boundary=0.0, distance=True)
    merged = probabilities_to_labels(
        probs, config=PostprocessConfig(seed_source="interior", seed_h=0)
    )
    assert merged.max() == 1  # the interior alone does not separate them
    split = probabilities_to_labels(probs, config=PostprocessConfig(seed_source="mean", seed_h=0.1))
    assert split.max() == 2
    assert min(best_iou(split, truth, k) for k in (1, 2)) > 0.85


@pytest.mark.parametrize("distance", [False, True])
def test_a_confluent_simulated_field_is_recovered_from_its_probabilities(helpers, distance):
    field = simulate_field(SimulationConfig(shape=(256, 256), density="confluent"), rng=3)
    truth = field.labels
    assert (truth > 0).mean() > 0.6 and truth.max() > 40
    probs = helpers.probabilities_from_labels(truth, sigma=1.5, distance=distance, boundary=0.7)
    labels = probabilities_to_labels(probs)
    assert helpers.f1_at_half(labels, truth) > 0.95


def test_small_objects_are_removed_and_labels_are_consecutive(helpers):
    truth = discs(helpers, (60, 60), [(15, 15), (45, 45)], 9)
    truth[2:5, 50:53] = 3  # 9 pixels
    probs = helpers.probabilities_from_labels(truth, sigma=0.5, width=1)
    config = PostprocessConfig(min_cell_area_px=20, min_seed_area_px=1, smooth_sigma_px=0)
    labels = probabilities_to_labels(probs, config=config)
    assert sorted(np.unique(labels)) == [0, 1, 2]
    assert labels[3, 51] == 0


def test_pixel_parameters_follow_the_resampling_scale(helpers):
    truth = discs(helpers, (60, 60), [(30, 30)], 4)  # about 50 pixels
    probs = helpers.probabilities_from_labels(truth, sigma=0.5, width=1)
    config = PostprocessConfig(min_cell_area_px=100, min_seed_area_px=1, smooth_sigma_px=0)
    assert probabilities_to_labels(probs, config=config).max() == 0
    half = Probabilities(probs.classes, probs.class_names, scale=0.5)  # 100 / 0.5**2 = 400 px
    assert probabilities_to_labels(half, config=config.replace(min_cell_area_px=20)).max() == 0
    double = Probabilities(probs.classes, probs.class_names, scale=2.0)  # 100 / 4 = 25 px
    assert probabilities_to_labels(double, config=config).max() == 1


def test_unseeded_foreground_is_kept_or_dropped(helpers):
    classes = np.zeros((3, 30, 30), np.float32)
    classes[0] = 1
    classes[:, 5:25, 5:25] = np.array([0.2, 0.3, 0.5])[:, None, None]  # cell, no interior > 0.5
    probs = Probabilities(classes, DEFAULT_CLASS_NAMES)
    assert probabilities_to_labels(probs).max() == 1
    assert probabilities_to_labels(probs, config=PostprocessConfig(keep_unseeded=False)).max() == 0


def test_enclosed_holes_are_filled_only_inside_one_cell():
    labels = np.zeros((20, 30), np.int32)
    labels[2:12, 2:12] = 1
    labels[6:8, 6:8] = 0  # a hole inside cell 1
    labels[2:12, 14:20] = 2
    labels[2:12, 22:28] = 3
    labels[2:4, 20:22] = 2
    labels[10:12, 20:22] = 3
    labels[4:10, 20:22] = 0  # a gap between cells 2 and 3, closed on all sides by them
    labels[2:12, 13] = 2
    labels[2:12, 12] = 1
    filled = fill_enclosed_holes(labels)
    assert (filled[6:8, 6:8] == 1).all()
    assert (filled[4:10, 20:22] == 0).all()
    assert (filled[0] == 0).all()
    assert labels[6, 6] == 0  # not modified


def test_the_input_is_not_modified_and_a_bare_array_works(helpers):
    truth = discs(helpers, (40, 40), [(20, 20)], 10)
    probs = helpers.probabilities_from_labels(truth)
    before = probs.classes.copy()
    labels = labels_from_probabilities(probs.classes)
    np.testing.assert_array_equal(probs.classes, before)
    assert labels.max() == 1


def test_distance_seeds_without_a_distance_map_are_refused(helpers):
    probs = helpers.probabilities_from_labels(discs(helpers, (20, 20), [(10, 10)], 5))
    with pytest.raises(ValueError, match="distance head"):
        probabilities_to_labels(probs, config=PostprocessConfig(seed_source="distance"))


def test_an_empty_field_gives_no_cells():
    classes = np.zeros((3, 16, 16), np.float32)
    classes[0] = 1
    labels = probabilities_to_labels(Probabilities(classes, DEFAULT_CLASS_NAMES))
    assert labels.dtype == np.uint32 and labels.max() == 0


def _cone(shape, centres, radius, peaks):
    """Probabilities of cells whose P(cell) = P(interior) falls linearly from ``peak`` to 0."""
    rows, cols = np.indices(shape)
    cell = np.zeros(shape, np.float32)
    for (row, col), peak in zip(centres, peaks, strict=True):
        r = np.hypot(rows - row, cols - col)
        cell = np.maximum(cell, peak * np.clip(1.0 - r / radius, 0.0, 1.0))
    classes = np.stack([1.0 - cell, cell, np.zeros_like(cell)]).astype(np.float32)
    return Probabilities(classes, DEFAULT_CLASS_NAMES)


@pytest.mark.parametrize("threshold", [0.2, 0.4, 0.6, 0.8])
def test_the_foreground_threshold_sets_the_cell_area(threshold):
    probs = _cone((64, 64), [(32, 32)], 24, [1.0])
    config = PostprocessConfig(foreground_threshold=threshold, seed_threshold=0.9, seed_h=0)
    labels = probabilities_to_labels(probs, config=config)
    assert labels.max() == 1
    np.testing.assert_array_equal(labels > 0, probs.foreground > threshold)


@pytest.mark.parametrize(("threshold", "n_cells"), [(0.5, 2), (0.7, 1), (0.9, 0)])
def test_the_seed_threshold_decides_which_cells_are_seeded(threshold, n_cells):
    probs = _cone((48, 96), [(24, 24), (24, 72)], 20, [0.6, 0.8])  # peaks 0.6 and 0.8
    config = PostprocessConfig(
        foreground_threshold=0.1, seed_threshold=threshold, seed_h=0, smooth_sigma_px=0,
        keep_unseeded=False, min_seed_area_px=1,
    )  # fmt: skip
    assert probabilities_to_labels(probs, config=config).max() == n_cells


def test_cells_flood_the_whole_foreground_from_seeds_in_the_interior(helpers):
    """Seeds come from the interior and the flooding fills the foreground (not the reverse)."""
    truth = discs(helpers, (60, 90), [(30, 30), (30, 56)], 14)
    probs = helpers.probabilities_from_labels(truth, sigma=1.5)
    config = PostprocessConfig(seed_h=0)
    labels = probabilities_to_labels(probs, config=config)
    assert labels.max() == 2  # the foreground alone is one blob: the interior splits it
    np.testing.assert_array_equal(labels > 0, probs.foreground > config.foreground_threshold)
