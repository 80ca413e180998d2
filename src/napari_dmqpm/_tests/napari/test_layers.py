"""acquisition_to_layer_data and friends: pure functions, tested without napari or Qt."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from napari_dmqpm import __version__
from napari_dmqpm._napari._layers import (
    acquisition_to_layer_data,
    labels_to_layer_data,
    robust_contrast_limits,
    spatial_kwargs,
)
from napari_dmqpm.io.acquisition import Acquisition


def _acquisition(n_frames=1, *, timelapse=False, angles=True, pixel=0.25, shape=(6, 7)):
    rng = np.random.default_rng(0)
    phase = rng.normal(0, 1, (n_frames, *shape)).astype(np.float32)
    intensities = rng.uniform(0, 4095, (n_frames, 4, *shape)).astype(np.float32)
    return Acquisition(
        phase=phase,
        angles=intensities if angles else None,
        kind="ssqpm-stack" if angles else "phase-map",
        pixel_size_um=pixel,
        wavelength_um=0.65,
        is_timelapse=timelapse,
        phase_source="read from channel 4",
        source="/data/cells.tif",
        metadata={"tags": {"software": "test"}},
    )


def test_single_frame_gives_angles_then_phase_with_scale_units_and_labels():
    acq = _acquisition()
    (angles, a_meta, a_type), (phase, p_meta, p_type) = acquisition_to_layer_data(acq, name="cells")
    assert (a_type, p_type) == ("image", "image")
    assert (a_meta["name"], p_meta["name"]) == ("cells angles", "cells phase")
    assert angles.shape == (4, 6, 7) and phase.shape == (6, 7)
    np.testing.assert_array_equal(angles[2], acq.angles[0, 2])
    np.testing.assert_array_equal(phase, acq.phase[0])
    assert a_meta["scale"] == (1.0, 0.25, 0.25) and p_meta["scale"] == (0.25, 0.25)
    assert a_meta["units"] == ("pixel", "µm", "µm") and p_meta["units"] == ("µm", "µm")
    assert a_meta["axis_labels"] == ("angle", "y", "x") and p_meta["axis_labels"] == ("y", "x")
    assert a_meta["colormap"] == "gray" and p_meta["colormap"] != "gray"


def test_timelapse_puts_the_angle_axis_first_so_frames_line_up():
    acq = _acquisition(3, timelapse=True)
    (angles, a_meta, _), (phase, p_meta, _) = acquisition_to_layer_data(acq, name="movie")
    assert angles.shape == (4, 3, 6, 7) and phase.shape == (3, 6, 7)
    # frame t, angle a of the layer is frame t, channel a of the acquisition
    np.testing.assert_array_equal(angles[1, 2], acq.angles[2, 1])
    assert a_meta["axis_labels"] == ("angle", "t", "y", "x")
    assert p_meta["axis_labels"] == ("t", "y", "x")
    assert a_meta["scale"][-3:] == p_meta["scale"] == (1.0, 0.25, 0.25)
    assert angles.shape[-3:] == phase.shape


def test_single_frame_timelapse_keeps_its_time_axis():
    (angles, _, _), (phase, meta, _) = acquisition_to_layer_data(
        _acquisition(1, timelapse=True), name="one"
    )
    assert angles.shape == (4, 1, 6, 7) and phase.shape == (1, 6, 7)
    assert meta["axis_labels"] == ("t", "y", "x")


def test_phase_only_map_gives_only_the_phase_layer():
    layers = acquisition_to_layer_data(_acquisition(angles=False), name="qpi")
    assert [meta["name"] for _, meta, _ in layers] == ["qpi phase"]
    assert layers[0][1]["metadata"]["angles_deg"] is None


def test_unknown_pixel_size_means_unit_scale_in_pixels():
    kwargs = spatial_kwargs(_acquisition(pixel=None), leading=("angle",))
    assert kwargs["scale"] == (1.0, 1.0, 1.0)
    assert kwargs["units"] == ("pixel", "pixel", "pixel")


def test_metadata_carries_provenance_and_is_json_serialisable():
    acq = _acquisition()
    _, (_, meta, _) = acquisition_to_layer_data(acq, name="cells")
    metadata = meta["metadata"]
    assert metadata["angles_deg"] == [0, 45, 90, 135]
    assert metadata["wavelength_um"] == 0.65 and metadata["pixel_size_um"] == 0.25
    assert metadata["source"] == "/data/cells.tif" and metadata["kind"] == "ssqpm-stack"
    assert metadata["phase_source"] == "read from channel 4"
    assert metadata["napari_dmqpm_version"] == __version__
    assert metadata["unit"] == "rad"
    assert metadata["file_metadata"] == {"tags": {"software": "test"}}
    json.dumps(metadata)


def test_contrast_limits_are_robust_to_outliers_and_non_finite_values():
    data = np.linspace(0.0, 1.0, 10_000).reshape(100, 100)
    data[0, :5] = [1e6, -1e6, np.nan, np.inf, -np.inf]
    low, high = robust_contrast_limits(data)
    assert 0.0 <= low < 0.02 and 0.98 < high <= 1.0


@pytest.mark.parametrize(
    ("data", "expected"),
    [(np.full((4, 4), 3.0), (2.5, 3.5)), (np.full((4, 4), np.nan), (0.0, 1.0))],
)
def test_contrast_limits_of_degenerate_images_are_a_valid_window(data, expected):
    assert robust_contrast_limits(data) == expected


def test_contrast_limits_reject_bad_percentiles():
    with pytest.raises(ValueError, match="percentiles"):
        robust_contrast_limits(np.zeros(3), percentiles=(90, 10))


def test_layer_contrast_limits_follow_the_data():
    acq = _acquisition()
    (angles, a_meta, _), (phase, p_meta, _) = acquisition_to_layer_data(acq, name="c")
    for data, meta in ((angles, a_meta), (phase, p_meta)):
        low, high = meta["contrast_limits"]
        assert data.min() <= low < high <= data.max()


def test_inputs_are_not_modified():
    acq = _acquisition(2, timelapse=True)
    before = (acq.angles.copy(), acq.phase.copy())
    acquisition_to_layer_data(acq, name="c")
    np.testing.assert_array_equal(acq.angles, before[0])
    np.testing.assert_array_equal(acq.phase, before[1])


def test_name_must_be_a_non_empty_string():
    with pytest.raises(ValueError, match="name"):
        acquisition_to_layer_data(_acquisition(), name="")


def test_labels_layer_shares_the_phase_grid():
    acq = _acquisition(2, timelapse=True)
    labels = np.zeros((2, 6, 7), np.uint16)
    data, meta, layer_type = labels_to_layer_data(labels, acq, name="gt", visible=False)
    _, (_, p_meta, _) = acquisition_to_layer_data(acq, name="c")
    assert layer_type == "labels" and data.shape == (2, 6, 7) and meta["visible"] is False
    for key in ("scale", "units", "axis_labels"):
        assert meta[key] == p_meta[key]


def test_single_frame_labels_accept_both_shapes_and_reject_others():
    acq = _acquisition()
    assert labels_to_layer_data(np.zeros((6, 7), int), acq, name="a")[0].shape == (6, 7)
    assert labels_to_layer_data(np.zeros((1, 6, 7), int), acq, name="a")[0].shape == (6, 7)
    with pytest.raises(ValueError, match=r"labels.shape=\(6, 8\)"):
        labels_to_layer_data(np.zeros((6, 8), int), acq, name="a")
    with pytest.raises(ValueError, match="integer"):
        labels_to_layer_data(np.zeros((6, 7), float), acq, name="a")


def test_layer_module_does_not_import_napari_or_qt():
    code = (
        "import sys, napari_dmqpm._napari._layers\n"
        "print(sorted(m for m in ('napari', 'qtpy', 'PyQt6', 'vispy') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_a_phase_map_read_as_stored_states_no_unit_and_others_state_radians():
    phase = np.zeros((1, 8, 8), np.float32)
    as_stored = Acquisition(phase=phase, kind="phase-map", metadata={"phase_unit": "rad"})
    ((_, meta, _),) = acquisition_to_layer_data(as_stored, name="map")
    assert meta["metadata"]["unit"] is None  # the widgets ask for the unit
    converted = as_stored.replace(metadata={"phase_unit": "pg_per_um2"})
    assert acquisition_to_layer_data(converted, name="map")[0][1]["metadata"]["unit"] == "rad"
    stack = as_stored.replace(kind="ssqpm-stack", angles=np.ones((1, 4, 8, 8), np.float32))
    assert acquisition_to_layer_data(stack, name="s")[1][1]["metadata"]["unit"] == "rad"
