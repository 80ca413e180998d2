"""The "Fine-tune model" widget: retrain a model on the Labels layer the user corrected.

Fields -> :class:`~._work.FinetuneRequest` -> :func:`napari_dmqpm.training.iter_finetune` (the
core of ``dmqpm finetune``) in a worker, with a live plot of training loss and validation Dice.
Validation uses held-out tiles, so one image is enough. Stop ends training and keeps the best
weights; the model is saved atomically into the user models folder (never over a shipped
model) and appears in every segment widget's list at once. The phase is read one frame at a
time and converted to radians from the unit chosen under the image (see ``_unit``). Closing
the dock or the viewer mid-run acts as Stop (the best weights so far are saved), and nothing
more reaches the widget.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from napari.utils.notifications import show_info, show_warning
from qtpy.QtWidgets import QComboBox, QLabel, QLineEdit

from . import _inputs as inputs
from ._form import LayerBox, ModelBox, double_spin, int_spin, model_events
from ._jobs import CloseWatch, Job, JobEnd, RunProgress, close_job
from ._panel import Panel
from ._plot import LossPlot
from ._settings import DEVICES, load_settings, save_settings
from ._unit import PhaseUnitFields
from ._work import FinetuneRequest, finetune_work

if TYPE_CHECKING:
    import napari

__all__ = ["FinetuneWidget"]

#: Plugin name and the display name of the segment widget (napari.yaml).
PLUGIN_NAME, SEGMENT_WIDGET = "napari-dmqpm", "Segment cells"
#: Smallest frame side for training, in pixels (a training patch and a held-out strip).
MIN_TRAIN_FRAME_PX = 64
FRAME_CHOICES = ("all frames with cells", "current frame")


class FinetuneWidget(Panel):
    """Fine-tune a model on corrected labels, with a live loss / Dice plot.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        Injected by napari.
    """

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(viewer)
        self.phase = LayerBox(viewer, inputs.phase_layers)
        self.angles = LayerBox(viewer, inputs.angles_layers, none_text="none (phase only)")
        self.labels = LayerBox(viewer, inputs.labels_layers)
        self.units = PhaseUnitFields()
        self.frames, self.device = QComboBox(), QComboBox()
        self.frames.addItems(FRAME_CHOICES)
        self.device.addItems(DEVICES)
        self.base = ModelBox()
        self.epochs = int_spin(0, 0, 10_000, special="no limit", tooltip="Stop after this many")
        self.minutes = double_spin(
            3.0,
            0.0,
            10_000.0,
            step=0.5,
            decimals=1,
            suffix=" min",
            special="no limit",
            tooltip="Stop after this long",
        )
        self.learning_rate = double_spin(
            1e-3, 1e-5, 0.1, step=1e-4, decimals=5, tooltip="Initial learning rate (poly decay)"
        )
        self.iterations = int_spin(10, 1, 10_000, tooltip="Optimizer steps per epoch")
        self.patch = int_spin(256, 32, 2048, tooltip="Training patch side in pixels")
        self.patch.setSingleStep(32)
        self.name = QLineEdit()
        self.name.setToolTip("Folder name of the new model in your models folder")
        self.train_button = self.button("Train", self.train, "Fine-tune on the corrected labels")
        self.stop_button = self.button("Stop", self.stop, "Stop and keep the best weights")
        self.use_button = self.button(
            "Segment with it", self.segment_with_result, "Re-segment the image with the new model"
        )
        self.plot, self.scores = LossPlot(), QLabel("")
        self.scores.setWordWrap(True)
        self._job: Job | None = None
        self._progress: RunProgress | None = None
        self.outcome: Any = None
        self._build()
        self.phase.currentIndexChanged.connect(self._phase_changed)
        self.angles.currentIndexChanged.connect(self._angles_changed)
        self.base.currentIndexChanged.connect(self._suggest_name)
        model_events().added.connect(self._model_added)
        self.base.refresh()
        self._phase_changed()
        self._angles_changed()
        self._watch = CloseWatch(self, self.shut_down)

    def _build(self) -> None:
        self.section("Training data")
        self.row("Phase image", self.phase)
        self.row("Angle images", self.angles)
        self.row("Phase unit", self.units.unit)
        self.row("", self.units.note)
        self.row("Wavelength", self.units.wavelength)
        self.row("Corrected labels", self.labels)
        self.row("Frames", self.frames)
        self.section("Training")
        self.row("Base model", self.base, self.button("↻", self.base.refresh, "Re-read models"))
        self.row("Epochs", self.epochs)
        self.row("Time budget", self.minutes)
        self.row("New model name", self.name)
        self.section("Options", folded=True)
        self.row("Learning rate", self.learning_rate)
        self.row("Steps per epoch", self.iterations)
        self.row("Patch size", self.patch)
        self.row("Device", self.device)
        self.end_fold()
        self.buttons(self.train_button, self.stop_button)
        self.add_progress()
        self.add(self.plot)
        self.add(self.scores)
        self.buttons(self.use_button)
        self.finish()
        self.set_running(False)
        self.use_button.setEnabled(False)

    def reset_choices(self, event: Any = None) -> None:
        """Re-list the layers (napari calls this when layers change)."""
        for box in (self.phase, self.angles, self.labels):
            box.refresh()
        self._pair_inputs()

    def _phase_changed(self, *_: Any) -> None:
        self._pair_inputs(force=True)
        self.units.follow(self.phase.layer(), load_settings())
        if not self.running:  # the last run's words are not about this image
            self.status.setText("")
            self.scores.setText("")

    def _angles_changed(self, *_: Any) -> None:
        self.base.follow_inputs(has_angles=self.angles.layer() is not None)

    def _pair_inputs(self, *, force: bool = False) -> None:
        """Choose the angles and labels of the phase image (unless the user chose others)."""
        phase, layers = self.phase.layer(), list(self.viewer.layers)
        if phase is not None:
            self.angles.suggest(inputs.partner_angles(phase, layers), force=force)
            partner = inputs.partner_labels(phase, layers)
            if partner is not None:
                self.labels.suggest(partner, force=force)
        self.frames.setEnabled(phase is not None and phase.ndim == 3)

    def _model_added(self, name: str) -> None:
        self.base.refresh()
        if self.name.text() in self.base.names():  # taken now: offer the next free name
            self._suggest_name()

    def _suggest_name(self, *_: Any) -> None:
        base, taken = self.base.currentText() or "model", set(self.base.names())
        number = 1
        while f"{base}-tuned-{number}" in taken:
            number += 1
        self.name.setText(f"{base}-tuned-{number}")

    @property
    def running(self) -> bool:
        """True while training."""
        return self._job is not None and self._job.running

    def set_running(self, running: bool) -> None:
        """Enable Stop and disable Train while training (and back)."""
        self.train_button.setEnabled(not running)
        self.stop_button.setEnabled(running)

    def request(self) -> FinetuneRequest:
        """Read and check the fields; :class:`~._inputs.InputError` names any problem."""
        from napari_dmqpm.model.registry import user_model_path

        phase, angles, info = self.phase.layer(), self.angles.layer(), self.base.info()
        if info is None:
            raise inputs.InputError("no base model chosen: the models list is empty")
        if info.needs_angles and angles is None:
            raise inputs.InputError(
                f"base model {info.name!r} needs the four angle images: "
                "choose an angles layer or a phase-only model"
            )
        frames = None
        if phase is not None and phase.ndim == 3 and self.frames.currentText() == "current frame":
            frames = [inputs.current_frame(phase, self.viewer.dims.point)]
        labels = inputs.labels_for_training(
            self.labels.layer(), phase, frames, minimum=MIN_TRAIN_FRAME_PX
        )
        epochs, minutes = int(self.epochs.value()) or None, float(self.minutes.value()) or None
        if epochs is None and minutes is None:
            raise inputs.InputError("set a number of epochs or a time budget (or both)")
        name = self.name.text().strip()
        if user_model_path(name).exists():  # ValueError for bad or shipped names
            raise inputs.InputError(f"a model named {name!r} exists; choose another name")
        unit = self.units.value()
        chosen = frames if frames is not None else list(range(inputs.frames_of(phase)))
        stack = np.stack([inputs.phase_in_radians(phase, t, unit) for t in chosen])
        angle_stack = None
        if info.needs_angles:  # (4, [T,] M, N) -> (T, 4, M, N), one frame at a time
            read = (lambda t: angles.data[:, t]) if phase.ndim == 3 else (lambda t: angles.data)
            angle_stack = np.stack([np.asarray(read(t), dtype=np.float32) for t in chosen])
        options = {
            "epochs": epochs,
            "minutes": minutes,
            "learning_rate": float(self.learning_rate.value()),
            "iterations_per_epoch": int(self.iterations.value()),
            "patch_size": int(self.patch.value()),
            "device": self.device.currentText(),
        }
        return FinetuneRequest(stack, labels, angle_stack, info.name, name, options, unit)

    def train(self) -> None:
        """Check the inputs and start fine-tuning (a notification names any problem)."""
        if self.running:
            return
        try:
            request = self.request()
        except (inputs.InputError, ValueError) as error:
            self.fail(f"Fine-tune: {error}")
            return
        try:
            save_settings(self.units.remember(load_settings()))
        except OSError as error:
            show_warning(f"Fine-tune: could not save the settings ({error})")
        self.plot.clear()
        self.scores.setText("")
        self.outcome, self._base_report = None, None
        self.use_button.setEnabled(False)
        self.set_running(True)
        unit = request.phase_unit
        read_as = "" if unit.unit == "rad" else f" (phase read as {inputs.UNIT_NAMES[unit.unit]})"
        timing = "timing one epoch and " if request.options.get("minutes") else ""
        self.status.setText(
            f"Fine-tuning {request.base} as {request.name}{read_as}: {timing}"
            "scoring the base model…"
        )
        self._progress = RunProgress(1, f"Fine-tuning {request.name}")
        self._job = Job(
            lambda job: finetune_work(job, request), on_yield=self._epoch, on_done=self._done
        )
        self._watch.track(self._job)
        self._job.start()

    def stop(self) -> None:
        """Stop training after the current step; the best weights so far are saved."""
        if self._job is not None:
            self._job.stop()
            self.status.setText("Stopping: saving the best weights so far…")

    def shut_down(self) -> None:
        """The dock or the viewer closes: stop as Stop does, then forget the job (no Qt)."""
        job, bars = self._job, self._progress
        self._job, self._progress = None, None
        close_job(job, bars)

    def _epoch(self, report: Any) -> None:
        self.plot.add(report.epoch, report.train_loss, report.val_dice)
        steps = int(round(1000 * report.fraction_done))
        if self._progress is not None:
            self._progress.update(steps, 1000)
        self.show_progress(steps, 1000, f"epoch {report.epoch}")
        if report.epoch == 0:
            self._base_report = report
            self.scores.setText(f"Validation Dice before: {report.val_dice:.3f}")
            self.status.setText(
                f"base model: validation Dice {report.val_dice:.3f}, F1 {report.val_f1:.3f}; "
                "training…"
            )
            return
        base = getattr(self, "_base_report", None)
        best = (
            "best: still the base model"
            if report.best_epoch == 0
            else f"best: epoch {report.best_epoch}, Dice {report.best_val_dice:.3f}, "
            f"F1 {report.best_val_f1:.3f}"
        )
        if base is not None:
            best += f" (base: Dice {base.val_dice:.3f}, F1 {base.val_f1:.3f})"
        self.status.setText(
            f"epoch {report.epoch}, {report.iteration} steps, {report.elapsed / 60:.1f} min: "
            f"loss {report.train_loss:.3f}, validation Dice {report.val_dice:.3f}, "
            f"F1 {report.val_f1:.3f}; {best}"
        )

    def _done(self, end: JobEnd) -> None:
        if self._progress is not None:
            self._progress.close()
            self._progress = None
        self.set_running(False)
        self.hide_progress()
        from napari_dmqpm.training.budget import BudgetTooShortError

        if isinstance(end.error, BudgetTooShortError):
            need = end.error.needed_minutes
            self.fail(
                f"Fine-tune: a time budget of {end.error.minutes:g} min is too short for one "
                f"epoch of {end.error.iterations} steps (about {need:g} min on this machine): "
                f"set Time budget to {need:g} min or more, fewer Steps per epoch, or no "
                "limit with a number of Epochs; nothing was trained or saved"
            )
            return
        if end.error is not None or end.value is None:
            reason = end.error or "stopped before any result"
            self.fail(f"Fine-tune: {reason}; no model was saved")
            return
        outcome = end.value
        self.scores.setText(
            f"Validation Dice: {outcome.dice_before:.3f} before → {outcome.dice_after:.3f} "
            f"after (best epoch {outcome.best_epoch}); F1@0.5: {outcome.f1_before:.3f} → "
            f"{outcome.f1_after:.3f}"
        )
        stopped = " (stopped early)" if outcome.stopped else ""
        done = (
            f"{outcome.epochs} epochs, {outcome.iterations} steps, {outcome.minutes:.1f} min"
            f"{stopped}"
        )
        if not outcome.improved:
            self.status.setText(
                f"No improvement: the base model was kept ({done}; no epoch beat its "
                f"validation Dice {outcome.dice_before:.3f}); nothing was saved"
            )
            show_info(
                f"Fine-tune: no improvement: the base model was kept; no epoch beat its "
                f"validation Dice {outcome.dice_before:.3f}, F1 {outcome.f1_before:.3f} "
                f"({done}); no model {outcome.name!r} was saved"
            )
            return
        self.outcome = outcome
        self.status.setText(
            f"Saved {outcome.name} in your models folder: {done}; validation Dice "
            f"{outcome.dice_before:.3f} base → {outcome.dice_after:.3f} best"
        )
        self.status.setToolTip(str(outcome.path))
        self.use_button.setEnabled(True)
        model_events().added.emit(outcome.name)
        show_info(
            f"Fine-tune: saved model {outcome.name!r} ({done}); validation Dice "
            f"{outcome.dice_before:.3f} base → {outcome.dice_after:.3f} best"
        )

    def segment_with_result(self) -> None:
        """Re-segment the training image with the new model in the segment widget."""
        from ._segment import SegmentWidget

        if self.outcome is None:
            return
        widget = next(
            (w for w in self.viewer.window.dock_widgets.values() if isinstance(w, SegmentWidget)),
            None,
        )
        if widget is None:
            _, widget = self.viewer.window.add_plugin_dock_widget(PLUGIN_NAME, SEGMENT_WIDGET)
        widget.segment_with(self.outcome.name, self.phase.layer())
