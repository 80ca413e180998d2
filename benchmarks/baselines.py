"""Classical baseline for the results table: Otsu threshold + distance-transform watershed.

The phase map alone is segmented the way a QPM user without a network would do it
(scikit-image):

1. smooth the phase with a Gaussian of ``smooth_sigma_px``;
2. foreground = smoothed phase above ``threshold_factor`` x the Otsu threshold, holes filled,
   objects smaller than ``min_cell_area_px`` removed;
3. seeds = h-maxima (height ``seed_h_px``) of the Euclidean distance transform of the
   foreground, smoothed by ``seed_sigma_px``;
4. watershed of the negated distance from the seeds inside the foreground; foreground
   regions without a seed become cells; cells smaller than ``min_cell_area_px`` removed.

:func:`tune_otsu_watershed` picks the parameters on simulated fields only (never on the real
images it is later scored on): first the foreground parameters by foreground Dice, then the
seed parameters by F1 at IoU 0.5 with that foreground.

References
----------
.. [1] N. Otsu, "A threshold selection method from gray-level histograms", IEEE Trans. Syst.
   Man Cybern. 9, 62-66 (1979).
.. [2] P. Soille, *Morphological Image Analysis*, 2nd ed., Springer (2003): distance
   transform, h-maxima and the watershed.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = [
    "FOREGROUND_GRID",
    "SEED_GRID",
    "OtsuWatershedConfig",
    "segment_otsu_watershed",
    "tune_otsu_watershed",
]


@dataclass(frozen=True, kw_only=True)
class OtsuWatershedConfig:
    """Parameters of the Otsu + watershed baseline (pixels of the input image).

    Parameters
    ----------
    smooth_sigma_px : float
        Gaussian smoothing of the phase before thresholding (0: none).
    threshold_factor : float
        The foreground threshold is this times Otsu's threshold of the smoothed phase (> 0).
    seed_sigma_px : float
        Gaussian smoothing of the distance transform before finding seeds (0: none).
    seed_h_px : float
        Minimum dynamic, in pixels of distance, of a distance maximum that seeds a cell (> 0).
    min_cell_area_px : int
        Smaller foreground objects and cells are removed.

    Examples
    --------
    >>> OtsuWatershedConfig(seed_h_px=3.0).seed_h_px
    3.0
    """

    smooth_sigma_px: float = 1.0
    threshold_factor: float = 1.0
    seed_sigma_px: float = 1.0
    seed_h_px: float = 2.0
    min_cell_area_px: int = 30

    def __post_init__(self) -> None:
        for name in ("smooth_sigma_px", "seed_sigma_px"):
            if not 0.0 <= getattr(self, name) <= 50.0:
                raise ValueError(f"{name} must be in [0, 50]; got {name}={getattr(self, name)!r}")
        for name in ("threshold_factor", "seed_h_px"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0; got {name}={getattr(self, name)!r}")
        if not isinstance(self.min_cell_area_px, int) or self.min_cell_area_px < 0:
            raise ValueError(
                f"min_cell_area_px must be an integer >= 0; got {self.min_cell_area_px!r}"
            )

    def to_dict(self) -> dict:
        """The parameters as a JSON-native dict."""
        return dataclasses.asdict(self)


def _smooth(image: np.ndarray, sigma: float) -> np.ndarray:
    return ndimage.gaussian_filter(image, sigma) if sigma > 0 else image


def otsu_foreground(phase: np.ndarray, config: OtsuWatershedConfig) -> np.ndarray:
    """Boolean foreground (M, N): smoothed phase above the scaled Otsu threshold, holes filled."""
    from skimage.filters import threshold_otsu

    smoothed = _smooth(np.asarray(phase, dtype=np.float32), config.smooth_sigma_px)
    if float(smoothed.max()) <= float(smoothed.min()):
        return np.zeros(smoothed.shape, dtype=bool)
    mask = smoothed > config.threshold_factor * threshold_otsu(smoothed)
    objects, _ = ndimage.label(ndimage.binary_fill_holes(mask))
    return _drop_small(objects, config.min_cell_area_px) > 0


def _drop_small(labels: np.ndarray, min_area: int) -> np.ndarray:
    """Labels with objects under ``min_area`` pixels set to 0, renumbered 1..n (uint32)."""
    areas = np.bincount(labels.ravel())
    keep = areas >= min_area
    keep[0] = False
    lookup = np.zeros(areas.size, dtype=np.uint32)
    lookup[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.uint32)
    return lookup[labels]


def split_foreground(foreground: np.ndarray, config: OtsuWatershedConfig) -> np.ndarray:
    """Instance labels (M, N) uint32 from a foreground by a distance-transform watershed."""
    from skimage.morphology import h_maxima
    from skimage.segmentation import watershed

    if not foreground.any():
        return np.zeros(foreground.shape, dtype=np.uint32)
    distance = _smooth(ndimage.distance_transform_edt(foreground), config.seed_sigma_px)
    seeds, _ = ndimage.label(h_maxima(distance, config.seed_h_px) & foreground)
    labels = watershed(-distance, seeds, mask=foreground)
    unseeded, _ = ndimage.label(foreground & (labels == 0))  # too small for an h-maximum
    labels = np.where(unseeded > 0, unseeded + int(labels.max()), labels)
    return _drop_small(labels, config.min_cell_area_px)


def segment_otsu_watershed(
    phase: np.ndarray, *, config: OtsuWatershedConfig | None = None
) -> np.ndarray:
    """Segment cells in a phase map with Otsu's threshold and a distance watershed.

    Parameters
    ----------
    phase : ndarray of shape (M, N)
        Phase in radians (any unit works: the threshold is relative), background near 0,
        cells positive. Not modified.
    config : OtsuWatershedConfig, optional
        Parameters (defaults when None).

    Returns
    -------
    ndarray of shape (M, N), uint32
        0 background, cells 1..n.

    Examples
    --------
    >>> phase = np.zeros((64, 64), np.float32)
    >>> phase[8:24, 8:24] = 1.0; phase[36:56, 30:50] = 1.5
    >>> int(segment_otsu_watershed(phase).max())
    2
    """
    phase = np.asarray(phase)
    if phase.ndim != 2:
        raise ValueError(f"phase must have shape (M, N); got phase.shape={phase.shape}")
    if not np.all(np.isfinite(phase)):
        raise ValueError("phase must be finite; got NaN or Inf pixels")
    config = config or OtsuWatershedConfig()
    return split_foreground(otsu_foreground(phase, config), config)


#: Foreground parameters tried by :func:`tune_otsu_watershed` (chosen by foreground Dice).
FOREGROUND_GRID: dict[str, tuple] = {
    "smooth_sigma_px": (0.0, 1.0, 2.0),
    "threshold_factor": (0.1, 0.2, 0.3, 0.5, 0.75, 1.0),
}
#: Seed parameters tried next (chosen by F1 at IoU 0.5).
SEED_GRID: dict[str, tuple] = {
    "seed_sigma_px": (0.0, 1.0),
    "seed_h_px": (0.25, 0.5, 1.0, 2.0, 4.0),
}


def _grid(grid: Mapping[str, Sequence]) -> list[dict]:
    names = list(grid)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*grid.values())]


def tune_otsu_watershed(
    samples: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    foreground_grid: Mapping[str, Sequence] | None = None,
    seed_grid: Mapping[str, Sequence] | None = None,
    base: OtsuWatershedConfig | None = None,
) -> tuple[OtsuWatershedConfig, list[tuple[dict, float]]]:
    """Pick the baseline's parameters on labelled (simulated) fields, in two stages.

    Parameters
    ----------
    samples : sequence of (phase, labels)
        Phase maps (M, N) in radians and their true instance labels (M, N).
    foreground_grid, seed_grid : mapping of parameter name to values, optional
        The candidates (:data:`FOREGROUND_GRID`, :data:`SEED_GRID` when None). Every
        foreground combination is scored by mean foreground Dice; with the best one, every
        seed combination by mean F1 at IoU 0.5.
    base : OtsuWatershedConfig, optional
        The other parameters.

    Returns
    -------
    config : OtsuWatershedConfig
        The chosen parameters.
    trials : list of (dict, float)
        Every combination tried with its score (Dice for the first stage, F1 for the second).
    """
    from napari_dmqpm.training.metrics import foreground_dice, score_image

    if not samples:
        raise ValueError("samples must hold at least one (phase, labels) pair; got none")
    config = base or OtsuWatershedConfig()
    trials: list[tuple[dict, float]] = []
    best = (-1.0, config)
    for params in _grid(FOREGROUND_GRID if foreground_grid is None else foreground_grid):
        trial = dataclasses.replace(config, **params)
        dice = float(np.mean([foreground_dice(otsu_foreground(p, trial), t) for p, t in samples]))
        trials.append((params, dice))
        best = max(best, (dice, trial), key=lambda item: item[0])
    config = best[1]
    masks = [otsu_foreground(p, config) for p, _ in samples]
    best = (-1.0, config)
    for params in _grid(SEED_GRID if seed_grid is None else seed_grid):
        trial = dataclasses.replace(config, **params)
        f1 = float(
            np.mean(
                [
                    score_image(split_foreground(m, trial), t).f1
                    for m, (_, t) in zip(masks, samples, strict=True)
                ]
            )
        )
        trials.append((params, f1))
        best = max(best, (f1, trial), key=lambda item: item[0])
    return best[1], trials
