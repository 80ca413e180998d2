"""The "Segment cells" widget: fields -> config -> segment_acquisition in a worker -> layers.

Inputs are picked from the reader's layers (the angles layer of the chosen phase image comes
with it); the model list holds the shipped and the user's models and refreshes when the
fine-tune widget saves one. A run reads the layers one frame at a time (a lazy time-lapse is
never loaded whole), gathers the frames in a :class:`~._outputs.FrameStage` and then writes
``"<stem> cells"`` (created, or updated through the layer's history so Ctrl+Z restores the
previous result) and a hidden float16 probability layer; the probabilities are kept (float16),
so new thresholds apply without running the network again. Closing the dock or the viewer
mid-run stops the run; nothing is written then.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from napari.utils.notifications import show_info, show_warning

from . import _inputs as inputs
from ._jobs import CloseWatch, Job, JobEnd, RunProgress, close_job
from ._outputs import (
    FrameStage,
    describe_diameters,
    labels_name,
    measure_layer,
    save_features_csv,
    segmentation_record,
    set_features,
    short_diameter,
    write_results,
)
from ._segment_form import SegmentForm
from ._settings import save_settings
from ._work import Notice, SegmentRequest, rethreshold_work, segment_work

if TYPE_CHECKING:
    import napari

__all__ = ["SegmentWidget"]

#: Outline width of the "contours" view, in screen pixels of the Labels layer.
CONTOUR_PX = 2


@dataclass
class _Run:
    """What a finished run leaves for re-thresholding: the probabilities, by time index."""

    phase: str
    probabilities: dict
    segmentation: dict
    pixel_size_um: float | None
    phase_unit: inputs.PhaseUnit


class SegmentWidget(SegmentForm):
    """Segment cells in the chosen ssQPM layers with a DM-QPMNet model.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        Injected by napari.
    """

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        self._job: Job | None = None
        self._progress: RunProgress | None = None
        self._stage: FrameStage | None = None
        self._loaded: Any = None
        self._last: _Run | None = None
        self._warned_cpu = False
        self._diameter_text = ""
        self._edited: weakref.WeakSet = weakref.WeakSet()
        super().__init__(viewer)
        self.contours.toggled.connect(self._show_contours)
        self._watch = CloseWatch(self, self.shut_down)

    # ---- running ----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True while a job runs."""
        return self._job is not None and self._job.running

    def set_running(self, running: bool) -> None:
        """Enable Cancel and disable the other actions while a job runs (and back)."""
        for button in (self.run_button, self.reapply_button):
            button.setEnabled(not running)
        self.cancel_button.setEnabled(running)

    def segment_with(self, name: str, phase: Any = None) -> None:
        """Select model ``name`` (and the image ``phase``) and run: "Segment with it"."""
        self.model.refresh(select=name)
        if phase is not None:
            self.phase.select(phase)
        self.run()

    def run(self) -> None:
        """Check the inputs and start a segmentation run (nothing changes on bad input)."""
        if self.running:
            return
        try:
            request = self.request()
        except (inputs.InputError, ValueError) as error:
            self.fail(f"Segment cells: {error}")
            return
        try:
            save_settings(self.settings())
        except OSError as error:
            show_warning(f"Segment cells: could not save the settings ({error})")
        self._stage, self._loaded = FrameStage(request.phase.data.shape), None
        self._start(
            lambda job: segment_work(job, request),
            len(request.chosen_frames),
            f"Segmenting {request.phase.name}",
            lambda end: self._segment_done(end, request),
        )

    def reapply_thresholds(self) -> None:
        """Labels from the last run's probabilities with the current thresholds (no network)."""
        last = self._last
        if self.running:
            return
        if last is None or last.phase not in self.viewer.layers:
            show_warning("Segment cells: run a segmentation first; thresholds apply to its result")
            return
        phase, post = self.viewer.layers[last.phase], self.postprocess()
        self._stage = FrameStage(phase.data.shape)
        work = lambda job: rethreshold_work(  # noqa: E731
            job,
            last.probabilities,
            phase,
            postprocess=post,
            pixel_size_um=last.pixel_size_um,
            phase_unit=last.phase_unit,
        )
        segmentation = {**last.segmentation, "postprocess": post.to_dict()}

        def on_done(end: JobEnd) -> None:
            if self._finish(end, "thresholding"):
                self._apply(phase, segmentation)

        self._start(work, len(last.probabilities), "Re-applying thresholds", on_done)

    def _start(self, work: Any, n_frames: int, description: str, on_done: Any) -> None:
        self.set_running(True)
        self.status.setText(f"{description}…")
        self._progress = RunProgress(n_frames, description)
        self._job = Job(work, on_yield=self._yielded, on_done=on_done, on_progress=self._advance)
        self._watch.track(self._job)
        self._job.start()

    def cancel(self) -> None:
        """Stop the running job within about a second; no layer changes."""
        if self._job is not None:
            self._job.stop()
            self.status.setText("Cancelling…")

    def shut_down(self) -> None:
        """The dock or the viewer closes: stop the job for good, write nothing (no Qt calls)."""
        job, bars = self._job, self._progress
        self._job, self._progress, self._stage = None, None, None
        close_job(job, bars)

    def _advance(self, done: int, total: int) -> None:
        bars = self._progress  # napari's bars may process events: the job can end meanwhile
        if bars is None or not self.running:
            return
        frame, step, per_frame = bars.update(done, total)
        if self.running:
            text = f"frame {frame + 1}/{bars.n_frames}, step {step}/{per_frame}"
            self.show_progress(done, total, text)

    def _yielded(self, value: Any) -> None:
        if hasattr(value, "labels") and hasattr(value, "frame"):
            self._stage.add(value)
            return
        if isinstance(value, Notice):
            self.status.setText(f"{value.text}…")
            return
        self._loaded = value
        used = str(value.device)
        self.device_used.setText(f"in use: {used}")
        if self.device.currentText() == "auto" and used == "cpu" and not self._warned_cpu:
            self._warned_cpu = True
            show_warning("Segment cells: no CUDA or MPS GPU found; running on the CPU (slower)")

    def _finish(self, end: JobEnd, what: str) -> bool:
        """Close the progress bars and report a failure; True when there is a result."""
        if self._progress is not None:
            self._progress.close()
            self._progress = None
        self.set_running(False)
        self.hide_progress()
        if end.cancelled:
            self.status.setText(f"{what} cancelled; no layer was changed")
            show_info(f"Segment cells: {what} cancelled; no layer was changed")
        elif end.error is not None:
            self.fail(f"Segment cells: {what} failed: {end.error}")
        ok = not end.cancelled and end.error is None and bool(self._stage and self._stage.frames)
        if not ok:
            self._stage = None  # what a cancelled or failed run gathered is dropped
        return ok

    def _segment_done(self, end: JobEnd, request: SegmentRequest) -> None:
        if not self._finish(end, "segmentation"):
            return
        names = [layer.name for layer in (request.phase, request.angles) if layer is not None]
        stage = self._stage
        segmentation = segmentation_record(
            self._loaded,
            config=request.config,
            postprocess=request.postprocess,
            frames=stage.frames,
            inputs=names,
            phase_unit=request.phase_unit,
            diameters=stage.diameters,
        )
        self._diameter_text = describe_diameters(stage.diameters)
        self.diameter_found.setText(short_diameter(stage.diameters))
        self._last = _Run(
            request.phase.name,
            dict(sorted(stage.kept.items())),
            segmentation,
            request.pixel_size_um or inputs.layer_pixel_size_um(request.phase),
            request.phase_unit,
        )
        self._apply(request.phase, segmentation)

    def _apply(self, phase: Any, segmentation: dict) -> None:
        stage, self._stage = self._stage, None  # the layers may take its arrays
        name = labels_name(phase)
        was_edited = name in self.viewer.layers and self.viewer.layers[name] in self._edited
        try:
            layer, existed = write_results(self.viewer, phase, stage, segmentation=segmentation)
        except inputs.InputError as error:
            self.fail(f"Segment cells: {error}")
            return
        self._watch_paint(layer)
        layer.contour = CONTOUR_PX if self.contours.isChecked() else 0
        self.viewer.layers.selection.active = layer
        without = stage.frames_words()  # featureless or empty frames: said, not silent
        self.status.setText(
            f"{layer.name}: {stage.n_cells} cells in {len(stage.frames)} frame(s); "
            f"{self._diameter_text}{'' if without is None else '; ' + without}"
        )
        if self.track.isChecked() and len(stage.frames) > 1:
            self._track(layer)
        if existed:
            edits = " (your painted edits were replaced)" if was_edited else ""
            show_info(
                f"Updated {layer.name!r}{edits}; Ctrl+Z on that layer brings the "
                "previous result back"
            )

    def _track(self, layer: Any) -> None:
        """Link the cells of ``layer`` over time into its Tracks layer (napari_dmqpm.tracking)."""
        from napari_dmqpm._napari._tracks import add_tracks

        try:
            _, tracks = add_tracks(self.viewer, layer)
        except ValueError as error:
            show_warning(f"Track cells: {error}")
            return
        self.viewer.layers.selection.active = layer
        self.status.setText(
            f"{self.status.text()}; {tracks.n_tracks} tracks, {tracks.n_divisions} divisions"
        )

    def _watch_paint(self, layer: Any) -> None:
        """Remember when the user paints on ``layer`` (to say so when a run replaces it)."""
        self._edited.discard(layer)
        layer.events.paint.connect(self._on_paint)  # napari ignores a second connection

    def _on_paint(self, event: Any) -> None:
        self._edited.add(event.source)

    # ---- results ----------------------------------------------------------------------------

    def _show_contours(self, on: bool) -> None:
        """Outline (or fill again) the cells of the chosen image's result."""
        phase = self.phase.layer()
        name = labels_name(phase) if phase is not None else None
        if name is not None and name in self.viewer.layers:
            self.viewer.layers[name].contour = CONTOUR_PX if on else 0

    def _output(self) -> Any | None:
        phase = self.phase.layer()
        name = labels_name(phase) if phase is not None else None
        if name is None or name not in self.viewer.layers:
            show_warning("Segment cells: no result yet for this image; run a segmentation first")
            return None
        return self.viewer.layers[name]

    def update_table(self) -> None:
        """Measure the cells as they are now painted (after corrections) into ``features``."""
        phase, layer = self.phase.layer(), self._output()
        if layer is None:
            return
        try:
            unit = self.units.value()
        except inputs.InputError as error:
            self.fail(f"Segment cells: {error}")
            return
        size = self.units.pixel_size_um() or inputs.layer_pixel_size_um(phase)
        set_features(layer, measure_layer(layer, phase, pixel_size_um=size, phase_unit=unit))
        self.status.setText(f"{layer.name}: table updated ({len(layer.features)} cells)")

    def save_table(self, path: str | None = None) -> str | None:
        """Write the per-cell table of the output layer as CSV (asks where when no path)."""
        layer = self._output()
        if layer is not None and path is None:
            from qtpy.QtWidgets import QFileDialog

            path, _ = QFileDialog.getSaveFileName(
                self, "Save the per-cell table", f"{layer.name}.csv", "CSV (*.csv)"
            )
        if layer is None or not path:
            return None
        show_info(f"Saved {save_features_csv(layer, path)} cells to {path}")
        return str(path)
