"""The reader's npe2 contract, without a viewer: get_reader is cheap, never raises, says None."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from hypothesis import given, settings
from hypothesis import strategies as st

from napari_dmqpm import io
from napari_dmqpm._napari._reader import get_reader, layer_name, read_paths


@pytest.mark.parametrize(
    "key", ["text", "text_named_tif", "jpeg", "jpeg_named_tif", "folder", "missing"]
)
def test_get_reader_returns_none_for_foreign_paths(foreign_files, key):
    assert get_reader(str(foreign_files[key])) is None


@pytest.mark.parametrize("value", [None, 3, [], b"x.tif", ["a.tif", 4], {"path": "a.tif"}])
def test_get_reader_never_raises_on_odd_arguments(value):
    assert get_reader(value) is None


def test_get_reader_claims_every_supported_format(qpm_files):
    for written in qpm_files.values():
        assert get_reader(str(written.path)) is read_paths, written.path


def test_get_reader_accepts_a_list_only_when_every_file_qualifies(qpm_files, foreign_files):
    good = [str(qpm_files["phase_map"].path), str(qpm_files["ssqpm_imagej"].path)]
    assert get_reader(good) is read_paths
    assert get_reader([*good, str(foreign_files["text_named_tif"])]) is None


def test_reading_a_list_returns_the_layers_of_every_file(qpm_files):
    paths = [str(qpm_files["phase_map"].path), str(qpm_files["ssqpm_imagej"].path)]
    names = [meta["name"] for _, meta, _ in read_paths(paths)]
    assert names == ["phase_map phase", "stack_imagej angles", "stack_imagej phase"]


def test_a_damaged_tiff_gets_the_reader_whose_error_names_the_file(tmp_path, qpm_files):
    damaged = tmp_path / "damaged.tif"
    damaged.write_bytes(qpm_files["ssqpm_imagej"].path.read_bytes()[:300])
    reader = get_reader(str(damaged))
    assert reader is not None
    with pytest.raises(io.FormatError, match="damaged.tif"):
        reader(str(damaged))


@pytest.mark.parametrize(
    ("array", "photometric", "problem"),
    [
        (np.zeros((16, 16, 3), np.uint8), "rgb", "colour"),
        (np.zeros((16, 16), np.complex64), None, "complex"),
    ],
)
def test_a_tiff_in_no_supported_layout_gets_a_clear_error(tmp_path, array, photometric, problem):
    path = tmp_path / "unsupported.tif"
    tifffile.imwrite(path, array, photometric=photometric)
    assert get_reader(str(path)) is read_paths
    with pytest.raises(io.FormatError, match=f"unsupported.tif.*{problem}"):
        read_paths(str(path))


def test_layer_names_drop_the_image_suffixes():
    assert layer_name("/x/cells.ome.tif") == "cells"
    assert layer_name("/x/cells.v2.TIFF") == "cells.v2"
    assert layer_name("/x/.tif") == ".tif"


def test_nan_pixels_become_a_napari_warning_that_names_the_file(tmp_path):
    notifications = pytest.importorskip("napari.utils.notifications")
    phase = np.linspace(0, 1, 32 * 32, dtype=np.float32).reshape(32, 32)
    phase[3, 4] = np.nan
    path = tmp_path / "with_nan.tif"
    tifffile.imwrite(path, phase)
    manager = notifications.notification_manager
    n_before = len(manager.records)
    (data, _, _), *_ = read_paths(str(path))
    assert np.isfinite(data).all()
    new = manager.records[n_before:]
    assert [n.severity for n in new] == [notifications.NotificationSeverity.WARNING]
    assert "with_nan.tif" in new[0].message


def _cells(shape, maximum=7, dtype=np.uint16):
    labels = np.zeros(shape, dtype)
    labels[..., 4:14, 5:15], labels[..., 20:30, 22:40] = 1, maximum
    return labels


@pytest.mark.parametrize(
    ("shape", "pixel_size_um", "scale", "units"),
    [
        ((32, 48), 0.627, (0.627, 0.627), ("µm", "µm")),
        ((3, 32, 48), 0.345, (1.0, 0.345, 0.345), ("pixel", "µm", "µm")),
        ((32, 48), None, (1.0, 1.0), ("pixel", "pixel")),
    ],
)
def test_a_labels_file_opens_as_one_labels_layer_at_its_pixel_size(
    tmp_path, shape, pixel_size_um, scale, units
):
    path = io.write_labels(
        tmp_path / "sim_0000_labels.tif", _cells(shape), pixel_size_um=pixel_size_um
    )
    assert get_reader(str(path)) is read_paths
    [(data, meta, layer_type)] = read_paths(str(path))
    assert layer_type == "labels" and meta["name"] == "sim_0000_labels"
    np.testing.assert_array_equal(data, _cells(shape))
    assert meta["scale"] == pytest.approx(scale) and meta["units"] == units
    assert meta["axis_labels"] == (("t",) if len(shape) == 3 else ()) + ("y", "x")
    assert meta["metadata"]["kind"] == "labels" and meta["metadata"]["source"] == str(path)


def test_an_untagged_label_export_opens_as_labels_not_as_a_mosaic(tmp_path):
    path = tmp_path / "masks.tif"
    tifffile.imwrite(path, _cells((32, 48), maximum=513, dtype=np.uint32), metadata=None)
    [(data, meta, layer_type)] = read_paths(str(path))
    assert (layer_type, data.shape, meta["scale"]) == ("labels", (32, 48), (1.0, 1.0))


def test_the_camera_and_phase_files_are_no_labels(qpm_files):
    for written in qpm_files.values():
        layer_types = {layer_type for *_, layer_type in read_paths(str(written.path))}
        assert layer_types == {"image"}, written.path


_TIFF_HEAD = b"II*\x00\x08\x00\x00\x00"


@settings(max_examples=60, deadline=None)
@given(body=st.binary(max_size=2048), head=st.sampled_from([b"", _TIFF_HEAD, b"\x89PNG\r\n\x1a\n"]))
def test_random_bytes_never_make_get_reader_raise_and_read_only_raises_format_error(
    tmp_path_factory, body, head
):
    path = tmp_path_factory.mktemp("random") / "random.tif"
    path.write_bytes(head + body)
    reader = get_reader(str(path))
    if reader is None:
        return
    try:
        reader(str(path))
    except io.FormatError as error:
        assert "random.tif" in str(error)


@settings(max_examples=30, deadline=None)
@given(cut=st.floats(min_value=0.0, max_value=0.98))
def test_truncated_files_fail_with_a_format_error_naming_the_file(qpm_files, tmp_path_factory, cut):
    original = qpm_files["ssqpm_imagej"].path.read_bytes()
    path = tmp_path_factory.mktemp("cut") / "truncated.tif"
    path.write_bytes(original[: int(cut * len(original))])
    reader = get_reader(str(path))
    if reader is not None:
        with pytest.raises(io.FormatError, match="truncated.tif"):
            reader(str(path))
