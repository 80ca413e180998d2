"""track_file on a long labels file holds one frame at a time, never the stack."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_dmqpm.io import write_labels
from napari_dmqpm.io.ctc import ctc_tracks, write_ctc
from napari_dmqpm.io.write import LabelsStream
from napari_dmqpm.tracking import track_labels
from napari_dmqpm.tracking.files import track_file
from napari_dmqpm.tracking.frames import LabelFrames, RelabelledFrames


def _movie(n_frames=6):
    """Two squares drifting right (labels renumbered each frame); one missing in frame 3."""
    labels = np.zeros((n_frames, 40, 64), np.uint16)
    for t in range(n_frames):
        labels[t, 5:13, 4 + 2 * t : 12 + 2 * t] = 10 + t
        if t != 3:
            labels[t, 25:33, 4 + 2 * t : 12 + 2 * t] = 30 - t
    return labels


def _streamed(path, labels):
    with LabelsStream(path, shape=labels.shape) as stream:
        for t, frame in enumerate(labels):
            stream.write(t, frame)
    return path


def test_track_file_never_reads_the_whole_stack_and_matches_the_array(tmp_path, monkeypatch):
    labels = _movie()
    path = _streamed(tmp_path / "movie_labels.tif", labels)

    def refuse(self, dtype=None, copy=None):
        raise AssertionError("the whole stack was read")

    monkeypatch.setattr(LabelFrames, "__array__", refuse)
    monkeypatch.setattr(RelabelledFrames, "__array__", refuse)
    result = track_file(path, tmp_path / "out", frame_interval_min=10)
    assert isinstance(result.tracks.labels, RelabelledFrames)
    monkeypatch.undo()
    expected = track_labels(labels, frame_interval_min=10)
    np.testing.assert_array_equal(np.asarray(result.tracks.labels), expected.labels)
    for name, column in expected.table.items():
        np.testing.assert_array_equal(result.tracks.table[name], column, err_msg=name)
    write_ctc(tmp_path / "expected", expected.labels, {c: p[0] for c, p in expected.graph.items()})
    written = sorted(p.name for p in (tmp_path / "out" / "movie_ctc").iterdir())
    assert written == sorted(p.name for p in (tmp_path / "expected").iterdir())
    for name in written:
        got, want = tmp_path / "out" / "movie_ctc" / name, tmp_path / "expected" / name
        if name.endswith(".tif"):
            np.testing.assert_array_equal(tifffile.imread(got), tifffile.imread(want))
        else:
            assert got.read_text() == want.read_text()


def test_label_frames_read_one_frame_and_refuse_what_they_cannot(tmp_path):
    labels = _movie()
    frames = LabelFrames.open(_streamed(tmp_path / "a_labels.tif", labels))
    assert frames.shape == labels.shape and len(frames) == 6
    np.testing.assert_array_equal(frames[4], labels[4])
    np.testing.assert_array_equal(frames[-1], labels[-1])
    with pytest.raises(IndexError, match="frame 6"):
        frames[6]
    compressed = tmp_path / "z_labels.tif"
    tifffile.imwrite(compressed, labels, compression="zlib")
    assert LabelFrames.open(compressed) is None
    assert LabelFrames.open(tmp_path / "missing.tif") is None


def test_a_compressed_labels_file_is_read_whole_and_tracked_the_same(tmp_path):
    labels = _movie()
    compressed = tmp_path / "movie_labels.tif"
    tifffile.imwrite(compressed, labels, compression="zlib", imagej=True,
                     metadata={"axes": "TYX"})  # fmt: skip
    result = track_file(compressed, tmp_path / "out", frame_interval_min=10)
    assert isinstance(result.tracks.labels, np.ndarray)
    expected = track_labels(labels, frame_interval_min=10)
    np.testing.assert_array_equal(result.tracks.labels, expected.labels)


def test_write_ctc_of_a_frame_sequence_equals_ctc_tracks_of_the_array(tmp_path):
    labels = np.zeros((5, 8, 8), np.int32)
    labels[[0, 1, 3, 4], :3, :3] = 7  # missing in frame 2: a second CTC track
    labels[3:, 5:, 5:] = 9  # a daughter of 7
    masks, lines = ctc_tracks(labels, {9: 7})
    paths = write_ctc(tmp_path / "frames", [frame for frame in labels], {9: 7})
    assert paths[0].read_text() == "".join(f"{a} {b} {c} {d}\n" for a, b, c, d in lines)
    assert lines.tolist() == [[7, 0, 1, 0], [9, 3, 4, 7], [10, 3, 4, 7]]
    for t, path in enumerate(paths[1:]):
        np.testing.assert_array_equal(tifffile.imread(path), masks[t])


def test_a_single_frame_file_has_nothing_to_track(tmp_path):
    path = write_labels(tmp_path / "one_labels.tif", _movie()[:1])
    with pytest.raises(ValueError, match="nothing to track"):
        track_file(path, tmp_path / "out")
