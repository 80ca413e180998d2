"""Dry mass against time for one track and its family: what the growth plot draws.

:func:`lineage_curves` picks, from the per-cell rows of :attr:`Tracks.cells` (or the same
columns read back from a napari Tracks layer), the curve of one track, of its mother and of
its daughters, so a division shows as one line splitting into two of about half the mass.
:func:`track_at` answers "which track is this cell?" for a click on a labels image.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = ["POINT_FEATURES", "Curve", "lineage_curves", "track_at"]

#: The columns of :attr:`Tracks.cells` a viewer keeps per track point (napari's Tracks layer
#: features), from which :func:`~napari_dmqpm.tracking.restore.restore_tracks` rebuilds a
#: result; ``background_ok`` False marks a mass the growth fits leave out.
POINT_FEATURES = ("frame", "label", "dry_mass_pg", "background_ok")


@dataclass(frozen=True, eq=False)
class Curve:
    """The dry mass of one track over time.

    Attributes
    ----------
    track_id : int
    role : {"mother", "track", "daughter"}
        Its relation to the track asked for.
    time : ndarray of shape (n,)
        Hours when the frame interval is known, else frame indices (see ``time_unit``).
    dry_mass_pg : ndarray of shape (n,)
        Dry mass in pg (NaN where it was not measured).
    time_unit : {"h", "frame"}
    """

    track_id: int
    role: str
    time: np.ndarray
    dry_mass_pg: np.ndarray
    time_unit: str


def _rows(cells: Mapping[str, np.ndarray], track_id: int) -> np.ndarray:
    rows = np.flatnonzero(np.asarray(cells["track_id"]) == track_id)
    return rows[np.argsort(np.asarray(cells["frame"])[rows], kind="stable")]


def lineage_curves(
    cells: Mapping[str, np.ndarray],
    graph: Mapping[int, list[int]],
    track_id: int,
    *,
    frame_interval_min: float | None = None,
) -> list[Curve]:
    """The dry-mass curves of ``track_id``, its mother (if any) and its daughters.

    Parameters
    ----------
    cells : mapping of str to ndarray of shape (n_points,)
        At least ``track_id``, ``frame`` and ``dry_mass_pg`` (:attr:`Tracks.cells`).
    graph : mapping of int to list of int
        The lineage, ``{daughter: [mother]}`` (:attr:`Tracks.graph`).
    track_id : int
        The track asked for.
    frame_interval_min : float, optional
        Minutes between frames: times in hours; without it, frame indices.

    Returns
    -------
    list of Curve
        The mother first (when there is one), then the track, then its daughters by id.

    Raises
    ------
    ValueError
        When no cell belongs to ``track_id``.

    Examples
    --------
    >>> cells = {"track_id": np.array([1, 1, 2, 3]), "frame": np.array([0, 1, 2, 2]),
    ...          "dry_mass_pg": np.array([10.0, 12.0, 6.5, 6.0])}
    >>> [(c.role, c.track_id, c.time.tolist()) for c in lineage_curves(
    ...     cells, {2: [1], 3: [1]}, 2, frame_interval_min=30)]
    [('mother', 1, [0.0, 0.5]), ('track', 2, [1.0])]
    """
    track_id = int(track_id)
    if _rows(cells, track_id).size == 0:
        raise ValueError(f"no cell belongs to track_id={track_id}")
    mothers = [int(m) for m in graph.get(track_id, [])]
    daughters = sorted(int(d) for d, parents in graph.items() if track_id in parents)
    family = [(m, "mother") for m in mothers] + [(track_id, "track")]
    family += [(d, "daughter") for d in daughters]
    hours = None if frame_interval_min is None else float(frame_interval_min) / 60.0
    curves = []
    for member, role in family:
        rows = _rows(cells, member)
        if rows.size == 0:
            continue
        frames = np.asarray(cells["frame"], dtype=np.float64)[rows]
        curves.append(
            Curve(
                track_id=member,
                role=role,
                time=frames if hours is None else frames * hours,
                dry_mass_pg=np.asarray(cells["dry_mass_pg"], dtype=np.float64)[rows],
                time_unit="frame" if hours is None else "h",
            )
        )
    return curves


def track_at(cells: Mapping[str, np.ndarray], frame: int, label: int) -> int | None:
    """The track of the cell with input ``label`` at ``frame``, or None (background, unknown).

    Parameters
    ----------
    cells : mapping of str to ndarray
        The cells table of the tracks (``frame``, ``label``, ``track_id`` columns).
    frame : int
        The frame.
    label : int
        The cell's label in the input labels of that frame.

    Examples
    --------
    >>> cells = {"track_id": np.array([4, 5]), "frame": np.array([0, 0]),
    ...          "label": np.array([7, 9])}
    >>> track_at(cells, 0, 9), track_at(cells, 0, 0), track_at(cells, 1, 9)
    (5, None, None)
    """
    if label == 0:
        return None
    hit = np.flatnonzero(
        (np.asarray(cells["frame"]) == int(frame)) & (np.asarray(cells["label"]) == int(label))
    )
    return int(np.asarray(cells["track_id"])[hit[0]]) if hit.size else None
