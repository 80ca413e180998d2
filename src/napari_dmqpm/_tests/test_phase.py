import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from napari_dmqpm.phase import (
    modulation,
    remove_background,
    retrieve_phase,
    synthesize_angles,
    unwrap,
    wrapped_phase,
)


def _cells(shape, n_cells, *, height=3.0, radius=9.0, rng=0):
    """Smooth domes of compact support at random places on a flat background: a known phase."""
    rng = np.random.default_rng(rng)
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    phase = np.zeros(shape)
    for r, c in rng.uniform(0, 1, (n_cells, 2)) * shape:
        dist2 = ((rows - r) ** 2 + (cols - c) ** 2) / radius**2
        phase = np.maximum(phase, height * np.clip(1 - dist2, 0, None) ** 2)
    return phase


def _wavefront(shape, *, tilt=(0.04, -0.07), curvature=2e-4):
    rows, cols = np.mgrid[: shape[0], : shape[1]].astype(float)
    r0, c0 = shape[0] / 2, shape[1] / 2
    return tilt[0] * rows + tilt[1] * cols + curvature * ((rows - r0) ** 2 + (cols - c0) ** 2)


def test_wrapped_phase_inverts_the_forward_model_for_every_angle():
    phi = np.linspace(-np.pi + 1e-3, np.pi, 101).reshape(1, -1)
    np.testing.assert_allclose(wrapped_phase(synthesize_angles(phi)), phi, atol=1e-5)


def test_sign_flips_the_phase():
    phi = np.full((3, 3), 0.7)
    np.testing.assert_allclose(wrapped_phase(synthesize_angles(phi), sign=-1), -0.7, atol=1e-5)
    np.testing.assert_allclose(
        wrapped_phase(synthesize_angles(phi, sign=-1), sign=-1), 0.7, atol=1e-5
    )


def test_modulation_is_fringe_amplitude():
    rng = np.random.default_rng(1)
    phi = rng.uniform(-3, 3, (8, 8))
    angles = synthesize_angles(phi, mean=500.0, visibility=0.4)
    np.testing.assert_allclose(modulation(angles), 200.0, rtol=1e-4)


def test_high_snr_residual_below_0p05_rad_rms_with_reference_wavefront():
    rng = np.random.default_rng(2)
    shape = (192, 256)
    truth = _cells(shape, 25, rng=3)
    angles = synthesize_angles(truth + _wavefront(shape), mean=3000.0, visibility=0.8)
    noisy = rng.poisson(angles).astype(np.float32)  # shot noise at 3000 photons
    result = retrieve_phase(noisy, background="quadratic")
    residual = result.phase - truth
    assert np.sqrt(np.mean(residual**2)) < 0.05


def test_background_removal_survives_confluent_fields():
    # Cells cover most of the field: the fit must still find the thin background.
    shape = (128, 128)
    truth = _cells(shape, 70, height=2.0, radius=14.0, rng=4)
    cover = np.mean(truth > 0.1)
    assert cover > 0.75
    flat = remove_background(truth + _wavefront(shape, curvature=0.0), surface="plane")
    assert np.abs(flat - truth).max() < 0.05


def test_background_mask_restricts_the_fit():
    rows, cols = np.mgrid[:64, :64]
    phase = 0.1 * rows + 0.0
    phase[:, 32:] += 5.0  # without a mask this step would bias the plane
    mask = np.zeros((64, 64), bool)
    mask[:, :32] = True
    flat = remove_background(phase, surface="plane", mask=mask)
    np.testing.assert_allclose(flat[:, :32], 0.0, atol=1e-4)


def test_unwrap_recovers_large_smooth_phase():
    truth = _cells((96, 96), 6, height=12.0, radius=24.0, rng=5)
    wrapped = np.angle(np.exp(1j * truth))
    unwrapped = unwrap(wrapped)
    np.testing.assert_allclose(unwrapped - unwrapped[0, 0], truth - truth[0, 0], atol=1e-4)


def test_inputs_are_not_mutated():
    angles = synthesize_angles(_cells((32, 32), 3, rng=6))
    before = angles.copy()
    retrieve_phase(angles)
    np.testing.assert_array_equal(angles, before)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.zeros((3, 8, 8)), r"angles must have shape \(4, M, N\)"),
        (np.zeros((4, 8)), r"got angles.shape=\(4, 8\)"),
        (np.zeros((4, 8, 8), complex), "real numbers"),
    ],
)
def test_bad_angles_name_the_problem(bad, message):
    with pytest.raises(ValueError, match=message):
        retrieve_phase(bad)


def test_bad_options_name_the_parameter():
    angles = synthesize_angles(np.zeros((8, 8)))
    with pytest.raises(ValueError, match="sign must be 1 or -1"):
        retrieve_phase(angles, sign=2)
    with pytest.raises(ValueError, match="surface must be one of"):
        remove_background(np.zeros((8, 8)), surface="cubic")
    with pytest.raises(ValueError, match="mask must have shape"):
        remove_background(np.zeros((8, 8)), mask=np.ones((4, 4), bool))


@settings(max_examples=40, deadline=None)
@given(
    offset=st.floats(10, 1e4),
    visibility=st.floats(0.05, 1.0),
    phi=st.floats(-np.pi + 1e-3, np.pi),
    sign=st.sampled_from([1, -1]),
)
def test_round_trip_property(offset, visibility, phi, sign):
    phase = np.full((4, 4), phi)
    angles = synthesize_angles(phase, mean=offset, visibility=visibility, sign=sign)
    recovered = wrapped_phase(angles, sign=sign)
    # compare on the circle: -pi and pi are the same phase
    assert np.abs(np.angle(np.exp(1j * (recovered - phi)))).max() < 1e-3
    np.testing.assert_allclose(modulation(angles), offset * visibility, rtol=1e-3)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    tilt_r=st.floats(-0.3, 0.3),
    tilt_c=st.floats(-0.3, 0.3),
)
def test_retrieval_round_trip_property_with_tilt(seed, tilt_r, tilt_c):
    truth = _cells((64, 64), 4, height=3.0, radius=12.0, rng=seed)
    rows, cols = np.mgrid[:64, :64]
    angles = synthesize_angles(truth + tilt_r * rows + tilt_c * cols)
    result = retrieve_phase(angles, background="plane")
    # noise free, the faint rims of the domes fall inside the background band (one histogram
    # bin wide) and bias the plane by ~1e-2 rad at most: below the 0.05 rad noise target
    assert np.abs(result.phase - truth).max() < 2e-2


def test_fit_background_uses_only_the_mask_and_clips_what_it_missed():
    """Cells over 80 % of the field, a tilted background in the gaps, and a bright speck of
    debris inside the mask: the plane is recovered from the gaps alone, the speck clipped."""
    from napari_dmqpm.phase import fit_background

    rows, cols = np.indices((120, 120))
    plane = 0.4 + 0.006 * rows - 0.004 * cols
    phase = plane + np.random.default_rng(7).normal(0, 0.02, rows.shape)
    gaps = (rows % 30 < 6) | (cols % 30 < 6)
    phase[~gaps] += 1.5  # cells, not in the mask
    phase[0:4, 40:60] += 0.8  # debris in a gap: 80 px of the mask
    fit = fit_background(phase, gaps, surface="plane")
    np.testing.assert_allclose(fit.surface(), plane, atol=0.01)
    assert fit.n_pixels <= gaps.sum() - 80 and fit.n_pixels > 0.9 * (gaps.sum() - 80)
    with pytest.raises(ValueError, match="too few background pixels"):
        fit_background(phase, np.zeros_like(gaps), surface="offset")
