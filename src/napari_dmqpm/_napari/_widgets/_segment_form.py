"""The fields of the "Segment cells" widget and their translation into a request.

:class:`SegmentForm` holds the inputs (with the phase unit), model, device, diameter, TTA,
scope and thresholds, remembers some of them between sessions, and turns them into a checked
:class:`~._work.SegmentRequest` (or an :class:`~._inputs.InputError` naming the problem).
:class:`~._segment.SegmentWidget` adds the running and the results.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from napari.utils.notifications import show_info
from qtpy.QtWidgets import QApplication, QCheckBox, QComboBox, QLineEdit, QPlainTextEdit

from . import _inputs as inputs
from ._form import LayerBox, ModelBox, double_spin, int_spin, model_events
from ._outputs import check_outputs
from ._panel import Panel
from ._settings import DEVICES, WidgetSettings, load_settings
from ._unit import PhaseUnitFields
from ._work import SegmentRequest

if TYPE_CHECKING:
    import napari

__all__ = ["SCOPES", "SegmentForm"]

#: What a run segments in a time-lapse.
SCOPES = ("current frame", "all frames")


class SegmentForm(Panel):
    """The fields of the segment widget (its actions are defined by the subclass).

    Parameters
    ----------
    viewer : napari.viewer.Viewer
    """

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(viewer)
        self.phase = LayerBox(viewer, inputs.phase_layers)
        self.angles = LayerBox(viewer, inputs.angles_layers, none_text="none (phase only)")
        self.units = PhaseUnitFields()
        self.model, self.device = ModelBox(), QComboBox()
        self.device.addItems(DEVICES)
        self.device_used = self.note("in use: not loaded yet")
        self.diameter = double_spin(
            0.0,
            0.0,
            1000.0,
            step=1.0,
            decimals=1,
            suffix=" px",
            special="auto",
            tooltip="Typical cell diameter in pixels; auto: estimated on each image by the "
            "model (on the first frame, re-checked every 10 frames). A number overrides it.",
        )
        self.diameter_found = QLineEdit(readOnly=True)
        self.diameter_found.setPlaceholderText("estimate after a run")
        self.diameter_found.setToolTip("The cell diameter the last run resampled for")
        self.tta = QCheckBox("test-time augmentation (4x slower)")
        self.scope = QComboBox()
        self.scope.addItems(SCOPES)
        self.track = QCheckBox("track cells over the frames (all frames)")
        self.track.setToolTip(
            "After an all-frames run, link the cells over time (divisions included) into a "
            "Tracks layer with their dry mass; growth rates in the layer's metadata"
        )
        self.foreground = double_spin(0.5, 0.01, 0.99, tooltip="Cell where P(cell) exceeds this")
        self.seeds = double_spin(0.5, 0.01, 0.99, tooltip="Seeds where the seed score exceeds this")
        self.min_area = int_spin(30, 0, 100_000, tooltip="Smaller cells are removed (model px)")
        self.run_button = self.button("Run", self.run, "Segment the chosen frames")
        self.cancel_button = self.button("Cancel", self.cancel, "Stop; no layer changes")
        self.reapply_button = self.button(
            "Re-apply thresholds",
            self.reapply_thresholds,
            "New labels from the last probabilities, no network",
        )
        self.contours = QCheckBox("outline cells (contours)")
        self.contours.setToolTip(
            "Draw the cells of the result as outlines, so touching cells are told apart"
        )
        self.code = QPlainTextEdit(readOnly=True)
        self._build()
        self.phase.currentIndexChanged.connect(self._phase_changed)
        self.angles.currentIndexChanged.connect(self._angles_changed)
        self.model.currentIndexChanged.connect(self._model_changed)
        model_events().added.connect(self._model_added)
        self._restore(load_settings())
        self._phase_changed()
        self._angles_changed()

    def _build(self) -> None:
        self.section("Input")
        self.row("Phase image", self.phase)
        self.row("Angle images", self.angles)
        self.row("Phase unit", self.units.unit)
        self.row("", self.units.note)
        self.row("Wavelength", self.units.wavelength)
        self.row("Pixel size", self.units.pixel_size)
        self.row("Frames", self.scope)
        self.row("", self.track)
        self.section("Model")
        refresh = self.button("↻", lambda: self.model.refresh(), "Re-read the models folders")
        self.row("Model", self.model, refresh)
        self.row("Device", self.device, self.device_used)
        self.row("Cell diameter", self.diameter, self.diameter_found)
        self.row("", self.tta)
        self.buttons(self.run_button, self.cancel_button)
        self.add_progress()
        self.section("Thresholds", folded=True)
        self.row("Foreground", self.foreground)
        self.row("Seeds", self.seeds)
        self.row("Min. cell area", self.min_area)
        self.buttons(self.reapply_button)
        self.end_fold()
        self.section("Results")
        self.buttons(
            self.button("Update table", self.update_table, "Measure the cells as painted now"),
            self.button("Save table…", self.save_table, "Write the per-cell table as CSV"),
            self.button("Copy as code", self.copy_as_code, "The dmqpm command and Python call"),
        )
        self.row("", self.contours)
        self.add(self.code)
        self.code.setVisible(False)
        self.finish()
        self.set_running(False)

    # ---- fields -> request ------------------------------------------------------------------

    def reset_choices(self, event: Any = None) -> None:
        """Re-list the layers (napari calls this when layers are added, removed or renamed)."""
        self.phase.refresh()
        self.angles.refresh()
        self._pair_inputs()

    def _phase_changed(self, *_: Any) -> None:
        self._pair_inputs(force=True)
        self.units.follow(self.phase.layer(), load_settings())
        # what was said about the last image is not about this one
        self.status.setText("")
        self.diameter_found.clear()
        self.code.clear()
        self.code.setVisible(False)

    def _pair_inputs(self, *, force: bool = False) -> None:
        """Choose the angles layer of the phase image's file (unless the user chose one)."""
        phase = self.phase.layer()
        if phase is not None:
            partner = inputs.partner_angles(phase, list(self.viewer.layers))
            self.angles.suggest(partner, force=force)
        self.scope.setEnabled(phase is not None and phase.ndim == 3)

    def _angles_changed(self, *_: Any) -> None:
        self.model.follow_inputs(has_angles=self.angles.layer() is not None)

    def _model_changed(self, *_: Any) -> None:
        from napari_dmqpm.inference.config import PostprocessConfig

        info = self.model.info()
        try:
            post = PostprocessConfig.from_dict(info.postprocessing if info else {})
        except (TypeError, ValueError):
            post = PostprocessConfig()
        self.foreground.setValue(post.foreground_threshold)
        self.seeds.setValue(post.seed_threshold)
        self.min_area.setValue(post.min_cell_area_px)

    def _model_added(self, name: str) -> None:
        self.model.refresh(select=name)

    def _restore(self, settings: WidgetSettings) -> None:
        self.model.refresh(select=settings.model)
        self.device.setCurrentText(settings.device)
        self.diameter.setValue(settings.diameter_px or 0.0)
        self.tta.setChecked(settings.tta)

    def settings(self) -> WidgetSettings:
        """The choices to remember (model, device, diameter, TTA, phase unit, wavelength)."""
        diameter = self.diameter.value() or None
        chosen = dataclasses.replace(
            load_settings(),
            model=self.model.currentText() or None,
            device=self.device.currentText(),
            diameter_px=diameter,
            tta=self.tta.isChecked(),
        )
        return self.units.remember(chosen)

    def postprocess(self) -> Any:
        """The thresholds of the fields, over the model's other post-processing values."""
        from napari_dmqpm.inference.config import PostprocessConfig

        info = self.model.info()
        try:
            base = PostprocessConfig.from_dict(info.postprocessing if info else {})
        except (TypeError, ValueError):
            base = PostprocessConfig()
        return base.replace(
            foreground_threshold=round(self.foreground.value(), 4),
            seed_threshold=round(self.seeds.value(), 4),
            min_cell_area_px=int(self.min_area.value()),
        )

    def request(self) -> SegmentRequest:
        """Read and check the fields; :class:`~._inputs.InputError` names any problem."""
        from napari_dmqpm.inference.config import InferenceConfig

        phase, angles, info = self.phase.layer(), self.angles.layer(), self.model.info()
        if phase is None:
            raise inputs.InputError("no phase image chosen: open an ssQPM file or sample data")
        inputs.check_frame_size(phase)
        check_outputs(self.viewer, phase)
        if info is None:
            raise inputs.InputError(
                "no model available: fine-tune one, or put a checkpoint folder into the "
                "models folder (NAPARI_DMQPM_MODELS)"
            )
        if info.needs_angles and angles is None:
            raise inputs.InputError(
                f"model {info.name!r} needs the four angle images: choose an angles layer "
                "or a phase-only model"
            )
        if self.diameter.value() and info.cell_diameter_px is None:
            raise inputs.InputError(
                f"model {info.name!r} does not state the cell diameter it was trained at: "
                "set the cell diameter to auto"
            )
        phase_unit = self.units.value()
        config = InferenceConfig(
            device=self.device.currentText(),
            diameter_px=self.diameter.value() or "auto",
            tta=self.tta.isChecked(),
        )
        frames = None
        if phase.ndim == 3 and self.scope.currentText() == "current frame":
            frames = [inputs.current_frame(phase, self.viewer.dims.point)]
        return SegmentRequest(
            phase,
            angles if info.needs_angles else None,
            info.name,
            config,
            self.postprocess(),
            frames,
            phase_unit,
            self.units.pixel_size_um(),
        )

    def copy_as_code(self) -> str | None:
        """Put the equivalent ``dmqpm segment`` command and Python call on the clipboard."""
        from ._code import SegmentCall, python_snippet, shell_command

        try:
            request = self.request()
        except (inputs.InputError, ValueError) as error:
            self.fail(f"Segment cells: {error}")
            return None
        call = SegmentCall(
            source=request.phase.metadata.get("source"),
            phase_layer=request.phase.name,
            angles_layer=request.angles.name if request.angles is not None else None,
            pixel_size_um=request.pixel_size_um,
            model=request.model,
            config=request.config,
            postprocess=request.postprocess,
            frames=request.frames,
            phase_unit=request.phase_unit,
            file_wavelength_um=request.phase.metadata.get("wavelength_um"),
        )
        text = f"# shell\n{shell_command(call)}\n\n# Python\n{python_snippet(call)}"
        QApplication.clipboard().setText(text)
        self.code.setPlainText(text)
        self.code.setVisible(True)
        show_info("Copied the dmqpm command and the Python call to the clipboard")
        return text
