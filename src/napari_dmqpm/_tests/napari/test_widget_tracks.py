"""Tracks in the viewer: add_tracks on a Labels time-lapse, and the segment widget's option."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from napari_dmqpm._napari._tracks import add_tracks  # noqa: E402

pytestmark = pytest.mark.gui
PLUGIN = "napari-dmqpm"


def _division_labels():
    """Cell 1 in frames 0-2 divides into cells 2 and 3 in frames 3-4."""
    labels = np.zeros((5, 48, 48), np.int32)
    labels[:3, 16:32, 16:32] = 1
    labels[3:, 14:24, 16:32] = 2
    labels[3:, 24:34, 16:32] = 3
    return labels


def test_add_tracks_shows_the_lineage_and_the_dry_mass_of_the_labels_table(make_napari_viewer):
    viewer = make_napari_viewer()
    layer = viewer.add_labels(_division_labels(), name="movie cells", scale=(1, 0.5, 0.5))
    frames = [0, 1, 2, 3, 3, 4, 4]
    labels = [1, 1, 1, 2, 3, 2, 3]
    mass = [200.0, 204.0, 208.0, 105.0, 106.0, 108.0, 109.0]
    layer.features = pd.DataFrame({"frame": frames, "label": labels, "dry_mass_pg": mass})
    tracks_layer, tracks = add_tracks(viewer, layer, frame_interval_min=30)
    assert tracks_layer.name == "movie cells tracks" and tracks_layer in viewer.layers
    assert tracks.n_divisions == 1 and len(tracks_layer.graph) == 2
    np.testing.assert_allclose(np.sort(tracks_layer.features["dry_mass_pg"]), np.sort(mass))
    np.testing.assert_allclose(tracks_layer.scale, (1, 0.5, 0.5))
    table = tracks_layer.metadata["track_table"]
    assert np.isfinite(table["growth_rate_pg_per_h"][0])  # the mother: 3 frames, 8 pg/h
    assert table["growth_rate_pg_per_h"][0] == pytest.approx(8.0)
    # a second run replaces the layer instead of adding another
    add_tracks(viewer, layer, frame_interval_min=30)
    assert [lay.name for lay in viewer.layers].count("movie cells tracks") == 1


def test_a_single_frame_is_refused_with_nothing_to_track(make_napari_viewer):
    viewer = make_napari_viewer()
    layer = viewer.add_labels(_division_labels()[:1], name="one")
    with pytest.raises(ValueError, match="nothing to track"):
        add_tracks(viewer, layer)


def test_segment_all_frames_with_tracking_adds_a_tracks_layer(
    make_napari_viewer, models, monkeypatch
):
    import torch

    from napari_dmqpm.model import DMQPMNet, ModelConfig, save_checkpoint

    torch.manual_seed(0)
    config = ModelConfig(
        inputs="phase", fusion="early", fusion_stage=1, features=(4, 8, 16, 32, 32)
    )
    post = {"postprocessing": {"min_cell_area_px": 10, "foreground_threshold": 0.3}}
    save_checkpoint(models / "tiny", DMQPMNet(config), extra=post)
    monkeypatch.setenv("NAPARI_DMQPM_NOTHREADS", "1")
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "timelapse")
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Segment cells")
    widget.device.setCurrentText("cpu")
    widget.scope.setCurrentText("all frames")
    widget.track.setChecked(True)
    widget.run()
    cells = [layer for layer in viewer.layers if layer.name.endswith(" cells")][0]
    assert f"{cells.name} tracks" in viewer.layers
    assert "tracks" in widget.status.text()
    # the status bar shows the cell's row of the frame on screen, not of the last frame
    features = cells.features
    shown = 0
    for t in sorted(set(features["frame"])):
        label = int(features.loc[features["frame"] == t, "label"].iloc[0])
        where = np.argwhere(np.asarray(cells.data[t]) == label)
        if not len(where):
            continue
        viewer.dims.set_current_step(viewer.dims.ndim - 3, t)  # time is the angles' 2nd axis
        position = cells.data_to_world((t, *where[0]))
        assert f"frame: {t}, label: {label}," in cells.get_status(position, world=True)["value"]
        shown += 1
    assert shown >= 2
