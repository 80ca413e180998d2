"""Growth fits leave out the frames whose background was not trusted (``background_ok`` 0)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from napari_dmqpm.tracking import track_labels
from napari_dmqpm.tracking.files import track_file
from napari_dmqpm.tracking.growth import TRACK_COLUMNS, track_table
from napari_dmqpm.tracking.regions import measure_regions
from napari_dmqpm.tracking.restore import restore_tracks

RATE = 0.05  # per frame


def _moving_square(n_frames=10):
    """One 8x8 cell moving one column a frame, label 3 + t, away from the field edge."""
    labels = np.zeros((n_frames, 32, 48), np.int32)
    for t in range(n_frames):
        labels[t, 10:18, 5 + t : 13 + t] = 3 + t
    return labels


def _table(n_frames, flagged):
    """Exponential masses; the flagged frames are 40 % low and say background_ok 0."""
    frames = np.arange(n_frames)
    mass = 100.0 * np.exp(RATE * frames)
    mass[flagged] *= 0.6
    ok = np.ones(n_frames)
    ok[flagged] = 0
    return {"frame": frames, "label": 3 + frames, "dry_mass_pg": mass, "background_ok": ok}


def test_flagged_frames_are_left_out_of_the_growth_fit_and_counted():
    # 4 of 10 frames bad: beyond what Theil-Sen ignores, so keeping them biases the slope
    flagged = [6, 7, 8, 9]
    tracks = track_labels(_moving_square(), table=_table(10, flagged), frame_interval_min=60)
    table = tracks.table
    assert tracks.n_tracks == 1
    assert table["n_frames"][0] == 10 and table["n_fit_frames"][0] == 6
    assert table["specific_growth_rate_per_h"][0] == pytest.approx(RATE, rel=1e-9)
    assert table["doubling_time_h"][0] == pytest.approx(math.log(2) / RATE, rel=1e-9)
    assert tracks.cells["background_ok"].tolist() == [t not in flagged for t in range(10)]
    assert "n_fit_frames" in TRACK_COLUMNS


def test_without_the_flag_every_frame_off_the_edge_is_fitted():
    table = _table(10, [])
    del table["background_ok"]
    tracks = track_labels(_moving_square(), table=table, frame_interval_min=60)
    assert tracks.table["n_fit_frames"][0] == 10
    assert bool(tracks.cells["background_ok"].all())


def test_too_few_trusted_frames_give_no_fit():
    tracks = track_labels(_moving_square(4), table=_table(4, [1, 2]), frame_interval_min=60)
    assert tracks.table["n_fit_frames"][0] == 2
    assert math.isnan(tracks.table["growth_rate_pg_per_h"][0])


def test_track_table_counts_only_positive_masses_off_the_edge_and_trusted():
    cells = {
        "track_id": np.ones(6, np.int64),
        "frame": np.arange(6),
        "dry_mass_pg": np.array([10.0, 11.0, np.nan, 13.0, 14.0, 15.0]),
        "touches_border": np.array([True, False, False, False, False, False]),
        "background_ok": np.array([True, True, True, False, True, True]),
    }
    table = track_table(cells, {}, frame_interval_min=None)
    assert table["n_fit_frames"].tolist() == [3]  # frames 1, 4, 5
    assert table["growth_rate_pg_per_frame"][0] == pytest.approx(1.0)


def test_the_phase_measurement_flags_a_cell_without_background_near_it():
    # frame 1 is almost all cell: too few background pixels for the quadratic
    labels = np.zeros((2, 40, 40), np.int32)
    labels[0, 10:20, 10:20] = 1
    labels[1, 1:39, 1:39] = 1
    phase = (labels > 0).astype(np.float32)
    regions = measure_regions(labels, phase_tyx=phase, pixel_size_um=0.5, wavelength_um=0.65)
    assert regions["background_ok"].tolist() == [True, False]


def test_restore_keeps_the_flags_of_the_points():
    labels = _moving_square()
    flagged = [6, 7, 8, 9]
    table = _table(10, flagged)
    points = {"track_id": np.full(10, 5), **table}
    points["background_ok"] = table["background_ok"].astype(bool)
    restored = restore_tracks(labels, points, {}, frame_interval_min=60)
    assert restored.table["n_fit_frames"][0] == 6
    assert restored.table["specific_growth_rate_per_h"][0] == pytest.approx(RATE, rel=1e-9)


def test_track_file_reads_the_flag_from_the_cells_csv(tmp_path):
    from napari_dmqpm.inference.measure import read_table_csv, write_table_csv
    from napari_dmqpm.io import write_labels

    labels_path = write_labels(tmp_path / "movie_labels.tif", _moving_square().astype(np.uint16))
    table_path = tmp_path / "movie_cells.csv"
    write_table_csv(table_path, _table(10, [6, 7, 8, 9]))
    result = track_file(labels_path, tmp_path / "out", table_path=table_path,
                        frame_interval_min=60)  # fmt: skip
    assert result.tracks.table["n_fit_frames"][0] == 6
    lineage = read_table_csv(tmp_path / "out" / "movie_lineage.csv", ["n_fit_frames"])
    assert lineage["n_fit_frames"].tolist() == [6.0]
