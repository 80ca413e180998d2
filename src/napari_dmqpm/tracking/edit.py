"""Corrections of a tracking result: merge two tracks, split one, mark or unmark a division.

Each function takes a :class:`~napari_dmqpm.tracking.tracks.Tracks` and returns a new one; the
input is never modified (the new result shares the input's labels array when an edit leaves
the labels as they were: a change of the lineage only). The relabelled labels, napari's
Tracks data, the lineage graph and the per-cell rows follow the edit, and the per-track table
(growth rate, doubling time, division frame, parent) is fitted again for the tracks the edit
touched, so it equals a fit of the whole result. Every edit is appended to
``metadata["edits"]`` (JSON-native), so a saved result says how it was corrected.

The lineage stays one that the Cell Tracking Challenge format can hold: a track is one cell
in at most one place per frame, and a daughter starts after its mother's last frame. An edit
that would break this is refused with a ``ValueError`` that names the tracks and the frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from napari_dmqpm.tracking.growth import track_table
from napari_dmqpm.tracking.tracks import Tracks

__all__ = ["mark_division", "merge_tracks", "split_track", "unmark_division"]


def merge_tracks(tracks: Tracks, keep: int, absorb: int) -> Tracks:
    """One cell's two track pieces as one track, with the id ``keep``.

    Parameters
    ----------
    tracks : Tracks
        The result to correct; not modified.
    keep : int
        The track whose id the merged track takes (usually the earlier piece).
    absorb : int
        The other piece; its cells, in the labels too, get the id ``keep``.

    Returns
    -------
    Tracks
        The merged track's mother is the earlier piece's, its daughters the later piece's.
        When the later piece was a daughter of the earlier one (a division the linker made
        where the cell only moved on), that division is unmarked: its other daughters lose
        their mother.

    Raises
    ------
    ValueError
        When a track is unknown or ``keep == absorb``; when the two have a cell in the same
        frame (naming the frames); when the later piece has another mother, or the earlier
        piece divides before the later one ends (unmark that division first).

    Examples
    --------
    >>> from napari_dmqpm.tracking import track_labels
    >>> labels = np.zeros((4, 8, 8), np.int32)
    >>> labels[:2, 2:5, 2:5], labels[2:, 2:5, 3:6] = 1, 2
    >>> tracks = track_labels(labels, max_distance_px=0.5)  # the move breaks the track
    >>> tracks.n_tracks, merge_tracks(tracks, 1, 2).n_tracks
    (2, 1)
    """
    keep, absorb = _known(tracks, keep, "keep"), _known(tracks, absorb, "absorb")
    if keep == absorb:
        raise ValueError(f"merge_tracks needs two different tracks; got keep=absorb={keep}")
    frames = {track: _frames(tracks, track) for track in (keep, absorb)}
    common = np.intersect1d(frames[keep], frames[absorb])
    if common.size:
        raise ValueError(
            f"tracks {keep} and {absorb} cannot be one cell: both have a cell in frame(s) "
            f"{_frame_list(common)}"
        )
    earlier, later = sorted((keep, absorb), key=lambda track: int(frames[track][0]))
    graph = {child: parents[0] for child, parents in tracks.graph.items()}
    unmarked: list[int] = []
    mother_of_later = graph.get(later)
    if mother_of_later == earlier:  # a false division: the cell only moved on
        unmarked = sorted(c for c, p in graph.items() if p == earlier and c != later)
        graph = {c: p for c, p in graph.items() if p != earlier}
    elif mother_of_later is not None:
        raise ValueError(
            f"track {later} is a daughter of track {mother_of_later}; unmark that division "
            f"(or merge track {later} with its mother) before merging it with track {earlier}"
        )
    last = int(max(frames[keep][-1], frames[absorb][-1]))
    for piece in (earlier, later):
        early = sorted(
            c for c, p in graph.items() if p == piece and _first_frame(tracks, c) <= last
        )
        if early:
            raise ValueError(
                f"track {piece} divides into tracks {_ids(early)} at frame "
                f"{_first_frame(tracks, early[0])}, before the merged track would end (frame "
                f"{last}); unmark that division first"
            )
    parent = graph.pop(earlier, None)
    graph.pop(later, None)
    if parent is not None:
        graph[keep] = parent
    graph = {c: keep if p == absorb else p for c, p in graph.items()}
    track_id = np.where(tracks.cells["track_id"] == absorb, keep, tracks.cells["track_id"])
    record = {"edit": "merge_tracks", "keep": keep, "absorb": absorb}
    if unmarked:
        record["daughters_unmarked"] = unmarked
    return _rebuild(tracks, track_id, graph, {keep, absorb}, record)


def split_track(tracks: Tracks, track: int, frame: int) -> Tracks:
    """From ``frame`` on, the cell of ``track`` is a new track (with no mother).

    Parameters
    ----------
    tracks : Tracks
        The result to correct; not modified.
    track : int
        The track to cut in two.
    frame : int
        The first frame of the new track: after the track's first frame and at most its
        last.

    Returns
    -------
    Tracks
        The new track has the id one above the highest; it keeps the daughters of ``track``
        (they start after it ends).

    Raises
    ------
    ValueError
        When the track is unknown or ``frame`` does not cut it in two (naming its frames).

    Examples
    --------
    >>> from napari_dmqpm.tracking import track_labels
    >>> labels = np.zeros((4, 8, 8), np.int32)
    >>> labels[:, 2:5, 2:5] = 1
    >>> tracks = split_track(track_labels(labels), 1, 2)
    >>> tracks.table["track_id"].tolist(), tracks.table["first_frame"].tolist()
    ([1, 2], [0, 2])
    """
    track = _known(tracks, track, "track")
    frames = _frames(tracks, track)
    first, last = int(frames[0]), int(frames[-1])
    if not _is_int(frame) or not first < int(frame) <= last:
        raise ValueError(
            f"split_track cuts track {track} (frames {first}-{last}) before a frame in "
            f"{first + 1}-{last}; got frame={frame!r}"
            + ("" if first < last else f": track {track} has a single frame")
        )
    new = int(tracks.table["track_id"].max()) + 1
    cells = tracks.cells
    track_id = np.where(
        (cells["track_id"] == track) & (cells["frame"] >= int(frame)), new, cells["track_id"]
    )
    graph = {c: (new if ps[0] == track else ps[0]) for c, ps in tracks.graph.items()}
    record = {"edit": "split_track", "track": track, "frame": int(frame), "new_track": new}
    return _rebuild(tracks, track_id, graph, {track, new}, record)


def mark_division(tracks: Tracks, mother: int, daughters: Sequence[int]) -> Tracks:
    """Mark ``mother`` as dividing into the two tracks ``daughters``.

    Parameters
    ----------
    tracks : Tracks
        The result to correct; not modified.
    mother : int
        The dividing track; daughters it had before lose it as their mother.
    daughters : sequence of two int
        The daughter tracks; each must start after the mother's last frame and have no
        other mother.

    Returns
    -------
    Tracks

    Raises
    ------
    ValueError
        When a track is unknown, the daughters are not two other tracks, a daughter starts
        before the mother ends (naming the frames), or a daughter has another mother.
    """
    mother = _known(tracks, mother, "mother")
    if isinstance(daughters, (str, bytes)) or len(daughters) != 2:
        raise ValueError(f"a division gives two daughter tracks; got daughters={daughters!r}")
    pair = [_known(tracks, d, "daughters") for d in daughters]
    if len(set(pair)) != 2 or mother in pair:
        raise ValueError(
            f"the two daughters must be two tracks other than the mother {mother}; "
            f"got daughters={daughters!r}"
        )
    end = int(_frames(tracks, mother)[-1])
    graph = {child: parents[0] for child, parents in tracks.graph.items()}
    for daughter in pair:
        start = _first_frame(tracks, daughter)
        if start <= end:
            raise ValueError(
                f"track {daughter} starts at frame {start}, before its mother track {mother} "
                f"ends (frame {end}); a daughter starts after its mother's last frame (split "
                f"track {mother} first if it goes on as one of them)"
            )
        if graph.get(daughter, mother) != mother:
            raise ValueError(
                f"track {daughter} is already a daughter of track {graph[daughter]}; unmark "
                "that division first"
            )
    unmarked = sorted(c for c, p in graph.items() if p == mother and c not in pair)
    graph = {c: p for c, p in graph.items() if p != mother}
    graph.update({daughter: mother for daughter in pair})
    record: dict[str, Any] = {"edit": "mark_division", "mother": mother, "daughters": pair}
    if unmarked:
        record["daughters_unmarked"] = unmarked
    return _rebuild(tracks, tracks.cells["track_id"], graph, set(), record)


def unmark_division(tracks: Tracks, mother: int) -> Tracks:
    """``mother`` divides no more: its daughters become tracks without a mother.

    Parameters
    ----------
    tracks : Tracks
        The result to correct; not modified.
    mother : int
        The track whose division to remove.

    Returns
    -------
    Tracks

    Raises
    ------
    ValueError
        When the track is unknown or has no daughters.
    """
    mother = _known(tracks, mother, "mother")
    graph = {child: parents[0] for child, parents in tracks.graph.items()}
    daughters = sorted(c for c, p in graph.items() if p == mother)
    if not daughters:
        raise ValueError(f"track {mother} has no daughters: there is no division to unmark")
    graph = {c: p for c, p in graph.items() if p != mother}
    record = {"edit": "unmark_division", "mother": mother, "daughters": daughters}
    return _rebuild(tracks, tracks.cells["track_id"], graph, set(), record)


# ---- helpers -------------------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _known(tracks: Tracks, track: Any, name: str) -> int:
    """``track`` as an int when the result has it, else a ValueError naming ``name``."""
    ids = tracks.table["track_id"]
    if not _is_int(track) or int(track) not in set(ids.tolist()):
        have = f"tracks {int(ids.min())}-{int(ids.max())}" if ids.size else "no tracks"
        raise ValueError(f"{name}={track!r} is not a track of this result ({have})")
    return int(track)


def _frames(tracks: Tracks, track: int) -> np.ndarray:
    """The sorted frames of ``track``."""
    return np.sort(tracks.cells["frame"][tracks.cells["track_id"] == track])


def _first_frame(tracks: Tracks, track: int) -> int:
    return int(_frames(tracks, track)[0])


def _ids(tracks: list[int]) -> str:
    return " and ".join(str(t) for t in tracks)


def _frame_list(frames: np.ndarray, most: int = 8) -> str:
    shown = ", ".join(str(int(f)) for f in frames[:most])
    return shown + (f" ... ({frames.size} frames)" if frames.size > most else "")


def _rebuild(
    tracks: Tracks,
    track_id: np.ndarray,
    graph: dict[int, int],
    changed: set[int],
    record: dict[str, Any],
) -> Tracks:
    """A new result with the cells' track ids ``track_id`` and the lineage ``graph``."""
    cells = tracks.cells
    order = np.lexsort((cells["frame"], track_id))
    new_cells = {name: np.asarray(column)[order] for name, column in cells.items()}
    new_cells["track_id"] = np.asarray(track_id)[order]
    labels = _relabel(np.asarray(tracks.labels), cells, track_id)
    data = np.column_stack(
        [new_cells[n] for n in ("track_id", "frame", "centroid_row", "centroid_col")]
    ).astype(np.float64)
    new_graph = {child: [parent] for child, parent in sorted(graph.items())}
    old_graph = {child: parents[0] for child, parents in tracks.graph.items()}
    # a track's row depends on its cells, its mother and its daughters' first frames; no edit
    # moves a track's first frame, so the tracks whose cells or lineage changed are all
    touched = set(changed)
    for child in set(old_graph) | set(graph):
        if old_graph.get(child) != graph.get(child):
            touched |= {child, old_graph.get(child, 0), graph.get(child, 0)}
    table = _refit(tracks, new_cells, new_graph, touched - {0})
    metadata = dict(tracks.metadata)
    metadata["edits"] = [*tracks.metadata.get("edits", []), record]
    return Tracks(
        labels=labels, data=data, graph=new_graph, table=table, cells=new_cells, metadata=metadata
    )


def _relabel(labels: np.ndarray, cells: dict[str, np.ndarray], track_id: np.ndarray) -> np.ndarray:
    """The labels with each cell's new track id, copied only when some id changes."""
    moved = np.flatnonzero(cells["track_id"] != track_id)
    if moved.size == 0:
        return labels
    out = labels.copy()
    for frame in np.unique(cells["frame"][moved]):
        rows = moved[cells["frame"][moved] == frame]
        lookup = np.arange(int(out[frame].max(initial=0)) + 1, dtype=out.dtype)
        lookup[cells["track_id"][rows]] = track_id[rows]
        out[frame] = lookup[out[frame]]
    return out


def _refit(
    tracks: Tracks,
    cells: dict[str, np.ndarray],
    graph: dict[int, list[int]],
    touched: set[int],
) -> dict[str, np.ndarray]:
    """The per-track table with the rows of the ``touched`` tracks fitted again."""
    present = set(np.unique(cells["track_id"]).tolist())
    touched &= present
    family = touched | {child for child, (parent,) in graph.items() if parent in touched}
    rows = np.isin(cells["track_id"], sorted(family))
    subset = {name: column[rows] for name, column in cells.items()}
    sub_graph = {child: parents for child, parents in graph.items() if child in family}
    interval = tracks.metadata.get("frame_interval_min")
    fitted = track_table(subset, sub_graph, frame_interval_min=interval)
    old = tracks.table
    kept = np.isin(old["track_id"], sorted(present - touched))
    new = np.isin(fitted["track_id"], sorted(touched))
    merged = {name: np.concatenate([old[name][kept], fitted[name][new]]) for name in old}
    order = np.argsort(merged["track_id"], kind="stable")
    return {name: column[order] for name, column in merged.items()}
