"""The baseline linker: nearest overlap, frame to frame.

Each cell of frame ``t + 1`` continues the cell of frame ``t`` it overlaps most (the largest
share of its own pixels); when two cells claim the same one, the larger overlap wins and the
other starts a new track. No divisions, no gaps. It is the reference the benchmark
(``benchmarks/bench_tracking.py``) compares :func:`~napari_dmqpm.tracking.track_labels` with.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from napari_dmqpm.tracking._validate import check_labels_stack, positive_or_none
from napari_dmqpm.tracking.regions import measure_regions
from napari_dmqpm.tracking.tracks import Tracks, build_tracks

__all__ = ["link_by_overlap"]


def link_by_overlap(
    labels_tyx: np.ndarray | Sequence[np.ndarray],
    *,
    frame_interval_min: float | None = None,
) -> Tracks:
    """Link cells that overlap in consecutive frames (the baseline; no divisions or gaps).

    Parameters
    ----------
    labels_tyx : ndarray of shape (T, M, N), or a sequence of T arrays of shape (M, N)
        Instance labels per frame (integers, 0 background), T >= 2.
    frame_interval_min : float, optional
        Minutes between frames (for the per-hour columns).

    Returns
    -------
    Tracks
        Without dry mass (the table's mass columns are NaN).

    Examples
    --------
    >>> labels = np.zeros((2, 10, 10), np.int32)
    >>> labels[0, 2:6, 2:6], labels[1, 3:7, 2:6] = 1, 9
    >>> link_by_overlap(labels).n_tracks
    1
    """
    labels = check_labels_stack(labels_tyx)
    interval = positive_or_none("frame_interval_min", frame_interval_min)
    regions = measure_regions(labels)
    row_of = {
        (int(f), int(lab)): i
        for i, (f, lab) in enumerate(zip(regions["frame"], regions["label"], strict=True))
    }
    edges = []
    for frame in range(labels.shape[0] - 1):
        for before, after in _best_overlaps(labels[frame], labels[frame + 1]):
            edges.append((row_of[(frame, before)], row_of[(frame + 1, after)]))
    return build_tracks(
        labels,
        regions,
        np.array(edges, dtype=np.int64).reshape(-1, 2),
        frame_interval_min=interval,
        metadata={"linker": "nearest overlap (baseline)"},
    )


def _best_overlaps(before: np.ndarray, after: np.ndarray) -> list[tuple[int, int]]:
    """Pairs ``(label before, label after)``, one per earlier cell at most, best overlap first."""
    both = (before > 0) & (after > 0)
    pairs, counts = np.unique(np.stack([before[both], after[both]]), axis=1, return_counts=True)
    sizes = np.bincount(after.ravel())
    share = counts / sizes[pairs[1]]
    taken_before: set[int] = set()
    taken_after: set[int] = set()
    links = []
    for index in np.argsort(-share, kind="stable"):
        b, a = int(pairs[0, index]), int(pairs[1, index])
        if b in taken_before or a in taken_after:
            continue
        taken_before.add(b)
        taken_after.add(a)
        links.append((b, a))
    return links
