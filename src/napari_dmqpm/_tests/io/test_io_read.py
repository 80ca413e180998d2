"""read_acquisition: every format, compression, dtype, pixel-size source, unit and bad input."""

import math

import numpy as np
import pytest
import tifffile
from PIL import Image

from napari_dmqpm.io import DataWarning, FormatError, read_acquisition
from napari_dmqpm.phase import synthesize_angles

M, N = 32, 40


def cell_phase(shape=(M, N), height=3.0):
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    r0, c0 = shape[0] / 2, shape[1] / 2
    dist2 = ((rows - r0) ** 2 + (cols - c0) ** 2) / (shape[0] / 3) ** 2
    return height * np.clip(1 - dist2, 0, None) ** 2  # a cell on a flat background


def tilt(shape=(M, N)):
    return 0.4 * np.mgrid[: shape[0], : shape[1]][1]


def rms(a):
    return float(np.sqrt(np.mean(np.square(a))))


def stack(n_frames=1, dtype=np.float32):
    """(T, 5, M, N): synthetic angles and their phase, frames differ by height."""
    frames = []
    for t in range(n_frames):
        truth = cell_phase(height=2.0 + t)
        angles = synthesize_angles(truth + tilt())
        frames.append(np.concatenate([angles, truth[np.newaxis]]).astype(dtype))
    return np.stack(frames)


def test_ssqpm_stack_reads_angles_and_phase_unchanged(tmp_path):
    data = stack(1)
    path = tmp_path / "s.tif"
    tifffile.imwrite(path, data[0], imagej=True, metadata={"axes": "CYX"})
    acq = read_acquisition(path)
    assert acq.kind == "ssqpm-stack" and not acq.is_timelapse
    assert acq.angles.shape == (1, 4, M, N) and acq.phase.shape == (1, M, N)
    np.testing.assert_array_equal(acq.angles[0], data[0, :4])
    np.testing.assert_array_equal(acq.phase[0], data[0, 4])
    assert "channel 4" in acq.phase_source
    assert acq.modulation is None


def test_ssqpm_time_lapse(tmp_path):
    data = stack(3)
    path = tmp_path / "s.tif"
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": "TCYX"})
    acq = read_acquisition(path)
    assert acq.is_timelapse and acq.n_frames == 3
    np.testing.assert_array_equal(acq.phase, data[:, 4])
    np.testing.assert_array_equal(acq.angles, data[:, :4])


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.int32, np.float64])
def test_angles_stack_any_dtype_retrieves_the_phase(tmp_path, dtype):
    truth = cell_phase()
    scale = 0.1 if dtype == np.uint8 else 1.0  # keep uint8 below 255
    angles = np.round(synthesize_angles(truth + tilt()) * scale).astype(dtype)
    path = tmp_path / "a.tif"
    tifffile.imwrite(path, angles, photometric="minisblack")
    acq = read_acquisition(path)
    assert acq.kind == "angles-stack"
    assert acq.angles.dtype == np.float32 and acq.phase.dtype == np.float32
    np.testing.assert_array_equal(acq.angles[0], angles.astype(np.float32))
    assert rms(acq.phase[0] - truth) < (0.1 if dtype == np.uint8 else 0.02)
    assert acq.modulation.shape == (1, M, N)
    assert acq.phase_source.startswith("four-step retrieval")


def mosaic_from(angles):
    """Interleave (4, m, n) angle images into an IMX250MZR mosaic (2m, 2n)."""
    raw = np.zeros((2 * angles.shape[1], 2 * angles.shape[2]), dtype=np.uint16)
    raw[1::2, 1::2], raw[0::2, 1::2] = angles[0], angles[1]  # 0 and 45 degrees
    raw[0::2, 0::2], raw[1::2, 0::2] = angles[2], angles[3]  # 90 and 135 degrees
    return raw


@pytest.mark.parametrize("method", ["superpixel", "interpolate"])
def test_raw_mosaic_is_demosaiced_and_retrieved(tmp_path, method):
    truth = cell_phase((M, N))
    angles = np.round(synthesize_angles(truth + tilt((M, N)), mean=2000.0)).astype(np.uint16)
    path = tmp_path / "raw.tif"
    tifffile.imwrite(path, mosaic_from(angles), resolution=(10.0, 10.0), resolutionunit=5)
    acq = read_acquisition(path, demosaic_method=method)
    assert acq.kind == "raw-mosaic"
    if method == "superpixel":
        np.testing.assert_array_equal(acq.angles[0], angles)
        assert rms(acq.phase[0] - truth) < 0.02
        assert acq.pixel_size_um == pytest.approx(0.2)  # 0.1 µm doubled
    else:
        assert acq.angles.shape == (1, 4, 2 * M, 2 * N)
        assert acq.pixel_size_um == pytest.approx(0.1)
    assert acq.metadata["demosaic"] == {"method": method, "origin": [0, 0]}


def test_raw_mosaic_origin(tmp_path):
    angles = np.round(synthesize_angles(cell_phase() + tilt())).astype(np.uint16)
    shifted = np.pad(mosaic_from(angles), ((1, 0), (0, 0)))
    path = tmp_path / "raw.tif"
    tifffile.imwrite(path, shifted)
    acq = read_acquisition(path, mosaic_origin=(1, 0))
    np.testing.assert_array_equal(acq.angles[0], angles)


def test_raw_mosaic_time_lapse(tmp_path):
    angles = np.round(synthesize_angles(cell_phase() + tilt())).astype(np.uint16)
    raw = mosaic_from(angles)
    path = tmp_path / "raw.tif"
    tifffile.imwrite(path, np.stack([raw, raw, raw]), imagej=True, metadata={"axes": "TYX"})
    acq = read_acquisition(path)
    assert acq.kind == "raw-mosaic" and acq.is_timelapse
    assert acq.angles.shape == (3, 4, M, N)


COMPRESSIONS = ["none", "lzw", "zlib", "zstd", "lzma", "packbits", "deflate"]


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_compressed_tiffs_read_identically(tmp_path, compression):
    data = stack(2)
    path = tmp_path / "c.tif"
    options = {} if compression == "none" else {"compression": compression}
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": "TCYX"}, **options)
    acq = read_acquisition(path)
    np.testing.assert_array_equal(acq.phase, data[:, 4])
    np.testing.assert_array_equal(acq.angles, data[:, :4])


def test_ome_tiff_pixel_size_unit_and_wavelength(tmp_path):
    path = tmp_path / "s.ome.tif"
    metadata = {
        "axes": "CYX",
        "PhysicalSizeX": 650.0,
        "PhysicalSizeXUnit": "nm",
        "Channel": {"ExcitationWavelength": [633.0] * 5},
    }
    tifffile.imwrite(path, stack(1)[0], ome=True, metadata=metadata, compression="zstd")
    acq = read_acquisition(path)
    assert acq.pixel_size_um == pytest.approx(0.65)
    assert acq.wavelength_um == pytest.approx(0.633)
    assert "OME" in acq.metadata["pixel_size_source"]


@pytest.mark.parametrize("unit", ["micron", "um", "\\u00B5m", "nm"])
def test_imagej_calibration(tmp_path, unit):
    path = tmp_path / "p.tif"
    per_unit = 2.0 if unit != "nm" else 0.002  # 0.5 µm pixels either way
    tifffile.imwrite(
        path,
        cell_phase().astype(np.float32),
        imagej=True,
        resolution=(per_unit, per_unit),
        metadata={"unit": unit, "wavelength_um": 0.532},
    )
    acq = read_acquisition(path)
    assert acq.pixel_size_um == pytest.approx(0.5)
    assert acq.wavelength_um == pytest.approx(0.532)


@pytest.mark.parametrize(
    ("resolution", "unit", "expected"),
    [(2540.0, "INCH", 10.0), (20000.0, "CENTIMETER", 0.5), (2.0, "NONE", None)],
)
def test_tiff_resolution_tags(tmp_path, resolution, unit, expected):
    path = tmp_path / "p.tif"
    tifffile.imwrite(
        path,
        cell_phase().astype(np.float32),
        resolution=(resolution, resolution),
        resolutionunit=unit,
    )
    acq = read_acquisition(path)
    assert acq.pixel_size_um == (pytest.approx(expected) if expected else None)


def test_no_pixel_size_and_the_override(tmp_path):
    path = tmp_path / "p.tif"
    tifffile.imwrite(path, cell_phase().astype(np.float32), metadata=None)
    assert read_acquisition(path).pixel_size_um is None
    assert read_acquisition(path, pixel_size_um=0.3).pixel_size_um == 0.3


def test_png_pixel_size_from_phys(tmp_path):
    path = tmp_path / "raw.png"
    Image.fromarray(np.full((8, 8), 7, dtype=np.uint8)).save(path, dpi=(25400, 25400))
    acq = read_acquisition(path, background=None)
    assert acq.kind == "raw-mosaic"
    assert acq.pixel_size_um == pytest.approx(2.0)  # 1 µm doubled by superpixel


@pytest.mark.parametrize(
    ("unit", "factor"),
    [
        ("rad", 1.0),
        ("opd_um", 2 * math.pi / 0.65),
        ("opd_nm", 2 * math.pi / 650.0),
        ("pg_per_um2", 2 * math.pi * 0.18 / 0.65),
    ],
)
def test_phase_units_are_converted_to_radians(tmp_path, unit, factor):
    values = cell_phase().astype(np.float32)
    path = tmp_path / "p.tif"
    tifffile.imwrite(path, values)
    acq = read_acquisition(path, phase_unit=unit, wavelength_um=0.65)
    np.testing.assert_allclose(acq.phase[0], values * factor, rtol=1e-6)
    assert acq.metadata["phase_unit"] == unit
    assert acq.metadata["radians_per_unit"] == pytest.approx(factor)


def test_wavelength_from_the_file_serves_the_conversion(tmp_path):
    path = tmp_path / "p.tif"
    tifffile.imwrite(
        path, np.ones((8, 8), np.float32), imagej=True, metadata={"wavelength_nm": 500}
    )
    acq = read_acquisition(path, phase_unit="opd_um")
    assert acq.wavelength_um == pytest.approx(0.5)
    assert float(acq.phase[0, 0, 0]) == pytest.approx(2 * math.pi / 0.5)


def test_non_radian_unit_without_wavelength_names_it(tmp_path):
    path = tmp_path / "p.tif"
    tifffile.imwrite(path, np.ones((8, 8), np.float32))
    with pytest.raises(ValueError, match="wavelength_um"):
        read_acquisition(path, phase_unit="pg_per_um2")


def test_nan_in_a_phase_map_becomes_zero_with_a_warning(tmp_path):
    values = cell_phase().astype(np.float32)
    values[3, 4], values[5, 6] = np.nan, np.inf
    path = tmp_path / "p.tif"
    tifffile.imwrite(path, values)
    with pytest.warns(DataWarning, match="replaced 2 NaN/Inf phase pixel"):
        acq = read_acquisition(path)
    assert acq.phase[0, 3, 4] == 0 and acq.phase[0, 5, 6] == 0
    assert np.isfinite(acq.phase).all()


def test_nan_in_intensities_becomes_the_channel_median(tmp_path):
    angles = synthesize_angles(cell_phase() + tilt())
    angles[2, 10, 10] = np.nan
    path = tmp_path / "a.tif"
    tifffile.imwrite(path, angles, photometric="minisblack")
    with pytest.warns(DataWarning, match="replaced 1 NaN/Inf intensity pixel"):
        acq = read_acquisition(path)
    assert acq.angles[0, 2, 10, 10] == pytest.approx(np.nanmedian(angles[2]))
    assert np.isfinite(acq.phase).all()


def test_bigtiff(tmp_path):
    path = tmp_path / "big.tif"
    data = stack(1)[0]
    tifffile.imwrite(path, data, bigtiff=True, photometric="minisblack")
    acq = read_acquisition(path)
    assert acq.kind == "ssqpm-stack"
    np.testing.assert_array_equal(acq.phase[0], data[4])


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.tif"):
        read_acquisition(tmp_path / "nope.tif")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.tif"
    path.write_bytes(b"")
    with pytest.raises(FormatError, match=r"empty\.tif.*empty"):
        read_acquisition(path)


def test_random_bytes(tmp_path):
    path = tmp_path / "noise.tif"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(FormatError, match=r"noise\.tif"):
        read_acquisition(path)


@pytest.mark.parametrize("compression", [None, "lzw"])
@pytest.mark.parametrize("fraction", [0.3, 0.8, 0.99])
def test_truncated_tiff(tmp_path, compression, fraction):
    full = tmp_path / "full.tif"
    tifffile.imwrite(
        full, stack(2), imagej=True, metadata={"axes": "TCYX"}, compression=compression
    )
    data = full.read_bytes()
    path = tmp_path / "cut.tif"
    path.write_bytes(data[: int(len(data) * fraction)])
    if fraction < 0.95:  # the pixel data themselves are cut
        with pytest.raises(FormatError, match=r"cut\.tif.*(truncated|corrupt)"):
            read_acquisition(path)
    else:
        assert_error_or_intact(path, stack(2))


def assert_error_or_intact(path, data):
    """A truncated file raises FormatError, or (when only trailing IFDs were cut and the
    pixel data are complete, which ImageJ also reads) gives back exactly the data."""
    try:
        acq = read_acquisition(path)
    except FormatError as error:
        assert path.name in str(error)
        assert "truncated" in str(error) or "corrupt" in str(error)
    else:
        np.testing.assert_array_equal(acq.phase, data[:, 4])
        np.testing.assert_array_equal(acq.angles, data[:, :4])


def test_truncated_multipage_tiff_is_not_read_as_fewer_pages(tmp_path):
    full = tmp_path / "full.tif"
    for plane in stack(1)[0]:
        tifffile.imwrite(full, plane, append=True, metadata=None)
    data = full.read_bytes()
    path = tmp_path / "cut.tif"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError, match=r"cut\.tif.*(truncated|corrupt)"):
        read_acquisition(path)


def test_truncated_png(tmp_path):
    full = tmp_path / "full.png"
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (64, 64), dtype=np.uint8)).save(full)
    path = tmp_path / "cut.png"
    path.write_bytes(full.read_bytes()[:500])
    with pytest.raises(FormatError, match=r"cut\.png.*truncated"):
        read_acquisition(path)


def test_wrong_channel_count_and_complex(tmp_path):
    three = tmp_path / "three.tif"
    tifffile.imwrite(three, np.zeros((3, 8, 8), np.float32), imagej=True, metadata={"axes": "CYX"})
    with pytest.raises(FormatError, match="C=3"):
        read_acquisition(three)
    cplx = tmp_path / "cplx.tif"
    tifffile.imwrite(cplx, np.zeros((8, 8), np.complex64))
    with pytest.raises(FormatError, match="complex"):
        read_acquisition(cplx)


def test_tiny_mosaic_is_a_format_error(tmp_path):
    path = tmp_path / "tiny.png"
    Image.fromarray(np.zeros((1, 5), dtype=np.uint8)).save(path)
    with pytest.raises(FormatError, match=r"tiny\.png.*super-pixel"):
        read_acquisition(path)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"demosaic_method": "bilinear"}, "demosaic_method"),
        ({"mosaic_origin": (0, 2)}, "mosaic_origin"),
        ({"sign": 2}, "sign"),
        ({"background": "cubic"}, "background"),
        ({"pixel_size_um": -1.0}, "pixel_size_um"),
        ({"phase_unit": "deg"}, "phase_unit"),
        ({"kind": "movie"}, "kind"),
    ],
)
def test_bad_options_name_the_parameter(tmp_path, options, message):
    path = tmp_path / "p.tif"
    tifffile.imwrite(path, np.ones((8, 8), np.float32))
    with pytest.raises(ValueError, match=message):
        read_acquisition(path, **options)
