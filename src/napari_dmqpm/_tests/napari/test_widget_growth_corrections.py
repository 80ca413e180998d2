"""Correct tracks in the Cell growth dock: merge, split, mark and unmark a division, undo."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from qtpy.QtCore import Qt  # noqa: E402

pytestmark = pytest.mark.gui

PLUGIN = "napari-dmqpm"
SHAPE = (64, 80)


def disc(centre, radius):
    rows, cols = np.ogrid[: SHAPE[0], : SHAPE[1]]
    return (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius**2


@pytest.fixture
def scene(make_napari_viewer):
    """A cell dividing at frame 4, and a cell missing in frames 2-4 (so two tracks)."""
    labels, rows = np.zeros((7, *SHAPE), np.int32), []
    for frame in range(7):
        if frame < 4:
            labels[frame][disc((24, 32), 7)] = 5
            rows.append((frame, 5, 20.0 + 2 * frame))
        else:
            labels[frame][disc((24, 25), 5)] = 3
            labels[frame][disc((24, 39), 5)] = 8
            rows += [(frame, 3, 14.0 + frame - 4), (frame, 8, 13.0 + frame - 4)]
        if not 2 <= frame <= 4:
            labels[frame][disc((52, 10), 4)] = 9
            rows.append((frame, 9, 10.0 + frame))
    viewer = make_napari_viewer(show=True)
    layer = viewer.add_labels(labels, name="cells")
    layer.features = pd.DataFrame(rows, columns=["frame", "label", "dry_mass_pg"])
    from napari_dmqpm._napari._tracks import add_tracks

    tracks_layer, tracks = add_tracks(viewer, layer, frame_interval_min=30)
    assert tracks.n_divisions == 1 and tracks.n_tracks == 5, tracks.table
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Cell growth")
    ids = {
        "mother": int(tracks.labels[0, 24, 32]), "left": int(tracks.labels[5, 24, 25]),
        "right": int(tracks.labels[5, 24, 39]), "q1": int(tracks.labels[0, 52, 10]),
        "q2": int(tracks.labels[5, 52, 10]),
    }  # fmt: skip
    return viewer, widget, tracks_layer, ids


def click(widget, viewer, world):
    viewer.dims.set_current_step(0, int(world[0]))
    widget._on_click(viewer, SimpleNamespace(type="mouse_press", position=world))


def _table(layer, column):
    table = layer.metadata["track_table"]
    return dict(zip(table["track_id"].tolist(), table[column].tolist(), strict=True))


def _state(layer):
    return layer.data.copy(), dict(layer.graph), layer.features.copy()


def _assert_state(layer, state):
    data, graph, features = state
    np.testing.assert_array_equal(layer.data, data)
    assert dict(layer.graph) == graph
    pd.testing.assert_frame_equal(layer.features.reset_index(drop=True),
                                  features.reset_index(drop=True))  # fmt: skip


def test_merge_two_pieces_picked_by_click_then_undo(scene):
    viewer, widget, layer, ids = scene
    labels_before = viewer.layers["cells"].data.copy()
    before = _state(layer)
    click(widget, viewer, (0.0, 52.0, 10.0))
    assert widget.track.value() == ids["q1"]
    widget.corrections.pick_other.setChecked(True)
    click(widget, viewer, (5.0, 52.0, 10.0))  # fills "Other track", not the shown track
    assert widget.corrections.other.value() == ids["q2"] and widget.track.value() == ids["q1"]
    assert not widget.corrections.pick_other.isChecked()
    widget.corrections.merge_button.click()
    assert "Merged tracks" in widget.status.text(), widget.status.text()
    points = np.asarray(layer.data)
    q_points = points[np.isin(layer.features["label"].to_numpy(), [9])]
    assert set(q_points[:, 0].tolist()) == {ids["q1"]}
    assert sorted(q_points[:, 1].tolist()) == [0, 1, 5, 6]
    assert ids["q2"] not in _table(layer, "track_id")
    assert (_table(layer, "first_frame")[ids["q1"]], _table(layer, "last_frame")[ids["q1"]]) == (
        0, 6,
    )  # fmt: skip
    # 1 pg a frame at 30 min: 2 pg/h, fitted on all four points; the plot shows them
    assert _table(layer, "growth_rate_pg_per_h")[ids["q1"]] == pytest.approx(2.0)
    curve = widget.plot.curves[0]
    assert curve.track_id == ids["q1"] and curve.dry_mass_pg.tolist() == [10, 11, 15, 16]
    assert layer.metadata["tracking"]["edits"][-1]["edit"] == "merge_tracks"
    np.testing.assert_array_equal(viewer.layers["cells"].data, labels_before)
    widget.corrections.undo_button.click()
    _assert_state(layer, before)
    assert "edits" not in layer.metadata["tracking"]
    widget.corrections.undo_button.click()
    assert widget.status.text() == "Nothing to undo."


def test_split_at_the_frame_shown_hands_on_the_division_and_ctrl_z_undoes(scene, qtbot):
    viewer, widget, layer, ids = scene
    before = _state(layer)
    click(widget, viewer, (2.0, 24.0, 32.0))  # the mother, frame 2 shown
    widget.corrections.split_button.click()
    new = max(ids.values()) + 1
    assert f"frames 2 on are track {new}" in widget.status.text(), widget.status.text()
    assert dict(layer.graph) == {ids["left"]: [new], ids["right"]: [new]}
    assert _table(layer, "division_frame") == {**_table(layer, "division_frame"), new: 4}
    assert _table(layer, "last_frame")[ids["mother"]] == 1
    assert widget.corrections.other.value() == new  # a Merge would put it back
    # the dock's track box reaches the new id, and the plot draws it with its daughters
    widget.track.setValue(new)
    assert [c.role for c in widget.plot.curves] == ["track", "daughter", "daughter"]
    # Ctrl+Z in the dock (focus on a button: a spin box keeps Ctrl+Z for its own text)
    widget.window().activateWindow()
    qtbot.waitUntil(widget.window().isActiveWindow, timeout=2000)
    widget.corrections.split_button.setFocus()
    qtbot.waitUntil(widget.corrections.split_button.hasFocus, timeout=2000)
    qtbot.keyClick(
        widget.corrections.split_button, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier
    )
    qtbot.waitUntil(lambda: dict(layer.graph) == before[1], timeout=2000)
    _assert_state(layer, before)


def test_unmark_and_mark_a_division_and_refusals_change_nothing(scene):
    viewer, widget, layer, ids = scene
    before = _state(layer)
    click(widget, viewer, (1.0, 24.0, 32.0))
    widget.corrections.unmark_button.click()
    assert dict(layer.graph) == {}
    assert _table(layer, "division_frame")[ids["mother"]] == -1
    assert [c.role for c in widget.plot.curves] == ["track"]
    corrections = widget.corrections
    corrections.pick_other.setChecked(True)
    click(widget, viewer, (5.0, 24.0, 25.0))
    corrections.pick_second.setChecked(True)
    click(widget, viewer, (5.0, 24.0, 39.0))
    assert (corrections.other.value(), corrections.second.value()) == (ids["left"], ids["right"])
    corrections.mark_button.click()
    _assert_state(layer, before)
    assert [c.role for c in widget.plot.curves] == ["track", "daughter", "daughter"]
    assert len(corrections.history) == 2
    # a daughter that starts before the mother ends, and overlapping pieces: refused, said
    corrections.second.setValue(ids["q1"])
    corrections.mark_button.click()
    assert f"track {ids['q1']} starts at frame 0, before its mother" in widget.status.text()
    corrections.other.setValue(ids["q1"])
    corrections.merge_button.click()
    assert "both have a cell in frame(s) 0, 1" in widget.status.text()
    _assert_state(layer, before)
    assert len(corrections.history) == 2


def test_labels_painted_after_tracking_are_named_not_edited(scene):
    viewer, widget, layer, ids = scene
    before = _state(layer)
    labels = viewer.layers["cells"]
    data = labels.data.copy()
    data[3][disc((52, 60), 3)] = 12  # a new cell painted into frame 3
    labels.data = data
    click(widget, viewer, (0.0, 24.0, 32.0))
    widget.corrections.unmark_button.click()
    assert "frame 3 hold label 12, which no track holds" in widget.status.text()
    _assert_state(layer, before)


def test_save_tracks_writes_the_corrected_tables_and_never_replaces_files(scene, tmp_path):
    viewer, widget, layer, ids = scene
    widget.track.setValue(ids["q1"])
    widget.corrections.other.setValue(ids["q2"])
    widget.corrections.merge_button.click()
    widget.corrections.save(str(tmp_path))
    assert "Saved 4 tracks (1 correction(s))" in widget.status.text(), widget.status.text()
    lineage = pd.read_csv(tmp_path / "cells_lineage.csv")
    assert sorted(lineage["track_id"]) == sorted(set(ids.values()) - {ids["q2"]})
    row = lineage.set_index("track_id").loc[ids["q1"]]
    assert (row["first_frame"], row["last_frame"], row["n_frames"]) == (0, 6, 4)
    cells = pd.read_csv(tmp_path / "cells_tracks.csv")
    assert set(cells.loc[cells["label"] == 9, "track_id"]) == {ids["q1"]}
    assert (tmp_path / "cells_ctc" / "res_track.txt").is_file()
    written = (tmp_path / "cells_lineage.csv").read_bytes()
    widget.corrections.undo_button.click()
    widget.corrections.save(str(tmp_path))
    assert "exists" in widget.status.text() and "Save tracks" in widget.status.text()
    assert (tmp_path / "cells_lineage.csv").read_bytes() == written
