"""The result of tracking: relabelled labels, napari tracks, the lineage and per-track tables.

A linker (:mod:`.link` or the overlap baseline :mod:`.overlap`) gives links between the
cells of :func:`~napari_dmqpm.tracking.regions.measure_regions` (rows of that table); a cell
with two or more successors divides. :func:`build_tracks` turns the links into tracks in the
Cell Tracking Challenge sense: a track is one cell from its birth (or first appearance) to its
division (or disappearance); daughters start new tracks whose parent is the mother's track.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from napari_dmqpm.tracking.frames import LabelFrames, RelabelledFrames
from napari_dmqpm.tracking.growth import track_table

__all__ = ["Tracks", "assemble_tracks", "build_tracks"]


@dataclass(frozen=True, eq=False)
class Tracks:
    """Cells linked over time.

    Attributes
    ----------
    labels : ndarray of shape (T, M, N), int32
        The input labels relabelled by track: a cell keeps its id in every frame, a daughter
        gets a new id; 0 is background. For labels read frame by frame (``track_file``), a
        :class:`~napari_dmqpm.tracking.frames.RelabelledFrames` that relabels a frame when it
        is indexed (``np.asarray`` gives the array).
    data : ndarray of shape (n_points, 4), float64
        napari's Tracks layer data: ``track_id, t, row, col`` (row and column of the
        centroid in px), sorted by track, then time.
    graph : dict of int to list of int
        The lineage as napari's Tracks layer takes it: ``{daughter_id: [parent_id]}``.
    table : dict of str to ndarray of shape (n_tracks,)
        One row per track (see :func:`napari_dmqpm.tracking.growth.track_table`): track_id,
        parent, first/last frame, division frame, dry mass, growth rate, doubling time.
    cells : dict of str to ndarray of shape (n_points,)
        One row per cell and frame: track_id, frame, time_h, input label, centroid, area,
        dry mass (pg), edge contact, trusted background; the dry mass against time of each
        track.
    metadata : dict
        JSON-native provenance: linker, its parameters, frame interval, units.
    """

    labels: np.ndarray | RelabelledFrames
    data: np.ndarray
    graph: dict[int, list[int]]
    table: dict[str, np.ndarray]
    cells: dict[str, np.ndarray]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def n_tracks(self) -> int:
        """Number of tracks."""
        return int(self.table["track_id"].size)

    @property
    def n_divisions(self) -> int:
        """Number of mothers with daughters in the lineage."""
        return len({parent for parents in self.graph.values() for parent in parents})


def build_tracks(
    labels_tyx: np.ndarray | LabelFrames,
    regions: dict[str, np.ndarray],
    edges: np.ndarray,
    *,
    frame_interval_min: float | None,
    metadata: dict[str, Any] | None = None,
) -> Tracks:
    """Tracks from links between the rows of a regions table.

    Parameters
    ----------
    labels_tyx : ndarray of shape (T, M, N), integer
        The labels the regions were measured on.
    regions : dict of str to ndarray of shape (n_cells,)
        From :func:`~napari_dmqpm.tracking.regions.measure_regions`, sorted by frame.
    edges : ndarray of shape (n_links, 2), int
        Row indices ``(earlier, later)`` of linked cells, the later one in a later frame. At
        most one link may end at a cell (no merges).
    frame_interval_min : float or None
        Minutes between frames; None leaves the per-hour columns NaN.
    metadata : dict, optional
        Provenance to keep in :attr:`Tracks.metadata`.

    Returns
    -------
    Tracks
    """
    track_of, parent_of = _assign_tracks(regions["frame"], np.asarray(edges, dtype=np.int64))
    return assemble_tracks(
        labels_tyx, regions, track_of, parent_of,
        frame_interval_min=frame_interval_min, metadata=metadata,
    )  # fmt: skip


def assemble_tracks(
    labels_tyx: np.ndarray | LabelFrames,
    regions: dict[str, np.ndarray],
    track_of: np.ndarray,
    parent_of: dict[int, int],
    *,
    frame_interval_min: float | None,
    metadata: dict[str, Any] | None = None,
) -> Tracks:
    """Tracks from the track id of every row of a regions table and the lineage.

    Parameters
    ----------
    labels_tyx : ndarray of shape (T, M, N), integer
        The labels the regions were measured on.
    regions : dict of str to ndarray of shape (n_cells,)
        From :func:`~napari_dmqpm.tracking.regions.measure_regions`.
    track_of : ndarray of shape (n_cells,), int
        The track id (>= 1) of each row; a track has at most one row per frame.
    parent_of : dict of int to int
        ``{daughter_track: mother_track}``.
    frame_interval_min : float or None
        Minutes between frames; None leaves the per-hour columns NaN.
    metadata : dict, optional
        Provenance to keep in :attr:`Tracks.metadata`.

    Returns
    -------
    Tracks
    """
    labels = _relabel(labels_tyx, regions, track_of)
    order = np.lexsort((regions["frame"], track_of))
    hours = None if frame_interval_min is None else frame_interval_min / 60.0
    cells = {
        "track_id": track_of[order],
        "frame": regions["frame"][order],
        "time_h": regions["frame"][order] * (np.nan if hours is None else hours),
        "label": regions["label"][order],
        "centroid_row": regions["centroid_row"][order],
        "centroid_col": regions["centroid_col"][order],
        "area_px": regions["area_px"][order],
        "dry_mass_pg": regions["dry_mass_pg"][order],
        "touches_border": regions["touches_border"][order],
        "background_ok": regions["background_ok"][order],
    }
    data = np.column_stack(
        [cells["track_id"], cells["frame"], cells["centroid_row"], cells["centroid_col"]]
    ).astype(np.float64)
    graph = {child: [parent] for child, parent in sorted(parent_of.items())}
    table = track_table(cells, graph, frame_interval_min=frame_interval_min)
    info = dict(metadata or {})
    info["frame_interval_min"] = frame_interval_min
    info["time_unit"] = "h" if frame_interval_min is not None else "frame (no frame interval)"
    return Tracks(labels=labels, data=data, graph=graph, table=table, cells=cells, metadata=info)


def _assign_tracks(frames: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, dict[int, int]]:
    """Track id of every cell (1..n in order of first appearance) and the parent of each track."""
    n_cells = frames.size
    predecessor = np.full(n_cells, -1, dtype=np.int64)
    n_successors = np.zeros(n_cells, dtype=np.int64)
    for earlier, later in edges.reshape(-1, 2):
        if frames[later] <= frames[earlier]:
            raise ValueError(
                f"a link must go forward in time; got frames {frames[earlier]} -> {frames[later]}"
            )
        if predecessor[later] >= 0:
            raise ValueError(f"a cell of frame {frames[later]} has two predecessors (a merge)")
        predecessor[later] = earlier
        n_successors[earlier] += 1
    track_of = np.zeros(n_cells, dtype=np.int64)
    parent_of: dict[int, int] = {}
    next_id = 1
    for cell in np.argsort(frames, kind="stable"):
        before = predecessor[cell]
        if before >= 0 and n_successors[before] == 1:
            track_of[cell] = track_of[before]
            continue
        track_of[cell] = next_id
        if before >= 0:  # a daughter: a new track whose parent is the mother's
            parent_of[next_id] = int(track_of[before])
        next_id += 1
    return track_of, parent_of


def _relabel(
    labels_tyx: np.ndarray | LabelFrames, regions: dict[str, np.ndarray], track_of: np.ndarray
) -> np.ndarray | RelabelledFrames:
    """Each frame's labels mapped to track ids through a lookup table.

    Labels read frame by frame (:class:`~napari_dmqpm.tracking.frames.LabelFrames`) give
    frames relabelled when indexed, so that no stack is held.
    """
    if not isinstance(labels_tyx, np.ndarray):
        return RelabelledFrames(labels_tyx, regions["frame"], regions["label"], track_of)
    out = np.zeros(labels_tyx.shape, dtype=np.int32)
    for frame, labels in enumerate(labels_tyx):
        rows = np.flatnonzero(regions["frame"] == frame)
        lookup = np.zeros(int(labels.max(initial=0)) + 1, dtype=np.int32)
        lookup[regions["label"][rows]] = track_of[rows]
        out[frame] = lookup[labels]
    return out
