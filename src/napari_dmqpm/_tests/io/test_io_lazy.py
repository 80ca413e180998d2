"""Lazy reading: dask arrays that read only the frames (and rows) that are used."""

import dask.array as da
import numpy as np
import pytest
import tifffile

from napari_dmqpm.io import DataWarning, FormatError, read_acquisition
from napari_dmqpm.io import lazy as lazy_module
from napari_dmqpm.phase import synthesize_angles

M, N = 24, 32


def frames(n_frames, rng):
    """(T, 5, M, N) float32: angles of a random smooth phase, and the phase."""
    out = []
    for _ in range(n_frames):
        rows, cols = np.mgrid[:M, :N]
        centre = rng.uniform(8, 16, size=2)
        phase = 3.0 * np.exp(-((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2) / 40.0)
        out.append(np.concatenate([synthesize_angles(phase + 0.2 * cols), phase[None]]))
    return np.stack(out).astype(np.float32)


@pytest.fixture
def rng():
    return np.random.default_rng(5)


def count_reads(monkeypatch):
    """Record (planes, rows) of every PlaneReader.read."""
    calls = []
    real = lazy_module.PlaneReader.read

    def read(self, planes, rows=slice(None)):
        calls.append((tuple(int(p) for p in np.ravel(planes)), rows.indices(self.plane_shape[0])))
        return real(self, planes, rows)

    monkeypatch.setattr(lazy_module.PlaneReader, "read", read)
    return calls


def assert_same(lazy, eager):
    for name in ("angles", "phase", "modulation"):
        a, b = getattr(lazy, name), getattr(eager, name)
        assert (a is None) == (b is None), name
        if a is not None:
            assert isinstance(a, da.Array) and a.dtype == np.float32
            np.testing.assert_array_equal(np.asarray(a), b, err_msg=name)
    assert (lazy.kind, lazy.phase_source, lazy.pixel_size_um) == (
        eager.kind,
        eager.phase_source,
        eager.pixel_size_um,
    )


@pytest.mark.parametrize("compression", [None, "zlib"])
def test_an_ssqpm_time_lapse_opens_without_reading_and_reads_one_frame(
    tmp_path, rng, monkeypatch, compression
):
    data = frames(20, rng)
    path = tmp_path / "movie.tif"
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": "TCYX"}, compression=compression)
    calls = count_reads(monkeypatch)
    acq = read_acquisition(path, lazy=True)
    assert calls == []  # opening reads the header only
    assert isinstance(acq.phase, da.Array) and acq.phase.shape == (20, M, N)
    assert isinstance(acq.angles, da.Array) and acq.angles.shape == (20, 4, M, N)
    np.testing.assert_array_equal(np.asarray(acq.phase[7]), data[7, 4])
    assert calls == [((7 * 5 + 4,), (0, M, 1))]  # the phase plane of frame 7, nothing else
    calls.clear()
    np.testing.assert_array_equal(np.asarray(acq.angles[3, 2]), data[3, 2])
    assert calls == [((3 * 5 + 2,), (0, M, 1))]
    reader = "by byte offset" if compression is None else "page by page"
    assert acq.metadata["lazy"]["reader"] == reader


def test_uncompressed_frames_come_in_row_strips_and_a_band_reads_its_rows_only(
    tmp_path, rng, monkeypatch
):
    monkeypatch.setattr(lazy_module, "STRIP_BYTES", 8 * N * 4)  # 8 rows per chunk
    data = frames(3, rng)
    path = tmp_path / "movie.tif"
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": "TCYX"})
    calls = count_reads(monkeypatch)
    acq = read_acquisition(path, lazy=True)
    assert acq.phase.chunks[1] == (8, 8, 8) and acq.metadata["lazy"]["rows_per_chunk"] == 8
    band = np.asarray(acq.phase[1, 9:14, 3:7])
    np.testing.assert_array_equal(band, data[1, 4, 9:14, 3:7])
    assert calls == [((1 * 5 + 4,), (8, 16, 1))]


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("ssqpm-stack", {"phase_unit": "pg_per_um2", "wavelength_um": 0.65}),
        ("angles-stack", {"background": "quadratic", "sign": -1}),
        ("raw-mosaic", {"demosaic_method": "superpixel", "mosaic_origin": (0, 1)}),
        ("raw-mosaic", {"demosaic_method": "interpolate"}),
        ("phase-map", {"phase_unit": "opd_um", "wavelength_um": 0.65}),
    ],
)
def test_lazy_values_equal_the_eager_reader(tmp_path, rng, kind, options):
    data = frames(3, rng)
    if kind == "angles-stack":
        data, axes = data[:, :4], "TCYX"
    elif kind == "raw-mosaic":  # integer planes: a raw camera-frame series
        data, axes = (data[:, 0] * 100).astype(np.uint16), "TYX"
    elif kind == "phase-map":
        data, axes = data[:, 4], "TYX"
    else:
        axes = "TCYX"
    path = tmp_path / "movie.tif"
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": axes}, resolution=(2.0, 2.0))
    eager = read_acquisition(path, lazy=False, **options)
    lazy = read_acquisition(path, lazy=True, **options)
    assert lazy.kind == kind
    assert_same(lazy, eager)
    assert "lazy" in lazy.metadata and "lazy" not in eager.metadata


def test_the_phase_of_an_angles_stack_is_retrieved_only_for_the_frame_viewed(
    tmp_path, rng, monkeypatch
):
    data = frames(6, rng)[:, :4]
    path = tmp_path / "angles.tif"
    tifffile.imwrite(path, data, photometric="minisblack")
    retrieved = []
    real = lazy_module.assemble

    def spy(**kwargs):
        retrieved.append(kwargs["angles"].shape)
        return real(**kwargs)

    monkeypatch.setattr(lazy_module, "assemble", spy)
    acq = read_acquisition(path, lazy=True)
    assert retrieved == []
    eager = read_acquisition(path, lazy=False)
    np.testing.assert_array_equal(np.asarray(acq.phase[4]), eager.phase[4])
    np.testing.assert_array_equal(np.asarray(acq.modulation[4]), eager.modulation[4])
    assert retrieved == [(1, 4, M, N)]  # one retrieval serves phase and modulation


def test_nan_in_a_strip_is_filled_with_the_median_of_the_whole_angle_image(
    tmp_path, rng, monkeypatch
):
    monkeypatch.setattr(lazy_module, "STRIP_BYTES", 8 * N * 4)
    data = frames(2, rng)
    data[1, 2, 17, 3:6] = np.nan
    path = tmp_path / "nan.tif"
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": "TCYX"})
    acq = read_acquisition(path, lazy=True)  # nothing read: no warning yet
    np.testing.assert_array_equal(np.asarray(acq.angles[0]), data[0, :4])
    with pytest.warns(DataWarning, match="replaced 3 NaN/Inf"):
        strip = np.asarray(acq.angles[1, 2, 16:24])
    with pytest.warns(DataWarning):
        eager = read_acquisition(path, lazy=False)
    np.testing.assert_array_equal(strip, eager.angles[1, 2, 16:24])


def test_lazy_defaults_to_large_time_lapses_only(tmp_path, rng, monkeypatch):
    data = frames(3, rng)
    movie, single = tmp_path / "movie.tif", tmp_path / "single.tif"
    tifffile.imwrite(movie, data, imagej=True, metadata={"axes": "TCYX"})
    tifffile.imwrite(single, data[0], imagej=True, metadata={"axes": "CYX"})
    assert isinstance(read_acquisition(movie).phase, np.ndarray)
    monkeypatch.setattr(lazy_module, "LAZY_THRESHOLD_BYTES", data.nbytes // 2)
    assert isinstance(read_acquisition(movie).phase, da.Array)
    assert isinstance(read_acquisition(single).phase, np.ndarray)  # one frame: at once
    assert isinstance(read_acquisition(single, lazy=True).phase, da.Array)
    with pytest.raises(ValueError, match="lazy must be None, True or False; got lazy='yes'"):
        read_acquisition(movie, lazy="yes")


def test_a_file_truncated_after_opening_raises_a_format_error_when_read(tmp_path, rng):
    data = frames(4, rng)
    path = tmp_path / "movie.tif"
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": "TCYX"})
    acq = read_acquisition(path, lazy=True)
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        handle.truncate(size - data[3].nbytes)
    np.testing.assert_array_equal(np.asarray(acq.phase[0]), data[0, 4])
    with pytest.raises(FormatError, match="truncated"):
        np.asarray(acq.phase[3])
