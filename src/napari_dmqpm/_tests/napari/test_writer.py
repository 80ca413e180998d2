"""The Labels writer: pixel size from the layer's scale and units, ImageJ TIFF, no overwrite."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_dmqpm._napari._writer import pixel_size_from_meta, write_labels

pint = pytest.importorskip("pint")


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        ({"scale": (1.0, 0.5, 0.5), "units": ("pixel", "µm", "µm")}, 0.5),
        ({"scale": (250.0, 250.0), "units": ("nm", "nm")}, 0.25),
        ({"scale": (0.002, 0.002), "units": ("mm", "mm")}, 2.0),
        ({"scale": (0.5, 0.5), "units": ("pixel", "pixel")}, None),
        ({"scale": (0.5, 0.5)}, None),
        ({}, None),
    ],
)
def test_pixel_size_from_scale_and_units(meta, expected):
    got = pixel_size_from_meta(meta)
    assert got == pytest.approx(expected) if expected is not None else got is None


def test_pixel_size_accepts_pint_units():
    unit = pint.get_application_registry().micrometer
    assert pixel_size_from_meta({"scale": (0.3, 0.3), "units": (unit, unit)}) == pytest.approx(0.3)


def test_anisotropic_pixels_are_refused_with_both_sizes():
    with pytest.raises(ValueError, match=r"0\.5 µm and 0\.25 µm"):
        pixel_size_from_meta({"scale": (0.5, 0.25), "units": ("µm", "µm")})


def _resolution_um(page) -> float:
    numerator, denominator = page.tags["XResolution"].value
    return denominator / numerator


def test_write_labels_round_trip_keeps_values_and_pixel_size(tmp_path):
    labels = np.zeros((20, 30), np.int32)
    labels[2:8, 3:9], labels[10:15, 20:28] = 1, 70_000
    path = tmp_path / "cells.tif"
    meta = {"scale": (0.4, 0.4), "units": ("µm", "µm")}
    assert write_labels(str(path), labels, meta) == [str(path)]
    with tifffile.TiffFile(path) as tif:
        back = tif.asarray()
        assert tif.is_imagej and back.dtype == np.uint32
        assert _resolution_um(tif.pages[0]) == pytest.approx(0.4, rel=1e-4)
    np.testing.assert_array_equal(back, labels)


def test_write_labels_uses_uint16_when_it_suffices(tmp_path):
    labels = np.arange(12, dtype=np.int64).reshape(3, 4)
    path = tmp_path / "small.tif"
    write_labels(str(path), labels, {"scale": (1.0, 1.0), "units": ("pixel", "pixel")})
    back = tifffile.imread(path)
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, labels)


def test_write_labels_never_writes_over_a_file(tmp_path):
    path = tmp_path / "exists.tif"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="exists.tif"):
        write_labels(str(path), np.ones((4, 4), np.uint16), {})
    assert path.read_bytes() == b"precious"


def test_write_labels_keeps_the_time_axis(tmp_path):
    labels = np.zeros((3, 10, 12), np.uint16)
    labels[1, 2:5, 2:5] = 4
    path = tmp_path / "movie_labels.tiff"
    meta = {"scale": (1.0, 0.627, 0.627), "units": ("pixel", "µm", "µm")}
    write_labels(str(path), labels, meta)
    with tifffile.TiffFile(path) as tif:
        assert tif.imagej_metadata["frames"] == 3
        np.testing.assert_array_equal(tif.asarray(), labels)
        assert _resolution_um(tif.pages[0]) == pytest.approx(0.627, rel=1e-4)


@pytest.mark.parametrize(
    ("shape", "scale", "units", "maximum"),
    [
        ((30, 40), (0.25, 0.25), ("µm", "µm"), 9),
        ((2, 30, 40), (1.0, 0.345, 0.345), ("pixel", "µm", "µm"), 70_001),
        ((30, 40), (1.0, 1.0), ("pixel", "pixel"), 3),
    ],
)
def test_a_saved_labels_layer_reopens_as_the_same_labels_layer(
    tmp_path, shape, scale, units, maximum
):
    """Writer -> reader through the real npe2 manifest: Labels in, the same Labels out."""
    npe2 = pytest.importorskip("npe2")
    layers = pytest.importorskip("napari.layers")
    npe2.PluginManager.instance().discover()  # what napari does at start-up
    data = np.zeros(shape, np.int32)
    data[..., 3:10, 4:12], data[..., 15:25, 20:30] = 5, maximum
    layer = layers.Labels(data, scale=scale, units=units, name="cells")
    path = tmp_path / "cells_labels.tif"
    assert npe2.write(path, [layer], plugin_name="napari-dmqpm") == [str(path)]
    read = npe2.read([str(path)], stack=False, plugin_name="napari-dmqpm")
    assert [layer_type for *_, layer_type in read] == ["labels"]
    back = layers.Layer.create(*read[0])
    assert isinstance(back, layers.Labels) and back.name == "cells_labels"
    np.testing.assert_array_equal(back.data, data)
    assert np.can_cast(back.data.dtype, np.int64) and back.data.dtype.kind == "u"
    np.testing.assert_allclose(back.scale, scale, rtol=1e-6)
    assert [str(u) for u in back.units][-2:] == [str(u) for u in layer.units][-2:]
    assert back.metadata["quantity"] == "instance labels"
