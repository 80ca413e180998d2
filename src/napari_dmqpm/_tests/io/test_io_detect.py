"""Format detection: every rule of docs/formats.md, the override, and describe_file."""

import numpy as np
import pytest
import tifffile
from PIL import Image

from napari_dmqpm.io import FormatError, describe_file, inspect_file

M, N = 8, 10


def imagej(path, data, axes, **metadata):
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": axes, **metadata})
    return path


def plain(path, data, **kwargs):
    """A TIFF whose axes nobody declares (tifffile's own shape metadata switched off)."""
    if data.ndim == 2:
        tifffile.imwrite(path, data, metadata=None, **kwargs)
    else:
        for plane in data.reshape(-1, *data.shape[-2:]):
            tifffile.imwrite(path, plane, append=True, metadata=None, **kwargs)
    return path


def zeros(*shape, dtype=np.float32):
    return np.zeros(shape, dtype=dtype)


@pytest.mark.parametrize(
    ("shape", "axes", "kind", "n_frames", "timelapse"),
    [
        ((5, M, N), "CYX", "ssqpm-stack", 1, False),
        ((3, 5, M, N), "TCYX", "ssqpm-stack", 3, True),
        ((4, M, N), "CYX", "angles-stack", 1, False),
        ((2, 4, M, N), "TCYX", "angles-stack", 2, True),
        ((4, M, N), "TYX", "phase-map", 4, True),  # declared frames beat the shape rule
        ((4, M, N), "ZYX", "angles-stack", 1, False),  # slices are not a declaration
    ],
)
def test_imagej_declared_axes(tmp_path, shape, axes, kind, n_frames, timelapse):
    info = inspect_file(imagej(tmp_path / "a.tif", zeros(*shape), axes))
    assert (info.kind, info.n_frames, info.is_timelapse) == (kind, n_frames, timelapse)
    assert info.file_format == "ImageJ TIFF"
    assert info.shape == shape


def test_imagej_time_lapse_of_integer_planes_is_a_raw_mosaic_series(tmp_path):
    info = inspect_file(imagej(tmp_path / "a.tif", zeros(5, M, N, dtype=np.uint16), "TYX"))
    assert (info.kind, info.n_frames) == ("raw-mosaic", 5)
    assert "time axis" in info.reason


@pytest.mark.parametrize("axes", ["TCYX", "CTYX"])
def test_ome_declared_channels_in_any_order(tmp_path, axes):
    data = zeros(3, 5, M, N) if axes == "TCYX" else zeros(5, 3, M, N)
    path = tmp_path / "a.ome.tif"
    tifffile.imwrite(path, data, ome=True, metadata={"axes": axes})
    info = inspect_file(path)
    assert (info.kind, info.n_frames, info.file_format) == ("ssqpm-stack", 3, "OME-TIFF")
    assert "OME" in info.reason


def test_declared_channel_count_other_than_4_or_5_is_refused(tmp_path):
    path = imagej(tmp_path / "a.tif", zeros(3, M, N), "CYX")
    with pytest.raises(FormatError, match=r"a\.tif.*C=3 channels"):
        inspect_file(path)


@pytest.mark.parametrize(
    ("shape", "dtype", "kind", "n_frames"),
    [
        ((5, M, N), np.float32, "ssqpm-stack", 1),
        ((4, M, N), np.uint16, "angles-stack", 1),
        ((M, N), np.uint16, "raw-mosaic", 1),
        ((M, N), np.uint8, "raw-mosaic", 1),
        ((M, N), np.float32, "phase-map", 1),
        ((M, N), np.float64, "phase-map", 1),
        ((7, M, N), np.float32, "phase-map", 7),
        ((7, M, N), np.uint16, "raw-mosaic", 7),
    ],
)
def test_shape_rules_on_plain_tiffs(tmp_path, shape, dtype, kind, n_frames):
    info = inspect_file(plain(tmp_path / "a.tif", zeros(*shape, dtype=dtype)))
    assert (info.kind, info.n_frames) == (kind, n_frames)
    assert info.file_format == "TIFF"


@pytest.mark.parametrize(("channels", "kind"), [(5, "ssqpm-stack"), (4, "angles-stack")])
def test_shape_rule_for_four_dimensional_arrays(tmp_path, channels, kind):
    path = tmp_path / "a.tif"
    tifffile.imwrite(path, zeros(3, channels, M, N), photometric="minisblack")  # axes QQYX
    info = inspect_file(path)
    assert (info.kind, info.n_frames, info.is_timelapse) == (kind, 3, True)


@pytest.mark.parametrize(
    ("shape", "message"),
    [((3, 6, M, N), "cannot tell"), ((2, 2, 5, M, N), "cannot tell")],
)
def test_unknown_shapes_are_refused(tmp_path, shape, message):
    path = tmp_path / "a.tif"
    tifffile.imwrite(path, zeros(*shape), photometric="minisblack")
    with pytest.raises(FormatError, match=message):
        inspect_file(path)


def test_override_wins_over_the_shape_rule(tmp_path):
    path = plain(tmp_path / "a.tif", zeros(4, M, N, dtype=np.uint16))
    assert inspect_file(path).kind == "angles-stack"
    info = inspect_file(path, kind="raw-mosaic")
    assert (info.kind, info.n_frames) == ("raw-mosaic", 4)
    assert "given" in info.reason


def test_override_splits_interleaved_planes_into_frames(tmp_path):
    path = plain(tmp_path / "a.tif", zeros(10, M, N))
    assert inspect_file(path).kind == "phase-map"
    info = inspect_file(path, kind="ssqpm-stack")
    assert (info.kind, info.n_frames, info.layout.split) == ("ssqpm-stack", 2, True)


@pytest.mark.parametrize(
    ("shape", "kind", "message"),
    [
        ((7, M, N), "angles-stack", "needs 4 channels"),
        ((M, N), "ssqpm-stack", "needs 5 channels"),
        ((2, 3, M, N), "phase-map", "needs"),
    ],
)
def test_override_that_the_shape_cannot_hold(tmp_path, shape, kind, message):
    path = tmp_path / "a.tif"
    tifffile.imwrite(path, zeros(*shape), photometric="minisblack")
    with pytest.raises(FormatError, match=message):
        inspect_file(path, kind=kind)


def test_override_contradicting_declared_channels(tmp_path):
    path = imagej(tmp_path / "a.tif", zeros(5, M, N), "CYX")
    with pytest.raises(FormatError, match="does not fit"):
        inspect_file(path, kind="angles-stack")


def test_unknown_kind_is_a_value_error(tmp_path):
    path = plain(tmp_path / "a.tif", zeros(M, N))
    with pytest.raises(ValueError, match="kind must be"):
        inspect_file(path, kind="stack")


@pytest.mark.parametrize(("mode", "dtype"), [("L", np.uint8), ("I;16", np.uint16)])
def test_png_is_a_raw_mosaic(tmp_path, mode, dtype):
    path = tmp_path / "frame.png"
    Image.fromarray(np.arange(M * N, dtype=dtype).reshape(M, N)).save(path)
    info = inspect_file(path)
    assert (info.kind, info.shape, info.dtype, info.file_format) == (
        "raw-mosaic",
        (M, N),
        np.dtype(dtype).name,
        "PNG",
    )
    assert "PNG" in info.reason


@pytest.mark.parametrize("mode", ["RGB", "P", "1"])
def test_colour_and_bilevel_pngs_are_refused(tmp_path, mode):
    path = tmp_path / "frame.png"
    Image.new(mode, (N, M)).save(path)
    with pytest.raises(FormatError, match=r"frame\.png.*mode"):
        inspect_file(path)


def test_rgb_tiff_is_refused(tmp_path):
    path = tmp_path / "rgb.tif"
    tifffile.imwrite(path, zeros(M, N, 3, dtype=np.uint8), photometric="rgb")
    with pytest.raises(FormatError, match="colour image"):
        inspect_file(path)


@pytest.mark.parametrize("dtype", [np.complex64, np.bool_])
def test_complex_and_bool_tiffs_are_refused(tmp_path, dtype):
    path = tmp_path / "odd.tif"
    tifffile.imwrite(path, zeros(M, N, dtype=dtype))
    with pytest.raises(FormatError, match=r"odd\.tif.*(complex|dtype)"):
        inspect_file(path)


def test_inspect_reads_no_pixels(tmp_path, monkeypatch):
    path = imagej(tmp_path / "a.tif", zeros(5, M, N), "CYX")

    def forbidden(*args, **kwargs):
        raise AssertionError("inspect_file must not decode pixels")

    monkeypatch.setattr(tifffile.TiffPageSeries, "asarray", forbidden)
    monkeypatch.setattr(tifffile.TiffFile, "asarray", forbidden)
    assert inspect_file(path).kind == "ssqpm-stack"


def test_compression_is_reported(tmp_path):
    path = plain(tmp_path / "a.tif", zeros(M, N), compression="zlib")
    assert inspect_file(path).compression == "deflate"
    assert inspect_file(plain(tmp_path / "b.tif", zeros(M, N))).compression == "none"


def test_describe_says_what_the_reader_will_make(tmp_path):
    path = imagej(tmp_path / "stack.tif", zeros(3, 4, M, N), "TCYX", unit="um")
    text = describe_file(path)
    assert "angles-stack" in text and "ImageJ metadata declares C=4" in text
    assert f"angles Image (4, 3, {M}, {N}) + phase Image (3, {M}, {N})" in text
    assert "retrieved by four-step" in text


def test_describe_raw_mosaic_shapes_and_pixel_size(tmp_path):
    path = tmp_path / "raw.tif"
    tifffile.imwrite(path, zeros(M, N, dtype=np.uint16), resolution=(2.0, 2.0), resolutionunit=5)
    text = describe_file(path)
    assert f"angles Image (4, {M // 2}, {N // 2})" in text
    assert "pixel size:  0.5 µm" in text and "pixel size 1 µm" in text
    text = describe_file(path, demosaic_method="interpolate", mosaic_origin=(1, 1))
    assert f"angles Image (4, {M - 2}, {N - 2})" in text


def test_describe_phase_units(tmp_path):
    path = plain(tmp_path / "map.tif", zeros(M, N))
    assert "(unit not stated (assumed rad))" in describe_file(path)  # a map states none
    assert "radians" in describe_file(path, phase_unit="rad")
    assert "cannot be read without the wavelength" in describe_file(path, phase_unit="opd_nm")
    text = describe_file(path, phase_unit="pg_per_um2", wavelength_um=0.65)
    assert "x 1.74" in text and "0.65 µm (given" in text
    with pytest.raises(ValueError, match="phase_unit must be"):
        describe_file(path, phase_unit="waves")


def test_four_planes_tagged_as_planar_rgba_are_an_angles_stack(tmp_path):
    # tifffile used to save (4, M, N) arrays as planar RGBA unless told otherwise
    path = tmp_path / "old.tif"
    tifffile.imwrite(
        path, zeros(4, M, N, dtype=np.uint16), photometric="rgb", planarconfig="separate"
    )
    info = inspect_file(path)
    assert (info.axes, info.kind) == ("SYX", "angles-stack")
