"""simulate_growth: exponential growth, divisions into halves, cells entering and leaving."""

from __future__ import annotations

import math

import numpy as np
import pytest

from napari_dmqpm.inference.measure import measure_cells
from napari_dmqpm.simulation import SimulationConfig
from napari_dmqpm.simulation.timelapse import ALPHA_UM3_PER_PG, simulate_growth

CONFIG = SimulationConfig(shape=(96, 96), density="dense", debris_count=0)


@pytest.fixture(scope="module")
def dividing():
    """Short doubling times and 30-min frames: several divisions in 8 frames."""
    return simulate_growth(CONFIG, 8, frame_interval_min=30, doubling_time_h=(3, 4), rng=5)


def test_the_same_seed_gives_the_same_time_lapse():
    a = simulate_growth(CONFIG, 3, rng=2)
    b = simulate_growth(CONFIG, 3, rng=2)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.phase, b.phase)
    assert a.phase.shape == (3, 96, 96) and a.angles.shape == (3, 4, 96, 96)


def test_true_mass_grows_by_the_exponential_law_of_each_cell(dividing):
    table, lineage = dividing.mass_scale, dividing.lineage
    hours = 30 / 60
    for track_id, rate in zip(lineage["track_id"], lineage["growth_rate_per_h"], strict=True):
        mass = table["dry_mass_pg"][table["track_id"] == track_id]
        frames = table["frame"][table["track_id"] == track_id]
        if mass.size >= 2:
            expected = mass[0] * np.exp(rate * hours * (frames - frames[0]))
            np.testing.assert_allclose(mass, expected, rtol=1e-9)
    assert np.all((lineage["doubling_time_h"] >= 3 * 0.6) & (lineage["doubling_time_h"] <= 4 * 1.6))


def test_daughters_get_new_ids_and_half_the_mass_of_their_mother(dividing):
    table, graph = dividing.mass_scale, dividing.graph
    assert len(graph) >= 4
    mothers = {parents[0] for parents in graph.values()}
    n_pairs = 0
    for mother in mothers:
        daughters = [d for d, (p,) in graph.items() if p == mother]
        assert len(daughters) in (1, 2) and mother not in daughters  # one may be out of view
        n_pairs += len(daughters) == 2
        last = table["frame"][table["track_id"] == mother].max()
        mother_mass = table["dry_mass_pg"][(table["track_id"] == mother) & (table["frame"] == last)]
        for daughter in daughters:
            rows = (table["track_id"] == daughter) & (table["frame"] == last + 1)
            if not rows.any():
                continue  # born out of view
            # half the mother's mass, grown for one frame interval at most (doubling >= 3 h)
            assert 0.5 <= table["dry_mass_pg"][rows][0] / mother_mass[0] <= 0.5 * 2 ** (0.5 / 1.8)
        assert not (dividing.labels[last + 1 :] == mother).any()
    assert n_pairs >= 2


def test_measured_dry_mass_of_an_interior_cell_is_its_true_mass(dividing):
    """The height of each cell is set so that its labelled optical volume is its true mass."""
    table = dividing.mass_scale
    errors = []
    for frame in range(dividing.labels.shape[0]):
        labels = dividing.labels[frame]
        edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
        measured = measure_cells(
            labels,
            dividing.true_phase[frame],
            pixel_size_um=0.627,
            wavelength_um=0.65,
            alpha_um3_per_pg=ALPHA_UM3_PER_PG,
        )
        for label, mass in zip(measured["label"], measured["dry_mass_pg"], strict=True):
            if label in edge:
                continue
            true = table["dry_mass_pg"][(table["track_id"] == label) & (table["frame"] == frame)]
            errors.append(mass / true[0] - 1)
    assert len(errors) > 10
    assert abs(np.median(errors)) < 0.005 and np.percentile(np.abs(errors), 90) < 0.02


def test_cells_enter_and_leave_with_the_drift():
    movie = simulate_growth(CONFIG, 6, frame_interval_min=30, drift_um_per_min=0.15, rng=1)
    lineage = movie.lineage
    entered = (lineage["first_frame"] > 0) & (lineage["parent"] == 0)
    left = lineage["last_frame"] < 5
    assert entered.any() and left.any()
    # every label of every frame is in the lineage table, ids from 1 up
    ids = np.unique(movie.labels[movie.labels > 0])
    np.testing.assert_array_equal(ids, lineage["track_id"])
    for track_id, first, last in zip(
        lineage["track_id"], lineage["first_frame"], lineage["last_frame"], strict=True
    ):
        present = np.flatnonzero((movie.labels == track_id).any(axis=(1, 2)))
        assert present.min() == first and present.max() == last


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_frames": 1}, "n_frames must be an integer >= 2"),
        ({"frame_interval_min": 0}, "frame_interval_min must be > 0"),
        ({"doubling_time_h": (5, 1)}, "doubling_time_h"),
        ({"speed_um_per_min": math.nan}, "speed_um_per_min"),
    ],
)
def test_bad_parameters_are_refused_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        simulate_growth(CONFIG, **{"n_frames": 3, **kwargs})


def test_cells_that_come_too_close_are_pushed_apart():
    from napari_dmqpm.simulation.cells import Cell
    from napari_dmqpm.simulation.timelapse import _Live, _repel

    def live(col):
        cell = Cell(
            row_um=10.0,
            col_um=col,
            radius_um=5.0,
            aspect=1.0,
            angle=0.0,
            harmonics=np.zeros(5, complex),
            height_um=0.2,
        )
        return _Live(node=0, cell=cell, scale=1.0, rate_per_h=0.03, velocity=np.zeros(2))

    cells = [live(10.0), live(11.0)]
    _repel(cells, 0.7, n_rounds=10)
    gap = cells[1].cell.col_um - cells[0].cell.col_um
    assert gap == pytest.approx(0.85 * 0.7 * 2 * 5.0, rel=0.02)
    assert cells[0].cell.row_um == pytest.approx(10.0)
