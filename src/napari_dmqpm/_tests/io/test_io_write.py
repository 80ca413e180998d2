"""Writers: labels for ImageJ/Fiji, canonical stacks that round-trip, atomic and no overwrite."""

import numpy as np
import pytest
import tifffile

from napari_dmqpm.io import Acquisition, read_acquisition, write_labels, write_stack
from napari_dmqpm.io.write import STACK_CHANNELS
from napari_dmqpm.phase import synthesize_angles


def labels_image(maximum=7, shape=(12, 16)):
    labels = np.zeros(shape, dtype=np.int64)
    labels[2:5, 3:7] = 1
    labels[8:11, 9:14] = maximum
    return labels


def imagej_pixel_size(path):
    with tifffile.TiffFile(path) as tif:
        numerator, denominator = tif.pages[0].tags["XResolution"].value
        return tif.imagej_metadata, denominator / numerator


def test_labels_uint16_imagej_with_pixel_size(tmp_path):
    labels = labels_image()
    path = write_labels(tmp_path / "cells.tif", labels, pixel_size_um=0.627)
    assert path == tmp_path / "cells.tif"
    with tifffile.TiffFile(path) as tif:
        assert tif.is_imagej
        data = tif.asarray()
    assert data.dtype == np.uint16
    np.testing.assert_array_equal(data, labels)
    metadata, size = imagej_pixel_size(path)
    assert metadata["unit"] == "um"
    assert size == pytest.approx(0.627)


def test_labels_time_lapse(tmp_path):
    labels = np.stack([labels_image(), labels_image(3)])
    path = write_labels(tmp_path / "cells.tif", labels, pixel_size_um=0.5)
    with tifffile.TiffFile(path) as tif:
        assert tif.series[0].axes == "TYX"
        np.testing.assert_array_equal(tif.asarray(), labels)


@pytest.mark.parametrize("n_frames", [1, 2])
def test_labels_above_65535_are_uint32_with_imagej_calibration(tmp_path, n_frames):
    labels = np.stack([labels_image(70_000)] * n_frames) if n_frames > 1 else labels_image(70_000)
    path = write_labels(tmp_path / "many.tif", labels, pixel_size_um=0.25)
    with tifffile.TiffFile(path) as tif:
        data = tif.asarray()
        description = tif.pages[0].description
    assert data.dtype == np.uint32
    np.testing.assert_array_equal(data, labels)
    assert description.startswith("ImageJ=") and "unit=um" in description
    assert imagej_pixel_size(path)[1] == pytest.approx(0.25)


def test_labels_input_not_modified_and_bool_accepted(tmp_path):
    labels = labels_image()
    before = labels.copy()
    write_labels(tmp_path / "a.tif", labels)
    np.testing.assert_array_equal(labels, before)
    write_labels(tmp_path / "b.tif", labels > 0)


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (np.zeros((2, 2, 2, 2), np.uint16), "shape"),
        (np.zeros((4, 4), np.float32), "integers"),
        (-np.ones((4, 4), np.int32), ">= 0"),
        (np.full((4, 4), 2**33, np.int64), "2\\*\\*32"),
    ],
)
def test_bad_labels(tmp_path, labels, message):
    with pytest.raises(ValueError, match=message):
        write_labels(tmp_path / "x.tif", labels)
    assert not (tmp_path / "x.tif").exists()


def acquisition(n_frames=1, **fields):
    rows, cols = np.mgrid[:16, :20]
    phases = [np.sin(rows / 3.0) * (t + 1) for t in range(n_frames)]
    angles = np.stack([synthesize_angles(p) for p in phases])
    return Acquisition(
        phase=np.stack(phases).astype(np.float32),
        angles=angles,
        kind="ssqpm-stack",
        is_timelapse=n_frames > 1,
        **fields,
    )


@pytest.mark.parametrize("n_frames", [1, 3])
def test_stack_round_trip(tmp_path, n_frames):
    original = acquisition(n_frames, pixel_size_um=0.345, wavelength_um=0.633)
    path = write_stack(tmp_path / "stack.tif", original)
    back = read_acquisition(path)
    assert back.kind == "ssqpm-stack"
    assert back.is_timelapse == (n_frames > 1)
    np.testing.assert_array_equal(back.angles, original.angles)
    np.testing.assert_array_equal(back.phase, original.phase)
    assert back.pixel_size_um == pytest.approx(0.345, rel=1e-9)
    assert back.wavelength_um == pytest.approx(0.633)
    with tifffile.TiffFile(path) as tif:
        assert tif.imagej_metadata["Labels"][:5] == list(STACK_CHANNELS)
        assert tif.series[0].axes == ("TCYX" if n_frames > 1 else "CYX")


def test_stack_without_pixel_size_or_wavelength(tmp_path):
    back = read_acquisition(write_stack(tmp_path / "s.tif", acquisition()))
    assert back.pixel_size_um is None and back.wavelength_um is None


def test_stack_needs_angles(tmp_path):
    phase_only = Acquisition(phase=np.zeros((1, 4, 4), np.float32), kind="phase-map")
    with pytest.raises(ValueError, match="angle images"):
        write_stack(tmp_path / "s.tif", phase_only)


@pytest.mark.parametrize("writer", ["labels", "stack"])
def test_existing_file_is_never_written_over(tmp_path, writer):
    path = tmp_path / "precious.tif"
    path.write_bytes(b"user data")

    def write(**options):
        if writer == "labels":
            return write_labels(path, labels_image(), **options)
        return write_stack(path, acquisition(), **options)

    with pytest.raises(FileExistsError, match="precious.tif"):
        write()
    assert path.read_bytes() == b"user data"
    write(overwrite=True)
    assert path.read_bytes() != b"user data"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precious.tif"]


def failing_imwrite(handle, *args, **kwargs):
    handle.write(b"II*\x00 half a file")
    raise OSError("disk full")


@pytest.mark.parametrize("existing", [False, True])
def test_failed_write_leaves_no_file_and_keeps_the_old_one(tmp_path, monkeypatch, existing):
    path = tmp_path / "out.tif"
    if existing:
        path.write_bytes(b"old")
    monkeypatch.setattr(tifffile, "imwrite", failing_imwrite)
    with pytest.raises(OSError, match="disk full"):
        write_labels(path, labels_image(), overwrite=True)
    with pytest.raises(OSError, match="disk full"):
        write_stack(path, acquisition(), overwrite=True)
    if existing:
        assert path.read_bytes() == b"old"
    else:
        assert not path.exists()
    assert [p.name for p in tmp_path.iterdir()] == (["out.tif"] if existing else [])


def test_file_appearing_during_the_write_is_not_replaced(tmp_path, monkeypatch):
    path = tmp_path / "race.tif"
    real_imwrite = tifffile.imwrite

    def imwrite_then_someone_else_writes(handle, *args, **kwargs):
        real_imwrite(handle, *args, **kwargs)
        path.write_bytes(b"theirs")

    monkeypatch.setattr(tifffile, "imwrite", imwrite_then_someone_else_writes)
    with pytest.raises(FileExistsError, match="race.tif"):
        write_labels(path, labels_image())
    assert path.read_bytes() == b"theirs"
    assert [p.name for p in tmp_path.iterdir()] == ["race.tif"]


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_labels(tmp_path / "no" / "x.tif", labels_image())


def test_atomic_write_never_touches_the_process_umask(tmp_path, monkeypatch):
    """Setting the umask to read it races with files other threads create at that moment."""
    import os
    import stat

    from napari_dmqpm.io import write as write_module

    def forbidden(mask):
        raise AssertionError("os.umask called during a write")

    monkeypatch.setattr(os, "umask", forbidden)
    target = tmp_path / "out.bin"
    write_module.atomic_write(target, lambda handle: handle.write(b"x"), overwrite=False)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~write_module._UMASK
