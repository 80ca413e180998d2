"""The status bar of a time-lapse Labels layer shows the row of the frame on screen.

A time-lapse's per-cell table holds one row per cell and frame, and a label number repeats
over the frames (a tracked cell keeps its label). napari's Labels layer finds the row it shows
under the mouse through the table's ``index`` column (the label), and where a label has
several rows it takes the last: it showed the dry mass of the last frame whatever frame was
on screen. :func:`follow_frame` keeps ``index`` equal to the label only in the rows of the
frame on screen, and negative (no label) in the others, whenever the frame or the table
changes. ``layer.features`` keeps every frame's rows (the table widget, Save table and the
growth dock read all of them); Save table leaves ``index`` out.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

__all__ = ["follow_frame", "frame_index"]

#: The layers :func:`follow_frame` already follows.
_FOLLOWED: weakref.WeakSet = weakref.WeakSet()


def frame_index(frames: np.ndarray, labels: np.ndarray, frame: int) -> np.ndarray:
    """The ``index`` column (napari's) that points each label at its row of ``frame``.

    Parameters
    ----------
    frames, labels : ndarray of shape (R,)
        The table's ``frame`` and ``label`` columns.
    frame : int
        The time point on screen.

    Returns
    -------
    ndarray of shape (R,), int64
        The label in the rows of ``frame``; ``-1 - row`` (no label's value) in the others.

    Examples
    --------
    >>> frame_index(np.array([0, 0, 1]), np.array([1, 2, 1]), 1).tolist()
    [-1, -2, 1]
    """
    rows = np.arange(len(labels), dtype=np.int64)
    return np.where(np.asarray(frames) == frame, np.asarray(labels, dtype=np.int64), -1 - rows)


def follow_frame(viewer: Any, layer: Any) -> None:
    """Keep ``layer``'s status-bar rows on the frame the viewer shows (once per layer).

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer whose time slider picks the frame.
    layer : napari.layers.Labels
        A Labels layer of shape (T, M, N) whose features hold ``frame`` and ``label``
        columns; other layers are left as they are.
    """
    # a plugin is handed napari's PublicOnlyProxy objects, made afresh on each access: follow
    # (and hold weakly) the layer and dims themselves, or the proxy dies with this call
    layer = getattr(layer, "__wrapped__", layer)
    dims = getattr(viewer.dims, "__wrapped__", viewer.dims)
    if layer in _FOLLOWED:
        return
    layer_ref = weakref.ref(layer)

    def update(event: Any = None) -> None:
        followed = layer_ref()
        if followed is None:
            dims.events.current_step.disconnect(update)
            return
        features = followed.features
        if followed.ndim < 3 or not {"frame", "label"} <= set(features.columns):
            return
        point = np.asarray(dims.point, dtype=float)[-followed.ndim :]
        frame = int(round(float(followed.world_to_data(point)[0])))
        index = frame_index(features["frame"].to_numpy(), features["label"].to_numpy(), frame)
        if "index" in features.columns and np.array_equal(features["index"].to_numpy(), index):
            return  # as it should be (also ends the event this assignment sends)
        followed.features = features.assign(index=index)

    dims.events.current_step.connect(update)
    layer.events.features.connect(update)
    _FOLLOWED.add(layer)
    update()
