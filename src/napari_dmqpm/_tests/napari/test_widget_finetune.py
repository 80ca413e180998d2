"""The "Fine-tune model" widget; the whole loop: segment, correct, fine-tune, re-segment."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")
torch = pytest.importorskip("torch")

from napari_dmqpm.model import DMQPMNet, ModelConfig, save_checkpoint  # noqa: E402

pytestmark = pytest.mark.gui
PLUGIN = "napari-dmqpm"


def make_model(folder, *, seed=0):
    """A tiny untrained phase-only checkpoint saved in ``folder``."""
    torch.manual_seed(seed)
    config = ModelConfig(inputs="phase", fusion="early", features=(4, 8, 16, 32, 32))
    post = {"min_cell_area_px": 10, "foreground_threshold": 0.3}
    return save_checkpoint(folder, DMQPMNet(config), extra={"postprocessing": post})


@pytest.fixture
def models(models):
    """The shared empty models folder, with one tiny model ``tiny`` in it."""
    make_model(models / "tiny")
    return models


def dock(viewer, name="Segment cells"):
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, name)
    return widget


def quick(widget, *, epochs=2, minutes=0.0):
    """Small, fast training settings."""
    widget.epochs.setValue(epochs)
    widget.minutes.setValue(minutes)
    widget.iterations.setValue(2)
    widget.patch.setValue(64)
    widget.device.setCurrentText("cpu")


def correct(labels_layer, truth):
    """Replace the labels by ``truth`` the way a brush would: through the layer's history."""
    where = np.nonzero(np.asarray(labels_layer.data) != truth)
    labels_layer.data_setitem(where, truth[where])


def test_segment_correct_finetune_and_resegment(make_napari_viewer, qtbot, models, notes):
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "sparse")
    segment = dock(viewer, "Segment cells")
    segment.device.setCurrentText("cpu")
    segment.run()
    qtbot.waitUntil(lambda: not segment.running, timeout=30_000)
    cells = viewer.layers["sparse field cells"]
    truth = np.asarray(viewer.layers["sparse field ground truth"].data, dtype=np.uint32)
    correct(cells, truth)
    tune = dock(viewer, "Fine-tune model")
    assert tune.phase.currentText() == "sparse field phase"
    assert tune.labels.currentText() == "sparse field cells"
    assert tune.base.currentText() == "tiny" and tune.name.text() == "tiny-tuned-1"
    quick(tune)
    tune.train()
    assert tune.running and not tune.train_button.isEnabled()
    qtbot.waitUntil(lambda: not tune.running, timeout=120_000)
    outcome = tune.outcome
    assert outcome is not None, notes
    assert outcome.name == "tiny-tuned-1" and (models / "tiny-tuned-1" / "config.json").is_file()
    assert outcome.dice_after >= outcome.dice_before
    assert not [p for p in models.iterdir() if p.name.startswith(".")]  # run folder removed
    assert tune.plot.epochs == [0, 1, 2] and "before" in tune.scores.text()
    # the segment widget lists the new model at once, selected
    assert "tiny-tuned-1" in segment.model.names()
    assert segment.model.currentText() == "tiny-tuned-1"
    # one click re-segments with it; Ctrl+Z brings the corrected labels back
    tune.use_button.click()
    qtbot.waitUntil(lambda: not segment.running, timeout=30_000)
    assert cells.metadata["segmentation"]["model"] == "tiny-tuned-1"
    cells.undo()
    np.testing.assert_array_equal(cells.data, truth)
    assert not [n for n in notes if "error" in n[0]], notes


def test_stop_keeps_the_best_weights(make_napari_viewer, qtbot, models):
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "sparse")
    viewer.layers["sparse field ground truth"].name = "sparse field cells"
    tune = dock(viewer, "Fine-tune model")
    quick(tune, epochs=0, minutes=5.0)  # time budget only: runs until stopped
    tune.name.setText("stopped-early")
    tune.train()
    qtbot.waitUntil(lambda: len(tune.plot.epochs) >= 2, timeout=60_000)
    tune.stop_button.click()
    qtbot.waitUntil(lambda: not tune.running, timeout=30_000)
    assert tune.outcome is not None and tune.outcome.stopped
    assert (models / "stopped-early" / "model.safetensors").is_file()
    assert "stopped early" in tune.status.text()


@pytest.mark.parametrize(
    "problem, expected",
    [
        ("wrong shape", "have shape (256, 256) but the image 'sparse field phase' has shape"),
        ("empty", "are empty: paint or segment some cells first"),
        ("no labels", "no labels layer chosen"),
        ("name taken", "a model named 'tiny' exists"),
        ("too small", "smaller than the smallest tile"),
        ("no budget", "set a number of epochs or a time budget"),
    ],
)
def test_bad_input_is_a_notification_and_changes_nothing(
    make_napari_viewer, models, notes, problem, expected
):
    viewer = make_napari_viewer()
    if problem == "too small":
        viewer.add_image(np.zeros((48, 48), np.float32), name="small phase")
        viewer.add_labels(np.ones((48, 48), np.uint32), name="small cells")
    else:
        viewer.open_sample(PLUGIN, "sparse")
    if problem == "wrong shape":
        viewer.add_labels(np.ones((256, 256), np.uint32), name="sparse field cells")
    if problem in ("empty", "name taken", "no budget"):
        viewer.add_labels(np.zeros((512, 512), np.uint32), name="sparse field cells")
    if problem == "no labels":
        viewer.layers.remove("sparse field ground truth")
    tune = dock(viewer, "Fine-tune model")
    quick(tune)
    if problem == "name taken":
        viewer.layers["sparse field cells"].data[10:20, 10:20] = 1
        tune.name.setText("tiny")
    if problem == "no budget":
        viewer.layers["sparse field cells"].data[10:20, 10:20] = 1
        tune.epochs.setValue(0)
        tune.minutes.setValue(0.0)
    if problem == "wrong shape":
        tune.labels.select(viewer.layers["sparse field cells"])
    layers = [layer.name for layer in viewer.layers]
    tune.train()
    assert not tune.running
    errors = [message for severity, message in notes if "error" in severity]
    assert len(errors) == 1 and expected in errors[0], notes
    assert [layer.name for layer in viewer.layers] == layers
    assert sorted(p.name for p in models.iterdir()) == ["tiny"]
