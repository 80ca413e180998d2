"""The Segment cells widget says which frames have no cells and why (issue 18, item 11)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")
pytest.importorskip("torch")

from napari_dmqpm._tests.napari.test_widget_segment import (  # noqa: E402
    RAD,
    dock,
    make_model,
    run_and_wait,
)

pytestmark = pytest.mark.gui


def test_featureless_frames_get_no_cells_and_the_status_line_says_so(
    make_napari_viewer, qtbot, models
):
    make_model(models / "tiny", post={"min_cell_area_px": 10, "foreground_threshold": 0.3})
    phase = np.zeros((3, 64, 64), np.float32)  # frame 0: all zero; frame 2: flat at 1 rad
    phase[1] = np.random.default_rng(0).normal(0.0, 0.3, (64, 64))
    phase[2] = 1.0
    viewer = make_napari_viewer()
    viewer.add_image(phase, name="flat phase", metadata=RAD)
    widget = dock(viewer)
    widget.device.setCurrentText("cpu")
    widget.scope.setCurrentText("all frames")
    run_and_wait(qtbot, widget)
    text = widget.status.text()
    assert text.startswith("flat cells: ") and "in 3 frame(s)" in text, text  # not a failure
    assert "featureless: frames 0, 2 (the phase is constant" in text
    cells = viewer.layers["flat cells"]
    assert not cells.data[0].any() and not cells.data[2].any()
    assert set(cells.features["frame"]) <= {1}
    n_cells = len(np.unique(cells.data[1])) - 1
    assert ("empty: frame 1 (the model found no cells)" in text) == (n_cells == 0)
