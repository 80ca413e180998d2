"""Tracks from a labels time-lapse in the viewer: ``napari_dmqpm.tracking`` -> a Tracks layer.

:func:`add_tracks` links the cells of a (T, M, N) Labels layer with
:func:`napari_dmqpm.tracking.track_labels` (dry mass from the layer's per-cell table where the
segment widget wrote one) and adds, or updates, the Tracks layer ``"<labels> tracks"``: one
track per cell, the lineage as its graph, and per point the frame, the dry mass (pg), the
input label and whether its background was trusted (``background_ok``; the growth fits skip
the points where it is not) as features. The per-track table (growth rate in pg/h, doubling
time in h) is kept in the layer's ``metadata["track_table"]``. Tracking runs where it is
called; it takes well under a second for a few hundred cells and frames.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from napari_dmqpm.tracking import Tracks, track_labels
from napari_dmqpm.tracking.curves import POINT_FEATURES

__all__ = ["add_tracks", "stated_interval", "tracks_name"]

_TABLE_COLUMNS = ("frame", "label", "dry_mass_pg")


def tracks_name(labels_layer: Any) -> str:
    """The name of the Tracks layer of a Labels layer."""
    return f"{labels_layer.name} tracks"


def stated_interval(metadata: dict) -> float | None:
    """Minutes between frames from a layer's metadata, or from the file it came from.

    ``metadata["frame_interval_min"]`` when set, else the interval the TIFF named by
    ``metadata["source"]`` states (None when it states none, or cannot be read).
    """
    given = metadata.get("frame_interval_min")
    if given is None:  # what the reader kept of the file's metadata
        given = (metadata.get("file_metadata") or {}).get("frame_interval_min")
    if given is not None:
        return float(given)
    source = metadata.get("source")
    if not isinstance(source, str) or not source.lower().endswith((".tif", ".tiff")):
        return None
    from napari_dmqpm.io.timing import read_frame_interval

    try:
        return read_frame_interval(source)
    except (OSError, ValueError):  # moved, deleted or damaged since: unknown, not an error
        return None


def add_tracks(
    viewer: Any, labels_layer: Any, *, frame_interval_min: float | None = None
) -> tuple[Any, Tracks]:
    """Track the cells of a Labels time-lapse and show them as a Tracks layer.

    Parameters
    ----------
    viewer : napari.Viewer
    labels_layer : napari Labels layer
        Labels of shape (T, M, N), T >= 2; its ``features`` give the dry mass when they hold
        ``frame``, ``label`` and ``dry_mass_pg`` (the segment widget's per-cell table).
    frame_interval_min : float, optional
        Minutes between frames; else the layer's ``metadata["frame_interval_min"]``, else
        what the file the layer was segmented from states (ImageJ ``finterval``, OME
        ``TimeIncrement``; ``metadata["source"]``); without any the growth rates are per
        frame (the per-hour columns are NaN).

    Returns
    -------
    (napari Tracks layer, Tracks)

    Raises
    ------
    ValueError
        From :func:`~napari_dmqpm.tracking.track_labels` (e.g. a single frame: nothing to
        track).
    """
    if frame_interval_min is None:
        frame_interval_min = stated_interval(labels_layer.metadata)
    features = labels_layer.features
    table = None
    if len(features) and all(name in features.columns for name in _TABLE_COLUMNS):
        names = [*_TABLE_COLUMNS, *(["background_ok"] if "background_ok" in features else [])]
        table = {name: features[name].to_numpy() for name in names}
    tracks = track_labels(
        np.asarray(labels_layer.data), table=table, frame_interval_min=frame_interval_min
    )
    kwargs = {
        "graph": tracks.graph,
        "features": {name: tracks.cells[name] for name in POINT_FEATURES},
        "metadata": {"tracking": tracks.metadata, "track_table": tracks.table},
    }
    name = tracks_name(labels_layer)
    if name in viewer.layers:
        viewer.layers.remove(name)
    layer = viewer.add_tracks(
        tracks.data,
        name=name,
        scale=labels_layer.scale,
        translate=labels_layer.translate,
        units=labels_layer.units,  # µm like the labels: napari warns about mixed units
        axis_labels=labels_layer.axis_labels,
        tail_length=10,
        **kwargs,
    )
    return layer, tracks
