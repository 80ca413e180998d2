"""track_labels: identities over frames, divisions, gaps, growth and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from napari_dmqpm.inference.measure import measure_cells
from napari_dmqpm.tracking import link_by_overlap, track_labels
from napari_dmqpm.tracking.link import check_divisions

SHAPE = (64, 64)


def _disks(cells_per_frame, shape=SHAPE):
    """Labels and phase from per-frame lists of (label, row, col, radius, phase_rad)."""
    rows, cols = np.indices(shape)
    labels = np.zeros((len(cells_per_frame), *shape), np.int32)
    phase = np.zeros(labels.shape, np.float32)
    for t, cells in enumerate(cells_per_frame):
        for label, row, col, radius, height in cells:
            inside = (rows - row) ** 2 + (cols - col) ** 2 <= radius**2
            labels[t][inside] = label
            phase[t][inside] = height
    return labels, phase


def _movers(n_frames=5):
    """Three disks moving 2 px a frame, with labels that change every frame."""
    return _disks(
        [
            [
                (10 + t, 15 + 2 * t, 15, 6, 1.0),
                (30 - t, 45, 15 + 2 * t, 7, 1.2),
                (50, 45, 45, 5, 0.8),
            ]
            for t in range(n_frames)
        ]
    )


def _division():
    """A disk (mass m) that divides at frame 3 into two disks of about half its mass."""
    frames = []
    for t in range(6):
        if t < 3:
            frames.append([(1, 32, 20 + t, 8, 1.0), (2, 10, 50, 5, 1.0)])
        else:
            offset = 6 + t
            frames.append(
                [
                    (3, 32 - offset, 22, 5.7, 1.0),
                    (4, 32 + offset, 22, 5.7, 1.0),
                    (2, 10, 50, 5, 1.0),
                ]
            )
    return _disks(frames)


def test_moving_cells_keep_one_id_each_over_all_frames():
    labels, _ = _movers()
    tracks = track_labels(labels, frame_interval_min=5)
    assert tracks.n_tracks == 3
    for track_id in range(1, 4):
        present = (tracks.labels == track_id).any(axis=(1, 2))
        assert present.all(), track_id
    # the relabelled masks are the input masks
    np.testing.assert_array_equal(tracks.labels > 0, labels > 0)
    # napari Tracks data: track_id, t, row, col sorted by track then time
    assert tracks.data.shape == (15, 4)
    assert np.all(np.diff(tracks.data[:, 0] * 100 + tracks.data[:, 1]) > 0)
    first = tracks.data[tracks.data[:, 0] == tracks.labels[0, 15, 15]]
    np.testing.assert_allclose(first[:, 2], 15 + 2 * np.arange(5))


def test_a_division_gives_two_daughter_tracks_with_the_mother_as_parent():
    labels, phase = _division()
    tracks = track_labels(labels, phase_tyx=phase, pixel_size_um=0.5, wavelength_um=0.65)
    mother = int(tracks.labels[0, 32, 20])
    daughters = sorted({int(tracks.labels[3, 23, 22]), int(tracks.labels[3, 41, 22])})
    assert mother not in daughters and len(daughters) == 2
    assert tracks.graph == {daughters[0]: [mother], daughters[1]: [mother]}
    table = {
        k: dict(zip(tracks.table["track_id"].tolist(), v.tolist(), strict=True))
        for k, v in tracks.table.items()
    }
    assert table["division_frame"][mother] == 3 and table["last_frame"][mother] == 2
    assert table["n_daughters"][mother] == 2
    assert all(table["parent"][d] == mother for d in daughters)
    assert tracks.n_divisions == 1 and tracks.metadata["linking_feature"] == "dry_mass"
    # the bystander keeps one track through the division
    assert len(np.unique(tracks.labels[:, 10, 50])) == 1


def test_without_division_linking_daughters_have_no_parent():
    labels, phase = _division()
    tracks = track_labels(
        labels, phase_tyx=phase, pixel_size_um=0.5, wavelength_um=0.65, divisions=False
    )
    assert tracks.graph == {}


def test_a_cell_missing_for_a_frame_keeps_its_track_with_gap_closing():
    labels, _ = _movers(6)
    labels[2][labels[2] == 12] = 0  # the first disk is not segmented in frame 2
    tracks = track_labels(labels)
    assert tracks.n_tracks == 3
    row = list(tracks.table["track_id"]).index(tracks.labels[0, 15, 15])
    assert tracks.table["n_frames"][row] == 5 and tracks.table["last_frame"][row] == 5
    assert track_labels(labels, max_gap_frames=0).n_tracks == 4


def test_growth_rate_and_doubling_time_follow_an_exponential_law():
    k_per_h, interval = 0.05, 20.0  # 1/h, min
    hours = np.arange(8) * interval / 60
    labels, phase = _disks([[(1, 32, 32, 10, math.exp(k_per_h * h))] for h in hours])
    tracks = track_labels(
        labels, phase_tyx=phase, frame_interval_min=interval, pixel_size_um=0.5, wavelength_um=0.65
    )
    masses = [
        measure_cells(labels[t], phase[t], pixel_size_um=0.5, wavelength_um=0.65)["dry_mass_pg"][0]
        for t in range(8)
    ]
    np.testing.assert_allclose(tracks.cells["dry_mass_pg"], masses, rtol=1e-6)
    table = tracks.table
    assert table["specific_growth_rate_per_h"][0] == pytest.approx(k_per_h, rel=1e-4)
    assert table["doubling_time_h"][0] == pytest.approx(math.log(2) / k_per_h, rel=1e-4)
    # pg/h: the Theil-Sen slope of the masses, in pg (about 57 pg per rad over 100 µm²)
    expected = np.median(
        [(masses[j] - masses[i]) / (hours[j] - hours[i]) for i in range(8) for j in range(i + 1, 8)]
    )
    assert table["growth_rate_pg_per_h"][0] == pytest.approx(expected, rel=1e-6)
    assert table["growth_rate_pg_per_frame"][0] == pytest.approx(expected * interval / 60)
    np.testing.assert_allclose(tracks.cells["time_h"], hours)


def test_without_frame_interval_the_per_hour_columns_are_nan_and_said_so():
    labels, phase = _disks([[(1, 32, 32, 10, 1.0 + 0.1 * t)] for t in range(4)])
    tracks = track_labels(labels, phase_tyx=phase, pixel_size_um=0.5, wavelength_um=0.65)
    assert np.isnan(tracks.table["growth_rate_pg_per_h"][0])
    assert np.isnan(tracks.table["doubling_time_h"][0])
    assert tracks.table["growth_rate_pg_per_frame"][0] > 0
    assert tracks.metadata["time_unit"].startswith("frame")
    # without pixel size the mass is unknown: no rate at all, linking on area
    no_mass = track_labels(labels, phase_tyx=phase, frame_interval_min=10)
    assert np.isnan(no_mass.table["growth_rate_pg_per_frame"][0])
    assert no_mass.metadata["linking_feature"] == "area"


def test_dry_mass_can_come_from_a_per_cell_table():
    labels, _ = _movers(3)
    table = {
        "frame": np.array([0, 1, 2]),
        "label": np.array([10, 11, 12]),
        "dry_mass_pg": np.array([100.0, 110.0, 121.0]),
    }
    tracks = track_labels(labels, table=table)
    track_id = tracks.labels[0, 15, 15]
    np.testing.assert_allclose(
        tracks.cells["dry_mass_pg"][tracks.cells["track_id"] == track_id], [100.0, 110.0, 121.0]
    )


def test_overlap_baseline_links_overlapping_cells_but_no_divisions():
    labels, _ = _movers()
    assert link_by_overlap(labels).n_tracks == 3
    division, _ = _division()
    assert link_by_overlap(division).graph == {}


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (np.ones((8, 8), np.int32), "nothing to track"),
        (np.ones((1, 8, 8), np.int32), "nothing to track: labels_tyx has 1 frame"),
        ([np.ones((8, 8), np.int32), np.ones((8, 9), np.int32)], "frame 1 has (8, 9)"),
        (np.stack([np.ones((8, 8)), -np.ones((8, 8))]).astype(np.int32), "frame 1 holds negative"),
        (np.stack([np.ones((8, 8)), np.full((8, 8), 0.5)]), "frame 1 holds values that are not"),
        (np.ones((2, 8, 8), bool), "dtype bool"),
    ],
)
def test_bad_labels_are_refused_with_the_problem_and_frame(labels, message):
    with pytest.raises(ValueError, match="labels_tyx") as error:
        track_labels(labels)
    assert message in str(error.value)


def test_bad_options_are_refused_naming_the_parameter():
    labels, phase = _movers(2)
    with pytest.raises(ValueError, match=r"phase_tyx must have the shape"):
        track_labels(labels, phase_tyx=phase[:, :10])
    with pytest.raises(ValueError, match=r"frame_interval_min=-5"):
        track_labels(labels, frame_interval_min=-5)
    with pytest.raises(ValueError, match=r"max_gap_frames"):
        track_labels(labels, max_gap_frames=-1)
    with pytest.raises(ValueError, match=r"missing \['dry_mass_pg'\]"):
        track_labels(labels, table={"frame": np.zeros(1), "label": np.zeros(1)})


def test_a_new_cell_beside_another_is_no_division_when_mass_is_not_conserved():
    """A small cell appears next to a big one: the split would not conserve dry mass."""
    frames = [[(1, 32, 20, 9, 1.0)] for _ in range(3)]
    frames += [[(1, 32, 20, 9, 1.0), (2, 32, 33, 3, 1.0)] for _ in range(3)]
    labels, phase = _disks(frames)
    tracks = track_labels(labels, phase_tyx=phase, pixel_size_um=0.5, wavelength_um=0.65)
    assert tracks.graph == {} and tracks.n_tracks == 2
    assert len(np.unique(tracks.labels[:, 32, 20])) == 1  # the big cell keeps its track


def test_check_divisions_cuts_the_daughter_least_like_the_mother():
    edges = np.array([[0, 1], [0, 2], [3, 4], [3, 5]])
    mass = np.array([100.0, 95.0, 10.0, 100.0, 52.0, 49.0])
    kept = check_divisions(edges, mass)
    np.testing.assert_array_equal(kept, [[0, 1], [3, 4], [3, 5]])


def test_frames_cut_by_the_field_edge_are_left_out_of_the_growth_fit():
    k_per_h, interval = 0.1, 30.0
    hours = np.arange(7) * interval / 60
    centres = [32, 36, 40, 44, 48, 56, 60]  # the last two frames run off the edge: mass cut
    labels, phase = _disks(
        [[(1, 32, c, 9, math.exp(k_per_h * h))] for c, h in zip(centres, hours, strict=True)]
    )
    tracks = track_labels(
        labels, phase_tyx=phase, frame_interval_min=interval, pixel_size_um=0.5, wavelength_um=0.65
    )
    assert tracks.table["touches_border"][0]
    assert tracks.table["specific_growth_rate_per_h"][0] == pytest.approx(k_per_h, rel=1e-3)


def test_frames_without_cells_give_empty_or_short_tracks():
    labels = np.zeros((3, 16, 16), np.int32)
    empty = track_labels(labels)
    assert empty.n_tracks == 0 and empty.data.shape == (0, 4) and empty.graph == {}
    labels[1:, 2:5, 2:5] = 3
    tracks = track_labels(labels)
    assert tracks.n_tracks == 1 and tracks.table["first_frame"].tolist() == [1]


def test_a_division_at_the_field_edge_is_not_judged_by_its_cut_mass():
    edges = np.array([[0, 1], [0, 2]])
    mass = np.array([200.0, 100.0, 30.0])  # the second daughter is mostly out of view
    np.testing.assert_array_equal(check_divisions(edges, mass), [[0, 1]])
    edge = np.array([False, False, True])
    np.testing.assert_array_equal(check_divisions(edges, mass, edge=edge), edges)
