"""A tracking result again from what a viewer keeps of it: the input labels and the track points.

napari's Tracks layer holds, per point, the track id, the frame and (as this plugin writes its
features) the input label and the dry mass; the Labels layer holds the input labels. From
these :func:`restore_tracks` rebuilds the whole :class:`~napari_dmqpm.tracking.tracks.Tracks`
(centroids, areas and edge contact measured again), so that it can be corrected with
:mod:`napari_dmqpm.tracking.edit`. The track ids are kept as they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from napari_dmqpm.tracking._validate import check_labels_stack, positive_or_none
from napari_dmqpm.tracking.regions import measure_regions
from napari_dmqpm.tracking.tracks import Tracks, assemble_tracks

__all__ = ["restore_tracks"]


def restore_tracks(
    labels_tyx: np.ndarray | Sequence[np.ndarray],
    points: Mapping[str, np.ndarray],
    graph: Mapping[int, Sequence[int]],
    *,
    frame_interval_min: float | None = None,
    metadata: dict[str, Any] | None = None,
) -> Tracks:
    """The :class:`Tracks` of input labels and the track id of each of their cells.

    Parameters
    ----------
    labels_tyx : ndarray of shape (T, M, N), integer
        The input labels (as segmented, before tracking), T >= 2. Not modified.
    points : mapping of str to ndarray of shape (n_points,)
        ``track_id``, ``frame`` and ``label`` (the input label) of every cell of every frame,
        and optionally ``dry_mass_pg`` (pg; NaN without it) and ``background_ok`` (False:
        the growth fits leave the point out; True without it).
    graph : mapping of int to sequence of int
        The lineage, ``{daughter_track: [mother_track]}``.
    frame_interval_min : float, optional
        Minutes between frames.
    metadata : dict, optional
        Provenance to keep (e.g. the linker's parameters and earlier edits).

    Returns
    -------
    Tracks

    Raises
    ------
    ValueError
        When the labels and the points do not describe the same cells (the labels were
        edited after tracking: a cell with no track, or a point with no cell; naming the
        frame and label), or a track has two cells in one frame.

    Examples
    --------
    >>> labels = np.zeros((2, 8, 8), np.int32)
    >>> labels[0, 2:4, 2:4], labels[1, 3:5, 2:4] = 5, 9
    >>> points = {"track_id": np.array([3, 3]), "frame": np.array([0, 1]),
    ...           "label": np.array([5, 9])}
    >>> tracks = restore_tracks(labels, points, {})
    >>> np.unique(tracks.labels).tolist(), tracks.table["n_frames"].tolist()
    ([0, 3], [2])
    """
    labels = check_labels_stack(labels_tyx)
    interval = positive_or_none("frame_interval_min", frame_interval_min)
    track_id = np.asarray(points["track_id"]).astype(np.int64)
    frame = np.asarray(points["frame"]).astype(np.int64)
    label = np.asarray(points["label"]).astype(np.int64)
    mass = np.asarray(points.get("dry_mass_pg", np.full(track_id.size, np.nan)), np.float64)
    table = {"frame": frame, "label": label, "dry_mass_pg": mass}
    if "background_ok" in points:
        table["background_ok"] = np.asarray(points["background_ok"]).astype(np.float64)
    regions = measure_regions(labels, table=table)
    track_of = _track_of(regions, track_id, frame, label)
    _one_cell_per_frame(track_of, regions["frame"])
    parent_of = {int(child): int(parents[0]) for child, parents in graph.items() if parents}
    info = {**(metadata or {})}
    return assemble_tracks(
        labels, regions, track_of, parent_of, frame_interval_min=interval, metadata=info
    )


def _track_of(
    regions: dict[str, np.ndarray], track_id: np.ndarray, frame: np.ndarray, label: np.ndarray
) -> np.ndarray:
    """The track of each region, or a ValueError naming a cell the two sides disagree on."""
    known = {(int(f), int(lab)): int(t) for t, f, lab in zip(track_id, frame, label, strict=True)}
    cells = list(zip(regions["frame"].tolist(), regions["label"].tolist(), strict=True))
    for f, lab in cells:
        if (f, lab) not in known:
            raise ValueError(
                f"the labels of frame {f} hold label {lab}, which no track holds: the labels "
                "were edited after tracking; track them again"
            )
    missing = sorted(set(known) - set(cells))
    if missing:
        f, lab = missing[0]
        raise ValueError(
            f"a track holds label {lab} in frame {f}, which the labels of that frame do not "
            "have: the labels were edited after tracking; track them again"
        )
    return np.array([known[cell] for cell in cells], dtype=np.int64)


def _one_cell_per_frame(track_of: np.ndarray, frames: np.ndarray) -> None:
    pairs, counts = np.unique(np.column_stack([track_of, frames]), axis=0, return_counts=True)
    if np.any(counts > 1):
        track, frame = pairs[np.argmax(counts > 1)]
        raise ValueError(f"track {track} has two cells in frame {frame}; a track is one cell")
