import numpy as np
import pytest

from napari_dmqpm.io import Acquisition
from napari_dmqpm.simulation import SimulationConfig, simulate_field, simulate_timelapse

CONFIG = SimulationConfig(shape=(64, 80), density="dense")


def test_field_arrays_shapes_and_dtypes():
    field = simulate_field(CONFIG, rng=0)
    assert field.angles.shape == (4, 64, 80) and field.angles.dtype == np.float32
    assert field.phase.shape == (64, 80) and field.phase.dtype == np.float32
    assert field.true_phase.dtype == np.float32
    assert field.labels.dtype == np.int32
    assert field.config is CONFIG


def test_same_seed_same_field_different_seed_different_field():
    first, again = simulate_field(CONFIG, rng=11), simulate_field(CONFIG, rng=11)
    for name in ("angles", "phase", "true_phase", "labels"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    other = simulate_field(CONFIG, rng=12)
    assert not np.array_equal(first.labels, other.labels)
    assert not np.array_equal(first.angles, other.angles)
    generator = simulate_field(CONFIG, rng=np.random.default_rng(11))
    np.testing.assert_array_equal(first.angles, generator.angles)


def test_to_acquisition_is_a_simulated_ssqpm_stack():
    field = simulate_field(CONFIG, rng=1)
    acquisition = field.to_acquisition()
    assert isinstance(acquisition, Acquisition)
    assert acquisition.kind == "ssqpm-stack"
    assert acquisition.angles.shape == (1, 4, 64, 80)
    assert acquisition.pixel_size_um == CONFIG.pixel_size_um
    assert acquisition.wavelength_um == CONFIG.wavelength_um
    assert acquisition.phase_source == "simulated: four-step retrieval from noisy intensities"
    assert not acquisition.is_timelapse


def test_timelapse_keeps_ids_and_one_cell_divides():
    config = SimulationConfig(shape=(96, 96), density="medium")
    movie = simulate_timelapse(config, 5, rng=2)
    assert movie.angles.shape == (5, 4, 96, 96)
    assert movie.phase.shape == movie.labels.shape == (5, 96, 96)
    first_ids = set(np.unique(movie.labels[0]).tolist()) - {0}
    assert first_ids == set(range(1, len(first_ids) + 1))
    last_ids = set(np.unique(movie.labels[-1]).tolist()) - {0}
    assert max(last_ids) == len(first_ids) + 1  # the daughter gets the next id
    for cell_id in first_ids & set(np.unique(movie.labels[1]).tolist()):
        before = np.argwhere(movie.labels[0] == cell_id).mean(axis=0)
        after = np.argwhere(movie.labels[1] == cell_id).mean(axis=0)
        assert np.hypot(*(after - before)) < 8  # px: a cell drifts, it does not jump
    acquisition = movie.to_acquisition()
    assert acquisition.is_timelapse and acquisition.n_frames == 5


def test_timelapse_is_seeded_and_checks_its_arguments():
    config = SimulationConfig(shape=(48, 48), density="medium")
    a = simulate_timelapse(config, 2, rng=3, divide=False)
    b = simulate_timelapse(config, 2, rng=3, divide=False)
    np.testing.assert_array_equal(a.angles, b.angles)
    np.testing.assert_array_equal(a.labels, b.labels)
    with pytest.raises(ValueError, match="n_frames"):
        simulate_timelapse(config, 0)
