"""Tests of benchmarks/iit.py: improved iterative thresholding (Vicar, Chmelik, Kolar)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import ndimage

BENCHMARK = "iit"

SHAPE = (128, 128)


def _blob(row: float, col: float, sigma: float, amplitude: float, shape=SHAPE) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return amplitude * np.exp(-((yy - row) ** 2 + (xx - col) ** 2) / (2.0 * sigma**2))


def _noise(seed: int, shape=SHAPE, sigma: float = 0.02) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, sigma, shape)


def _touching_pair() -> np.ndarray:
    """Two 3-rad Gaussian cells (sigma 8 px) 20 px apart: one foreground object, a shallow dip."""
    return _blob(64, 54, 8, 3.0) + _blob(64, 74, 8, 3.0) + _noise(0)


@pytest.mark.parametrize("preset", ["dense", "sparse"])
def test_touching_cells_are_split(bench, preset):
    phase = _touching_pair()
    objects = ndimage.label(phase > 0.1)[0]
    assert objects[64, 54] == objects[64, 74] > 0  # a plain threshold sees one object
    labels = bench.segment_iit(phase, config=bench.IIT_PRESETS[preset])
    assert labels.max() == 2
    left, right = labels[64, 54], labels[64, 74]
    assert left > 0 and right > 0 and left != right
    areas = np.bincount(labels.ravel())[1:]
    assert areas.min() > 0.7 * areas.max()


def test_the_threshold_sweep_splits_without_the_distance_step(bench):
    # With the distance-transform split off, the two seeds can only come from the sweep.
    config = dataclasses.replace(bench.IIT_PRESETS["sparse"], split_h_px=50.0)
    labels = bench.segment_iit(_touching_pair(), config=config)
    assert labels.max() == 2
    assert labels[64, 54] != labels[64, 74]
    # ... and a sweep cut just above the background leaves one cell.
    config = dataclasses.replace(config, threshold_max_rad=0.1)
    assert bench.segment_iit(_touching_pair(), config=config).max() == 1


@pytest.mark.parametrize("preset", ["dense", "sparse"])
def test_a_bright_organelle_does_not_split_its_cell(bench, preset):
    # A dome cell with a bright nucleolus on its slope: at high thresholds the nucleolus is an
    # object of its own, but too light (dry mass) to split the cell.
    phase = _blob(64, 64, 14, 2.0) + _blob(64, 76, 1.5, 1.0) + _noise(1)
    config = bench.IIT_PRESETS[preset]
    labels = bench.segment_iit(phase, config=config)
    assert labels.max() == 1
    assert labels[64, 64] == labels[64, 76] == 1
    # Without the mass criterion the nucleolus becomes a cell: the criterion is what holds.
    light = dataclasses.replace(config, min_mass_rad_px=5.0)
    assert bench.segment_iit(phase, config=light).max() >= 2


def test_distance_transform_splits_a_dumbbell(bench):
    # Two flat discs joined by a neck: no dip in phase (no sharpening), only the shape.
    yy, xx = np.mgrid[:96, :128]
    discs = ((yy - 48) ** 2 + (xx - 44) ** 2 < 18**2) | ((yy - 48) ** 2 + (xx - 84) ** 2 < 18**2)
    neck = (np.abs(yy - 48) < 5) & (xx > 44) & (xx < 84)
    phase = ndimage.gaussian_filter((discs | neck) * 1.5, 1.0)
    config = dataclasses.replace(bench.IIT_PRESETS["dense"], log_weight=0.0, split_h_px=1.0)
    labels = bench.segment_iit(phase, config=config)
    assert labels.max() == 2 and labels[48, 44] != labels[48, 84]
    config = dataclasses.replace(config, split_h_px=50.0)
    assert bench.segment_iit(phase, config=config).max() == 1


@pytest.mark.parametrize("preset", ["dense", "sparse"])
def test_background_gives_no_cells(bench, preset):
    config = bench.IIT_PRESETS[preset]
    for phase in (np.zeros(SHAPE), _noise(2), np.full(SHAPE, 0.05)):
        labels = bench.segment_iit(phase, config=config)
        assert labels.dtype == np.uint32 and labels.shape == SHAPE
        assert labels.max() == 0


def test_output_dtype_shape_and_consecutive_labels(bench):
    phase = (
        _touching_pair()
        + _blob(20, 20, 6, 2.0)
        + _blob(100, 110, 7, 2.5)
        + _blob(20, 100, 1.0, 0.5)  # too light to be a cell
    )[:, :120]
    before = phase.copy()
    labels = bench.segment_iit(phase.astype(np.float32), config=bench.IIT_PRESETS["dense"])
    np.testing.assert_array_equal(phase, before)
    assert labels.dtype == np.uint32 and labels.shape == phase.shape
    assert np.array_equal(np.unique(labels), np.arange(int(labels.max()) + 1))
    assert labels.max() == 4
    assert labels[20, 100] == 0


def test_pixel_size_rescales_the_parameters(bench):
    config = bench.IIT_PRESETS["sparse"]
    phase = _touching_pair()
    plain = bench.segment_iit(phase, config=config)
    same = bench.segment_iit(phase, config=config, pixel_size_um=config.reference_pixel_size_um)
    np.testing.assert_array_equal(plain, same)
    # The same cells sampled twice as finely: told so, IIT still finds two cells.
    fine = ndimage.zoom(phase, 2, order=1)
    half = config.reference_pixel_size_um / 2
    assert bench.segment_iit(fine, config=config, pixel_size_um=half).max() == 2


def test_presets_are_the_published_values_in_radians(bench):
    factor = 2 * np.pi * 0.18 / 0.65
    assert bench.PG_PER_UM2_TO_RAD == pytest.approx(1.74, abs=1e-3)
    dense, sparse = bench.IIT_PRESETS["dense"], bench.IIT_PRESETS["sparse"]
    published = {
        "dense": (dense, 2.08, 5.087, 79.68, 0.964),
        "sparse": (sparse, 2.0376, 8.118, 118.35, 2.7024),
    }
    for config, sigma, weight, mass, h in published.values():
        assert config.log_sigma_px == sigma and config.log_weight == weight
        assert config.split_h_px == h
        assert config.min_mass_rad_px == pytest.approx(mass * factor)
        assert config.background_rad == pytest.approx(0.05 * factor)
        assert config.threshold_step_rad == pytest.approx(0.03 * factor)
        assert config.min_hole_area_px == 60 and config.reference_pixel_size_um == 0.627
    assert bench.IITConfig() == dense
    assert set(dense.to_dict()) == {f.name for f in dataclasses.fields(bench.IITConfig)}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("log_sigma_px", 0.0),
        ("log_sigma_px", -1.0),
        ("log_sigma_px", float("nan")),
        ("log_weight", -0.5),
        ("log_gamma", -1.0),
        ("background_rad", -0.1),
        ("background_rad", float("inf")),
        ("threshold_step_rad", 0.0),
        ("threshold_max_rad", 0.01),
        ("threshold_max_rad", float("nan")),
        ("min_mass_rad_px", -1.0),
        ("min_mass_rad_px", "100"),
        ("split_h_px", 0.0),
        ("min_hole_area_px", -1),
        ("min_hole_area_px", 1.5),
        ("min_cell_area_px", True),
        ("centroid_test", 1),
        ("reference_pixel_size_um", 0.0),
    ],
)
def test_bad_config_values_raise(bench, field, value):
    with pytest.raises(ValueError, match=field):
        bench.IITConfig(**{field: value})


def test_bad_inputs_raise(bench):
    config = bench.IIT_PRESETS["dense"]
    with pytest.raises(ValueError, match="shape"):
        bench.segment_iit(np.zeros((4, 32, 32)), config=config)
    with pytest.raises(ValueError, match="shape"):
        bench.segment_iit(np.zeros(32), config=config)
    for bad in (np.nan, np.inf):
        phase = np.zeros((32, 32))
        phase[3, 4] = bad
        with pytest.raises(ValueError, match="finite"):
            bench.segment_iit(phase, config=config)
    with pytest.raises(ValueError, match="pixel_size_um"):
        bench.segment_iit(np.zeros((32, 32)), config=config, pixel_size_um=0.0)


@pytest.mark.parametrize(("preset", "min_f1"), [("dense", 0.5), ("sparse", 0.7)])
def test_simulated_field_reaches_a_reasonable_f1(bench, preset, min_f1):
    # Measured on this field: F1 0.63 (dense preset, which over-splits), 0.80 (sparse);
    # foreground Dice 0.98 for both.
    from napari_dmqpm.simulation import SimulationConfig, simulate_field
    from napari_dmqpm.training.metrics import score_image

    field = simulate_field(SimulationConfig(shape=(256, 256)), rng=0)
    labels = bench.segment_iit(field.phase, config=bench.IIT_PRESETS[preset], pixel_size_um=0.627)
    scores = score_image(labels, field.labels)
    assert scores.f1 >= min_f1
    assert scores.dice >= 0.9
