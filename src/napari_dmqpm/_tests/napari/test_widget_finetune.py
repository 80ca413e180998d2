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
    status = tune.status.text()  # epochs, steps, minutes, and the base's score beside the best
    assert "2 epochs, 4 steps, " in status and " min" in status, status
    assert f"Dice {outcome.dice_before:.3f} base → {outcome.dice_after:.3f} best" in status
    card = (models / "tiny-tuned-1" / "README.md").read_text()
    assert "- run: 2 epochs, 4 optimizer steps" in card and "base model, before" in card
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
        viewer.add_image(
            np.zeros((48, 48), np.float32), name="small phase", metadata={"unit": "rad"}
        )
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
    assert tune.status.text() == errors[0]  # the whole message stays after the toast fades
    assert [layer.name for layer in viewer.layers] == layers
    assert sorted(p.name for p in models.iterdir()) == ["tiny"]


def test_a_budget_too_short_for_one_epoch_is_refused_before_training(
    make_napari_viewer, qtbot, models, notes
):
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "sparse")
    viewer.layers["sparse field ground truth"].name = "sparse field cells"
    tune = dock(viewer, "Fine-tune model")
    quick(tune, epochs=0, minutes=0.1)  # 6 s: far from 10,000 steps
    tune.iterations.setValue(10_000)
    tune.train()
    qtbot.waitUntil(lambda: not tune.running, timeout=60_000)
    assert tune.outcome is None and tune.plot.epochs == []  # not even the base was scored
    errors = [message for severity, message in notes if "error" in severity]
    assert len(errors) == 1 and "a time budget of 0.1 min is too short" in errors[0], notes
    assert "Steps per epoch" in errors[0] and "Epochs" in errors[0]
    assert "nothing was trained or saved" in errors[0]
    assert tune.status.text() == errors[0]  # the whole message stays after the toast fades
    assert sorted(p.name for p in models.iterdir()) == ["tiny"]  # no model, no run folder


def test_no_improvement_saves_nothing_and_says_so(
    make_napari_viewer, qtbot, models, notes, monkeypatch
):
    from napari_dmqpm.training import loop
    from napari_dmqpm.training.validation import ValidationResult

    flat = ValidationResult(loss=1.0, dice=0.5, f1=0.25, dices=(0.5,))  # no epoch can beat it
    monkeypatch.setattr(loop, "validate", lambda *args, **kwargs: flat)
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "sparse")
    viewer.layers["sparse field ground truth"].name = "sparse field cells"
    tune = dock(viewer, "Fine-tune model")
    quick(tune)
    tune.train()
    qtbot.waitUntil(lambda: not tune.running, timeout=120_000)
    status = tune.status.text()
    assert status.startswith("No improvement: the base model was kept (2 epochs, 4 steps, ")
    assert "validation Dice 0.500" in status and "nothing was saved" in status
    assert tune.outcome is None and not tune.use_button.isEnabled()
    infos = [message for severity, message in notes if "info" in severity]
    assert any("no improvement: the base model was kept" in m for m in infos), notes
    assert not [n for n in notes if "error" in n[0]], notes
    assert sorted(p.name for p in models.iterdir()) == ["tiny"]  # no model, no run folder
    assert "tiny-tuned-1" not in tune.base.names()


def test_the_epoch_status_gives_steps_minutes_and_the_base_beside_the_best(
    make_napari_viewer, models
):
    from napari_dmqpm.training.loop import EpochReport

    tune = dock(make_napari_viewer(), "Fine-tune model")
    tune._base_report = None  # noqa: SLF001  (train() sets it)

    def report(epoch, iteration, dice, f1, elapsed, best):
        return EpochReport(
            epoch=epoch, epochs=10, iteration=iteration, train_loss=0.5, val_loss=1.0,
            val_dice=dice, val_f1=f1, lr=1e-3, seconds=3.0, elapsed=elapsed,
            best_val_dice=best[1], best_epoch=best[0], best_val_f1=best[2], is_best=False,
        )  # fmt: skip

    tune._epoch(report(0, 0, 0.61, 0.42, 2.0, (0, 0.61, 0.42)))  # noqa: SLF001
    assert "base model: validation Dice 0.610, F1 0.420" in tune.status.text()
    tune._epoch(report(3, 30, 0.70, 0.5, 90.0, (2, 0.72, 0.55)))  # noqa: SLF001
    status = tune.status.text()
    assert status.startswith("epoch 3, 30 steps, 1.5 min: loss 0.500"), status
    assert "best: epoch 2, Dice 0.720, F1 0.550 (base: Dice 0.610, F1 0.420)" in status
