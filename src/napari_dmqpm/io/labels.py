"""Instance label images: what a labels file holds, and how one is told from a camera frame.

A labels file is recognised (docs/formats.md, "Labels images") by the tag napari-dmqpm's own
writers put in the ImageJ header (``dmqpm_content=labels``, see
:data:`napari_dmqpm.io._tags.LABELS_TAG`), or, for untagged files of other tools, by
:func:`label_structure`: an integer image with a zero background whose neighbouring pixels
agree far more often than chance, which a camera frame (noise, and the 2x2 polarizer
pattern of a mosaic) never does. No torch, no Qt.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from napari_dmqpm.io._layout import Layout, plan_layout
from napari_dmqpm.io.acquisition import FormatError

__all__ = ["LABELS_KIND", "TAGGED_REASON", "LabelImage", "label_structure", "without_labels"]

#: The ``FileInfo.kind`` of a labels file (not an ssQPM recording: no Acquisition).
LABELS_KIND = "labels"

#: ``FileInfo.reason`` of a file that carries the labels tag of napari-dmqpm's writers.
TAGGED_REASON = "tagged dmqpm_content=labels in the ImageJ header -> labels"

#: Least agreement of neighbouring pixels beyond chance (Cohen's kappa) of a label image.
MIN_KAPPA = 0.5
#: Least share of equal pairs among the neighbouring pairs that touch an object.
MIN_OBJECT_AGREEMENT = 0.5
_LOG = logging.getLogger(__name__)
# The statistics are taken on at most this many rows and columns (the centre of the frame).
_MAX_SIDE = 4096


@dataclass(frozen=True, kw_only=True)
class LabelImage:
    """Instance labels read from a file (:func:`napari_dmqpm.io.read_labels`).

    Attributes
    ----------
    labels : ndarray of shape (T, M, N), integer
        0 is background; ``T == 1`` for a single frame, as in :class:`Acquisition`.
    pixel_size_um : float or None
        Pixel size in µm where the file states it (or the caller gave it).
    is_timelapse : bool
        The file has a time axis (even of length 1).
    source : str
        The path the labels came from.
    metadata : dict
        ``detection`` (the rule that recognised the file), ``pixel_size_source``,
        ``stored_dtype``, ``stored_shape``, ``file_format``. JSON-serialisable.
    """

    labels: np.ndarray
    pixel_size_um: float | None = None
    is_timelapse: bool = False
    source: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        """Number of time points ``T``."""
        return int(self.labels.shape[0])


def label_structure(frame: np.ndarray) -> str | None:
    """Why ``frame`` is an instance label image, in words, or None when it is not one.

    A label image is piecewise constant on a background of 0: it has pixels of value 0 and
    others, no negative values, and its neighbouring pixels (left-right and up-down) are
    equal much more often than its histogram alone would make them (Cohen's kappa of the
    pairs >= ``MIN_KAPPA``), also where they touch an object (>= ``MIN_OBJECT_AGREEMENT`` of
    those pairs equal). A camera frame fails this: its noise makes neighbours differ, and in
    a polarization mosaic the four polarizer angles of a 2x2 super-pixel differ too; a frame
    whose background is clipped to 0 still has noisy objects.

    Parameters
    ----------
    frame : ndarray of shape (M, N)
        One plane. Only integer dtypes can be labels. At most the central 4096 x 4096
        pixels are looked at.

    Returns
    -------
    str or None
        E.g. ``"integer image of 12 values on a 0 background, piecewise constant (97 % of
        neighbours equal, kappa 0.95) -> labels"``; None for anything else (floats, a
        constant image, an image without 0 or with negative values, a camera frame).

    Examples
    --------
    >>> labels = np.zeros((64, 64), np.uint16)
    >>> labels[8:30, 8:30], labels[36:60, 30:58] = 1, 2
    >>> label_structure(labels) is not None
    True
    >>> frame = np.random.default_rng(0).poisson(40, (64, 64)).astype(np.uint16)
    >>> label_structure(frame) is None
    True
    """
    frame = np.asarray(frame)
    if frame.ndim != 2 or min(frame.shape) < 2 or not np.issubdtype(frame.dtype, np.integer):
        return None
    top, left = (max(0, (n - _MAX_SIDE) // 2) for n in frame.shape)
    frame = frame[top : top + _MAX_SIDE, left : left + _MAX_SIDE]
    if int(frame.min()) != 0 or int(frame.max()) == 0:
        return None
    pairs = ((frame[:, 1:], frame[:, :-1]), (frame[1:], frame[:-1]))
    equal = np.concatenate([(a == b).ravel() for a, b in pairs])
    touches = np.concatenate([((a != 0) | (b != 0)).ravel() for a, b in pairs])
    counts = _value_counts(frame)
    shares = counts / frame.size
    chance = float(np.sum(shares * shares))  # < 1: there are at least two values
    observed = float(equal.mean())
    kappa = (observed - chance) / (1.0 - chance)
    on_objects = float(equal[touches].mean())
    if kappa < MIN_KAPPA or on_objects < MIN_OBJECT_AGREEMENT:
        return None
    return (
        f"integer image of {counts.size} values on a 0 background, piecewise constant "
        f"({100 * observed:.0f} % of neighbours equal, kappa {kappa:.2f}) -> labels"
    )


def _value_counts(frame: np.ndarray) -> np.ndarray:
    """How many pixels have each value present (non-negative integers)."""
    if int(frame.max()) < 2**20:
        counts = np.bincount(frame.ravel().astype(np.int64, copy=False))
        return counts[counts > 0]
    return np.unique(frame, return_counts=True)[1]


def labels_layout(
    shape: tuple[int, ...], axes: str, dtype: Any, *, declared: str, reason: str, where: str
) -> Layout:
    """The layout of a labels file: ``(M, N)`` or ``(T, M, N)`` integers, ``kind="labels"``.

    Parameters
    ----------
    shape : tuple of int
        The stored shape.
    axes : str
        The stored axes (tifffile's letters, e.g. ``"TYX"``).
    dtype : numpy dtype
        The stored dtype (an integer type).
    declared : str
        The kind the file's metadata declares (``""``: none).
    reason : str
        Why the file is read as labels.
    where : str
        The file, for messages.

    Raises
    ------
    FormatError
        Not integers, or not one plane per frame.
    """
    if not np.issubdtype(np.dtype(dtype), np.integer):
        raise FormatError(f"{where}: a labels image must hold integers; got dtype={dtype}")
    try:
        base = plan_layout(shape, axes, dtype, declared=declared, kind="raw-mosaic", where=where)
    except FormatError as error:
        raise FormatError(
            f"{where}: a labels image must have shape (M, N) or (T, M, N); got shape={shape}"
        ) from error
    return dataclasses.replace(base, kind=LABELS_KIND, reason=reason)


def without_labels(
    paths: Sequence[str | os.PathLike], *, kind: str | None = None
) -> list[str | os.PathLike]:
    """The inputs that are not labels images; logs one warning per labels image it skips.

    A labels image (``inspect_file(path).kind == "labels"``, docs/formats.md) is what
    ``dmqpm simulate`` and ``dmqpm segment`` write beside the images (``*_labels.tif``), so
    that ``dmqpm segment DIR/*.tif`` segments the images only (this is the core of its input
    handling, called by :func:`napari_dmqpm.inference.batch.iter_segment_files`). With an
    explicit ``kind`` only files tagged by napari-dmqpm's writers are skipped (the user's
    kind wins over the heuristic). An input that cannot be inspected is kept: its
    segmentation says why.

    Parameters
    ----------
    paths : sequence of str or path-like
        Input files.
    kind : str, optional
        The ``kind`` the inputs are read as (``read_options["kind"]``).

    Returns
    -------
    list
        ``paths`` without the labels images, in their order.

    Raises
    ------
    ValueError
        Every input is a labels image.
    """
    from napari_dmqpm.io.detect import inspect_file  # detect imports this module

    kept = []
    for path in paths:
        try:
            info = inspect_file(path)
        except (OSError, ValueError):  # FormatError too: segment_file reports it
            kept.append(path)
            continue
        if info.kind == LABELS_KIND and (kind is None or info.reason == TAGGED_REASON):
            _LOG.warning("%s: is a labels image, skipped (%s)", path, info.reason)
        else:
            kept.append(path)
    if paths and not kept:
        raise ValueError(
            f"nothing to segment: all {len(paths)} inputs are labels images (e.g. {paths[0]})"
        )
    return kept
