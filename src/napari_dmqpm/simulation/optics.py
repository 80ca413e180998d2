r"""Optics: from the object's optical path difference to the four polarized intensities.

The object phase at wavelength :math:`\lambda` is :math:`\varphi_o = 2\pi\,\mathrm{OPD}/\lambda`.
The interferometer adds the reference wavefront (a tilt :math:`g` in rad/µm and a curvature
:math:`\kappa`, the phase sag at the field corner) and a smooth residual aberration
:math:`\varepsilon` that no low-order fit removes:

.. math:: \varphi = \varphi_o + g\,(x \cos\beta + y \sin\beta) + \kappa\, r^2 / r_c^2 + \varepsilon.

The mean intensity falls off towards the corners (illumination fall-off ``f``) and dips where
the object phase is steep, because light scattered at cell edges leaves the aperture
(edge scattering ``S``, with :math:`g_0` = 1.5 rad/µm):

.. math::

    A = A_0 (1 - f \rho^2)
        \left(1 - S \frac{|\nabla\varphi_o|^2}{|\nabla\varphi_o|^2 + g_0^2}\right),
    \qquad B = V A,

and the polarization camera records :math:`I_\theta = A + B\cos(s\varphi + 2\theta)` at
:math:`\theta` = 0, 45, 90, 135 degrees (:func:`napari_dmqpm.phase.synthesize_angles`).

A phase map from another instrument carries what that instrument's background processing
left: :func:`residual_background` draws a constant offset ``o``, a plane of value ``t`` one
half-diagonal from the centre (direction :math:`\gamma`) and a bowl of sag ``c`` at the field
corners (both zero-mean over the field), which the simulator adds to the retrieved phase after
its own background removal:

.. math::

    \varphi_r = o + t\,(\hat{x} \cos\gamma + \hat{y} \sin\gamma)
        + c\,(\hat{r}^2 - \langle \hat{r}^2 \rangle),

with coordinates relative to the field centre in units of its half-diagonal.

References
----------
.. [1] T. Kreis, *Handbook of Holographic Interferometry*, Wiley-VCH (2005), ch. 5.
.. [2] J. E. Millerd et al., "Pixelated phase-mask dynamic interferometer",
   Proc. SPIE 5531 (2004). doi:10.1117/12.560807
"""

from __future__ import annotations

import numpy as np

from napari_dmqpm.phase import synthesize_angles
from napari_dmqpm.simulation.config import SimulationConfig

__all__ = [
    "expected_intensities",
    "illumination",
    "object_phase",
    "reference_wavefront",
    "residual_background",
    "smooth_field",
]

_SCATTER_GRADIENT = 1.5  # rad/µm: phase gradient at which edge scattering reaches half its depth
_ABERRATION_LENGTH_UM = 40.0  # correlation length of the residual aberration


def object_phase(opd_um: np.ndarray, wavelength_um: float) -> np.ndarray:
    """Phase delay of an optical path difference.

    Parameters
    ----------
    opd_um : ndarray of shape (M, N)
        Optical path difference, µm.
    wavelength_um : float
        Wavelength, µm.

    Returns
    -------
    ndarray of shape (M, N), float32
        ``2 pi opd / wavelength`` in radians.

    Examples
    --------
    >>> round(float(object_phase(np.array([[0.325]]), 0.65)[0, 0]), 5)  # half a wave
    3.14159
    """
    return (np.asarray(opd_um, dtype=np.float64) * (2 * np.pi / wavelength_um)).astype(np.float32)


def smooth_field(shape: tuple[int, int], length_px: float, rng: np.random.Generator) -> np.ndarray:
    """A smooth random field of unit standard deviation (Gaussian bumps on a coarse grid).

    Parameters
    ----------
    shape : tuple of int
        ``(rows, cols)``.
    length_px : float
        Spacing of the bumps, and their width, in pixels.
    rng : numpy.random.Generator
        Random source.

    Returns
    -------
    ndarray of shape (M, N), float32
    """
    weights = []
    for size in shape:
        nodes = np.arange(-1, size / length_px + 2) * length_px
        weights.append(np.exp(-0.5 * ((np.arange(size)[:, None] - nodes) / length_px) ** 2))
    coarse = rng.standard_normal((weights[0].shape[1], weights[1].shape[1]))
    field = weights[0] @ coarse @ weights[1].T
    field -= field.mean()
    spread = field.std()
    return (field / spread if spread > 0 else field).astype(np.float32)


def reference_wavefront(config: SimulationConfig, rng: np.random.Generator) -> np.ndarray:
    """Tilt, curvature and residual aberration of the reference, radians.

    Parameters
    ----------
    config : SimulationConfig
        ``tilt_rad_per_um``, ``curvature_rad``, ``background_aberration_rad``.
    rng : numpy.random.Generator
        Random source for the tilt direction, the curvature centre and the aberration.

    Returns
    -------
    ndarray of shape (M, N), float32
    """
    n_rows, n_cols = config.shape
    pixel = config.pixel_size_um
    rows = np.arange(n_rows, dtype=np.float64)[:, None] * pixel
    cols = np.arange(n_cols, dtype=np.float64)[None, :] * pixel
    direction = rng.uniform(-np.pi, np.pi)
    wavefront = config.tilt_rad_per_um * (cols * np.cos(direction) + rows * np.sin(direction))
    centre = (0.5 + rng.uniform(-0.1, 0.1, size=2)) * np.array(config.shape) * pixel
    corner = np.hypot(*(np.array(config.shape) * pixel / 2))
    radius2 = ((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2) / corner**2
    wavefront = wavefront + config.curvature_rad * radius2 * rng.choice([-1.0, 1.0])
    if config.background_aberration_rad > 0:
        length = _ABERRATION_LENGTH_UM / pixel
        wavefront += config.background_aberration_rad * smooth_field(config.shape, length, rng)
    return wavefront.astype(np.float32)


def residual_background(config: SimulationConfig, rng: np.random.Generator) -> np.ndarray:
    """Offset, tilt and curvature left in a phase map by foreign background processing, rad.

    Parameters
    ----------
    config : SimulationConfig
        ``residual_offset_rad``, ``residual_tilt_rad``, ``residual_curvature_rad``: each
        amplitude is drawn uniformly in ``±range``.
    rng : numpy.random.Generator
        Random source: three amplitudes and the tilt direction, always drawn in that order.

    Returns
    -------
    ndarray of shape (M, N), float32
        Its mean over the field is the drawn offset.

    Examples
    --------
    >>> config = SimulationConfig(shape=(32, 32), residual_offset_rad=0.3)
    >>> surface = residual_background(config, np.random.default_rng(0))
    >>> bool(abs(surface.mean()) <= 0.3 and np.ptp(surface) < 1e-6)
    True
    """
    ranges = np.array(
        [config.residual_offset_rad, config.residual_tilt_rad, config.residual_curvature_rad]
    )
    offset, tilt, curvature = rng.uniform(-1.0, 1.0, size=3) * ranges
    direction = rng.uniform(-np.pi, np.pi)
    n_rows, n_cols = config.shape
    half_diagonal = np.hypot(n_rows - 1, n_cols - 1) / 2
    rows = (np.arange(n_rows)[:, None] - (n_rows - 1) / 2) / half_diagonal
    cols = (np.arange(n_cols)[None, :] - (n_cols - 1) / 2) / half_diagonal
    bowl = rows**2 + cols**2
    surface = tilt * (cols * np.cos(direction) + rows * np.sin(direction))
    surface = offset + surface + curvature * (bowl - bowl.mean())
    return surface.astype(np.float32)


def illumination(
    object_phase_rad: np.ndarray, config: SimulationConfig, rng: np.random.Generator
) -> np.ndarray:
    """Mean intensity ``A`` in photo-electrons: fall-off and edge scattering.

    Parameters
    ----------
    object_phase_rad : ndarray of shape (M, N)
        The object phase (its gradient sets the edge-scattering loss).
    config : SimulationConfig
        ``exposure``, ``full_well_e``, ``illumination_falloff``, ``edge_scattering``.
    rng : numpy.random.Generator
        Random source for the centre of the illumination.

    Returns
    -------
    ndarray of shape (M, N), float32
    """
    n_rows, n_cols = config.shape
    centre = (0.5 + rng.uniform(-0.15, 0.15, size=2)) * np.array(config.shape)
    rows = (np.arange(n_rows)[:, None] - centre[0]) / (n_rows / 2)
    cols = (np.arange(n_cols)[None, :] - centre[1]) / (n_cols / 2)
    rho2 = np.minimum((rows**2 + cols**2) / 2, 1.0)
    mean = config.exposure * config.full_well_e * (1.0 - config.illumination_falloff * rho2)
    if config.edge_scattering > 0:
        grad_r, grad_c = np.gradient(object_phase_rad, config.pixel_size_um)
        slope2 = grad_r**2 + grad_c**2
        mean = mean * (1.0 - config.edge_scattering * slope2 / (slope2 + _SCATTER_GRADIENT**2))
    return mean.astype(np.float32)


def expected_intensities(
    phase_rad: np.ndarray, mean_e: np.ndarray, config: SimulationConfig
) -> np.ndarray:
    """Noise-free intensities ``A + V A cos(s phi + 2 theta)``, photo-electrons.

    Parameters
    ----------
    phase_rad : ndarray of shape (M, N)
        Total phase (object plus reference wavefront), radians.
    mean_e : ndarray of shape (M, N)
        Mean intensity ``A``, photo-electrons.
    config : SimulationConfig
        ``fringe_visibility`` and ``sign``.

    Returns
    -------
    ndarray of shape (4, M, N), float32
        At polarizer angles 0, 45, 90 and 135 degrees.
    """
    return synthesize_angles(
        phase_rad, mean=mean_e, visibility=config.fringe_visibility, sign=config.sign
    )
