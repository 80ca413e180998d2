"""Training targets from instance labels: a three-class map and a normalized distance map.

The three classes are background (0), cell interior (1) and cell boundary (2). Boundary pixels
are the pixels of a cell that lie within ``boundary_width`` pixels of any pixel with another
value, the background or *another cell*: two touching cells are therefore separated by a band of
boundary class (``2 * boundary_width`` pixels wide), which is what lets the post-processing split
them. The border
of the image is not a cell border (a cell cut by the field of view continues outside it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

#: Class indices of the three-class target.
BACKGROUND, INTERIOR, BOUNDARY = 0, 1, 2
N_CLASSES = 3


@dataclass(frozen=True, kw_only=True)
class TargetConfig:
    """How instance labels become training targets.

    Parameters
    ----------
    boundary_width : int
        Width in pixels of the boundary class inside each cell (1 to 8). Touching cells are
        separated by twice this width.
    distance : bool
        Whether to compute the normalized distance map (for a distance head).
    """

    boundary_width: int = 2
    distance: bool = True

    def __post_init__(self) -> None:
        if not 1 <= int(self.boundary_width) <= 8 or isinstance(self.boundary_width, bool):
            raise ValueError(
                f"boundary_width must be an integer in [1, 8]; got {self.boundary_width!r}"
            )


@dataclass(frozen=True)
class Targets:
    """Targets of one image.

    Attributes
    ----------
    classes : ndarray of shape (M, N), uint8
        0 background, 1 interior, 2 boundary.
    distance : ndarray of shape (M, N), float32, or None
        Per-cell Euclidean distance to the cell border divided by the cell's maximum, in (0, 1]
        inside cells (exactly 1 at each cell's innermost pixel), 0 on the background.
    """

    classes: np.ndarray
    distance: np.ndarray | None


def _check_labels(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must have shape (M, N); got labels.shape={labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be an integer array; got labels.dtype={labels.dtype}")
    return labels


def _disk(radius: int) -> np.ndarray:
    rows, cols = np.ogrid[-radius : radius + 1, -radius : radius + 1]
    return rows**2 + cols**2 <= radius**2


def boundary_mask(labels: np.ndarray, *, width: int = 2) -> np.ndarray:
    """Pixels of cells within ``width`` pixels of a pixel with another label.

    Parameters
    ----------
    labels : ndarray of shape (M, N), integer
        Instance labels, 0 is background.
    width : int
        Distance in pixels (a disk of this radius; ``width=1`` is 4-connectivity).

    Returns
    -------
    ndarray of shape (M, N), bool
        True on boundary pixels. Borders shared by touching cells are included on both sides.

    Examples
    --------
    >>> labels = np.zeros((5, 8), dtype=np.int32)
    >>> labels[1:4, 1:4], labels[1:4, 4:7] = 1, 2
    >>> boundary_mask(labels, width=1)[2].astype(int)
    array([0, 1, 0, 1, 1, 0, 1, 0])
    """
    labels = _check_labels(labels)
    footprint = _disk(int(width))
    highest = ndimage.maximum_filter(labels, footprint=footprint, mode="nearest")
    lowest = ndimage.minimum_filter(labels, footprint=footprint, mode="nearest")
    return (labels > 0) & (highest != lowest)


def normalized_distance(labels: np.ndarray) -> np.ndarray:
    """Per-cell distance to the cell border divided by that cell's maximum distance.

    Parameters
    ----------
    labels : ndarray of shape (M, N), integer
        Instance labels, 0 is background.

    Returns
    -------
    ndarray of shape (M, N), float32
        In (0, 1] inside every cell, with the value 1 reached in every cell; 0 on the background.
        A pixel on the cell's edge has ``1 / max``, where ``max`` is the cell's largest
        distance in pixels.
    """
    labels = _check_labels(labels)
    edges = boundary_mask(labels, width=1)
    distance = ndimage.distance_transform_edt((labels > 0) & ~edges).astype(np.float32)
    distance[labels > 0] += 1.0
    values, compact = np.unique(labels, return_inverse=True)
    compact = compact.reshape(labels.shape)
    maxima = np.asarray(
        ndimage.maximum(distance, compact, index=np.arange(values.size)), dtype=np.float32
    )
    maxima[maxima <= 0] = 1.0
    return (distance / maxima[compact]).astype(np.float32)


def make_targets(labels: np.ndarray, *, config: TargetConfig | None = None) -> Targets:
    """Three-class map (and, if configured, the distance map) from instance labels.

    Parameters
    ----------
    labels : ndarray of shape (M, N), integer
        Instance labels, 0 is background; not modified.
    config : TargetConfig, optional
        Boundary width and whether to compute the distance map (defaults: 2 px, yes).

    Returns
    -------
    Targets

    Examples
    --------
    >>> labels = np.zeros((6, 6), dtype=np.int32)
    >>> labels[1:5, 1:5] = 7
    >>> make_targets(labels, config=TargetConfig(boundary_width=1)).classes
    array([[0, 0, 0, 0, 0, 0],
           [0, 2, 2, 2, 2, 0],
           [0, 2, 1, 1, 2, 0],
           [0, 2, 1, 1, 2, 0],
           [0, 2, 2, 2, 2, 0],
           [0, 0, 0, 0, 0, 0]], dtype=uint8)
    """
    config = config or TargetConfig()
    labels = _check_labels(labels)
    classes = np.zeros(labels.shape, dtype=np.uint8)
    classes[labels > 0] = INTERIOR
    classes[boundary_mask(labels, width=config.boundary_width)] = BOUNDARY
    distance = normalized_distance(labels) if config.distance else None
    return Targets(classes=classes, distance=distance)
