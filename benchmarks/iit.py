"""Classical QPM baseline: improved iterative thresholding (IIT) of Vicar, Chmelik and Kolar.

Re-implemented with scipy / scikit-image from the method's description in T. Vicar,
J. Chmelik, R. Kolar, "Cell segmentation in quantitative phase images with improved iterative
thresholding method" [1]_ (the IIT of the comparison in [2]_) and from the authors' public
example scripts (github.com/tomasvicar/Improved_QPI_Iterative_Thresholding, BSD-3-Clause),
which give the two published parameter sets. No code is copied from there.

The method has four steps (phase map ``phi`` in radians, pixels of ``reference_pixel_size_um``):

1. **LoG sharpening.** ``s = phi + weight * (-sigma**gamma * LoG_sigma * phi)``: the
   scale-normalised Laplacian of Gaussian raises the centre of each blob and lowers the valleys
   between blobs, so touching cells separate at a lower threshold ([1]_, "LoG image
   enhancement"). Mirror-symmetric borders, kernel cut at 3 sigma, as in the authors' code.
2. **Foreground** (for seeds): ``s > background``; 4-connected objects whose *dry mass*
   ``sum(phi + background)`` over the object is below ``min_mass`` removed; background holes
   under ``min_hole_area`` pixels filled.
3. **Iterative thresholding** (Loewke et al. [3]_, as modified in [1]_). Thresholds
   ``t = background, background + step, ...`` up to the maximum of ``s``. Every object of the
   foreground starts as a region. At each ``t`` the objects of ``s > t`` with dry mass
   ``>= min_mass`` ("heavy") are found; a region holding two or more of them is replaced by
   them (each becomes a region; the region's other pixels are dropped). Objects lighter than
   ``min_mass`` (a nucleolus, a bright granule, noise) never split a cell. Read from high to
   low thresholds it is the same rule: when two heavy parts merge as the threshold descends
   they are kept apart; a light part that merges into a heavy one is absorbed. The regions
   left at the end are the seeds, each with its extent at the threshold where it was created.
4. **Distance-transform splitting, then growth.** Seeds joined by a neck are split by a
   watershed of their Euclidean distance transform from its h-maxima (height ``split_h``);
   pieces lighter than ``min_mass`` are flooded by their neighbours (a seed with no heavy
   piece stays whole). The pieces then grow by a marker watershed of ``-s`` inside the final
   foreground ``phi > background`` (mass-filtered, small holes filled, as in step 2).
   Foreground objects that no seed reaches become cells of their own; cells lighter than
   ``min_mass`` (or smaller than ``min_cell_area``) are removed.

Published vs chosen
-------------------
*Published*, in the authors' example scripts (``run_example.py`` / ``run_example_dense.py``,
the same numbers in the MATLAB scripts): ``sigma``, ``weight`` (lambda), ``min_mass`` and
``h`` of each preset, fitted there by Bayesian optimisation (MATLAB ``bayesopt``) of a
SEG-like score (mean over true cells of the Dice of the predicted cell covering more than half
of it, which does not count extra fragments). The dense set was fitted on
``data_dense/img_001..005`` and tested on ``img_006..014``; the sparse set on three other maps
(``qpi1..3``) and tested on ``qpi4..18``, which holds ``qpi15``. Also from the scripts:
``background = 0.05`` pg/µm², ``min_hole = 60`` px, the threshold step ``0.03`` pg/µm², the
sweep up to the maximum of the sharpened map, ``gamma = 2``, the LoG kernel cut at 3 sigma with
mirrored borders, the mass ``sum(phi + background)`` over 4-connected objects, regions and
holes labelled 8-connected (MATLAB ``bwlabel`` / ``bwareaopen`` defaults), and the centroid
test (:attr:`IITConfig.centroid_test`).

The published values are for maps in pg/µm² (Q-PHASE dry-mass density, pixel 0.627 µm). Here
they are in radians: ``phi = 2 pi alpha / lambda * m = 1.7400 * m`` with alpha = 0.18 µm³/pg and
lambda = 0.65 µm (``../shared/data/README.md``; :data:`PG_PER_UM2_TO_RAD`). Thresholds and
masses (sum over pixels of ``phi + background``, unit rad·px) scale by that factor; sigma,
lambda (dimensionless), gamma, h and the areas do not.

*Chosen here* (not given, or left open): ``min_cell_area_px = 0`` (off: the method filters by
mass only); in the sweep the mass is that of the 8-connected object (the authors first drop
light 4-connected pieces, then label 8-connected); the output is instance labels from
scikit-image's watershed without watershed lines (the authors return a binary mask cut by
one-pixel lines); foreground objects without a seed become cells; the sweep may be cut at
``threshold_max_rad`` (default None: the maximum, as published). Nothing was tuned on the
real images.

References
----------
.. [1] T. Vicar, J. Chmelik, R. Kolar, "Cell segmentation in quantitative phase images with
   improved iterative thresholding method" (Springer conference paper); code and data:
   github.com/tomasvicar/Improved_QPI_Iterative_Thresholding.
.. [2] T. Vicar et al., "Cell segmentation methods for label-free contrast microscopy: review
   and comprehensive comparison", BMC Bioinformatics 20, 360 (2019).
.. [3] N. O. Loewke et al., "Automated cell segmentation for quantitative phase microscopy",
   IEEE Trans. Med. Imaging 37, 929-940 (2018).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = [
    "IIT_PRESETS",
    "PG_PER_UM2_TO_RAD",
    "PUBLISHED_PIXEL_SIZE_UM",
    "IITConfig",
    "segment_iit",
    "sharpen_log",
]

#: Radians per pg/µm² of dry-mass density: 2 pi x 0.18 µm³/pg / 0.65 µm = 1.7400.
PG_PER_UM2_TO_RAD: float = 2.0 * math.pi * 0.18 / 0.65
#: Pixel size of the Q-PHASE maps the published parameters were fitted on (ImageJ tags).
PUBLISHED_PIXEL_SIZE_UM: float = 0.627

_CROSS = ndimage.generate_binary_structure(2, 1)  # 4-connectivity
_SQUARE = ndimage.generate_binary_structure(2, 2)  # 8-connectivity


@dataclass(frozen=True, kw_only=True)
class IITConfig:
    """Parameters of improved iterative thresholding, for a phase map in radians.

    Lengths and areas are in pixels of ``reference_pixel_size_um``; :func:`segment_iit`
    rescales them when told another pixel size. The defaults are the published dense set.

    Parameters
    ----------
    log_sigma_px : float
        Sigma of the Laplacian of Gaussian (> 0, <= 50). Published.
    log_weight : float
        Weight lambda of the LoG term added to the phase (>= 0; 0: no sharpening). Published.
    log_gamma : float
        Scale normalisation: the LoG is multiplied by ``sigma**gamma`` (>= 0). Published (2).
    background_rad : float
        Foreground threshold and first threshold of the sweep, radians (>= 0). Published
        (0.05 pg/µm²).
    threshold_step_rad : float
        Step of the threshold sweep, radians (> 0). Published (0.03 pg/µm²).
    threshold_max_rad : float or None
        Last threshold of the sweep (> ``background_rad``); None: the maximum of the sharpened
        map, as published.
    min_mass_rad_px : float
        Least dry mass, ``sum(phase + background_rad)`` in rad·px, of an object that counts:
        of a part that splits a region, of a foreground object and of a cell (>= 0). Published.
    split_h_px : float
        Height, in pixels of distance, of the distance-transform maxima that split a seed
        (> 0). Published.
    min_hole_area_px : int
        Background holes smaller than this are filled (>= 0). Published (60).
    min_cell_area_px : int
        Cells smaller than this are removed (>= 0). Chosen: 0 (off; the method uses mass).
    centroid_test : bool
        Split a region only once two of its heavy objects' rounded centroids lie on it, as
        the authors' code does (True); False: two heavy objects suffice.
    reference_pixel_size_um : float
        The pixel size the pixel-valued parameters hold for (> 0). 0.627 µm, the Q-PHASE maps.

    Examples
    --------
    >>> IITConfig(split_h_px=2.0).split_h_px
    2.0
    """

    log_sigma_px: float = 2.08
    log_weight: float = 5.087
    log_gamma: float = 2.0
    background_rad: float = 0.05 * PG_PER_UM2_TO_RAD
    threshold_step_rad: float = 0.03 * PG_PER_UM2_TO_RAD
    threshold_max_rad: float | None = None
    min_mass_rad_px: float = 79.68 * PG_PER_UM2_TO_RAD
    split_h_px: float = 0.964
    min_hole_area_px: int = 60
    min_cell_area_px: int = 0
    centroid_test: bool = True
    reference_pixel_size_um: float = PUBLISHED_PIXEL_SIZE_UM

    def __post_init__(self) -> None:
        floats = (
            "log_sigma_px",
            "log_weight",
            "log_gamma",
            "background_rad",
            "threshold_step_rad",
            "min_mass_rad_px",
            "split_h_px",
            "reference_pixel_size_um",
        )
        for name in floats:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number; got {name}={value!r}")
            if not math.isfinite(value):
                raise ValueError(f"{name} must be finite; got {name}={value!r}")
        if not 0.0 < self.log_sigma_px <= 50.0:
            raise ValueError(f"log_sigma_px must be in (0, 50]; got {self.log_sigma_px!r}")
        for name in ("log_weight", "log_gamma", "background_rad", "min_mass_rad_px"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0; got {name}={getattr(self, name)!r}")
        for name in ("threshold_step_rad", "split_h_px", "reference_pixel_size_um"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0; got {name}={getattr(self, name)!r}")
        top = self.threshold_max_rad
        if top is not None and (
            isinstance(top, bool)
            or not isinstance(top, int | float)
            or not math.isfinite(top)
            or top <= self.background_rad
        ):
            raise ValueError(
                "threshold_max_rad must be None or a finite number > background_rad "
                f"({self.background_rad!r}); got threshold_max_rad={top!r}"
            )
        for name in ("min_hole_area_px", "min_cell_area_px"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0; got {name}={value!r}")
        if not isinstance(self.centroid_test, bool):
            raise ValueError(f"centroid_test must be True or False; got {self.centroid_test!r}")

    def to_dict(self) -> dict:
        """The parameters as a JSON-native dict."""
        return dataclasses.asdict(self)


def _published(sigma: float, weight: float, min_mass_pg: float, h: float) -> IITConfig:
    """A preset from the published values (mass in the pg/µm² x px of the Q-PHASE maps)."""
    return IITConfig(
        log_sigma_px=sigma,
        log_weight=weight,
        log_gamma=2.0,
        background_rad=0.05 * PG_PER_UM2_TO_RAD,
        threshold_step_rad=0.03 * PG_PER_UM2_TO_RAD,
        threshold_max_rad=None,
        min_mass_rad_px=min_mass_pg * PG_PER_UM2_TO_RAD,
        split_h_px=h,
        min_hole_area_px=60,
        min_cell_area_px=0,
        centroid_test=True,
        reference_pixel_size_um=PUBLISHED_PIXEL_SIZE_UM,
    )


#: The two published parameter sets, converted to radians (see the module docstring):
#: "dense" (confluent fields, fitted on ``data_dense``) and "sparse" (fields like ``qpi15``).
IIT_PRESETS: dict[str, IITConfig] = {
    "dense": _published(2.08, 5.087, 79.68, 0.964),
    "sparse": _published(2.0376, 8.118, 118.35, 2.7024),
}


def sharpen_log(phase: np.ndarray, sigma: float, weight: float, gamma: float = 2.0) -> np.ndarray:
    """The LoG-sharpened map ``phase - weight * sigma**gamma * LoG_sigma(phase)`` (float64).

    Examples
    --------
    >>> yy, xx = np.mgrid[:33, :33]
    >>> blob = np.exp(-((yy - 16.0) ** 2 + (xx - 16.0) ** 2) / 32.0)
    >>> bool(sharpen_log(blob, 2.0, 5.0)[16, 16] > blob[16, 16])
    True
    """
    phase = np.asarray(phase, dtype=np.float64)
    if weight == 0:
        return phase.copy()
    laplace = ndimage.gaussian_laplace(phase, sigma, mode="reflect", truncate=3.0)
    return phase - weight * sigma**gamma * laplace


def _masses(labels: np.ndarray, weights: np.ndarray, n: int) -> np.ndarray:
    """Dry mass (sum of ``weights``) of labels 0..n."""
    return np.bincount(labels.ravel(), weights=weights.ravel(), minlength=n + 1)


def _heavy_objects(mask: np.ndarray, weights: np.ndarray, min_mass: float) -> np.ndarray:
    """4-connected objects of ``mask`` with mass >= ``min_mass``, labelled 1..n (int32)."""
    objects, n = ndimage.label(mask, structure=_CROSS)
    if n == 0:
        return objects
    keep = _masses(objects, weights, n) >= min_mass
    keep[0] = False
    lookup = np.zeros(n + 1, dtype=np.int32)
    lookup[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    return lookup[objects]


def _foreground(
    image: np.ndarray, weights: np.ndarray, background: float, min_mass: float, min_hole: int
) -> np.ndarray:
    """Objects of ``image > background`` heavy enough, small holes filled, labelled (int32)."""
    mask = _heavy_objects(image > background, weights, min_mass) > 0
    if min_hole > 0:
        holes, n = ndimage.label(~mask, structure=_SQUARE)
        small = np.bincount(holes.ravel(), minlength=n + 1) < min_hole
        small[0] = False
        mask |= small[holes]
    objects, _ = ndimage.label(mask, structure=_SQUARE)
    return objects


def _shift(box: tuple[slice, slice], by: tuple[slice, slice]) -> tuple[slice, slice]:
    """``box`` (slices inside the crop ``by``) in the coordinates of the whole image."""
    return tuple(slice(o.start + s.start, o.start + s.stop) for o, s in zip(by, box, strict=True))


def _threshold_sweep(
    sharpened: np.ndarray,
    weights: np.ndarray,
    regions: np.ndarray,
    thresholds: np.ndarray,
    min_mass: float,
    *,
    centroid_test: bool = True,
) -> np.ndarray:
    """Split regions at rising thresholds into their parts of mass >= ``min_mass``.

    ``regions`` (int, 0 = none) are the objects at the lowest threshold. At each threshold
    a region that holds two or more heavy objects of ``sharpened > t`` is replaced by them
    (with ``centroid_test``: only once two of their rounded centroids lie on the region); the
    regions left at the end (relabelled 1..n, uint32) are returned, each with its extent at
    the threshold where it was created.

    Regions never interact, so each is followed on its own, in the bounding box of the heavy
    objects it still holds (light objects of ``sharpened > t`` hold only light objects at
    higher thresholds, so they are forgotten): the result of sweeping the whole image at
    every threshold, in a fraction of the time.
    """
    out = np.zeros(regions.shape, dtype=np.uint32)
    stack = [
        (box, regions[box] == index + 1, 0)
        for index, box in enumerate(ndimage.find_objects(regions))
        if box is not None
    ]
    next_id = 1
    while stack:
        box, created, i = stack.pop()
        crop, current = box, created
        children = []
        while i < thresholds.size:
            objects, n = ndimage.label(current & (sharpened[crop] > thresholds[i]), _SQUARE)
            i += 1
            if n == 0:
                break
            heavy = np.flatnonzero(_masses(objects, weights[crop], n)[1:] >= min_mass) + 1
            if heavy.size == 0:
                break
            slices = ndimage.find_objects(objects)
            if heavy.size >= 2 and (
                not centroid_test or _centroids_on(created, box, objects, crop, heavy) >= 2
            ):
                children = [
                    (_shift(slices[k - 1], crop), objects[slices[k - 1]] == k, i) for k in heavy
                ]
                break
            # no split: keep following the heavy objects, in their bounding box
            sub = _union_box([slices[k - 1] for k in heavy])
            keep = np.zeros(n + 1, dtype=bool)
            keep[heavy] = True
            crop, current = _shift(sub, crop), keep[objects[sub]]
        if children:
            stack.extend(children)
        else:
            out[box][created] = next_id
            next_id += 1
    return out


def _union_box(boxes: list[tuple[slice, slice]]) -> tuple[slice, slice]:
    """The bounding box of several boxes."""
    return tuple(
        slice(min(b[d].start for b in boxes), max(b[d].stop for b in boxes)) for d in (0, 1)
    )


def _centroids_on(
    created: np.ndarray,
    box: tuple[slice, slice],
    objects: np.ndarray,
    crop: tuple[slice, slice],
    heavy: np.ndarray,
) -> int:
    """How many of the heavy objects' rounded centroids lie on the region ``created``."""
    centres = np.asarray(ndimage.center_of_mass(objects > 0, objects, heavy), dtype=np.float64)
    rows = np.floor(centres[:, 0] + 0.5).astype(np.int64) + crop[0].start - box[0].start
    cols = np.floor(centres[:, 1] + 0.5).astype(np.int64) + crop[1].start - box[1].start
    inside = (rows >= 0) & (rows < created.shape[0]) & (cols >= 0) & (cols < created.shape[1])
    return int(np.count_nonzero(created[rows[inside], cols[inside]]))


def _split_seeds(seeds: np.ndarray, weights: np.ndarray, min_mass: float, h: float) -> np.ndarray:
    """Split seeds at necks by a distance-transform watershed from its h-maxima.

    Pieces lighter than ``min_mass`` are flooded by their heavier neighbours; a seed with
    no heavy piece stays whole.
    """
    from skimage.morphology import h_maxima
    from skimage.segmentation import watershed

    inside = seeds > 0
    if not inside.any():
        return seeds
    distance = ndimage.distance_transform_edt(inside)
    peaks, _ = ndimage.label(h_maxima(distance, h).astype(bool) & inside, structure=_SQUARE)
    pieces = watershed(-distance, peaks, mask=inside, connectivity=2)  # stays in a seed
    n = int(pieces.max())
    heavy = _masses(pieces, weights, n) >= min_mass
    heavy[0] = False
    markers = np.where(heavy[pieces], pieces, 0)
    kept = np.zeros(int(seeds.max()) + 1, dtype=bool)
    kept[seeds[markers > 0]] = True
    whole = inside & ~kept[seeds]
    markers[whole] = seeds[whole] + n
    return _consecutive(watershed(-distance, markers, mask=inside, connectivity=2))


def _consecutive(labels: np.ndarray) -> np.ndarray:
    """Labels renumbered 1..n in order of their first value (0 stays 0), uint32."""
    values, inverse = np.unique(labels, return_inverse=True)
    if values[0] != 0:
        inverse = inverse + 1
    return inverse.reshape(labels.shape).astype(np.uint32)


def segment_iit(
    phase_rad: np.ndarray, *, config: IITConfig, pixel_size_um: float | None = None
) -> np.ndarray:
    """Segment cells in a phase map by improved iterative thresholding (IIT).

    Parameters
    ----------
    phase_rad : ndarray of shape (M, N)
        Phase in radians, background near 0, cells positive (thresholds are absolute: a
        Q-PHASE map in pg/µm² must be multiplied by :data:`PG_PER_UM2_TO_RAD` first). Not
        modified.
    config : IITConfig
        Parameters, e.g. ``IIT_PRESETS["dense"]`` or ``IIT_PRESETS["sparse"]``.
    pixel_size_um : float, optional
        Pixel size of ``phase_rad``. When given, the pixel-valued parameters are rescaled
        from ``config.reference_pixel_size_um`` (lengths by the ratio, areas and masses by
        its square); None uses them as they are.

    Returns
    -------
    ndarray of shape (M, N), uint32
        0 background, cells 1..n.

    Examples
    --------
    >>> yy, xx = np.mgrid[:96, :96]
    >>> blob = lambda r, c: 3.0 * np.exp(-((yy - r) ** 2 + (xx - c) ** 2) / 128.0)
    >>> phase = blob(48, 38) + blob(48, 58)
    >>> int(segment_iit(phase, config=IIT_PRESETS["sparse"]).max())
    2
    """
    phase = np.asarray(phase_rad)
    if phase.ndim != 2:
        raise ValueError(f"phase_rad must have shape (M, N); got phase_rad.shape={phase.shape}")
    if not np.issubdtype(phase.dtype, np.number) or np.iscomplexobj(phase):
        raise ValueError(f"phase_rad must hold real numbers; got dtype {phase.dtype}")
    phase = phase.astype(np.float64)
    if not np.all(np.isfinite(phase)):
        raise ValueError("phase_rad must be finite; got NaN or Inf pixels")
    scale = 1.0
    if pixel_size_um is not None:
        if not (isinstance(pixel_size_um, int | float) and math.isfinite(pixel_size_um)):
            raise ValueError(f"pixel_size_um must be a number or None; got {pixel_size_um!r}")
        if pixel_size_um <= 0:
            raise ValueError(f"pixel_size_um must be > 0; got pixel_size_um={pixel_size_um!r}")
        scale = config.reference_pixel_size_um / pixel_size_um
    sigma = config.log_sigma_px * scale
    h = config.split_h_px * scale
    min_mass = config.min_mass_rad_px * scale**2
    min_hole = round(config.min_hole_area_px * scale**2)
    min_area = round(config.min_cell_area_px * scale**2)
    background = config.background_rad

    sharpened = sharpen_log(phase, sigma, config.log_weight, config.log_gamma)
    weights = phase + background  # the published mass: sum of (phase + background)
    regions = _foreground(sharpened, weights, background, min_mass, min_hole)
    if regions.max() == 0:
        return np.zeros(phase.shape, dtype=np.uint32)
    top = float(sharpened.max()) if config.threshold_max_rad is None else config.threshold_max_rad
    thresholds = np.arange(background, top, config.threshold_step_rad)
    seeds = _threshold_sweep(
        sharpened, weights, regions, thresholds, min_mass, centroid_test=config.centroid_test
    )
    seeds = _split_seeds(seeds, weights, min_mass, h)

    from skimage.segmentation import watershed

    foreground = _foreground(phase, weights, background, min_mass, min_hole) > 0
    cells = watershed(-sharpened, seeds.astype(np.int64), mask=foreground)
    unseeded, _ = ndimage.label(foreground & (cells == 0), structure=_SQUARE)
    cells = np.where(unseeded > 0, unseeded + int(cells.max()), cells)
    n = int(cells.max())
    keep = _masses(cells, weights, n) >= min_mass
    keep &= np.bincount(cells.ravel(), minlength=n + 1) >= max(min_area, 1)
    keep[0] = False
    return _consecutive(np.where(keep[cells], cells, 0))
