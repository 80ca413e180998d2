import numpy as np
import pytest

from napari_dmqpm.phase import retrieve_phase
from napari_dmqpm.simulation import SimulationConfig, simulate_field
from napari_dmqpm.simulation.detector import detect, gain_e_per_count
from napari_dmqpm.simulation.optics import (
    expected_intensities,
    illumination,
    object_phase,
    reference_wavefront,
    residual_background,
)

THETA = np.deg2rad([0, 45, 90, 135])[:, None, None]


def test_object_phase_is_two_pi_opd_over_wavelength():
    opd = np.array([[0.0, 0.1625, 0.65]])
    np.testing.assert_allclose(object_phase(opd, 0.65), [[0.0, np.pi / 2, 2 * np.pi]], rtol=1e-6)


@pytest.mark.parametrize("sign", [1, -1])
def test_noise_free_intensities_follow_the_four_step_model(sign):
    config = SimulationConfig(shape=(32, 48), sign=sign, fringe_visibility=0.7)
    rng = np.random.default_rng(0)
    phase = rng.uniform(-3, 3, config.shape)
    mean = illumination(phase, config, rng)
    angles = expected_intensities(phase, mean, config)
    expected = mean + 0.7 * mean * np.cos(sign * phase + 2 * THETA)
    np.testing.assert_allclose(angles, expected, rtol=1e-5, atol=1e-3)


def test_illumination_falls_off_and_dips_at_steep_edges():
    config = SimulationConfig(shape=(64, 64), illumination_falloff=0.3, edge_scattering=0.5)
    flat = illumination(np.zeros(config.shape), config, np.random.default_rng(1))
    assert flat.max() <= config.exposure * config.full_well_e + 1e-3
    assert flat.min() < 0.8 * flat.max()  # corners are darker
    step = np.zeros(config.shape)
    step[:, 32:] = 3.0  # a steep edge
    edged = illumination(step, config, np.random.default_rng(1))
    assert edged[:, 31:33].mean() < 0.9 * flat[:, 31:33].mean()
    np.testing.assert_allclose(edged[:, :20], flat[:, :20])


def test_reference_wavefront_is_removed_by_the_background_fit():
    config = SimulationConfig(shape=(64, 80), curvature_rad=5.0, background_aberration_rad=0.0)
    wavefront = reference_wavefront(config, np.random.default_rng(2))
    assert np.ptp(wavefront) > 3.0
    angles = expected_intensities(wavefront, np.full(config.shape, 5000.0), config)
    flat = retrieve_phase(angles, background="quadratic").phase
    assert np.abs(flat).max() < 1e-3


def _plane_fit(surface):
    rows, cols = np.indices(surface.shape)
    design = np.column_stack([np.ones(surface.size), rows.ravel(), cols.ravel()])
    coefficients = np.linalg.lstsq(design, surface.ravel(), rcond=None)[0]
    return surface - (design @ coefficients).reshape(surface.shape)


def test_residual_background_offset_tilt_and_curvature():
    config = SimulationConfig(shape=(64, 96))
    none = residual_background(config, np.random.default_rng(0))
    np.testing.assert_array_equal(none, 0.0)
    tilt = residual_background(config.replace(residual_tilt_rad=0.4), np.random.default_rng(0))
    assert abs(tilt.mean()) < 1e-6 and 0.01 < np.abs(tilt).max() <= 0.4 + 1e-6
    assert np.abs(_plane_fit(tilt)).max() < 1e-5  # a plane
    bowl = residual_background(config.replace(residual_curvature_rad=0.4), np.random.default_rng(0))
    assert abs(bowl.mean()) < 1e-6 and np.abs(_plane_fit(bowl)).max() > 0.01  # curved
    np.testing.assert_allclose(bowl, bowl[::-1, ::-1], atol=1e-6)  # centred on the field
    sag = bowl[0, 0] - bowl[31:33, 47:49].mean()
    assert 0.01 < abs(sag) <= 0.4  # the drawn sag at the corner
    # every amplitude is drawn, whichever are on: one range does not move another's draw
    both = config.replace(residual_tilt_rad=0.4, residual_curvature_rad=0.4)
    np.testing.assert_allclose(
        residual_background(both, np.random.default_rng(0)), tilt + bowl, atol=1e-6
    )


def test_detector_quantizes_to_integer_counts_in_range():
    config = SimulationConfig(full_well_e=10000.0, bit_depth=12)
    intensity = np.stack([np.full((8, 8), v) for v in (0.0, 37.0, 5000.0, 12000.0)])
    counts = detect(intensity, config, rng=0)
    assert counts.dtype == np.float32
    np.testing.assert_array_equal(counts, np.rint(counts))
    assert counts.min() >= 0 and counts.max() <= 4095
    assert (counts[3] == 4095).all()  # above full well: clipped
    ideal = detect(intensity, config, noise=False)
    np.testing.assert_array_equal(ideal[2], np.rint(5000.0 / gain_e_per_count(config)))
    # shot noise: the spread of the counts matches sqrt(N) electrons
    many = detect(np.full((4, 64, 64), 5000.0), config.replace(read_noise_e=0.0), rng=1)
    assert many.std() * gain_e_per_count(config) == pytest.approx(np.sqrt(5000.0), rel=0.1)


def test_simulated_angles_are_twelve_bit_counts():
    field = simulate_field(SimulationConfig(shape=(64, 64)), rng=0)
    np.testing.assert_array_equal(field.angles, np.rint(field.angles))
    assert field.angles.min() >= 0 and field.angles.max() <= 4095
    # I0 + I90 = I45 + I135 = 2A up to noise
    difference = (field.angles[0] + field.angles[2]) - (field.angles[1] + field.angles[3])
    assert np.abs(difference).mean() < 0.02 * field.angles.mean() * 2


def test_retrieved_phase_matches_truth_at_high_snr():
    # tolerance: 0.02 rad rms with 1e6 electrons at full well and no residual aberration
    config = SimulationConfig(
        shape=(256, 256), density="dense", full_well_e=1e6, background_aberration_rad=0.0
    )
    field = simulate_field(config, rng=4)
    error = field.phase - field.true_phase
    assert np.sqrt(np.mean(error**2)) < 0.02
    assert np.sqrt(np.mean(error[field.labels > 0] ** 2)) < 0.02


def test_retrieved_phase_matches_truth_at_default_noise():
    # tolerance: 0.06 rad rms (0.013 rad shot noise + 0.025 rad residual aberration)
    field = simulate_field(SimulationConfig(shape=(256, 256), density="medium"), rng=6)
    error = field.phase - field.true_phase
    assert np.sqrt(np.mean(error**2)) < 0.06
    background = field.phase[field.labels == 0]
    assert 0.005 < background.std() < 0.06


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_retrieved_phase_matches_truth_in_confluent_fields(seed):
    field = simulate_field(SimulationConfig(shape=(256, 256), density="confluent"), rng=seed)
    error = field.phase - field.true_phase
    assert np.sqrt(np.mean(error**2)) < 0.1
