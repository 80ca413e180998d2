"""restore_tracks: a Tracks again from the input labels and the points a viewer keeps."""

from __future__ import annotations

import numpy as np
import pytest

from napari_dmqpm.simulation import SimulationConfig, simulate_growth
from napari_dmqpm.tracking import split_track, track_labels
from napari_dmqpm.tracking.restore import restore_tracks


@pytest.fixture(scope="module")
def movie():
    movie = simulate_growth(SimulationConfig(shape=(96, 96)), 6, frame_interval_min=30, rng=5)
    tracks = track_labels(
        movie.labels, phase_tyx=movie.phase, frame_interval_min=30,
        pixel_size_um=movie.config.pixel_size_um, wavelength_um=movie.config.wavelength_um,
    )  # fmt: skip
    return movie.labels, tracks


def _points(tracks):
    return {name: tracks.cells[name] for name in ("track_id", "frame", "label", "dry_mass_pg")}


def _assert_same(restored, tracks):
    np.testing.assert_array_equal(restored.labels, tracks.labels)
    np.testing.assert_array_equal(restored.data, tracks.data)
    assert restored.graph == tracks.graph
    for name in tracks.table:
        np.testing.assert_array_equal(restored.table[name], tracks.table[name], err_msg=name)
    for name in tracks.cells:
        np.testing.assert_array_equal(restored.cells[name], tracks.cells[name], err_msg=name)


def test_the_points_and_input_labels_give_the_tracks_back(movie):
    labels, tracks = movie
    restored = restore_tracks(
        labels, _points(tracks), tracks.graph, frame_interval_min=30, metadata=tracks.metadata
    )
    _assert_same(restored, tracks)
    assert restored.metadata == tracks.metadata
    # track ids are kept as they are, also after an edit gave a new one
    edited = split_track(tracks, int(tracks.table["track_id"][0]), 2)
    _assert_same(
        restore_tracks(labels, _points(edited), edited.graph, frame_interval_min=30), edited
    )


def test_labels_edited_after_tracking_are_named(movie):
    labels, tracks = movie
    edited = labels.copy()
    edited[3][edited[3] == edited[3].max()] = 999
    with pytest.raises(ValueError, match="frame 3 hold label 999, which no track holds"):
        restore_tracks(edited, _points(tracks), tracks.graph)
    points = {name: np.append(column, column[0]) for name, column in _points(tracks).items()}
    points["label"][-1] = 998
    with pytest.raises(ValueError, match="a track holds label 998 in frame"):
        restore_tracks(labels, points, tracks.graph)
    points = _points(tracks)
    first = points["frame"] == 0
    points["track_id"] = np.where(first, points["track_id"][first][0], points["track_id"])
    with pytest.raises(ValueError, match="has two cells in frame 0"):
        restore_tracks(labels, points, tracks.graph)
