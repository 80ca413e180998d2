"""Input normalization inside the network, and its estimation on a training set.

The statistics live in :class:`~napari_dmqpm.model.config.NormalizationConfig`, which is part of
the model config, so a checkpoint always carries the normalization it was trained with and
callers pass raw intensities and phase in radians.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from .config import N_ANGLES, NormalizationConfig


def normalize_angles(angles: torch.Tensor, norm: NormalizationConfig) -> torch.Tensor:
    """Z-score the four angle images per channel with the training-set statistics.

    Parameters
    ----------
    angles : Tensor of shape (B, 4, M, N)
        Intensities at 0, 45, 90, 135 degrees, in the unit of the training data.
    norm : NormalizationConfig
        Holds ``angle_mean`` and ``angle_std``.

    Returns
    -------
    Tensor of shape (B, 4, M, N)
        ``(angles - mean) / std``, a new tensor of the input's dtype.
    """
    mean = torch.tensor(norm.angle_mean, dtype=angles.dtype, device=angles.device)
    std = torch.tensor(norm.angle_std, dtype=angles.dtype, device=angles.device)
    return (angles - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)


def normalize_phase(phase: torch.Tensor, norm: NormalizationConfig) -> torch.Tensor:
    """Clip the phase to the training quantile window and z-score it.

    Parameters
    ----------
    phase : Tensor of shape (B, 1, M, N)
        Unwrapped, background-corrected phase in radians.
    norm : NormalizationConfig
        Holds ``phase_low``, ``phase_high``, ``phase_mean`` and ``phase_std`` (radians).

    Returns
    -------
    Tensor of shape (B, 1, M, N)
        ``(clip(phase, low, high) - mean) / std``.
    """
    clipped = phase.clamp(norm.phase_low, norm.phase_high)
    return (clipped - norm.phase_mean) / norm.phase_std


def estimate_normalization(
    angles: Iterable[np.ndarray] | None,
    phase: Iterable[np.ndarray] | None,
    *,
    low_percentile: float = 0.5,
    high_percentile: float = 99.5,
    max_pixels: int = 2_000_000,
    rng: int | np.random.Generator | None = None,
) -> NormalizationConfig:
    """Estimate the normalization statistics on training images.

    Parameters
    ----------
    angles : iterable of ndarray of shape (4, M, N), or None
        Angle images (any sizes); None keeps the identity placeholders.
    phase : iterable of ndarray of shape (M, N), or None
        Phase maps in radians; None keeps the placeholders.
    low_percentile, high_percentile : float
        Percentiles of the phase clipping window (nnU-Net uses 0.5 and 99.5).
    max_pixels : int
        Pixels sampled at random (with replacement, using ``rng``) per input for the
        statistics; all pixels are used when there are fewer.
    rng : int, Generator or None
        Seed or generator for the pixel sampling.

    Returns
    -------
    NormalizationConfig

    Examples
    --------
    >>> phase = [np.linspace(0, 3, 10_000).reshape(100, 100)]
    >>> norm = estimate_normalization(None, phase, low_percentile=0, high_percentile=100)
    >>> round(norm.phase_high, 3), round(norm.phase_mean, 3)
    (3.0, 1.5)
    """
    rng = np.random.default_rng(rng)
    values: dict = {"low_percentile": low_percentile, "high_percentile": high_percentile}
    if angles is not None:
        per_channel = [np.asarray(a, dtype=np.float64).reshape(N_ANGLES, -1) for a in angles]
        if not per_channel:
            raise ValueError("angles must hold at least one image; got an empty iterable")
        pixels = _sample(np.concatenate(per_channel, axis=1).T, max_pixels, rng)
        values["angle_mean"] = tuple(float(v) for v in pixels.mean(axis=0))
        values["angle_std"] = tuple(float(max(v, 1e-8)) for v in pixels.std(axis=0))
    if phase is not None:
        flat = [np.asarray(p, dtype=np.float64).ravel() for p in phase]
        if not flat:
            raise ValueError("phase must hold at least one image; got an empty iterable")
        pixels = _sample(np.concatenate(flat), max_pixels, rng)
        pixels = pixels[np.isfinite(pixels)]
        low, high = np.percentile(pixels, [low_percentile, high_percentile])
        high = max(high, low + 1e-6)
        clipped = np.clip(pixels, low, high)
        values.update(
            phase_low=float(low),
            phase_high=float(high),
            phase_mean=float(clipped.mean()),
            phase_std=float(max(clipped.std(), 1e-8)),
        )
    return NormalizationConfig(**values)


def _sample(pixels: np.ndarray, max_pixels: int, rng: np.random.Generator) -> np.ndarray:
    if len(pixels) <= max_pixels:
        return pixels
    return pixels[rng.integers(0, len(pixels), size=max_pixels)]
