"""Tracks in the Cell Tracking Challenge (CTC) format: a track file and one mask TIFF per frame.

The track file has one line ``L B E P`` per track: its label, the first and last frame
(0-based) and the label of its parent (0: none). The masks ``mask000.tif``, ``mask001.tif``,
... (``man_track000.tif``, ... for ground truth) are 16-bit label images in which track ``L``
carries the value ``L`` in frames ``B`` to ``E``. A track must be present in every frame from
``B`` to ``E``; a cell missing for some frames is therefore written, as the CTC asks, as two
tracks, the later one with the earlier one as its parent. CTC tools (the official evaluation
software, py-ctcmetrics) and Fiji's TrackMate read this layout.

References
----------
.. [1] M. Maška et al., "The Cell Tracking Challenge: 10 years of objective benchmarking",
   Nature Methods 20, 1010-1020 (2023); format: celltrackingchallenge.net, "Data
   specification".
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import tifffile

from napari_dmqpm.io.write import atomic_write

#: ``{daughter_label: parent_label}`` or ``{daughter: [parent]}``.
Parents = Mapping[int, int] | Mapping[int, Sequence[int]]

__all__ = ["ctc_tracks", "write_ctc"]

_MAX_LABEL = 2**16 - 1


def ctc_tracks(
    labels_tyx: np.ndarray, parents: Parents | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """CTC labels and track lines from labels that keep their id over time.

    Parameters
    ----------
    labels_tyx : ndarray of shape (T, M, N), integer
        Labels by track (0 background), e.g. :attr:`napari_dmqpm.tracking.Tracks.labels`.
    parents : mapping of int to int, optional
        ``{daughter_label: parent_label}`` (a napari graph ``{daughter: [parent]}`` is
        accepted too).

    Returns
    -------
    labels : ndarray of shape (T, M, N), uint16
        The labels, with a new label for each part of a track after a gap.
    tracks : ndarray of shape (n_tracks, 4), int64
        ``L B E P`` per track, by label.

    Examples
    --------
    A cell missing in frame 1 becomes two tracks:

    >>> labels = np.zeros((3, 4, 4), np.int32)
    >>> labels[0, :2, :2] = labels[2, :2, :2] = 5
    >>> ctc_tracks(labels)[1].tolist()
    [[5, 0, 0, 0], [6, 2, 2, 5]]
    """
    labels = np.asarray(labels_tyx)
    if labels.ndim != 3 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"labels_tyx must be integer labels of shape (T, M, N); got shape {labels.shape}, "
            f"dtype {labels.dtype}"
        )
    if labels.size and labels.min() < 0:
        raise ValueError("labels_tyx must hold labels >= 0")
    present = [set(np.unique(frame[frame > 0]).tolist()) for frame in labels]
    runs, renamed, tracks = _plan(present, parents)
    return _relabel_runs(labels, runs, renamed), tracks


def _plan(
    present: list[set[int]], parents: Parents | None
) -> tuple[list, dict[tuple[int, int], int], np.ndarray]:
    """The runs of each label, their CTC labels and the track lines, from each frame's labels."""
    parent_of = {int(k): _single(v) for k, v in (parents or {}).items()}
    runs = _runs(present)
    next_label = max((label for label, _, _ in runs), default=0) + 1
    renamed: dict[tuple[int, int], int] = {}  # (label, first frame of run) -> CTC label
    lines: list[tuple[int, int, int, int, int]] = []
    for label, first, last in runs:  # sorted by label, then first frame
        earlier = [line for line in lines if line[4] == label]
        if earlier:  # after a gap: a new track, the part before the gap its parent
            ctc_label, parent = next_label, earlier[-1][0]
            next_label += 1
        else:
            ctc_label, parent = label, parent_of.get(label, 0)
        renamed[(label, first)] = ctc_label
        lines.append((ctc_label, first, last, parent, label))
    if next_label - 1 > _MAX_LABEL:
        raise ValueError(f"the CTC format holds labels up to {_MAX_LABEL}; got {next_label - 1}")
    tracks = np.array(sorted(line[:4] for line in lines), dtype=np.int64).reshape(-1, 4)
    return runs, renamed, _parents_of_first_runs(tracks, lines)


def _frame_labels(frame: object, index: int) -> np.ndarray:
    """One frame of a frame sequence, checked: integers >= 0 of shape (M, N)."""
    frame = np.asarray(frame)
    if frame.ndim != 2 or not np.issubdtype(frame.dtype, np.integer):
        raise ValueError(
            f"labels_tyx frame {index} must be integer labels of shape (M, N); got shape "
            f"{frame.shape}, dtype {frame.dtype}"
        )
    if frame.size and frame.min() < 0:
        raise ValueError("labels_tyx must hold labels >= 0")
    return frame


def _single(value: int | Sequence[int]) -> int:
    if isinstance(value, Sequence):  # {daughter: [parent]}
        if len(value) != 1:
            raise ValueError(f"a CTC track has one parent; got {list(value)}")
        return int(value[0])
    return int(value)


def _runs(present: list[set[int]]) -> list[tuple[int, int, int]]:
    """``(label, first, last)`` of every run of consecutive frames holding each label."""
    runs = []
    for label in sorted(set().union(*present)):
        frames = [t for t, labels in enumerate(present) if label in labels]
        start = frames[0]
        for before, after in zip(frames[:-1], frames[1:], strict=True):
            if after != before + 1:
                runs.append((label, start, before))
                start = after
        runs.append((label, start, frames[-1]))
    return runs


def _relabel_runs(labels: np.ndarray, runs: list, renamed: dict) -> np.ndarray:
    out = labels.astype(np.uint16)
    for label, first, last in runs:
        new = renamed[(label, first)]
        if new != label:
            part = out[first : last + 1]
            part[labels[first : last + 1] == label] = new
    return out


def _relabel_frame(frame: np.ndarray, index: int, runs: list, renamed: dict) -> np.ndarray:
    """Frame ``index`` in CTC labels (uint16): the runs after a gap get their new label."""
    out = frame.astype(np.uint16)
    for label, first, last in runs:
        new = renamed[(label, first)]
        if new != label and first <= index <= last:
            out[frame == label] = new
    return out


def _parents_of_first_runs(tracks: np.ndarray, lines: list) -> np.ndarray:
    """Parents that point at a label with gaps point at its last run before the daughter."""
    last_run: dict[int, list[tuple[int, int, int]]] = {}
    for ctc_label, first, last, _, label in lines:
        last_run.setdefault(label, []).append((first, last, ctc_label))
    for row in tracks:
        parent = int(row[3])
        if parent in last_run:
            before = [ctc for first, last, ctc in last_run[parent] if last < row[1]]
            if before and before[-1] != row[0]:
                row[3] = before[-1]
    return tracks


def write_ctc(
    folder: str | os.PathLike,
    labels_tyx: np.ndarray | Sequence[np.ndarray],
    parents: Parents | None = None,
    *,
    ground_truth: bool = False,
    overwrite: bool = False,
) -> list[Path]:
    """Write tracks in the CTC layout, each file atomically.

    Parameters
    ----------
    folder : str or path-like
        Created when missing. Results go to ``folder/res_track.txt`` and
        ``folder/maskTTT.tif``; ground truth (``ground_truth=True``) to
        ``folder/TRA/man_track.txt`` and ``folder/TRA/man_trackTTT.tif``.
    labels_tyx : ndarray of shape (T, M, N), integer, or a sequence of T frames (M, N)
        Labels by track (see :func:`ctc_tracks`). Read one frame at a time, twice (the
        frames holding each label, then the masks): a sequence that reads or computes its
        frames when indexed is written with the memory of one frame.
    parents : mapping of int to int, optional
        ``{daughter_label: parent_label}`` or ``{daughter: [parent]}``.
    ground_truth : bool
        Write the ground-truth layout.
    overwrite : bool
        Replace existing files (default: raise ``FileExistsError`` before writing any).

    Returns
    -------
    list of Path
        The track file, then the masks in frame order.
    """
    if isinstance(labels_tyx, np.ndarray) and labels_tyx.ndim != 3:
        raise ValueError(f"labels_tyx must have shape (T, M, N); got shape {labels_tyx.shape}")
    n_frames = len(labels_tyx)
    present = []
    for index in range(n_frames):
        frame = _frame_labels(labels_tyx[index], index)
        present.append(set(np.unique(frame[frame > 0]).tolist()))
    runs, renamed, tracks = _plan(present, parents)
    folder = Path(folder) / "TRA" if ground_truth else Path(folder)
    prefix, track_name = (
        ("man_track", "man_track.txt") if ground_truth else ("mask", "res_track.txt")
    )
    digits = max(3, len(str(n_frames - 1)))
    masks = [folder / f"{prefix}{t:0{digits}d}.tif" for t in range(n_frames)]
    targets = [folder / track_name, *masks]
    existing = [str(p) for p in targets if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(
            f"refusing to write over {len(existing)} existing file(s), e.g. {existing[0]}; "
            "pass overwrite=True to replace them"
        )
    folder.mkdir(parents=True, exist_ok=True)
    text = "".join(f"{a} {b} {c} {d}\n" for a, b, c, d in tracks.tolist()).encode("ascii")
    atomic_write(targets[0], lambda handle: handle.write(text), overwrite=overwrite)
    for index, path in enumerate(masks):
        mask = _relabel_frame(np.asarray(labels_tyx[index]), index, runs, renamed)
        atomic_write(path, functools.partial(tifffile.imwrite, data=mask), overwrite=overwrite)
    return targets
