"""What each segmented frame gave: cells, no cells, or nothing to look at (and why).

A frame without cells is said, not left to an empty table: :func:`frame_status` gives every
frame a :class:`FrameStatus`, ``ok`` (cells found), ``empty`` (the model looked and found
none) or ``featureless`` (constant inputs: nothing to find, the network was not asked, since
a network given a flat frame can invent cells). :func:`featureless_reason` is the one place
that decides ``featureless``. ``dmqpm segment`` writes the statuses as ``<stem>_frames.csv``
beside the cells table (:func:`frames_to_csv`), and it and the napari widget say the frames
without cells in the words of :func:`describe_frames`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "FRAME_COLUMNS",
    "FRAME_STATUSES",
    "FrameStatus",
    "describe_frames",
    "featureless_reason",
    "frame_status",
    "frames_to_csv",
]

#: The statuses of a frame, in the order :func:`describe_frames` names them.
FRAME_STATUSES = ("ok", "empty", "featureless")
#: Columns of ``<stem>_frames.csv``, with what they hold.
FRAME_COLUMNS: dict[str, str] = {
    "frame": "time point index (as in the cells table)",
    "n_cells": "cells found in the frame",
    "status": "ok (cells found), empty (the model found none) or featureless (constant "
    "inputs: the model was not run)",
    "reason": "why a frame has no cells (empty for ok)",
}
#: A plane whose values span at most this fraction of their magnitude (at least 1) is constant.
CONSTANT_RELATIVE_SPAN = 1e-6
#: The reason of an ``empty`` frame.
EMPTY_REASON = "the model found no cells"


@dataclass(frozen=True, kw_only=True)
class FrameStatus:
    """The outcome of one segmented frame.

    Attributes
    ----------
    frame : int
        Time point index (the input's, as in the cells table).
    n_cells : int
        Cells found in the frame.
    status : {"ok", "empty", "featureless"}
        See the module.
    reason : str
        Why the frame has no cells; ``""`` for ``ok``.
    """

    frame: int
    n_cells: int
    status: str
    reason: str = ""

    def __post_init__(self) -> None:
        if self.status not in FRAME_STATUSES:
            raise ValueError(f"status must be one of {FRAME_STATUSES}; got {self.status!r}")
        if (self.n_cells > 0) != (self.status == "ok") or self.n_cells < 0:
            raise ValueError(
                f"a frame with {self.n_cells} cells cannot have status {self.status!r}"
            )


def _is_constant(plane: np.ndarray) -> bool:
    plane = np.asarray(plane)
    if not plane.size:
        return True
    span = float(np.ptp(plane))
    return span <= CONSTANT_RELATIVE_SPAN * max(1.0, float(np.abs(plane).max()))


def featureless_reason(phase: np.ndarray, angles: np.ndarray | None = None) -> str | None:
    """Why a frame holds nothing to segment, or None when it may hold cells.

    Parameters
    ----------
    phase : ndarray of shape (M, N)
        The frame's phase (a regular subsample will do), radians.
    angles : ndarray of shape (4, M, N), optional
        The angle images, for a model that takes them; looked at only when the phase is
        constant.

    Returns
    -------
    str or None
        E.g. ``"the phase is constant (0 rad)"``; None when some input varies.

    Examples
    --------
    >>> featureless_reason(np.zeros((8, 8), np.float32))
    'the phase is constant (0 rad)'
    >>> featureless_reason(np.eye(8, dtype=np.float32)) is None
    True
    """
    phase = np.asarray(phase)
    if not _is_constant(phase):
        return None
    level = f"{float(phase.flat[0]):.4g} rad" if phase.size else "no pixels"
    if angles is None:
        return f"the phase is constant ({level})"
    if not all(_is_constant(plane) for plane in np.asarray(angles)):
        return None
    return f"the phase ({level}) and the four angle images are constant"


def frame_status(frame: int, labels: np.ndarray, *, featureless: str | None = None) -> FrameStatus:
    """The status of a segmented frame from its labels (and the featureless reason, if any).

    Parameters
    ----------
    frame : int
        Time point index.
    labels : ndarray of shape (M, N)
        The frame's instance labels, 0 background.
    featureless : str, optional
        :func:`featureless_reason`'s answer for the frame; a frame with one has no cells.

    Returns
    -------
    FrameStatus
    """
    labels = np.asarray(labels)
    n_cells = int(np.count_nonzero(np.unique(labels))) if labels.size else 0
    if featureless is not None:
        if n_cells:
            raise ValueError(f"frame {frame} is featureless ({featureless}) but has cells")
        return FrameStatus(frame=int(frame), n_cells=0, status="featureless", reason=featureless)
    if not n_cells:
        return FrameStatus(frame=int(frame), n_cells=0, status="empty", reason=EMPTY_REASON)
    return FrameStatus(frame=int(frame), n_cells=n_cells, status="ok")


def frames_to_csv(statuses: Iterable[FrameStatus], *, header: bool = True) -> str:
    """``<stem>_frames.csv`` text: the header of :data:`FRAME_COLUMNS`, one line per frame.

    Parameters
    ----------
    statuses : sequence of FrameStatus
        One per frame, in frame order.
    header : bool
        Start with the header line.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if header:
        writer.writerow(list(FRAME_COLUMNS))
    for status in statuses:
        writer.writerow([status.frame, status.n_cells, status.status, status.reason])
    return buffer.getvalue()


def _frames_words(frames: Sequence[int]) -> str:
    shown = ", ".join(str(t) for t in frames[:5])
    more = f" and {len(frames) - 5} more" if len(frames) > 5 else ""
    return f"frame{'s' if len(frames) > 1 else ''} {shown}{more}"


def describe_frames(statuses: Sequence[FrameStatus]) -> str | None:
    """The frames without cells in words, or None when every frame has cells.

    Parameters
    ----------
    statuses : sequence of FrameStatus
        One per frame, in frame order.

    Examples
    --------
    >>> describe_frames([FrameStatus(frame=0, n_cells=0, status="featureless",
    ...                              reason="the phase is constant (0 rad)")])
    'no cells in 1 of 1 frame(s): featureless: frame 0 (the phase is constant (0 rad))'
    >>> describe_frames([FrameStatus(frame=0, n_cells=3, status="ok")]) is None
    True
    """
    without = [s for s in statuses if s.status != "ok"]
    if not without:
        return None
    parts = []
    for name in FRAME_STATUSES[1:]:
        group = [s for s in without if s.status == name]
        if group:
            reasons = sorted({s.reason for s in group})
            why = reasons[0] if len(reasons) == 1 else "; ".join(reasons[:3])
            parts.append(f"{name}: {_frames_words([s.frame for s in group])} ({why})")
    return f"no cells in {len(without)} of {len(statuses)} frame(s): " + "; ".join(parts)
