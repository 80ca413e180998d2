"""The "Cell growth" dock: click a cell, see its dry mass over time, its mother and daughters.

It reads a Tracks layer made by the segment widget ("track cells over the frames") or by
:func:`napari_dmqpm._napari._tracks.add_tracks`: the lineage graph, per point the frame, the
input label and the dry mass, and in its metadata the per-track table (growth rates) and the
frame interval. A click on the tracked Labels layer (``"<labels>"`` beside
``"<labels> tracks"``) picks the track of the cell under the cursor in the frame shown. The
curves come from :func:`napari_dmqpm.tracking.curves.lineage_curves`; nothing is computed
here but the lookup. The folded "Correct tracks" section and *Save tracks…* are
:class:`._corrections.TrackCorrections`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtWidgets import QLabel

from napari_dmqpm.tracking.curves import lineage_curves, track_at

from ._corrections import TrackCorrections
from ._form import LayerBox, double_spin, int_spin
from ._growth_plot import MassPlot, RateHistogram
from ._panel import Panel

if TYPE_CHECKING:
    import napari

__all__ = ["GrowthWidget", "rates", "tracks_layers"]

_SUFFIX = " tracks"


def tracks_layers(layers: Any) -> list[Any]:
    """The Tracks layers that carry dry mass per point (made by this plugin)."""
    return [
        layer for layer in layers
        if type(layer).__name__ == "Tracks" and "dry_mass_pg" in getattr(layer, "features", {})
    ]  # fmt: skip


def _cells(layer: Any) -> dict[str, np.ndarray]:
    features = layer.features
    return {
        "track_id": np.asarray(layer.data)[:, 0].astype(np.int64),
        "frame": features["frame"].to_numpy(),
        "label": features["label"].to_numpy(),
        "dry_mass_pg": features["dry_mass_pg"].to_numpy(dtype=np.float64),
    }


def _stated_interval(layer: Any) -> float | None:
    return (layer.metadata.get("tracking") or {}).get("frame_interval_min")


def rates(table: dict, interval: float | None) -> tuple[np.ndarray, np.ndarray, str]:
    """Growth rates and doubling times of every track, in hours when ``interval`` is known.

    The per-frame columns of the track table are scaled by the interval (minutes), so an
    interval typed in the dock gives the same numbers as tracking with it would.
    """
    per_frame = np.asarray(table.get("growth_rate_pg_per_frame", []), dtype=np.float64)
    doubling = np.asarray(table.get("doubling_time_frames", []), dtype=np.float64)
    if not interval:
        return per_frame, doubling, "frame"
    return per_frame * 60.0 / interval, doubling * interval / 60.0, "h"


def _describe(track: int, table: dict, interval: float | None) -> str:
    row = np.flatnonzero(np.asarray(table["track_id"]) == track)
    if row.size == 0:
        return f"track {track}"
    i = int(row[0])
    growth, doublings, per = rates(table, interval)
    unit = f"pg/{per}"
    rate, doubling = growth[i], doublings[i]
    words = [
        f"track {track}: frames {table['first_frame'][i]}-{table['last_frame'][i]}",
        f"growth {rate:.3g} {unit}" if math.isfinite(rate) else "growth not fitted",
    ]
    if "n_fit_frames" in table and table["n_fit_frames"][i] < table["n_frames"][i]:
        words[-1] += (
            f" ({table['n_fit_frames'][i]} of {table['n_frames'][i]} frames fitted: the others "
            "touch the field edge or lack a trusted background)"
        )
    if math.isfinite(doubling):
        words.append(f"doubling time {doubling:.3g} {'h' if interval else 'frames'}")
    if not interval:
        words.append("set the frame interval for rates per hour")
    if table["parent"][i]:
        words.append(f"mother {table['parent'][i]}")
    daughters = np.asarray(table["track_id"])[np.asarray(table["parent"]) == track]
    if daughters.size:
        words.append("daughters " + ", ".join(str(d) for d in daughters))
    return "; ".join(words)


class GrowthWidget(Panel):
    """Dry mass against time of the track of a clicked cell, and the field's growth rates.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
    """

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(viewer)
        self.tracks = LayerBox(viewer, tracks_layers)
        self.track = int_spin(0, 0, 0, tooltip="Track id to show (a click on a cell sets it)")
        self.interval = double_spin(
            0.0, 0.0, 10_000.0, step=1.0, decimals=2, suffix=" min", special="unknown",
            tooltip="Minutes between frames: from the file when it states it, else yours "
            "(rates and times are per frame until it is set)",
        )  # fmt: skip
        self.plot, self.histogram = MassPlot(), RateHistogram()
        self.section("Cells over time")
        save = self.button(
            "Save tracks…", lambda: self.corrections.save(),
            "Write <name>_tracks.csv, <name>_lineage.csv and <name>_ctc/ (corrections included) "
            "into a folder; existing files are never replaced",
        )  # fmt: skip
        self.row("Tracks layer", self.tracks, save)
        self.row("Track", self.track)
        self.row("Frame interval", self.interval)
        hint = self.note(
            "Click a cell in the tracked Labels layer to show its track. Tracks come from "
            "Segment cells ('track cells over the frames') or dmqpm track."
        )
        hint.setWordWrap(True)
        self.add(hint)
        self.add(self.plot)
        self.add(QLabel("<b>Growth rates of the field</b>"))
        self.add(self.histogram)
        self.corrections = TrackCorrections(self)
        self.add_progress()
        self.finish()
        self.tracks.currentIndexChanged.connect(lambda *_: self.show_layer())
        self.track.valueChanged.connect(lambda *_: self.show_track())
        self.interval.valueChanged.connect(lambda *_: self.show_track())
        callbacks = viewer.mouse_drag_callbacks
        click = self._on_click
        callbacks.append(click)
        # the viewer outlives the dock: drop the callback with the widget (no Qt call there)
        self.destroyed.connect(lambda *_: click in callbacks and callbacks.remove(click))
        self.show_layer()

    def reset_choices(self, event: Any = None) -> None:
        """Re-list the Tracks layers (napari calls this when layers change)."""
        before = self.tracks.currentText()
        self.tracks.refresh()
        if self.tracks.currentText() != before:
            self.show_layer()

    def show_layer(self) -> None:
        """Show the chosen Tracks layer: the field's growth rates and its first track."""
        layer = self.tracks.layer()
        if layer is None:
            self.plot.set_curves([])
            self.histogram.set_rates(np.zeros(0), "pg/h")
            self.status.setText("No tracks yet: segment all frames with tracking on.")
            return
        self.interval.blockSignals(True)
        self.interval.setValue(_stated_interval(layer) or 0.0)
        self.interval.blockSignals(False)
        ids, counts = np.unique(np.asarray(layer.data)[:, 0].astype(np.int64), return_counts=True)
        self.refresh_tracks()  # the range of track ids first
        if ids.size:  # start on the longest track (not a cell seen in one frame at the edge)
            self.select_track(int(ids[np.argmax(counts)]))
            self.show_track()

    def refresh_tracks(self) -> None:
        """The track ids of the layer (after a correction too), then the chosen track drawn."""
        layer = self.tracks.layer()
        if layer is None:
            return
        tracks = np.unique(np.asarray(layer.data)[:, 0].astype(np.int64))
        if tracks.size:
            self.track.blockSignals(True)
            self.track.setRange(int(tracks.min()), int(tracks.max()))
            self.track.blockSignals(False)
            self.corrections.set_range(int(tracks.max()))
        self.show_track()

    def select_track(self, track: int) -> None:
        """Choose ``track`` without drawing it yet (a correction draws once it is written)."""
        self.track.blockSignals(True)
        self.track.setValue(int(track))
        self.track.blockSignals(False)

    def labels_layer(self) -> Any | None:
        """The Labels layer the chosen Tracks layer was made from (``"<labels> tracks"``)."""
        layer = self.tracks.layer()
        if layer is None or not layer.name.endswith(_SUFFIX):
            return None
        name = layer.name[: -len(_SUFFIX)]
        return self.viewer.layers[name] if name in self.viewer.layers else None

    def current_frame(self) -> int | None:
        """The frame shown, as an index of the tracked Labels layer."""
        labels = self.labels_layer()
        if labels is None:
            return None
        return int(np.round(labels.world_to_data(self.viewer.dims.point)[0]))

    def show_track(self) -> None:
        """Draw the chosen track with its mother and daughters, mark its rate."""
        layer = self.tracks.layer()
        if layer is None:
            return
        track, interval = self.track.value(), self.interval.value() or None
        table = layer.metadata.get("track_table") or {}
        try:
            curves = lineage_curves(
                _cells(layer), layer.graph, track, frame_interval_min=interval
            )  # fmt: skip
        except ValueError:
            self.plot.set_curves([])
            self.status.setText(f"Track {track} is not in {layer.name!r}.")
            return
        self.plot.set_curves(curves)
        growth, _, per = rates(table, interval)
        ids = np.asarray(table.get("track_id", []))
        marked = growth[ids == track][0] if np.any(ids == track) else float("nan")
        self.histogram.set_rates(growth, f"pg/{per}", marked)
        self.status.setText(_describe(track, table, interval) if len(ids) else f"track {track}")

    def _on_click(self, viewer: Any, event: Any) -> None:
        """A click on the tracked Labels layer picks the track of the cell under the cursor."""
        layer, labels = self.tracks.layer(), self.labels_layer()
        if event.type != "mouse_press" or layer is None or labels is None:
            return
        point = np.round(labels.world_to_data(event.position)).astype(int)
        if point.size < 3 or np.any(point < 0) or np.any(point >= labels.data.shape):
            return
        track = track_at(_cells(layer), int(point[0]), int(labels.data[tuple(point)]))
        if track is not None and not self.corrections.pick(track):
            self.track.setValue(track)
