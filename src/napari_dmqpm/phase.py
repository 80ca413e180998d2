r"""Four-step polarization phase retrieval, modulation, unwrapping and background removal.

A polarization camera behind an interferometer with orthogonally polarized object and
reference beams records, at polarizer angle ``theta``,

.. math:: I_\theta = A + B \cos(\varphi + 2\theta),

so that with ``theta`` = 0, 45, 90 and 135 degrees

.. math:: I_{135} - I_{45} = 2B \sin\varphi, \qquad I_0 - I_{90} = 2B \cos\varphi,

and the wrapped phase is ``atan2(I135 - I45, I0 - I90)``. ``B`` (the modulation) says how
much each pixel can be trusted. The wrapped phase is unwrapped and a low-order surface,
fitted robustly to the background, removes the reference wavefront (tilt, curvature).

This module needs only numpy and scikit-image; the reader, the simulator and the
widgets all call it, so a phase map means the same everywhere.

References
----------
.. [1] J. E. Millerd et al., "Pixelated phase-mask dynamic interferometer",
   Proc. SPIE 5531 (2004). doi:10.1117/12.560807
.. [2] M. A. Herraez et al., "Fast two-dimensional phase-unwrapping algorithm based on
   sorting by reliability following a noncontinuous path", Appl. Opt. 41, 7437 (2002).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from skimage.restoration import unwrap_phase

__all__ = [
    "BACKGROUND_ORDERS",
    "BackgroundFit",
    "PhaseRetrieval",
    "fit_background",
    "modulation",
    "remove_background",
    "retrieve_phase",
    "synthesize_angles",
    "unwrap",
    "wrapped_phase",
]

#: Background surfaces :func:`remove_background` can fit, by name, with their polynomial order.
BACKGROUND_ORDERS: dict[str, int] = {"offset": 0, "plane": 1, "quadratic": 2}

BackgroundName = Literal["offset", "plane", "quadratic"]

# Fit the background on at most this many pixels (a regular sub-grid): the surface is smooth,
# so a sub-grid loses nothing and keeps a 1224 x 1024 frame fast.
_MAX_FIT_POINTS = 40_000


@dataclass(frozen=True)
class PhaseRetrieval:
    """The result of :func:`retrieve_phase`.

    Attributes
    ----------
    phase : ndarray of shape (M, N), float32
        Phase in radians: unwrapped (unless ``unwrap=False``) and with the background
        surface removed, so that the background sits at 0.
    modulation : ndarray of shape (M, N), float32
        Fringe modulation ``B`` in the units of the intensities.
    wrapped : ndarray of shape (M, N), float32
        The wrapped phase in ``(-pi, pi]``, before unwrapping.
    """

    phase: np.ndarray
    modulation: np.ndarray
    wrapped: np.ndarray


@dataclass(frozen=True, eq=False)
class BackgroundFit:
    """A background surface fitted by :func:`fit_background`.

    Attributes
    ----------
    coefficients : ndarray of shape (n_terms,)
        Polynomial coefficients, radians, of the terms ``r**i * c**j`` (``i + j <= order``) of
        the normalized coordinates ``r = row / (M - 1)``, ``c = col / (N - 1)``.
    order : int
        0 (offset), 1 (plane) or 2 (quadratic).
    shape : tuple of int
        ``(M, N)``, the shape of the phase map it was fitted to.
    n_pixels : int
        Background pixels the last pass of the fit used (within the robust clip); counted
        on the fitted sample and scaled to the whole frame when the sample was thinned.
    extrapolation_matrix : ndarray of shape (n_terms, n_terms)
        ``n (X^T X)^-1`` of the ``n`` points of the last pass (design matrix ``X``): for the
        terms ``x`` of a pixel (or their mean over a region), ``sqrt(x @ extrapolation_matrix
        @ x)`` is the standard error of the fitted surface there (or of its mean over the
        region) over that of the mean of the ``n`` points: about 1 inside well spread
        background, large where the surface is extrapolated far from it.
    """

    coefficients: np.ndarray
    order: int
    shape: tuple[int, int]
    n_pixels: int
    extrapolation_matrix: np.ndarray

    def surface(self) -> np.ndarray:
        """The fitted surface on the whole frame, ndarray of shape (M, N), float32, rad."""
        n_rows, n_cols = self.shape
        rows, cols = np.ogrid[0:n_rows, 0:n_cols]
        scale_r, scale_c = max(n_rows - 1, 1), max(n_cols - 1, 1)
        fitted = _evaluate_surface(self.coefficients, rows / scale_r, cols / scale_c, self.order)
        return fitted.astype(np.float32)


def _check_angles(angles: np.ndarray) -> np.ndarray:
    angles = np.asarray(angles)
    if angles.ndim != 3 or angles.shape[0] != 4:
        raise ValueError(
            "angles must have shape (4, M, N) in the order 0, 45, 90, 135 degrees; "
            f"got angles.shape={angles.shape}"
        )
    if np.iscomplexobj(angles) or not np.issubdtype(angles.dtype, np.number):
        raise ValueError(f"angles must hold real numbers; got dtype={angles.dtype}")
    return angles.astype(np.float32, copy=False)


def _check_sign(sign: int) -> None:
    if sign not in (1, -1):
        raise ValueError(f"sign must be 1 or -1; got sign={sign!r}")


def wrapped_phase(angles: np.ndarray, *, sign: int = 1) -> np.ndarray:
    """Wrapped phase from four polarized intensities.

    Parameters
    ----------
    angles : ndarray of shape (4, M, N)
        Intensities at polarizer angles 0, 45, 90 and 135 degrees.
    sign : {1, -1}, optional
        -1 flips the phase, for set-ups whose reference beam has the other handedness.

    Returns
    -------
    ndarray of shape (M, N), float32
        ``sign * atan2(I135 - I45, I0 - I90)`` in radians, in ``(-pi, pi]``.

    Examples
    --------
    >>> import numpy as np
    >>> phi = np.full((2, 2), 0.5)
    >>> round(float(wrapped_phase(synthesize_angles(phi))[0, 0]), 6)
    0.5
    """
    angles = _check_angles(angles)
    _check_sign(sign)
    i0, i45, i90, i135 = angles
    phi = np.arctan2(i135 - i45, i0 - i90)
    return phi if sign == 1 else np.negative(phi, out=phi)


def modulation(angles: np.ndarray) -> np.ndarray:
    """Fringe modulation ``B`` of each pixel: the per-pixel quality signal.

    Parameters
    ----------
    angles : ndarray of shape (4, M, N)
        Intensities at polarizer angles 0, 45, 90 and 135 degrees.

    Returns
    -------
    ndarray of shape (M, N), float32
        ``0.5 * hypot(I0 - I90, I135 - I45)``, in the units of the intensities. Where it
        is near the noise level the phase there is unreliable. Divide by the mean
        intensity ``A = mean(angles, axis=0)`` for the fringe visibility.

    Examples
    --------
    >>> import numpy as np
    >>> a = synthesize_angles(np.zeros((2, 2)), mean=100.0, visibility=0.5)
    >>> round(float(modulation(a)[0, 0]), 4)
    50.0
    """
    angles = _check_angles(angles)
    return (0.5 * np.hypot(angles[0] - angles[2], angles[3] - angles[1])).astype(np.float32)


def unwrap(wrapped: np.ndarray) -> np.ndarray:
    """Unwrap a 2-D phase map (reliability-guided, Herraez et al. 2002).

    Parameters
    ----------
    wrapped : ndarray of shape (M, N)
        Phase in radians, wrapped into ``(-pi, pi]``.

    Returns
    -------
    ndarray of shape (M, N), float32
        The unwrapped phase, equal to ``wrapped`` plus a multiple of ``2 pi`` per pixel.

    Notes
    -----
    Two cheaper paths give the unwrapper's result without running it (issue 17):

    - a map in which no two neighbours (in a row or a column) differ by more than ``pi`` is
      returned as it is: that is exactly what the unwrapper returns for it, since every edge
      it joins pixels along then adds no multiple of ``2 pi``;
    - a finite map without residues (every 2 x 2 loop of neighbours adds up to no whole
      turn, :func:`_wrap_counts`) is unwrapped by adding up the wraps along the first row and
      then down every column: 0.02 s instead of 0.5-0.7 s on a 1024 x 1224 frame. Without
      residues the sum does not depend on the path, and the unwrapper, which also joins pixels
      edge by edge by each edge's wrap, gives the same map up to one whole multiple of
      ``2 pi`` for all pixels (which the background removal takes away). The multiple is
      chosen so that the commonest pixel, the background, keeps its wrapped value.

    Noise in dim or unmodulated regions leaves residues; such maps (all the real
    polarization-camera frames we have) go to the unwrapper.
    """
    wrapped = np.asarray(wrapped)
    if wrapped.ndim != 2:
        raise ValueError(f"wrapped must have shape (M, N); got wrapped.shape={wrapped.shape}")
    if min(wrapped.shape) < 2:
        return wrapped.astype(np.float32)
    values = wrapped.astype(np.float64, copy=False)
    if not _has_jumps(values):
        return wrapped.astype(np.float32)
    counts = _wrap_counts(values)
    if counts is not None:
        return (values + 2.0 * np.pi * counts).astype(np.float32)
    return unwrap_phase(values).astype(np.float32)


def _has_jumps(values: np.ndarray) -> bool:
    """Whether two neighbours in a row or a column differ by more than ``pi``.

    The unwrapper's own rule (its ``find_wrap``, in float64): only such an edge makes it add
    a multiple of ``2 pi``. Row by row blocks, so that a map with jumps stops early.
    """
    for start in range(0, values.shape[0], 256):
        block = values[start : start + 257]
        for axis in (0, 1):  # `any` of comparisons: a NaN hides no jump (max would)
            if (np.abs(np.diff(block, axis=axis)) > np.pi).any():
                return True
    return False


def _edge_wraps(values: np.ndarray, axis: int) -> np.ndarray:
    """The whole turns (-1, 0 or 1, int8) to add from each pixel to its next along ``axis``.

    The unwrapper's rule: a step of more than ``pi`` up is a turn down, and the other way.
    """
    step = np.diff(values, axis=axis)
    return (step < -np.pi).astype(np.int8) - (step > np.pi).astype(np.int8)


def _wrap_counts(values: np.ndarray) -> np.ndarray | None:
    """Whole turns per pixel (int32) that unwrap a finite map without residues; else None.

    A residue is a 2 x 2 loop of neighbours whose wraps do not add up to zero: around it the
    unwrapped phase would not come back to where it started, so a sum along paths depends on
    the path and only the unwrapper's reliability order decides. Checked in blocks of rows.
    """
    if not np.isfinite(values).all():  # a NaN hides its wraps: the unwrapper decides
        return None
    across = _edge_wraps(values, axis=1)  # (M, N - 1)
    down = _edge_wraps(values, axis=0)  # (M - 1, N)
    for start in range(0, down.shape[0], 256):
        stop = min(start + 256, down.shape[0])
        rows, below = slice(start, stop), slice(start + 1, stop + 1)
        loops = across[rows] + down[rows, 1:] - across[below] - down[rows, :-1]
        if loops.any():
            return None
    counts = np.empty(values.shape, dtype=np.int32)
    counts[0, 0] = 0
    np.cumsum(across[0], dtype=np.int32, out=counts[0, 1:])
    np.cumsum(down, axis=0, dtype=np.int32, out=counts[1:])
    counts[1:] += counts[0]
    low = int(counts.min())
    counts -= low + int(np.bincount((counts - low).ravel()).argmax())  # the commonest: 0
    return counts


_unwrap = unwrap  # retrieve_phase's `unwrap` flag shadows the function's name


def _design_matrix(rows: np.ndarray, cols: np.ndarray, order: int) -> np.ndarray:
    """Polynomial terms ``r**i * c**j`` with ``i + j <= order`` of normalized coordinates."""
    terms = [rows**i * cols ** (total - i) for total in range(order + 1) for i in range(total + 1)]
    return np.stack(terms, axis=-1)


def _least_squares(design: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Least squares through the normal equations.

    At most 6 terms on [0, 1] coordinates, so well conditioned, and much faster than
    LAPACK's SVD solver with its thread start-up.
    """
    gram = design.T @ design
    return np.linalg.solve(gram + 1e-12 * np.trace(gram) * np.eye(len(gram)), design.T @ values)


def _background_level(residual: np.ndarray) -> tuple[float, float]:
    """Centre and lower-side spread of the background peak of the residuals.

    Cells only add phase, so the background is the LOWEST significant peak of the
    histogram (at least a quarter as high as the highest: in a confluent field a cell
    plateau may be the highest one). Its spread is measured on the side below the peak,
    where no cell pixels fall, and is never narrower than one histogram bin.
    """
    low, high = np.percentile(residual, [0.5, 99.5])
    if not high > low:
        return float(low), 0.0
    counts, edges = np.histogram(residual, bins=256, range=(low, high))
    smooth = np.convolve(counts, np.ones(5) / 5, mode="same")
    inner = smooth[1:-1]
    peaks = np.flatnonzero((inner >= smooth[:-2]) & (inner > smooth[2:])) + 1
    peaks = peaks[smooth[peaks] >= 0.25 * smooth.max()]
    top = int(peaks[0]) if peaks.size else int(np.argmax(smooth))
    mode = 0.5 * (edges[top] + edges[top + 1])
    below = residual[residual <= mode] - mode
    spread = float(np.sqrt(np.mean(below**2))) if below.size else 0.0
    return float(mode), max(spread, float(edges[1] - edges[0]))


def background_level(phase: np.ndarray, *, max_pixels: int = 1 << 20) -> float:
    """The phase of the background: the lowest significant peak of the phase histogram, rad.

    The peak is located to a histogram bin (1/256 of the 0.5-99.5 % range).

    Cells only add phase, so the background is the lowest peak at least a quarter as high as
    the highest one (in a confluent field a cell plateau may be the highest). A featureless
    frame returns its constant value. NaN and Inf are ignored; an image without finite
    pixels gives 0.

    Parameters
    ----------
    phase : ndarray
        Phase map (any shape), radians.
    max_pixels : int
        At most this many pixels are used (a regular subsample of larger images).

    Examples
    --------
    >>> field = np.full((64, 64), 0.3, np.float32)
    >>> field[10:30, 10:30] += 2.0
    >>> round(background_level(field), 1), round(background_level(np.ones((8, 8))), 2)
    (0.3, 1.0)
    """
    values = np.asarray(phase, dtype=np.float64).ravel()
    step = max(1, int(np.ceil(values.size / max_pixels)))
    values = values[::step]
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0
    return _background_level(values)[0]


def remove_background(
    phase: np.ndarray,
    *,
    surface: BackgroundName = "plane",
    mask: np.ndarray | None = None,
    n_iter: int = 6,
    threshold: float = 3.0,
) -> np.ndarray:
    """Subtract a low-order surface fitted robustly to the background pixels.

    The surface (an offset, a plane or a quadratic) is fitted by least squares, then
    refitted on the pixels whose residual lies within ``threshold`` spreads of the
    background peak, ``n_iter`` times. Cells raise the phase, so they drop out of the
    fit even in confluent fields where they cover most of the image.

    Parameters
    ----------
    phase : ndarray of shape (M, N)
        Unwrapped phase in radians.
    surface : {"offset", "plane", "quadratic"}, optional
        The surface to remove. "quadratic" also removes the curvature of a reference
        wavefront.
    mask : ndarray of bool of shape (M, N), optional
        True where the background is known to be; the fit uses only these pixels.
    n_iter : int, optional
        Number of robust re-fits.
    threshold : float, optional
        Pixels within this many spreads of the background peak count as background.

    Returns
    -------
    ndarray of shape (M, N), float32
        ``phase`` minus the fitted surface; the background sits at 0.

    Examples
    --------
    >>> import numpy as np
    >>> rows, cols = np.mgrid[:64, :64]
    >>> tilted = 0.05 * rows - 0.02 * cols + 3.0
    >>> tilted[20:30, 20:30] += 2.0  # a "cell"
    >>> flat = remove_background(tilted, surface="plane")
    >>> round(float(flat[0, 0]), 3), round(float(flat[25, 25]), 3)
    (0.0, 2.0)
    """
    phase = np.asarray(phase)
    if phase.ndim != 2:
        raise ValueError(f"phase must have shape (M, N); got phase.shape={phase.shape}")
    if surface not in BACKGROUND_ORDERS:
        raise ValueError(f"surface must be one of {tuple(BACKGROUND_ORDERS)}; got {surface!r}")
    if mask is not None and np.shape(mask) != phase.shape:
        raise ValueError(f"mask must have shape {phase.shape}; got mask.shape={np.shape(mask)}")
    order = BACKGROUND_ORDERS[surface]
    n_rows, n_cols = phase.shape
    step = max(1, int(np.ceil(np.sqrt(phase.size / _MAX_FIT_POINTS))))
    grid_r, grid_c = np.mgrid[0:n_rows:step, 0:n_cols:step]
    scale_r, scale_c = max(n_rows - 1, 1), max(n_cols - 1, 1)
    design = _design_matrix(grid_r.ravel() / scale_r, grid_c.ravel() / scale_c, order)
    values = phase[::step, ::step].ravel().astype(np.float64)
    valid = np.isfinite(values)
    if mask is not None:
        valid &= np.asarray(mask, dtype=bool)[::step, ::step].ravel()
    if valid.sum() < design.shape[1]:
        raise ValueError("too few background pixels to fit a background surface")
    coef, _ = _robust_fit(design, values, valid, n_iter=n_iter, threshold=threshold)
    full_r, full_c = np.ogrid[0:n_rows, 0:n_cols]
    fitted = _evaluate_surface(coef, full_r / scale_r, full_c / scale_c, order)
    return (phase - fitted).astype(np.float32)


def fit_background(
    phase: np.ndarray,
    mask: np.ndarray,
    *,
    surface: BackgroundName = "quadratic",
    n_iter: int = 6,
    threshold: float = 3.0,
) -> BackgroundFit:
    """Fit a low-order surface robustly to the pixels known to be background.

    Least squares on the pixels of ``mask`` only (all of them; a regular subsample of at
    most 40,000 when more), refitted ``n_iter`` times on the pixels within ``threshold``
    spreads of the median residual (the spread measured below the median, where what the
    mask missed, such as debris or the blurred rim of a cell, does not fall). With the cells
    of a segmentation left out of ``mask``, a confluent field's few gaps give the background,
    which a fit to the whole frame (:func:`remove_background`) cannot find.

    Parameters
    ----------
    phase : ndarray of shape (M, N)
        Phase in radians.
    mask : ndarray of bool of shape (M, N)
        True where the background is (e.g. away from every labelled cell).
    surface : {"offset", "plane", "quadratic"}, optional
        The surface to fit.
    n_iter : int, optional
        Number of robust re-fits.
    threshold : float, optional
        Pixels within this many spreads of the median residual count as background.

    Returns
    -------
    BackgroundFit

    Raises
    ------
    ValueError
        When ``mask`` holds fewer finite pixels than the surface has terms.

    Examples
    --------
    >>> rows, cols = np.mgrid[:64, :64]
    >>> phase = 0.5 + 0.01 * rows + np.random.default_rng(0).normal(0, 0.02, (64, 64))
    >>> phase[:, 8:56] += 2.0  # cells over most of the field
    >>> fit = fit_background(phase, (cols < 6) | (cols >= 58), surface="plane")
    >>> round(float(fit.surface()[40, 32]), 2), 700 < fit.n_pixels <= 768
    (0.9, True)
    """
    phase, mask = np.asarray(phase), np.asarray(mask, dtype=bool)
    if phase.ndim != 2:
        raise ValueError(f"phase must have shape (M, N); got phase.shape={phase.shape}")
    if surface not in BACKGROUND_ORDERS:
        raise ValueError(f"surface must be one of {tuple(BACKGROUND_ORDERS)}; got {surface!r}")
    if mask.shape != phase.shape:
        raise ValueError(f"mask must have shape {phase.shape}; got mask.shape={mask.shape}")
    order = BACKGROUND_ORDERS[surface]
    rows, cols = np.nonzero(mask)
    step = max(1, int(np.ceil(rows.size / _MAX_FIT_POINTS)))
    rows, cols = rows[::step], cols[::step]
    values = phase[rows, cols].astype(np.float64)
    valid = np.isfinite(values)
    n_terms = (order + 1) * (order + 2) // 2
    if valid.sum() < n_terms:
        raise ValueError(
            f"too few background pixels to fit a {surface} surface: {int(valid.sum())} "
            f"finite pixels in mask, {n_terms} needed"
        )
    scale_r, scale_c = max(phase.shape[0] - 1, 1), max(phase.shape[1] - 1, 1)
    design = _design_matrix(rows / scale_r, cols / scale_c, order)
    coef, keep = _clipped_fit(design, values, valid, n_iter=n_iter, threshold=threshold)
    gram = design[keep].T @ design[keep]
    inverse = np.linalg.pinv(gram)
    return BackgroundFit(
        coefficients=coef,
        order=order,
        shape=(int(phase.shape[0]), int(phase.shape[1])),
        n_pixels=int(keep.sum()) * step,
        extrapolation_matrix=int(keep.sum()) * inverse,
    )


def _clipped_fit(
    design: np.ndarray, values: np.ndarray, valid: np.ndarray, *, n_iter: int, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Least squares refitted on the points within ``threshold`` spreads of the median residual.

    For points already known to be background, where only what the mask missed (debris, an
    unlabelled cell, the blurred rim of a cell) lies above the background: the spread is
    the median absolute deviation of the residuals below the median (x 1.4826, the sd of a
    normal distribution), which such outliers above do not widen. Unlike the histogram peak
    of :func:`remove_background`, it is unbiased for the few hundred points of a confluent
    field's gaps.
    """
    keep = valid
    coef = _least_squares(design[keep], values[keep])
    for _ in range(max(n_iter, 1)):
        residual = values - design @ coef
        centre = float(np.median(residual[keep]))
        below = centre - residual[keep & (residual <= centre)]
        spread = 1.4826 * float(np.median(below)) if below.size else 0.0
        new_keep = valid & (np.abs(residual - centre) <= threshold * spread)
        if new_keep.sum() < design.shape[1] or np.array_equal(new_keep, keep):
            break
        keep = new_keep
        coef = _least_squares(design[keep], values[keep])
    return coef, keep


def _robust_fit(
    design: np.ndarray, values: np.ndarray, valid: np.ndarray, *, n_iter: int, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients of the robust background fit and the points its last pass used.

    A lower-envelope start, then ``n_iter`` least-squares refits on the points whose
    residual lies within ``threshold`` lower-side spreads of the background peak.
    """
    keep = valid
    coef = _fit_lower_envelope(design, values, keep)
    for _ in range(max(n_iter, 1)):
        residual = values - design @ coef
        mode, spread = _background_level(residual[valid])
        new_keep = valid & (np.abs(residual - mode) <= threshold * spread)
        if new_keep.sum() < design.shape[1]:
            break
        keep = new_keep
        coef = _least_squares(design[keep], values[keep])
    return coef, keep


def _fit_lower_envelope(design: np.ndarray, values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """A first surface through the lowest residuals: cells only add phase.

    Refits on ever lower quantiles of the residuals, so that in a confluent field the start
    already lies on the background and not on the cell plateaus.
    """
    keep = valid
    coef = _least_squares(design[keep], values[keep])
    for quantile in (50, 30, 20, 10, 10):
        residual = values - design @ coef
        lower = valid & (residual <= np.percentile(residual[valid], quantile))
        if lower.sum() < 2 * design.shape[1]:
            break
        keep = lower
        coef = _least_squares(design[keep], values[keep])
    return coef


def _evaluate_surface(
    coef: np.ndarray, rows: np.ndarray, cols: np.ndarray, order: int
) -> np.ndarray:
    """Evaluate the polynomial of :func:`_design_matrix` on an open grid, without a full stack."""
    out = np.zeros(np.broadcast_shapes(rows.shape, cols.shape))
    index = 0
    for total in range(order + 1):
        for i in range(total + 1):
            out += coef[index] * (rows**i * cols ** (total - i))
            index += 1
    return out


def retrieve_phase(
    angles: np.ndarray,
    *,
    sign: int = 1,
    unwrap: bool = True,
    background: BackgroundName | None = "plane",
    background_mask: np.ndarray | None = None,
) -> PhaseRetrieval:
    """Phase, modulation and wrapped phase from the four polarized intensities.

    Parameters
    ----------
    angles : ndarray of shape (4, M, N)
        Intensities at polarizer angles 0, 45, 90 and 135 degrees, any real dtype.
    sign : {1, -1}, optional
        -1 flips the phase (reference beam of the other handedness).
    unwrap : bool, optional
        Unwrap the phase (default). Without it, ``phase`` is the wrapped phase with the
        background removed, which is only meaningful for phase excursions below pi.
    background : {"offset", "plane", "quadratic"} or None, optional
        The background surface to remove (see :func:`remove_background`); None keeps it.
    background_mask : ndarray of bool of shape (M, N), optional
        Pixels known to be background.

    Returns
    -------
    PhaseRetrieval
        ``phase`` in radians, ``modulation`` and ``wrapped``, each (M, N) float32.

    Examples
    --------
    >>> import numpy as np
    >>> rows, cols = np.mgrid[:64, :64]
    >>> dist2 = ((rows - 32) ** 2 + (cols - 32) ** 2) / 15**2
    >>> truth = 4.0 * np.clip(1 - dist2, 0, None) ** 2  # a cell, 4 rad high
    >>> tilt = 0.3 * cols  # the reference wavefront: several fringes across the field
    >>> result = retrieve_phase(synthesize_angles(truth + tilt), background="plane")
    >>> float(np.abs(result.phase - truth).max()) < 1e-2  # noise free: a few mrad of fit bias
    True
    """
    wrapped = wrapped_phase(angles, sign=sign)
    quality = modulation(angles)
    phase = _unwrap(wrapped) if unwrap else wrapped.copy()
    if background is not None:
        phase = remove_background(phase, surface=background, mask=background_mask)
    return PhaseRetrieval(phase=phase.astype(np.float32), modulation=quality, wrapped=wrapped)


def synthesize_angles(
    phase: np.ndarray,
    *,
    mean: float | np.ndarray = 1000.0,
    visibility: float | np.ndarray = 0.8,
    sign: int = 1,
) -> np.ndarray:
    """The ideal forward model: four polarized intensities of a phase map.

    Parameters
    ----------
    phase : ndarray of shape (M, N)
        Phase in radians.
    mean : float or ndarray of shape (M, N), optional
        The mean intensity ``A``.
    visibility : float or ndarray of shape (M, N), optional
        Fringe visibility ``B / A``, in [0, 1].
    sign : {1, -1}, optional
        As in :func:`retrieve_phase`: intensities whose retrieval with ``sign`` gives
        back ``phase``.

    Returns
    -------
    ndarray of shape (4, M, N), float32
        ``A + B cos(sign * phase + 2 theta)`` for theta = 0, 45, 90, 135 degrees, noise free.

    Examples
    --------
    >>> import numpy as np
    >>> synthesize_angles(np.zeros((1, 1)), mean=10.0, visibility=0.5).ravel().tolist()
    [15.0, 10.0, 5.0, 10.0]
    """
    phase = np.asarray(phase, dtype=np.float64)
    if phase.ndim != 2:
        raise ValueError(f"phase must have shape (M, N); got phase.shape={phase.shape}")
    _check_sign(sign)
    if np.any(np.asarray(visibility) < 0) or np.any(np.asarray(visibility) > 1):
        raise ValueError(f"visibility must lie in [0, 1]; got {visibility!r}")
    theta = np.deg2rad([0.0, 45.0, 90.0, 135.0])[:, None, None]
    offset = np.asarray(mean, dtype=np.float64)
    amplitude = offset * np.asarray(visibility, dtype=np.float64)
    return (offset + amplitude * np.cos(sign * phase + 2 * theta)).astype(np.float32)
