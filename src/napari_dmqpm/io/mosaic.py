"""Demosaicing of raw polarization-camera frames (Sony IMX250MZR-type 2x2 super-pixels).

A division-of-focal-plane polarization sensor puts a wire-grid polarizer over each pixel;
a 2x2 super-pixel holds the four angles. On the IMX250MZR (FLIR Blackfly S BFS-U3-51S5P,
Lucid Phoenix PHX050S-P, ...) the pattern is::

           col 0   col 1
    row 0   90°     45°
    row 1  135°      0°

:func:`demosaic` turns such a mosaic into the four angle images in the order of
``ANGLES_DEG`` (0, 45, 90, 135 degrees).

References
----------
.. [1] Sony Semiconductor Solutions, "IMX250MZR polarization image sensor" (2018).
.. [2] R. Maeda, polanalyser, github.com/elerac/polanalyser (the same layout convention).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

__all__ = ["IMX250MZR_PATTERN", "demosaic", "mosaic_offsets"]

#: Polarizer angle (degrees) of each pixel of a 2x2 super-pixel, ``pattern[row][col]``.
IMX250MZR_PATTERN: tuple[tuple[int, int], tuple[int, int]] = ((90, 45), (135, 0))

DemosaicMethod = Literal["superpixel", "interpolate"]
DEMOSAIC_METHODS: tuple[str, ...] = ("superpixel", "interpolate")


def mosaic_offsets(
    pattern: tuple[tuple[int, int], tuple[int, int]] = IMX250MZR_PATTERN,
) -> tuple[tuple[int, int], ...]:
    """(row, column) of each angle of ``ANGLES_DEG`` inside a 2x2 super-pixel.

    Parameters
    ----------
    pattern : 2x2 nested tuple of int, optional
        Polarizer angle in degrees of each pixel of the super-pixel, ``pattern[row][col]``.

    Returns
    -------
    tuple of 4 (row, col) pairs
        Offsets of the 0, 45, 90 and 135 degree pixels.

    Examples
    --------
    >>> mosaic_offsets()
    ((1, 1), (0, 1), (0, 0), (1, 0))
    """
    square = len(pattern) == 2 and all(len(row) == 2 for row in pattern)
    flat = [int(angle) for row in pattern for angle in row] if square else []
    if sorted(flat) != [0, 45, 90, 135]:
        raise ValueError(
            f"pattern must be a 2x2 arrangement of the angles 0, 45, 90, 135; got {pattern!r}"
        )
    index = {angle: divmod(position, 2) for position, angle in enumerate(flat)}
    return tuple(index[angle] for angle in (0, 45, 90, 135))


def _check_raw(raw: np.ndarray, origin: tuple[int, ...]) -> np.ndarray:
    raw = np.asarray(raw)
    if raw.ndim < 2:
        raise ValueError(f"raw must have shape (..., M, N); got raw.shape={raw.shape}")
    if np.iscomplexobj(raw) or not (
        np.issubdtype(raw.dtype, np.integer) or np.issubdtype(raw.dtype, np.floating)
    ):
        raise ValueError(f"raw must hold real numbers; got raw.dtype={raw.dtype}")
    if len(origin) != 2 or any(o not in (0, 1) for o in origin):
        raise ValueError(f"origin must be a (row, col) pair of 0 or 1; got origin={origin!r}")
    n_rows = (raw.shape[-2] - origin[0]) // 2 * 2
    n_cols = (raw.shape[-1] - origin[1]) // 2 * 2
    if n_rows < 2 or n_cols < 2:
        raise ValueError(
            f"raw must hold at least one full 2x2 super-pixel after origin={origin}; "
            f"got raw.shape={raw.shape}"
        )
    return raw[..., origin[0] : origin[0] + n_rows, origin[1] : origin[1] + n_cols]


def _upsample_axis(quarter: np.ndarray, offset: int, axis: int) -> np.ndarray:
    """Linear interpolation to twice the length along ``axis``.

    Sample ``k`` of ``quarter`` sits at output index ``2 k + offset``; the other outputs
    are the mean of their two neighbours, and the half pixel beyond the last sample on
    the edge repeats it (constant extrapolation).
    """
    moved = np.moveaxis(quarter, axis, -1)
    n = moved.shape[-1]
    out = np.empty((*moved.shape[:-1], 2 * n), dtype=np.float32)
    out[..., offset::2] = moved
    between = 0.5 * (moved[..., :-1] + moved[..., 1:])
    if offset == 0:  # odd outputs 1, 3, ...: between k and k + 1; the last one repeats
        out[..., 1:-1:2] = between
        out[..., -1] = moved[..., -1]
    else:  # even outputs 0, 2, ...: between k - 1 and k; the first one repeats
        out[..., 2::2] = between
        out[..., 0] = moved[..., 0]
    return np.moveaxis(out, -1, axis)


def demosaic(
    raw: np.ndarray,
    *,
    origin: tuple[int, int] = (0, 0),
    method: DemosaicMethod = "superpixel",
    pattern: tuple[tuple[int, int], tuple[int, int]] = IMX250MZR_PATTERN,
) -> np.ndarray:
    """Split a raw polarization mosaic into the four angle images.

    Parameters
    ----------
    raw : ndarray of shape (M, N) or (T, M, N), any real dtype
        Raw sensor frame(s). Not modified.
    origin : (int, int), optional
        ``(row, col)`` where the first full super-pixel starts, each 0 or 1: ``(0, 1)``
        means column 0 is a stray column (a cropped region of interest) and is dropped.
    method : {"superpixel", "interpolate"}, optional
        "superpixel" (default) takes each 2x2 super-pixel as one output pixel, halving
        both dimensions (pixel size doubles). "interpolate" keeps full resolution: each
        angle is interpolated bilinearly from its own pixels at their true sub-pixel
        positions, so that all four images refer to the same points.
    pattern : 2x2 nested tuple of int, optional
        Polarizer angles of the super-pixel, ``pattern[row][col]`` (IMX250MZR by default).

    Returns
    -------
    ndarray of shape (4, M', N') or (T, 4, M', N'), float32
        Intensities at 0, 45, 90 and 135 degrees. The mosaic is first cut to
        ``raw[..., r0:, c0:]`` with ``(r0, c0) = origin``, then an odd last row or column
        is dropped; ``M' = (M - r0) // 2`` for "superpixel" and twice that for
        "interpolate" (likewise ``N'``).

    Examples
    --------
    >>> import numpy as np
    >>> raw = np.array([[90, 45], [135, 0]], dtype=np.uint8)  # one super-pixel
    >>> demosaic(raw).ravel().tolist()
    [0.0, 45.0, 90.0, 135.0]
    >>> demosaic(np.tile(raw, (2, 2)), method="interpolate").shape
    (4, 4, 4)
    """
    if method not in DEMOSAIC_METHODS:
        raise ValueError(f"method must be one of {DEMOSAIC_METHODS}; got method={method!r}")
    cropped = _check_raw(raw, tuple(origin))
    offsets = mosaic_offsets(pattern)
    quarters = [cropped[..., r::2, c::2] for r, c in offsets]
    if method == "superpixel":
        return np.stack(quarters, axis=-3).astype(np.float32, copy=False)
    channels = []
    for (r, c), quarter in zip(offsets, quarters, strict=True):
        rows = _upsample_axis(quarter.astype(np.float32, copy=False), r, axis=-2)
        channels.append(_upsample_axis(rows, c, axis=-1))
    return np.stack(channels, axis=-3)
