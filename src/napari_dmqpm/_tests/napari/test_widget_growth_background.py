"""The growth dock as a new user meets it: the file's frame interval, untrusted masses, saving."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

pytestmark = pytest.mark.gui

PLUGIN = "napari-dmqpm"
N_FRAMES = 8


def _square_movie():
    """One 8x8 cell moving a column a frame (label 3 + t), its mass growing 5 % a frame."""
    labels = np.zeros((N_FRAMES, 32, 48), np.int32)
    for t in range(N_FRAMES):
        labels[t, 10:18, 5 + t : 13 + t] = 3 + t
    frames = np.arange(N_FRAMES)
    mass = 100.0 * np.exp(0.05 * frames)
    ok = np.ones(N_FRAMES, np.int64)
    mass[[5, 6, 7]] *= 0.5  # three frames without a trusted background, half the mass
    ok[[5, 6, 7]] = 0
    rows = {"frame": frames, "label": 3 + frames, "dry_mass_pg": mass, "background_ok": ok}
    return labels, pd.DataFrame(rows)


def _movie_file(path, interval_min):
    import tifffile

    metadata = {"axes": "TYX", "finterval": interval_min * 60.0, "tunit": "sec"}
    tifffile.imwrite(path, np.zeros((N_FRAMES, 32, 48), np.float32), imagej=True,
                     metadata=metadata)  # fmt: skip
    return str(path)


def test_the_frame_interval_of_the_segmented_file_reaches_the_dock(make_napari_viewer, tmp_path):
    from napari_dmqpm._napari._tracks import add_tracks

    labels, features = _square_movie()
    viewer = make_napari_viewer()
    source = _movie_file(tmp_path / "movie.tif", 20.0)
    layer = viewer.add_labels(labels, name="movie cells", metadata={"source": source})
    layer.features = features
    tracks_layer, tracks = add_tracks(viewer, layer)  # no interval given: the file's
    assert tracks.metadata["frame_interval_min"] == pytest.approx(20.0)
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Cell growth")
    assert widget.interval.value() == pytest.approx(20.0)
    assert "pg/h" in widget.status.text() and "set the frame interval" not in widget.status.text()
    # a file that states no interval (or is gone): unknown, asked for, not guessed
    layer.metadata = {"source": str(tmp_path / "gone.tif")}
    assert add_tracks(viewer, layer)[1].metadata["frame_interval_min"] is None
    layer.metadata = {"file_metadata": {"frame_interval_min": 7.5}, "source": source}
    assert add_tracks(viewer, layer)[1].metadata["frame_interval_min"] == 7.5


def test_untrusted_masses_are_kept_per_point_left_out_of_the_fit_and_said(
    make_napari_viewer, tmp_path
):
    from napari_dmqpm._napari._tracks import add_tracks

    labels, features = _square_movie()
    viewer = make_napari_viewer()
    layer = viewer.add_labels(labels, name="movie cells")
    layer.features = features
    tracks_layer, _ = add_tracks(viewer, layer, frame_interval_min=60)
    assert tracks_layer.features["background_ok"].tolist() == [True] * 5 + [False] * 3
    table = tracks_layer.metadata["track_table"]
    assert table["n_fit_frames"].tolist() == [5]
    assert table["specific_growth_rate_per_h"][0] == pytest.approx(0.05)
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Cell growth")
    assert "5 of 8 frames fitted" in widget.status.text(), widget.status.text()
    # a correction rebuilds the result from the layer: the flags survive it
    result = widget.corrections.result()
    assert result.table["n_fit_frames"].tolist() == [5]
    widget.corrections.save(str(tmp_path))
    lineage = pd.read_csv(tmp_path / "movie_lineage.csv")
    assert lineage["n_fit_frames"].tolist() == [5]
    cells = pd.read_csv(tmp_path / "movie_tracks.csv")
    assert cells["background_ok"].tolist() == [1] * 5 + [0] * 3


def test_saving_over_existing_files_says_to_choose_another_folder(make_napari_viewer, tmp_path):
    from napari_dmqpm._napari._tracks import add_tracks

    labels, features = _square_movie()
    viewer = make_napari_viewer()
    layer = viewer.add_labels(labels, name="movie cells")
    layer.features = features
    add_tracks(viewer, layer, frame_interval_min=60)
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Cell growth")
    widget.corrections.save(str(tmp_path))
    written = (tmp_path / "movie_lineage.csv").read_bytes()
    widget.corrections.save(str(tmp_path))
    text = widget.status.text()
    assert "choose another folder" in text and "overwrite=True" not in text, text
    assert (tmp_path / "movie_lineage.csv").read_bytes() == written


def test_a_real_click_on_the_canvas_picks_the_track(make_napari_viewer, qtbot):
    """Through napari's mouse callbacks, as a user clicks (not the dock's handler directly)."""
    from qtpy.QtCore import QPoint, Qt
    from qtpy.QtTest import QTest

    from napari_dmqpm._napari._tracks import add_tracks

    labels = np.zeros((3, 64, 64), np.int32)
    labels[:, 16:48, 16:48] = [[[4]], [[5]], [[6]]]  # one big cell in the middle
    labels[:, 2:8, 2:8] = 9  # and a small one in a corner
    viewer = make_napari_viewer(show=True)
    layer = viewer.add_labels(labels, name="cells")
    _, tracks = add_tracks(viewer, layer, frame_interval_min=10)
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Cell growth")
    middle = int(tracks.labels[1, 32, 32])
    widget.track.setValue(int(tracks.labels[1, 4, 4]))
    assert widget.track.value() != middle
    viewer.reset_view()
    viewer.dims.set_current_step(0, 1)
    native = viewer.window._qt_viewer.canvas.native
    QTest.mouseClick(native, Qt.LeftButton, Qt.NoModifier,
                     QPoint(native.width() // 2, native.height() // 2))  # fmt: skip
    qtbot.waitUntil(lambda: widget.track.value() == middle, timeout=2000)


def test_the_dock_opens_on_the_longest_track(make_napari_viewer):
    from napari_dmqpm._napari._tracks import add_tracks

    labels = np.zeros((6, 32, 48), np.int32)
    labels[0, 1:4, 1:4] = 1  # seen once, at the edge: track 1
    labels[:, 12:20, 12:20] = 2  # seen in every frame
    viewer = make_napari_viewer()
    layer = viewer.add_labels(labels, name="cells")
    _, tracks = add_tracks(viewer, layer, frame_interval_min=10)
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Cell growth")
    assert widget.track.value() == int(tracks.labels[3, 15, 15]) != int(tracks.labels[0, 2, 2])
    assert "frames 0-5" in widget.status.text(), widget.status.text()
