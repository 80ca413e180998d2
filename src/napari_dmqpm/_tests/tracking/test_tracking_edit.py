"""Corrections of tracks: merge, split, mark and unmark a division; refusals; inputs untouched."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from napari_dmqpm.simulation import SimulationConfig, simulate_growth
from napari_dmqpm.tracking import (
    mark_division,
    merge_tracks,
    split_track,
    track_labels,
    unmark_division,
)
from napari_dmqpm.tracking.growth import fit_growth, track_table

SHAPE = (64, 64)


def _disks(cells_per_frame):
    rows, cols = np.indices(SHAPE)
    labels = np.zeros((len(cells_per_frame), *SHAPE), np.int32)
    phase = np.zeros(labels.shape, np.float32)
    for t, cells in enumerate(cells_per_frame):
        for label, row, col, radius, height in cells:
            inside = (rows - row) ** 2 + (cols - col) ** 2 <= radius**2
            labels[t][inside] = label
            phase[t][inside] = height
    return labels, phase


@pytest.fixture(scope="module")
def scene():
    """A mother (frames 0-3) dividing at frame 4, a still cell, and a cell missing in frames 3-5.

    Three missing frames are more than the linker's gap closing bridges: two tracks.
    """
    frames = []
    for t in range(8):
        cells = [(2, 10, 50, 5, 1.0 + 0.02 * t)]
        if t < 4:
            cells.append((1, 32, 20 + t, 8, 1.0))
        else:
            cells += [(3, 32 - 5 - t, 22, 5.7, 1.0), (4, 32 + 5 + t, 22, 5.7, 1.0)]
        if not 3 <= t <= 5:
            cells.append((5, 54, 54, 5, 1.0 + 0.02 * t * t))
        frames.append(cells)
    labels, phase = _disks(frames)
    tracks = track_labels(
        labels, phase_tyx=phase, frame_interval_min=20, pixel_size_um=0.5, wavelength_um=0.65,
        max_distance_px=12,
    )  # fmt: skip

    def at(t, row, col):
        return int(tracks.labels[t, row, col])

    ids = {
        "mother": at(0, 32, 20), "still": at(0, 10, 50), "d1": at(5, 22, 22),
        "d2": at(5, 42, 22), "q1": at(0, 54, 54), "q2": at(6, 54, 54),
    }  # fmt: skip
    assert tracks.graph == {ids["d1"]: [ids["mother"]], ids["d2"]: [ids["mother"]]}
    assert len(set(ids.values())) == 6 == tracks.n_tracks
    return tracks, ids


def _snapshot(tracks):
    return (
        tracks.labels.copy(), tracks.data.copy(), copy.deepcopy(tracks.graph),
        {k: v.copy() for k, v in tracks.table.items()},
        {k: v.copy() for k, v in tracks.cells.items()}, copy.deepcopy(tracks.metadata),
    )  # fmt: skip


def _assert_unchanged(tracks, snapshot):
    labels, data, graph, table, cells, metadata = snapshot
    np.testing.assert_array_equal(tracks.labels, labels)
    np.testing.assert_array_equal(tracks.data, data)
    assert tracks.graph == graph and tracks.metadata == metadata
    for name in table:
        np.testing.assert_array_equal(tracks.table[name], table[name])
    for name in cells:
        np.testing.assert_array_equal(tracks.cells[name], cells[name])


def _assert_consistent(tracks):
    """Every part of the result agrees: labels, data, cells, and a table fitted afresh."""
    interval = tracks.metadata["frame_interval_min"]
    full = track_table(tracks.cells, tracks.graph, frame_interval_min=interval)
    assert full.keys() == tracks.table.keys()
    for name in full:
        np.testing.assert_array_equal(tracks.table[name], full[name], err_msg=name)
    cells = tracks.cells
    np.testing.assert_array_equal(tracks.data[:, 0], cells["track_id"])
    np.testing.assert_array_equal(tracks.data[:, 1], cells["frame"])
    rows = np.round(cells["centroid_row"]).astype(int)
    cols = np.round(cells["centroid_col"]).astype(int)
    np.testing.assert_array_equal(tracks.labels[cells["frame"], rows, cols], cells["track_id"])
    assert set(np.unique(tracks.labels).tolist()) - {0} == set(cells["track_id"].tolist())
    order = np.lexsort((cells["frame"], cells["track_id"]))
    np.testing.assert_array_equal(order, np.arange(order.size))


def test_merge_joins_the_two_pieces_of_a_cell_and_refits_its_growth(scene):
    tracks, ids = scene
    before = _snapshot(tracks)
    merged = merge_tracks(tracks, ids["q1"], ids["q2"])
    _assert_unchanged(tracks, before)
    _assert_consistent(merged)
    assert merged.n_tracks == tracks.n_tracks - 1
    assert not np.any(merged.labels == ids["q2"])
    np.testing.assert_array_equal(
        merged.labels == ids["q1"], (tracks.labels == ids["q1"]) | (tracks.labels == ids["q2"])
    )
    row = merged.table["track_id"].tolist().index(ids["q1"])
    assert (merged.table["first_frame"][row], merged.table["last_frame"][row]) == (0, 7)
    assert merged.table["n_frames"][row] == 5
    # the growth of the whole cell (it speeds up), not of its first piece only
    mine = merged.cells["track_id"] == ids["q1"]
    rate, _ = fit_growth(merged.cells["time_h"][mine], merged.cells["dry_mass_pg"][mine])
    assert merged.table["growth_rate_pg_per_h"][row] == pytest.approx(rate)
    old = tracks.table["growth_rate_pg_per_h"][tracks.table["track_id"] == ids["q1"]][0]
    assert rate != pytest.approx(old)
    assert merged.metadata["edits"] == [
        {"edit": "merge_tracks", "keep": ids["q1"], "absorb": ids["q2"]}
    ]
    # keep may be the later piece: the merged track takes its id
    assert set(merge_tracks(tracks, ids["q2"], ids["q1"]).table["track_id"].tolist()) == (
        set(tracks.table["track_id"].tolist()) - {ids["q1"]}
    )


def test_merge_refuses_tracks_that_share_frames_and_names_them(scene):
    tracks, ids = scene
    with pytest.raises(ValueError, match=r"both have a cell in frame\(s\) 0, 1, 2$"):
        merge_tracks(tracks, ids["mother"], ids["q1"])
    with pytest.raises(ValueError, match="two different tracks"):
        merge_tracks(tracks, ids["q1"], ids["q1"])
    with pytest.raises(ValueError, match=r"keep=99 is not a track of this result \(tracks 1-6\)"):
        merge_tracks(tracks, 99, ids["q1"])


def test_merge_refuses_a_daughter_of_another_mother_and_a_piece_that_divides(scene):
    tracks, ids = scene
    with pytest.raises(ValueError, match=f"track {ids['d1']} is a daughter of track "):
        merge_tracks(tracks, ids["q1"], ids["d1"])
    message = f"track {ids['mother']} divides into tracks .* at frame 4, before the merged track"
    with pytest.raises(ValueError, match=message):
        merge_tracks(tracks, ids["mother"], ids["q2"])


def test_merging_a_mother_with_a_daughter_unmarks_that_false_division(scene):
    tracks, ids = scene
    merged = merge_tracks(tracks, ids["mother"], ids["d1"])
    _assert_consistent(merged)
    assert merged.graph == {}
    row = merged.table["track_id"].tolist().index(ids["mother"])
    assert merged.table["last_frame"][row] == 7 and merged.table["division_frame"][row] == -1
    assert merged.metadata["edits"][-1]["daughters_unmarked"] == [ids["d2"]]


def test_split_gives_the_later_frames_a_new_track_without_a_mother(scene):
    tracks, ids = scene
    before = _snapshot(tracks)
    split = split_track(tracks, ids["still"], 5)
    _assert_unchanged(tracks, before)
    _assert_consistent(split)
    new = int(tracks.table["track_id"].max()) + 1
    np.testing.assert_array_equal(split.labels[5:] == new, tracks.labels[5:] == ids["still"])
    np.testing.assert_array_equal(split.labels[:5], tracks.labels[:5])
    assert new not in split.graph
    rows = [split.table["track_id"].tolist().index(t) for t in (ids["still"], new)]
    assert split.table["last_frame"][rows].tolist() == [4, 7]
    assert split.table["first_frame"][rows].tolist() == [0, 5]


def test_split_of_a_mother_hands_its_daughters_to_the_later_piece(scene):
    tracks, ids = scene
    split = split_track(tracks, ids["mother"], 2)
    _assert_consistent(split)
    new = int(tracks.table["track_id"].max()) + 1
    assert split.graph == {ids["d1"]: [new], ids["d2"]: [new]}
    table = split.table
    division = dict(zip(table["track_id"].tolist(), table["division_frame"].tolist(), strict=True))
    assert division[ids["mother"]] == -1 and division[new] == 4
    # merged back, it is the result it was
    again = merge_tracks(split, ids["mother"], new)
    np.testing.assert_array_equal(again.labels, tracks.labels)
    assert again.graph == tracks.graph
    for name in tracks.table:
        np.testing.assert_array_equal(again.table[name], tracks.table[name])


@pytest.mark.parametrize("frame", [0, 8, 2.5, True])
def test_split_refuses_a_frame_that_does_not_cut_the_track(scene, frame):
    tracks, ids = scene
    message = rf"track {ids['mother']} \(frames 0-3\) before a frame in 1-3"
    with pytest.raises(ValueError, match=message):
        split_track(tracks, ids["mother"], frame)


def test_unmark_and_mark_a_division(scene):
    tracks, ids = scene
    before = _snapshot(tracks)
    unmarked = unmark_division(tracks, ids["mother"])
    _assert_unchanged(tracks, before)
    _assert_consistent(unmarked)
    assert unmarked.graph == {} and unmarked.labels is tracks.labels  # the labels are shared
    row = unmarked.table["track_id"].tolist().index(ids["mother"])
    assert unmarked.table["division_frame"][row] == -1 and unmarked.table["n_daughters"][row] == 0
    marked = mark_division(unmarked, ids["mother"], (ids["d1"], ids["d2"]))
    _assert_consistent(marked)
    assert marked.graph == tracks.graph
    for name in tracks.table:
        np.testing.assert_array_equal(marked.table[name], tracks.table[name])
    assert [e["edit"] for e in marked.metadata["edits"]] == ["unmark_division", "mark_division"]
    # marking other daughters replaces the division
    moved = mark_division(tracks, ids["mother"], (ids["d1"], ids["q2"]))
    _assert_consistent(moved)
    assert moved.graph == {ids["d1"]: [ids["mother"]], ids["q2"]: [ids["mother"]]}
    assert moved.metadata["edits"][-1]["daughters_unmarked"] == [ids["d2"]]


def test_mark_division_refuses_daughters_that_start_before_the_mother_ends(scene):
    tracks, ids = scene
    message = (
        rf"track {ids['still']} starts at frame 0, before its mother track {ids['mother']} "
        r"ends \(frame 3\)"
    )
    with pytest.raises(ValueError, match=message):
        mark_division(tracks, ids["mother"], (ids["d1"], ids["still"]))
    with pytest.raises(ValueError, match=f"already a daughter of track {ids['mother']}"):
        mark_division(tracks, ids["q1"], (ids["d1"], ids["q2"]))
    with pytest.raises(ValueError, match="two daughter tracks"):
        mark_division(tracks, ids["mother"], (ids["d1"],))
    with pytest.raises(ValueError, match="two tracks other than the mother"):
        mark_division(tracks, ids["mother"], (ids["d1"], ids["d1"]))


def test_unmark_refuses_a_track_without_daughters(scene):
    tracks, ids = scene
    with pytest.raises(ValueError, match=f"track {ids['still']} has no daughters"):
        unmark_division(tracks, ids["still"])


def test_edits_on_a_simulated_time_lapse_undo_each_other():
    movie = simulate_growth(SimulationConfig(shape=(96, 96)), 8, frame_interval_min=30, rng=3)
    tracks = track_labels(
        movie.labels, phase_tyx=movie.phase, frame_interval_min=30,
        pixel_size_um=movie.config.pixel_size_um, wavelength_um=movie.config.wavelength_um,
    )  # fmt: skip
    longest = int(tracks.table["track_id"][np.argmax(tracks.table["n_frames"])])
    split = split_track(tracks, longest, 4)
    _assert_consistent(split)
    new = int(tracks.table["track_id"].max()) + 1
    back = merge_tracks(split, longest, new)
    _assert_consistent(back)
    np.testing.assert_array_equal(back.labels, tracks.labels)
    np.testing.assert_array_equal(back.data, tracks.data)
    assert back.graph == tracks.graph
    for name in tracks.table:
        np.testing.assert_array_equal(back.table[name], tracks.table[name], err_msg=name)
