"""acquisition_from_arrays: arrays from napari layers or the API, validated with clear messages."""

import numpy as np
import pytest

from napari_dmqpm.io import DataWarning, FormatError, acquisition_from_arrays
from napari_dmqpm.phase import synthesize_angles

M, N = 24, 30


def truth(height=2.0):
    rows, cols = np.mgrid[:M, :N]
    dist2 = ((rows - M / 2) ** 2 + (cols - N / 2) ** 2) / 8.0**2
    return height * np.clip(1 - dist2, 0, None) ** 2  # a cell on a flat background


def angles_of(phase):
    return synthesize_angles(phase + 0.3 * np.mgrid[:M, :N][1])


def test_angles_only_retrieves_the_phase():
    acq = acquisition_from_arrays(angles=angles_of(truth()), pixel_size_um=0.5)
    assert acq.kind == "angles-stack" and not acq.is_timelapse
    assert acq.phase.shape == (1, M, N) and acq.modulation.shape == (1, M, N)
    assert float(np.abs(acq.phase[0] - truth()).max()) < 0.02
    assert acq.pixel_size_um == 0.5


def test_napari_angle_leading_time_lapse():
    frames = np.stack([angles_of(truth(h)) for h in (1.0, 2.0, 3.0)])  # (T, 4, M, N)
    napari_layer = np.moveaxis(frames, 1, 0)  # (4, T, M, N)
    acq = acquisition_from_arrays(angles=napari_layer, angle_axis=0)
    assert acq.is_timelapse and acq.angles.shape == (3, 4, M, N)
    np.testing.assert_array_equal(acq.angles, frames)
    assert acq.phase[2].max() > acq.phase[0].max() + 1.5


def test_angles_and_phase_keep_the_given_phase():
    phase = truth()
    acq = acquisition_from_arrays(angles=angles_of(phase), phase=phase)
    assert acq.kind == "ssqpm-stack"
    np.testing.assert_array_equal(acq.phase[0], phase.astype(np.float32))
    assert "given" in acq.phase_source


def test_phase_only_with_unit():
    acq = acquisition_from_arrays(phase=np.ones((M, N)), phase_unit="opd_um", wavelength_um=0.5)
    assert acq.kind == "phase-map" and acq.angles is None
    assert float(acq.phase[0, 0, 0]) == pytest.approx(4 * np.pi)


def test_inputs_are_not_modified():
    angles = angles_of(truth())
    angles[0, 1, 1] = np.nan
    before = angles.copy()
    with pytest.warns(DataWarning, match="replaced 1 NaN/Inf intensity"):
        acquisition_from_arrays(angles=angles)
    np.testing.assert_array_equal(angles, before)


def test_nan_phase_is_replaced_with_a_warning():
    phase = truth()
    phase[3, 3] = np.nan
    with pytest.warns(DataWarning, match="replaced 1 NaN/Inf phase"):
        acq = acquisition_from_arrays(phase=phase)
    assert acq.phase[0, 3, 3] == 0


@pytest.mark.parametrize(
    ("arrays", "error", "message"),
    [
        ({}, ValueError, "neither"),
        ({"angles": np.zeros((3, M, N))}, FormatError, "4 images.*got 3"),
        ({"angles": np.zeros((5, M, N))}, FormatError, "angles=stack\\[:4\\]"),
        ({"angles": np.zeros((4, M))}, FormatError, "angles must have shape"),
        ({"angles": np.zeros((4, M, N), complex)}, FormatError, "complex"),
        ({"phase": np.zeros((M, N), complex)}, FormatError, "complex"),
        ({"phase": np.array([["a"]])}, FormatError, "dtype"),
        ({"phase": np.zeros((2, 2, M, N))}, FormatError, "phase must have shape"),
        (
            {"angles": np.zeros((4, M, N)), "phase": np.zeros((M, N + 1))},
            FormatError,
            "phase must match the angles",
        ),
        ({"angles": np.zeros((4, M, N)), "angle_axis": 1}, ValueError, "angle_axis"),
        ({"phase": np.zeros((M, N)), "phase_unit": "opd_nm"}, ValueError, "wavelength_um"),
        ({"angles": np.zeros((4, M, N)), "sign": 0}, ValueError, "sign"),
    ],
)
def test_bad_arrays_get_clear_messages(arrays, error, message):
    with pytest.raises(error, match=message):
        acquisition_from_arrays(**arrays)
