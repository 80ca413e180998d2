"""Checks of the inputs to tracking: a labels stack, its phase, a per-cell table, numbers.

Each check raises a ``ValueError`` that names the parameter, the problem and, where it lies in
one frame, that frame's index.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from napari_dmqpm.tracking.frames import LabelFrames

__all__ = ["check_labels_stack", "check_phase_stack", "check_table", "positive_or_none"]


def check_labels_stack(
    labels_tyx: np.ndarray | Sequence[np.ndarray] | LabelFrames,
) -> np.ndarray | LabelFrames:
    """The labels as one integer array of shape (T, M, N), T >= 2, every label >= 0.

    Parameters
    ----------
    labels_tyx : ndarray of shape (T, M, N), or a sequence of T arrays of shape (M, N)
        Instance labels per frame, 0 for background. Float arrays are accepted when every
        value is a whole number. Not modified.

    Returns
    -------
    ndarray of shape (T, M, N), integer
        ``labels_tyx`` itself when it is an integer array (not copied), else int64.
    """
    if isinstance(labels_tyx, LabelFrames):  # read frame by frame; unsigned, one shape
        if len(labels_tyx) < 2:
            raise ValueError(_too_few(len(labels_tyx)))
        return labels_tyx
    if isinstance(labels_tyx, np.ndarray):
        frames = list(labels_tyx) if labels_tyx.ndim == 3 else None
        if frames is None:
            raise ValueError(_ndim_message(labels_tyx.shape))
    else:
        frames = [np.asarray(frame) for frame in labels_tyx]
    if len(frames) < 2:
        raise ValueError(_too_few(len(frames)))
    shape = np.shape(frames[0])
    for index, frame in enumerate(frames):
        if np.ndim(frame) != 2:
            raise ValueError(f"labels_tyx frame {index} must have shape (M, N); got {frame.shape}")
        if frame.shape != shape:
            raise ValueError(
                f"all frames of labels_tyx must have the same shape; frame 0 has {shape}, "
                f"frame {index} has {frame.shape}"
            )
    checked = [_integer_frame(frame, index) for index, frame in enumerate(frames)]
    if isinstance(labels_tyx, np.ndarray) and np.issubdtype(labels_tyx.dtype, np.integer):
        return labels_tyx  # checked frame by frame; no copy of a long time-lapse
    return np.stack(checked)


def _too_few(n_frames: int) -> str:
    return (
        f"nothing to track: labels_tyx has {n_frames} frame(s); tracking needs at least "
        "2 time points (a single image has no time axis)"
    )


def _ndim_message(shape: tuple[int, ...]) -> str:
    if len(shape) == 2:
        return (
            f"nothing to track: labels_tyx has shape {shape}, one frame (M, N); tracking needs "
            "a stack of shape (T, M, N) with T >= 2"
        )
    return f"labels_tyx must have shape (T, M, N); got labels_tyx.shape={shape}"


def _integer_frame(frame: np.ndarray, index: int) -> np.ndarray:
    """One frame as int64, or a ValueError naming the frame."""
    if frame.dtype == bool or not (
        np.issubdtype(frame.dtype, np.integer) or np.issubdtype(frame.dtype, np.floating)
    ):
        raise ValueError(
            f"labels_tyx must hold integer labels; frame {index} has dtype {frame.dtype}"
        )
    if np.issubdtype(frame.dtype, np.floating):
        if not np.all(np.isfinite(frame)) or np.any(frame != np.round(frame)):
            raise ValueError(
                f"labels_tyx frame {index} holds values that are not whole numbers (NaN, inf "
                "or fractions); labels must be integers"
            )
    if frame.size and frame.min() < 0:
        raise ValueError(
            f"labels_tyx frame {index} holds negative labels (min {frame.min()}); labels must "
            "be >= 0 with 0 for background"
        )
    return frame if np.issubdtype(frame.dtype, np.integer) else frame.astype(np.int64)


def check_phase_stack(phase_tyx: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray | None:
    """The phase as a float array of the labels' shape (T, M, N), or None."""
    if phase_tyx is None:
        return None
    if not isinstance(phase_tyx, np.ndarray) and hasattr(phase_tyx, "dtype"):
        # a lazily read time-lapse (dask): each frame is computed when measured
        if tuple(phase_tyx.shape) != tuple(shape):
            raise ValueError(
                f"phase_tyx must have the shape of labels_tyx {tuple(shape)}; "
                f"got phase_tyx.shape={tuple(phase_tyx.shape)}"
            )
        return phase_tyx
    phase = np.asarray(phase_tyx)
    if phase.shape != tuple(shape):
        raise ValueError(
            f"phase_tyx must have the shape of labels_tyx {tuple(shape)}; "
            f"got phase_tyx.shape={phase.shape}"
        )
    if not np.issubdtype(phase.dtype, np.floating):
        phase = phase.astype(np.float64)
    return phase


def check_table(table: Mapping[str, np.ndarray], n_frames: int) -> dict[str, np.ndarray]:
    """A per-cell-per-frame table: frame, label, dry_mass_pg (and background_ok when given)."""
    missing = [name for name in ("frame", "label", "dry_mass_pg") if name not in table]
    if missing:
        raise ValueError(
            f"table must have the columns frame, label and dry_mass_pg (pg); missing {missing}"
        )
    names = ["frame", "label", "dry_mass_pg"] + [n for n in ("background_ok",) if n in table]
    columns = {name: np.asarray(table[name]) for name in names}
    lengths = {column.shape for column in columns.values()}
    if len(lengths) != 1 or len(next(iter(lengths))) != 1:
        raise ValueError(f"table columns must be equally long 1-D arrays; got shapes {lengths}")
    frames = columns["frame"]
    if frames.size and (frames.min() < 0 or frames.max() >= n_frames):
        raise ValueError(
            f"table column frame must lie in [0, {n_frames - 1}] (the frames of labels_tyx); "
            f"got values from {frames.min()} to {frames.max()}"
        )
    checked = {
        "frame": frames.astype(np.int64),
        "label": columns["label"].astype(np.int64),
        "dry_mass_pg": columns["dry_mass_pg"].astype(np.float64),
    }
    if "background_ok" in columns:  # 1 or 0 (NaN, an empty CSV field: trusted)
        checked["background_ok"] = columns["background_ok"].astype(np.float64)
    return checked


def positive_or_none(name: str, value: float | None) -> float | None:
    """``value`` as a float when it is a positive finite number, None for None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise ValueError(f"{name} must be a positive number or None; got {name}={value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number or None; got {name}={value!r}")
    return float(value)
