"""The status bar of a time-lapse Labels layer shows the row of the frame on screen."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from napari_dmqpm._napari._widgets._frame_rows import follow_frame  # noqa: E402

pytestmark = pytest.mark.gui


def _table(mass_offset: float = 0.0) -> pd.DataFrame:
    """Cells 1 and 2 in each of 3 frames; cell 1 weighs 10, 11, 12 pg (+ offset)."""
    return pd.DataFrame(
        {
            "frame": [0, 0, 1, 1, 2, 2],
            "label": [1, 2, 1, 2, 1, 2],
            "dry_mass_pg": np.array([10.0, 20.0, 11.0, 21.0, 12.0, 22.0]) + mass_offset,
            "index": [1, 2, 1, 2, 1, 2],
        }
    )


def _status(layer, t: int) -> str:
    return layer.get_status((t, 3.5, 3.5), world=True)["coordinates"]


def test_the_status_bar_shows_the_row_of_the_frame_on_screen(make_napari_viewer):
    viewer = make_napari_viewer()
    labels = np.zeros((3, 20, 20), np.int32)
    labels[:, 5:10, 5:10] = 1
    labels[:, 12:18, 12:18] = 2
    layer = viewer.add_labels(labels, scale=(1, 0.5, 0.5))
    layer.features = _table()
    follow_frame(viewer, layer)
    for t in (0, 1, 2):
        viewer.dims.set_current_step(0, t)
        assert f"frame: {t}, label: 1, dry_mass_pg: {10 + t}" in _status(layer, t)
    layer.features = _table(100.0)  # a new table (Update table, corrections) is followed too
    viewer.dims.set_current_step(0, 1)
    assert "frame: 1, label: 1, dry_mass_pg: 111" in _status(layer, 1)
    follow_frame(viewer, layer)  # a second call connects nothing twice
    assert "dry_mass_pg: 111" in _status(layer, 1)
