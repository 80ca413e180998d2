"""The Cell growth dock through the real manifest: click a cell, see its track and family."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("napari")
pytestmark = pytest.mark.gui

PLUGIN = "napari-dmqpm"


def disc(shape, centre, radius):
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    return (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius**2


@pytest.fixture(params=[30])
def dividing(make_napari_viewer, request):
    """A cell that grows for 4 frames, then divides into two of about half its mass."""
    shape, labels, rows = (48, 64), np.zeros((7, 48, 64), np.int32), []
    for frame in range(7):
        if frame < 4:
            labels[frame][disc(shape, (24, 32), 7)] = 5
            rows.append((frame, 5, 20.0 + 2 * frame))
        else:
            labels[frame][disc(shape, (24, 25), 5)] = 3  # the input labels change freely
            labels[frame][disc(shape, (24, 39), 5)] = 8
            rows += [(frame, 3, 14.0 + frame - 4), (frame, 8, 13.0 + frame - 4)]
    viewer = make_napari_viewer()
    layer = viewer.add_labels(labels, name="cells")
    layer.features = pd.DataFrame(rows, columns=["frame", "label", "dry_mass_pg"])
    from napari_dmqpm._napari._tracks import add_tracks

    tracks_layer, tracks = add_tracks(viewer, layer, frame_interval_min=request.param)
    assert tracks.n_divisions == 1, tracks.table
    return viewer, tracks


def click(widget, viewer, world):
    viewer.dims.set_current_step(0, int(world[0]))
    widget._on_click(viewer, SimpleNamespace(type="mouse_press", position=world))


def test_a_click_on_a_daughter_shows_it_with_its_mother(dividing):
    viewer, tracks = dividing
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Cell growth")
    assert widget.tracks.currentText() == "cells tracks"
    click(widget, viewer, (5.0, 24.0, 39.0))  # the right-hand daughter in frame 5
    daughter = int(tracks.labels[5, 24, 39])
    mother = tracks.graph[daughter][0]
    assert widget.track.value() == daughter
    roles = [(curve.role, curve.track_id) for curve in widget.plot.curves]
    assert roles == [("mother", mother), ("track", daughter)]
    track = widget.plot.curves[1]
    np.testing.assert_allclose(track.time, [2.0, 2.5, 3.0])  # frames 4-6 at 30 min
    np.testing.assert_allclose(track.dry_mass_pg, [13.0, 14.0, 15.0])
    assert widget.plot.x_title == "time (h)" and widget.plot.y_title == "dry mass (pg)"
    assert f"mother {mother}" in widget.status.text() and "pg/h" in widget.status.text()
    # the field's histogram holds every fitted track; the daughter's rate (2 pg/h) is marked
    assert widget.histogram.counts.sum() == np.isfinite(tracks.table["growth_rate_pg_per_h"]).sum()
    assert widget.histogram.marked == pytest.approx(2.0)
    # the mother shows both daughters; a click on the background changes nothing
    click(widget, viewer, (1.0, 24.0, 32.0))
    assert widget.track.value() == mother
    assert [c.role for c in widget.plot.curves] == ["track", "daughter", "daughter"]
    click(widget, viewer, (1.0, 2.0, 2.0))
    assert widget.track.value() == mother
    widget.grab()  # both plots paint without error


def test_without_tracks_it_says_what_to_do(make_napari_viewer):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Cell growth")
    assert "No tracks yet" in widget.status.text()
    widget.grab()


@pytest.mark.parametrize("dividing", [None], indirect=True)
def test_without_a_frame_interval_it_is_asked_and_then_used(dividing):
    viewer, tracks = dividing
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Cell growth")
    assert widget.interval.value() == 0.0 and widget.interval.text() == "unknown"
    click(widget, viewer, (5.0, 24.0, 39.0))
    assert widget.plot.x_title == "time (frame)" and "pg/frame" in widget.status.text()
    assert "set the frame interval" in widget.status.text()
    assert widget.histogram.marked == pytest.approx(1.0)  # 1 pg per frame
    widget.interval.setValue(30.0)  # the user says: 30 min between frames
    np.testing.assert_allclose(widget.plot.curves[1].time, [2.0, 2.5, 3.0])
    assert widget.histogram.marked == pytest.approx(2.0) and "pg/h" in widget.status.text()
