"""A model's first run on a runtime (export and check, 10-30 s without progress) is announced."""

from __future__ import annotations

import threading

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")
pytest.importorskip("torch")

from napari_dmqpm._tests.napari.test_widget_segment import (  # noqa: E402
    RAD,
    dock,
    make_model,
)

pytestmark = pytest.mark.gui


def test_the_status_line_says_what_the_first_run_prepares_while_it_does(
    make_napari_viewer, qtbot, models, monkeypatch
):
    from napari_dmqpm.inference import backends

    make_model(models / "tiny", post={"min_cell_area_px": 10, "foreground_threshold": 0.3})
    release, prepared = threading.Event(), []
    # due whatever runs it (the suite runs "auto" on torch: conftest.py)
    monkeypatch.setattr(backends, "first_use", lambda model, backend: "due")

    def slow_describe(model, backend):  # the export and the check, held until released
        prepared.append(model.info.name)
        release.wait(20)
        return ("torch", "float32")

    monkeypatch.setattr(backends, "describe", slow_describe)
    viewer = make_napari_viewer()
    phase = np.random.default_rng(0).normal(0.0, 0.3, (64, 64)).astype(np.float32)
    viewer.add_image(phase, name="phase", metadata=RAD)
    widget = dock(viewer)
    widget.device.setCurrentText("cpu")
    widget.run()
    try:
        preparing = lambda: widget.status.text().startswith("Preparing")  # noqa: E731
        qtbot.waitUntil(preparing, timeout=20_000)
        assert widget.status.text() == (
            "Preparing torch for tiny: the first run on this machine exports it to ONNX and "
            "checks it against torch (10-30 s, once)…"
        )
        assert widget.running  # still preparing: no frame segmented yet
    finally:
        release.set()
    qtbot.waitUntil(lambda: not widget.running, timeout=30_000)
    assert set(prepared) == {"tiny"}  # no trained diameter: no size model to prepare
    assert "phase cells" in [layer.name for layer in viewer.layers]
