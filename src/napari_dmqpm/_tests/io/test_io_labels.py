"""Labels images: the writers' tag, the rule for untagged label exports, read_labels, skipping."""

import logging

import numpy as np
import pytest
import tifffile
from PIL import Image

from napari_dmqpm.io import (
    LABELS_KIND,
    FormatError,
    describe_file,
    inspect_file,
    read_acquisition,
    read_labels,
    write_labels,
)
from napari_dmqpm.io.labels import TAGGED_REASON, label_structure, without_labels
from napari_dmqpm.io.write import LabelsStream
from napari_dmqpm.phase import synthesize_angles


def blobs(n_labels=300, shape=(256, 320), *, seed=0, id_step=1, dtype=np.uint16):
    """A label image of ``n_labels`` squares of 4 to 11 px on a 0 background (ids 1, 1+step...)."""
    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, dtype)
    for index in range(n_labels):
        side = int(rng.integers(4, 12))
        top, left = rng.integers(0, shape[0] - side), rng.integers(0, shape[1] - side)
        labels[top : top + side, left : left + side] = 1 + index * id_step
    return labels


def camera_mosaic(shape=(64, 80), *, mean=1500.0, noise=True, seed=0):
    """A raw IMX250MZR-type frame of fringes (the four angles interleaved 2x2), as uint16."""
    rows, cols = shape[0] // 2, shape[1] // 2
    phase = 0.4 * np.arange(cols)[None, :] + np.zeros((rows, 1))
    i0, i45, i90, i135 = synthesize_angles(phase, mean=mean, visibility=0.7)
    mosaic = np.empty(shape, np.float64)
    mosaic[0::2, 0::2], mosaic[0::2, 1::2], mosaic[1::2, 0::2], mosaic[1::2, 1::2] = (
        i90,
        i45,
        i135,
        i0,
    )
    if noise:
        mosaic = np.random.default_rng(seed).poisson(mosaic)
    return np.round(mosaic).astype(np.uint16)


def dim_object():
    """A very dark frame clipped to 0: one object of 1 or 2 counts at random, ~56 % of it."""
    frame = np.zeros((64, 80), np.uint16)
    frame[8:56, 10:70] = np.random.default_rng(2).integers(1, 3, (48, 60))
    return frame


# -- the writers' tag ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("maximum", "n_frames", "dtype"),
    [(7, None, np.uint16), (7, 3, np.uint16), (70_000, None, np.uint32), (70_000, 2, np.uint32)],
)
def test_written_labels_are_tagged_and_read_back_as_labels(tmp_path, maximum, n_frames, dtype):
    frame = blobs(20, (40, 48), dtype=np.uint32)
    frame[frame == 20] = maximum
    labels = (
        frame if n_frames is None else np.stack([np.roll(frame, t, 1) for t in range(n_frames)])
    )
    path = write_labels(tmp_path / "cells_labels.tif", labels, pixel_size_um=0.627)
    with tifffile.TiffFile(path) as tif:  # still an ImageJ file for Fiji, still plain tifffile
        assert tif.is_imagej and tif.imagej_metadata["unit"] == "um"
        assert "dmqpm_content=labels" in tif.pages[0].description.splitlines()
        np.testing.assert_array_equal(tif.asarray(), labels)
    info = inspect_file(path)
    assert (info.kind, info.reason, info.dtype) == (
        LABELS_KIND,
        TAGGED_REASON,
        np.dtype(dtype).name,
    )
    assert info.pixel_size_um == pytest.approx(0.627)
    assert (info.n_frames, info.is_timelapse) == (n_frames or 1, n_frames is not None)
    image = read_labels(path)
    assert image.labels.dtype == dtype and image.pixel_size_um == pytest.approx(0.627)
    np.testing.assert_array_equal(image.labels, labels if n_frames else labels[None])
    assert (
        image.is_timelapse == (n_frames is not None)
        and image.metadata["detection"] == TAGGED_REASON
    )


def test_a_tagged_empty_labels_image_is_still_labels(tmp_path):
    path = write_labels(tmp_path / "none.tif", np.zeros((16, 16), np.uint16))
    assert inspect_file(path).kind == LABELS_KIND  # no structure to see: only the tag tells
    assert read_labels(path).pixel_size_um is None


def test_the_streamed_labels_of_dmqpm_segment_are_tagged(tmp_path):
    with LabelsStream(tmp_path / "s.tif", shape=(2, 16, 16), pixel_size_um=0.5) as stream:
        stream.write(0, np.zeros((16, 16), np.uint16))
        stream.write(1, np.full((16, 16), 70_000, np.uint32))  # widens to uint32
    info = inspect_file(tmp_path / "s.tif")
    assert (info.kind, info.reason, info.n_frames) == (LABELS_KIND, TAGGED_REASON, 2)


def test_a_labels_file_is_no_recording_unless_a_kind_is_given(tmp_path):
    path = write_labels(tmp_path / "cells_labels.tif", blobs(30, (32, 40)), pixel_size_um=0.5)
    with pytest.raises(FormatError, match=r"cells_labels\.tif: is a labels image.*read_labels"):
        read_acquisition(path)
    forced = read_acquisition(path, kind="raw-mosaic")  # an explicit kind still wins
    assert forced.kind == "raw-mosaic" and forced.angles.shape == (1, 4, 16, 20)


def test_describe_says_a_labels_file_is_labels(tmp_path):
    path = write_labels(tmp_path / "movie.tif", np.stack([blobs(10, (24, 32))] * 2))
    text = describe_file(path)
    assert "kind:        labels  [tagged dmqpm_content=labels" in text
    assert "Labels layer (2, 24, 32)" in text and "dmqpm segment skips it" in text


# -- untagged label images of other tools ----------------------------------------------------


@pytest.mark.parametrize(
    ("dtype", "id_step", "n_labels"),
    [(np.uint16, 1, 300), (np.uint16, 7, 300), (np.uint32, 100_003, 200), (np.uint8, 1, 40)],
)
def test_an_untagged_label_export_is_labels_not_a_mosaic(tmp_path, dtype, id_step, n_labels):
    labels = blobs(n_labels, id_step=id_step, dtype=dtype)
    path = tmp_path / "foreign_masks.tif"
    tifffile.imwrite(path, labels, metadata=None)
    info = inspect_file(path)
    assert info.kind == LABELS_KIND, info.reason
    assert "piecewise constant" in info.reason and "override with kind=" in info.reason
    np.testing.assert_array_equal(read_labels(path).labels[0], labels)
    with pytest.raises(FormatError, match="is a labels image"):
        read_acquisition(path)  # not demosaicked into nonsense angles and phase
    assert inspect_file(path, kind="raw-mosaic").kind == "raw-mosaic"


def test_an_untagged_label_time_lapse_and_a_label_png(tmp_path):
    movie = np.stack([blobs(50, (64, 64), seed=t) for t in range(3)])
    tifffile.imwrite(tmp_path / "movie.tif", movie, metadata=None, photometric="minisblack")
    info = inspect_file(tmp_path / "movie.tif")
    assert (info.kind, info.n_frames, "frame 0" in info.reason) == (LABELS_KIND, 3, True)
    Image.fromarray(blobs(80, (64, 96))).save(tmp_path / "cp_masks.png")  # cellpose's format
    assert inspect_file(tmp_path / "cp_masks.png").kind == LABELS_KIND


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param(camera_mosaic(), id="noisy mosaic"),
        pytest.param(camera_mosaic(noise=False), id="noiseless mosaic"),
        pytest.param(camera_mosaic(mean=3.0), id="dim mosaic with zeros"),
        pytest.param(
            np.where(blobs(30, (64, 80)) > 0, camera_mosaic(), 0).astype(np.uint16),
            id="objects on a background clipped to 0",
        ),
        pytest.param(
            np.random.default_rng(1).choice([0, 1, 1, 1, 1, 1, 1, 1, 1, 2], (64, 80)),
            id="dark frame of 0, 1 and 2",
        ),
        pytest.param(dim_object(), id="dim noisy object on a 0 background"),
        pytest.param(np.zeros((64, 80), np.uint16), id="all zero"),
        pytest.param(np.full((64, 80), 9, np.uint16), id="constant"),
        pytest.param(blobs(30, (64, 80)).astype(np.int32) - 1, id="no 0 background"),
        pytest.param(blobs(30, (64, 80)).astype(np.float32), id="float"),
    ],
)
def test_camera_frames_and_odd_images_are_not_label_images(frame):
    assert label_structure(frame) is None


@pytest.mark.parametrize("kind", [None, "raw-mosaic"])
def test_camera_frames_on_disk_stay_raw_mosaics(tmp_path, kind):
    tifffile.imwrite(tmp_path / "frame.tif", camera_mosaic(), metadata=None)
    Image.fromarray(camera_mosaic(mean=100.0).astype(np.uint8)).save(tmp_path / "frame.png")
    for name in ("frame.tif", "frame.png"):
        assert inspect_file(tmp_path / name, kind=kind).kind == "raw-mosaic"


def test_read_labels_refuses_other_files_unless_forced(tmp_path):
    path = tmp_path / "frame.tif"
    tifffile.imwrite(path, camera_mosaic(), metadata=None)
    with pytest.raises(FormatError, match=r"frame\.tif: not a labels image.*force=True"):
        read_labels(path)
    assert read_labels(path, force=True).labels.shape == (1, 64, 80)
    tifffile.imwrite(tmp_path / "phase.tif", np.zeros((8, 8), np.float32))
    with pytest.raises(FormatError, match="must hold integers"):
        read_labels(tmp_path / "phase.tif", force=True)


# -- dmqpm segment's inputs ------------------------------------------------------------------


def test_without_labels_skips_each_labels_image_with_one_message(tmp_path, caplog):
    image = tmp_path / "cells.tif"
    tifffile.imwrite(image, camera_mosaic(), metadata=None)
    ours = write_labels(tmp_path / "cells_labels.tif", blobs(30, (64, 80)))
    theirs = tmp_path / "masks.tif"
    tifffile.imwrite(theirs, blobs(30, (64, 80)), metadata=None)
    missing = tmp_path / "missing.tif"  # kept: segmenting it says what is wrong
    with caplog.at_level(logging.WARNING, logger="napari_dmqpm.io.labels"):
        kept = without_labels([image, ours, theirs, missing])
    assert kept == [image, missing]
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2
    assert messages[0].startswith(f"{ours}: is a labels image, skipped (tagged")
    assert messages[1].startswith(f"{theirs}: is a labels image, skipped (integer image")
    # an explicit kind beats the heuristic, never the tag
    assert without_labels([image, ours, theirs], kind="raw-mosaic") == [image, theirs]
    with pytest.raises(ValueError, match="nothing to segment: all 2 inputs are labels images"):
        without_labels([ours, theirs])
