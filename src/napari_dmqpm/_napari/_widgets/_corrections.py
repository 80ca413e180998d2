"""The "Correct tracks" section of the Cell growth dock: merge, split, mark a division, undo.

Each button reads the chosen tracks, calls one function of :mod:`napari_dmqpm.tracking.edit`
on the tracking result and writes the new result to the Tracks layer (its data, lineage graph,
per-point features and per-track table); the dock then redraws the plot and the histogram.
The result is rebuilt once from the layers (:func:`napari_dmqpm.tracking.restore.restore_tracks`:
the Labels layer keeps the input labels, which no edit changes) and then kept with an undo
stack of the results before each edit. Ctrl+Z in the dock undoes. *Save tracks…* writes the
result, corrections included, as ``dmqpm track`` does.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtGui import QKeySequence
from qtpy.QtWidgets import QFileDialog, QPushButton, QShortcut

from napari_dmqpm.tracking.curves import POINT_FEATURES

from ._form import int_spin

if TYPE_CHECKING:
    from napari_dmqpm.tracking import Tracks

    from ._growth import GrowthWidget

__all__ = ["TrackCorrections", "undo_depth"]

#: Memory the undo stack may hold, bytes: each step keeps a result with its labels.
UNDO_BYTES = 2**30
#: Most steps the undo stack keeps.
UNDO_STEPS = 50


def undo_depth(labels_nbytes: int) -> int:
    """How many results the undo stack keeps for labels of ``labels_nbytes`` (at least 1).

    >>> undo_depth(10 * 2**20), undo_depth(2**31)
    (50, 1)
    """
    return int(max(1, min(UNDO_STEPS, UNDO_BYTES // max(int(labels_nbytes), 1))))


def _same(layer: Any, other: Any) -> bool:
    """One layer? napari hands plugins a new proxy per lookup: ``is`` fails, ``==`` unwraps."""
    return layer is not None and other is not None and bool(layer == other)


class TrackCorrections:
    """Track corrections in a foldable section of the growth dock.

    Parameters
    ----------
    dock : GrowthWidget
        The dock: its chosen track, Tracks layer and status line.

    Attributes
    ----------
    other, second : QSpinBox
        The track to merge with (or the first daughter) and the second daughter.
    history : list of Tracks
        The results before each edit, the latest last.
    """

    def __init__(self, dock: GrowthWidget) -> None:
        self.dock = dock
        self.history: list[Tracks] = []
        self._result: Tracks | None = None
        self._layer: Any = None
        tip = "Track to merge with, or the first daughter (Pick, then click its cell)"
        self.other = int_spin(0, 0, 0, special="none", tooltip=tip)
        self.second = int_spin(0, 0, 0, special="none", tooltip="Second daughter of a division")
        self.pick_other, self.pick_second = self._pick_button(), self._pick_button()
        dock.section("Correct tracks", folded=True)
        dock.row("Other track", self.other, self.pick_other)
        dock.row("Second daughter", self.second, self.pick_second)
        button = dock.button
        self.merge_button = button("Merge", self.merge, "Make the track and the other track one")
        self.split_button = button(
            "Split here", self.split, "From the frame shown on, the track is a new track"
        )
        self.mark_button = button(
            "Mark division", self.mark,
            "The track divides into the other track and the second daughter",
        )  # fmt: skip
        self.unmark_button = button("Unmark", self.unmark, "The track divides no more")
        self.undo_button = button("Undo", self.undo, "Undo the last correction (Ctrl+Z)")
        dock.buttons(self.merge_button, self.split_button, self.undo_button)
        dock.buttons(self.mark_button, self.unmark_button)
        self.shortcut = QShortcut(QKeySequence(QKeySequence.StandardKey.Undo), dock)
        self.shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.shortcut.activated.connect(self.undo)

    @staticmethod
    def _pick_button() -> QPushButton:
        pick = QPushButton("Pick")
        pick.setCheckable(True)
        pick.setToolTip("Then click a cell in the tracked Labels layer to take its track")
        return pick

    # ---- what the dock calls --------------------------------------------------------------

    def set_range(self, high: int) -> None:
        """Track ids up to ``high`` can be typed (0: none)."""
        for box in (self.other, self.second):
            box.setRange(0, max(int(high), 0))

    def pick(self, track: int) -> bool:
        """Fill the box whose Pick button is down with ``track``; False when none is down."""
        for button, box in ((self.pick_other, self.other), (self.pick_second, self.second)):
            if button.isChecked():
                box.setValue(int(track))
                button.setChecked(False)
                return True
        return False

    # ---- the edits ------------------------------------------------------------------------

    def merge(self) -> None:
        """Merge the dock's track and the other track; the earlier one's id stays."""
        from napari_dmqpm.tracking import merge_tracks

        track, other = self.dock.track.value(), self.other.value()

        def edit(result: Tracks) -> Tracks:
            first = dict(
                zip(result.table["track_id"].tolist(), result.table["first_frame"].tolist(),
                    strict=True)
            )  # fmt: skip
            keep, absorb = (track, other)
            if track in first and other in first and first[other] < first[track]:
                keep, absorb = other, track
            return merge_tracks(result, keep, absorb)

        def done(new: Tracks) -> str:
            keep = new.metadata["edits"][-1]["keep"]
            self.dock.select_track(keep)
            return f"Merged tracks {track} and {other} into track {keep}"

        self._apply(edit, done)

    def split(self) -> None:
        """Split the dock's track at the frame shown."""
        from napari_dmqpm.tracking import split_track

        track, frame = self.dock.track.value(), self.dock.current_frame()
        if frame is None:
            self.dock.fail("Correct tracks: the tracked Labels layer is not in the viewer")
            return

        def done(new: Tracks) -> str:
            created = new.metadata["edits"][-1]["new_track"]
            self.set_range(created)
            self.other.setValue(created)  # a Merge puts it back
            return f"Split track {track} at frame {frame}: frames {frame} on are track {created}"

        self._apply(lambda result: split_track(result, track, frame), done)

    def mark(self) -> None:
        """Mark the dock's track as the mother of the other track and the second daughter."""
        from napari_dmqpm.tracking import mark_division

        track, daughters = self.dock.track.value(), (self.other.value(), self.second.value())
        self._apply(
            lambda result: mark_division(result, track, daughters),
            lambda new: f"Track {track} divides into tracks {daughters[0]} and {daughters[1]}",
        )

    def unmark(self) -> None:
        """Remove the division of the dock's track."""
        from napari_dmqpm.tracking import unmark_division

        track = self.dock.track.value()
        self._apply(
            lambda result: unmark_division(result, track),
            lambda new: f"Track {track} divides no more",
        )

    def undo(self) -> None:
        """Bring back the result before the last correction."""
        layer = self.dock.tracks.layer()
        if not self.history or not _same(layer, self._layer):
            self.dock.status.setText("Nothing to undo.")
            return
        self._result = self.history.pop()
        self._write(layer, self._result)
        self.dock.status.setText(f"Undone; {len(self.history)} more correction(s) to undo.")

    def save(self, folder: str | None = None) -> None:
        """Write the tracks as ``dmqpm track`` does: the two tables and the CTC folder.

        Parameters
        ----------
        folder : str, optional
            Where to write; asked with a folder dialog when None. Files that exist there are
            never replaced: the status says so and nothing is written.
        """
        from napari_dmqpm.tracking.files import write_tracks

        layer = self.dock.tracks.layer()
        if layer is None:
            self.dock.status.setText("No tracks to save.")
            return
        if folder is None:
            folder = QFileDialog.getExistingDirectory(self.dock, "Save tracks into a folder")
            if not folder:
                return
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", layer.name.removesuffix(" tracks"))
        try:
            result = self.result()
            paths = write_tracks(result, folder, stem.removesuffix("_cells") or "tracks")
        except FileExistsError as error:  # the core's message names overwrite=True
            existing = str(error).split(" exists")[0]
            self.dock.fail(
                f"Save tracks: {existing} exists, and files are never replaced: choose "
                "another folder (nothing was written)"
            )
            return
        except (ValueError, OSError) as error:
            self.dock.fail(f"Save tracks: {error}")
            return
        edits = len(result.metadata.get("edits", []))
        self.dock.status.setText(
            f"Saved {result.n_tracks} tracks ({edits} correction(s)): "
            + ", ".join(path.name for path in paths)
            + f" in {folder}"
        )

    # ---- the result and the layer ---------------------------------------------------------

    def result(self) -> Tracks | None:
        """The tracking result of the chosen Tracks layer (rebuilt from the layers once)."""
        from napari_dmqpm.tracking.restore import restore_tracks

        layer = self.dock.tracks.layer()
        if layer is None:
            return None
        if not _same(layer, self._layer) or self._result is None:
            labels = self.dock.labels_layer()
            if labels is None:
                raise ValueError(f"the Labels layer tracked into {layer.name!r} is not open")
            features = layer.features
            points = {
                "track_id": np.asarray(layer.data)[:, 0].astype(np.int64),
                **{name: features[name].to_numpy() for name in POINT_FEATURES if name in features},
            }
            tracking = dict(layer.metadata.get("tracking") or {})
            self._result = restore_tracks(
                np.asarray(labels.data), points, layer.graph or {},
                frame_interval_min=tracking.get("frame_interval_min"), metadata=tracking,
            )  # fmt: skip
            self._layer, self.history = layer, []
        return self._result

    def _apply(self, edit: Callable[[Tracks], Tracks], done: Callable[[Tracks], str]) -> None:
        """Run one edit on the result; on success keep the old one for Undo and show the new.

        ``done(new)`` sets the dock's boxes for the new result and returns the status text.
        """
        try:
            current = self.result()
            if current is None:
                self.dock.status.setText("No tracks to correct.")
                return
            new = edit(current)
        except ValueError as error:
            self.dock.fail(f"Correct tracks: {error}")
            return
        depth = undo_depth(current.labels.nbytes)
        self.history = [*self.history, current][-depth:]
        self._result = new
        text = done(new)
        self._write(self._layer, new)
        self.dock.status.setText(text)

    def _write(self, layer: Any, result: Tracks) -> None:
        """The result into the Tracks layer, then the dock redrawn."""
        layer.data = result.data  # napari resets the features and the graph here
        layer.features = {name: result.cells[name] for name in POINT_FEATURES}
        layer.graph = result.graph
        layer.metadata = {
            **layer.metadata, "tracking": result.metadata, "track_table": result.table,
        }  # fmt: skip
        self.dock.refresh_tracks()
