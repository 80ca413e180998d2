"""Closing a dock widget, or the viewer, mid-run stops the work cleanly and writes nothing."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")
pytest.importorskip("torch")

pytestmark = pytest.mark.gui
PLUGIN = "napari-dmqpm"


def _long_segmentation(viewer, dock, qtbot):
    """Start segmenting 6 large frames (tens of seconds) and wait until it is under way."""
    rng = np.random.default_rng(0)
    viewer.add_image(
        rng.normal(size=(6, 768, 768)).astype(np.float32),
        name="movie phase",
        metadata={"unit": "rad"},
    )
    widget = dock(viewer)
    widget.device.setCurrentText("cpu")
    widget.scope.setCurrentText("all frames")
    widget.run()
    qtbot.waitUntil(lambda: widget.progress_bar.value() > 0, timeout=30_000)
    return widget, widget._job  # noqa: SLF001


def test_closing_the_dock_stops_the_run_and_writes_nothing(
    make_napari_viewer, qtbot, tiny_model, dock, notes
):
    tiny_model()
    viewer = make_napari_viewer()
    widget, job = _long_segmentation(viewer, dock, qtbot)
    names = [layer.name for layer in viewer.layers]
    viewer.window.remove_dock_widget(widget)
    assert job.wait(0)  # the worker ended before the dock was gone
    assert not widget.running
    qtbot.wait(300)  # anything the worker had queued is delivered now, to no one
    assert [layer.name for layer in viewer.layers] == names
    assert not [n for n in notes if "error" in n[0].lower()], notes


def test_closing_the_viewer_stops_the_run(make_napari_viewer, qtbot, tiny_model, dock, notes):
    tiny_model()
    viewer = make_napari_viewer()
    _, job = _long_segmentation(viewer, dock, qtbot)
    viewer.close()
    assert job.wait(0)
    qtbot.wait(300)
    assert not [n for n in notes if "error" in n[0].lower()], notes


def test_closing_the_finetune_dock_stops_and_keeps_the_best_weights(
    make_napari_viewer, qtbot, tiny_model, models, dock, notes
):
    tiny_model()
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "sparse")
    viewer.layers["sparse field ground truth"].name = "sparse field cells"
    tune = dock(viewer, "Fine-tune model")
    tune.epochs.setValue(0)
    tune.minutes.setValue(5.0)  # runs until stopped
    tune.iterations.setValue(2)
    tune.patch.setValue(64)
    tune.device.setCurrentText("cpu")
    tune.name.setText("closed-early")
    tune.train()
    qtbot.waitUntil(lambda: len(tune.plot.epochs) >= 2, timeout=60_000)
    job = tune._job  # noqa: SLF001
    viewer.window.remove_dock_widget(tune)
    assert job.wait(0) and not tune.running
    qtbot.wait(300)
    assert tune.outcome is None  # nothing reached the closed widget
    assert (models / "closed-early" / "model.safetensors").is_file()  # Stop's semantics
    assert not [p for p in models.iterdir() if p.name.startswith(".")]  # run folder removed
    assert not [n for n in notes if "error" in n[0].lower()], notes


def test_a_job_shut_down_drops_its_callbacks(qtbot, monkeypatch):
    from napari_dmqpm._napari._widgets._jobs import Job

    monkeypatch.delenv("NAPARI_DMQPM_NOTHREADS", raising=False)
    got = []

    def work(job):
        while not job.should_stop():
            job.report(1, 2)
            yield "tick"
        return "done"

    job = Job(work, on_yield=got.append, on_done=got.append, on_progress=lambda *a: got.append(a))
    job.start()
    qtbot.waitUntil(lambda: "tick" in got, timeout=5_000)
    assert job.shutdown(timeout_s=5.0) and job.wait(0) and not job.running
    seen = len(got)
    qtbot.wait(200)
    assert len(got) == seen  # no yield, progress or end after the shutdown
