"""The "Segment cells" widget: fields -> config -> segment_acquisition in a worker -> layers.

Inputs are picked from the reader's layers (the angles layer of the chosen phase image comes
with it); the model list holds the shipped and the user's models and refreshes when the
fine-tune widget saves one. A run writes ``"<stem> cells"`` (created, or updated through the
layer's history so Ctrl+Z restores the previous result) and a hidden probability layer; the
probabilities are kept, so new thresholds apply without running the network again.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from napari.utils.notifications import show_error, show_info, show_warning

from . import _inputs as inputs
from ._jobs import Job, JobEnd, RunProgress
from ._outputs import (
    labels_name,
    measure_layer,
    save_features_csv,
    segmentation_record,
    set_features,
    write_results,
)
from ._segment_form import SegmentForm
from ._settings import save_settings
from ._work import SegmentRequest, rethreshold_work, segment_work

if TYPE_CHECKING:
    import napari

__all__ = ["SegmentWidget"]


@dataclass
class _Run:
    """What a finished run leaves for re-thresholding: the probabilities, by time index."""

    phase: str
    probabilities: dict
    segmentation: dict
    pixel_size_um: float | None
    wavelength_um: float | None


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
        self._results: dict[int, Any] = {}
        self._loaded: Any = None
        self._last: _Run | None = None
        self._warned_cpu = False
        self._edited: weakref.WeakSet = weakref.WeakSet()
        super().__init__(viewer)

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
            show_error(f"Segment cells: {error}")
            return
        try:
            save_settings(self.settings())
        except OSError as error:
            show_warning(f"Segment cells: could not save the settings ({error})")
        self._results, self._loaded = {}, None
        n_frames = len(request.frames) if request.frames else inputs.frames_of(request.phase)
        self._start(
            lambda job: segment_work(job, request),
            n_frames,
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
        self._results = {}
        work = lambda job: rethreshold_work(  # noqa: E731
            job,
            last.probabilities,
            phase,
            postprocess=post,
            pixel_size_um=last.pixel_size_um,
            wavelength_um=last.wavelength_um,
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
        self._job.start()

    def cancel(self) -> None:
        """Stop the running job within about a second; no layer changes."""
        if self._job is not None:
            self._job.stop()
            self.status.setText("Cancelling…")

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
            self._results[value.frame] = value
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
            self.status.setText(f"{what} failed")
            show_error(f"Segment cells: {end.error}")
        return not end.cancelled and end.error is None and bool(self._results)

    def _segment_done(self, end: JobEnd, request: SegmentRequest) -> None:
        if not self._finish(end, "segmentation"):
            return
        names = [layer.name for layer in (request.phase, request.angles) if layer is not None]
        segmentation = segmentation_record(
            self._loaded,
            config=request.config,
            postprocess=request.postprocess,
            frames=sorted(self._results),
            inputs=names,
        )
        self._last = _Run(
            request.phase.name,
            {t: r.probabilities for t, r in sorted(self._results.items())},
            segmentation,
            inputs.pixel_size_um(request.phase),
            request.phase.metadata.get("wavelength_um"),
        )
        self._apply(request.phase, segmentation)

    def _apply(self, phase: Any, segmentation: dict) -> None:
        results = dict(sorted(self._results.items()))
        name = labels_name(phase)
        was_edited = name in self.viewer.layers and self.viewer.layers[name] in self._edited
        try:
            layer, existed = write_results(
                self.viewer,
                phase,
                labels={t: r.labels for t, r in results.items()},
                probability={t: r.probabilities.foreground for t, r in results.items()},
                tables={t: r.table for t, r in results.items()},
                segmentation=segmentation,
            )
        except inputs.InputError as error:
            show_error(f"Segment cells: {error}")
            return
        self._watch_paint(layer)
        self.viewer.layers.selection.active = layer
        n_cells = sum(int(r.table["label"].size) for r in results.values())
        self.status.setText(f"{layer.name}: {n_cells} cells in {len(results)} frame(s)")
        if existed:
            edits = " (your painted edits were replaced)" if was_edited else ""
            show_info(
                f"Updated {layer.name!r}{edits}; Ctrl+Z on that layer brings the "
                "previous result back"
            )

    def _watch_paint(self, layer: Any) -> None:
        """Remember when the user paints on ``layer`` (to say so when a run replaces it)."""
        self._edited.discard(layer)
        layer.events.paint.connect(self._on_paint)  # napari ignores a second connection

    def _on_paint(self, event: Any) -> None:
        self._edited.add(event.source)

    # ---- results ----------------------------------------------------------------------------

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
        if layer is not None:
            set_features(
                layer, measure_layer(layer, phase, pixel_size_um=inputs.pixel_size_um(phase))
            )
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
