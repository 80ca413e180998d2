"""nnU-Net's data augmentation, in numpy and scipy, for a stack of channels and its instance labels.

The transforms and their probabilities are nnU-Net's defaults for 2-D data (Isensee et al. 2021,
``nnunetv2.training.nnUNetTrainer.get_training_transforms``): rotation (p 0.2, ±180°) and scaling
(p 0.2, 0.7-1.4) applied while the patch is cut out, Gaussian noise (p 0.1), Gaussian blur (p 0.2),
multiplicative brightness (p 0.15), contrast (p 0.15), low-resolution simulation (p 0.25), inverted
gamma (p 0.1), gamma (p 0.3) and mirroring (p 0.5 per axis). The same spatial transform moves the
channels (linear interpolation) and the labels (nearest neighbour), so targets derived from the
augmented labels stay aligned with the image.

Two deviations, both because the channels here are raw physical quantities rather than z-scored
images: the noise level is relative to each channel's scale, and intensity transforms draw one
parameter per *channel group* (the four polarizer angles share one exposure), see
``channel_groups``.

References
----------
.. [1] F. Isensee, P. F. Jaeger, S. A. A. Kohl, J. Petersen, K. H. Maier-Hein, "nnU-Net: a
   self-configuring method for deep learning-based biomedical image segmentation", Nature
   Methods 18, 203-211 (2021).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from napari_dmqpm._config import config_from_dict, config_to_dict

_RANGES = (
    "scaling",
    "diameter_px",
    "noise_variance",
    "blur_sigma",
    "brightness",
    "contrast",
    "low_resolution",
    "gamma",
)


@dataclass(frozen=True, kw_only=True)
class AugmentConfig:
    """Probabilities and ranges of the augmentations (nnU-Net's 2-D defaults).

    Parameters
    ----------
    enabled : bool
        False turns every transform off (a plain crop).
    p_rotation, rotation_deg : float
        Probability of a rotation, and its range ±``rotation_deg`` degrees.
    p_scaling : float
        Probability of a zoom; ``scaling`` is the (min, max) sampling step in input pixels per
        output pixel (above 1 zooms out).
    p_diameter, diameter_px : float, (float, float)
        Scale augmentation by cell size: with probability ``p_diameter`` the patch is resampled
        so that the image's median cell diameter becomes a diameter drawn log-uniformly from
        ``diameter_px`` (replacing the ``scaling`` zoom for that patch). Needs the image's
        median cell diameter (``augment_patch(cell_diameter_px=...)``); 0 (nnU-Net) turns it
        off.
    p_noise, noise_variance : float, (float, float)
        Additive Gaussian noise; the variance is drawn from the range, relative to the channel's
        variance (nnU-Net's range on z-scored data).
    p_blur, blur_sigma, p_blur_per_channel : float, (float, float), float
        Gaussian blur with sigma in pixels; each channel group is blurred with probability
        ``p_blur_per_channel``.
    p_brightness, brightness : float, (float, float)
        Multiplicative brightness.
    p_contrast, contrast : float, (float, float)
        Contrast around the mean, range preserved.
    p_low_resolution, low_resolution, p_low_resolution_per_channel : float, (float, float), float
        Downsample (nearest) by a factor from the range, then upsample (linear).
    p_gamma_inverted, p_gamma, gamma : float, float, (float, float)
        Gamma on the inverted and on the plain intensities, statistics retained.
    p_mirror : float
        Probability of mirroring each axis.
    """

    enabled: bool = True
    p_rotation: float = 0.2
    rotation_deg: float = 180.0
    p_scaling: float = 0.2
    scaling: tuple[float, float] = (0.7, 1.4)
    p_diameter: float = 0.0
    diameter_px: tuple[float, float] = (10.0, 120.0)
    p_noise: float = 0.1
    noise_variance: tuple[float, float] = (0.0, 0.1)
    p_blur: float = 0.2
    blur_sigma: tuple[float, float] = (0.5, 1.0)
    p_blur_per_channel: float = 0.5
    p_brightness: float = 0.15
    brightness: tuple[float, float] = (0.75, 1.25)
    p_contrast: float = 0.15
    contrast: tuple[float, float] = (0.75, 1.25)
    p_low_resolution: float = 0.25
    low_resolution: tuple[float, float] = (0.5, 1.0)
    p_low_resolution_per_channel: float = 0.5
    p_gamma_inverted: float = 0.1
    p_gamma: float = 0.3
    gamma: tuple[float, float] = (0.7, 1.5)
    p_mirror: float = 0.5

    def __post_init__(self) -> None:
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if item.name.startswith("p_") and not 0.0 <= value <= 1.0:
                raise ValueError(f"{item.name} must be a probability in [0, 1]; got {value!r}")
        for name in _RANGES:
            low, high = getattr(self, name)
            positive = name == "diameter_px"  # a diameter of 0 px has no log
            if not 0.0 <= low <= high or (positive and low <= 0.0):
                bound = "0 < low" if positive else "0 <= low"
                raise ValueError(
                    f"{name} must be (low, high) with {bound} <= high; got {(low, high)}"
                )
            object.__setattr__(self, name, (float(low), float(high)))

    def to_dict(self) -> dict[str, Any]:
        """JSON-native dictionary (ranges as lists)."""
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AugmentConfig:
        """Inverse of ``to_dict``; unknown keys raise ``ValueError``.

        Parameters
        ----------
        data : dict
            Field name -> JSON value, as ``to_dict`` writes.
        """
        return config_from_dict(cls, data)


@dataclass(frozen=True)
class SpatialParams:
    """One draw of the spatial transform: rotation (radians), sampling step, mirrored axes."""

    rotation: float = 0.0
    scale: float = 1.0
    mirror_rows: bool = False
    mirror_cols: bool = False


def draw_spatial(
    config: AugmentConfig,
    rng: np.random.Generator,
    *,
    cell_diameter_px: float | None = None,
) -> SpatialParams:
    """Draw rotation, scaling and mirroring with nnU-Net's probabilities.

    Parameters
    ----------
    config : AugmentConfig
    rng : numpy.random.Generator
    cell_diameter_px : float, optional
        The image's median cell diameter; with ``config.p_diameter > 0`` the zoom then brings
        it, with that probability, to a diameter drawn log-uniformly from
        ``config.diameter_px``. None (or no cells) keeps nnU-Net's ``scaling`` zoom.

    Examples
    --------
    >>> wide = AugmentConfig(p_diameter=1.0, diameter_px=(100.0, 100.0))
    >>> round(draw_spatial(wide, np.random.default_rng(0), cell_diameter_px=25.0).scale, 6)
    0.25
    """
    if not config.enabled:
        return SpatialParams()
    rotation = 0.0
    if rng.random() < config.p_rotation:
        rotation = float(np.deg2rad(rng.uniform(-config.rotation_deg, config.rotation_deg)))
    # The extra draw only when the option is on: nnU-Net's stream stays as it was.
    by_diameter = (
        config.p_diameter > 0.0
        and cell_diameter_px is not None
        and cell_diameter_px > 0.0
        and rng.random() < config.p_diameter
    )
    if by_diameter and cell_diameter_px is not None:
        target = float(np.exp(rng.uniform(*np.log(config.diameter_px))))
        scale = float(cell_diameter_px) / target
    else:
        scale = float(rng.uniform(*config.scaling)) if rng.random() < config.p_scaling else 1.0
    mirror_rows, mirror_cols = (bool(v) for v in rng.random(2) < config.p_mirror)
    return SpatialParams(rotation, scale, mirror_rows, mirror_cols)


def diameter_distribution(
    images_diameters: Sequence[np.ndarray],
    config: AugmentConfig,
    *,
    rng: np.random.Generator | int = 0,
    n: int = 20_000,
    percentiles: Sequence[float] = (1, 10, 50, 90, 99),
) -> dict[str, float]:
    """Percentiles of the cell diameters the network sees in training patches, px.

    A Monte Carlo of the spatial draw: a random cell of a random image, seen at the zoom
    ``draw_spatial`` draws for that image (nnU-Net's ``scaling``, or the scale augmentation by
    cell size). This is what a checkpoint records as the diameters it was trained on.

    Parameters
    ----------
    images_diameters : sequence of ndarray
        Per image, its cells' equivalent diameters
        (``napari_dmqpm.inference.diameter.cell_diameters``).
    config : AugmentConfig
    rng : numpy.random.Generator or int
    n : int
        Draws.
    percentiles : sequence of float

    Returns
    -------
    dict
        ``{"p1": ..., "p50": ..., ...}``, rounded to 0.1 px; empty without cells.

    Examples
    --------
    >>> cells = [np.full(50, 20.0)]
    >>> diameter_distribution(cells, AugmentConfig(enabled=False))["p50"]
    20.0
    >>> wide = diameter_distribution(cells, AugmentConfig(p_diameter=1.0, diameter_px=(10, 120)))
    >>> 9.9 < wide["p1"] < 12 and 100 < wide["p99"] < 120.1
    True
    """
    images = [np.asarray(d, float) for d in images_diameters if np.size(d)]
    if not images:
        return {}
    rng = np.random.default_rng(rng)
    medians = [float(np.median(d)) for d in images]
    seen = np.empty(int(n))
    for index in range(int(n)):
        which = int(rng.integers(len(images)))
        cell = images[which][int(rng.integers(images[which].size))]
        spatial = draw_spatial(config, rng, cell_diameter_px=medians[which])
        seen[index] = cell / spatial.scale
    values = np.percentile(seen, list(percentiles))
    return {f"p{p:g}": round(float(v), 1) for p, v in zip(percentiles, values, strict=True)}


def _plain_crop(array: np.ndarray, start: tuple[int, int], shape: tuple[int, int]) -> np.ndarray:
    rows, cols = array.shape[-2:]
    pads = [(0, 0)] * (array.ndim - 2)
    slices = [slice(None)] * (array.ndim - 2)
    for begin, size, total in zip(start, shape, (rows, cols), strict=True):
        low, high = max(begin, 0), min(begin + size, total)
        pads.append((low - begin, begin + size - high))
        slices.append(slice(low, high))
    crop = array[tuple(slices)]
    if any(before or after for before, after in pads):
        crop = np.pad(crop, pads, mode="reflect" if min(crop.shape[-2:]) > 1 else "edge")
    return crop


def _sample_grid(center, shape, spatial: SpatialParams) -> np.ndarray:
    offsets = [np.arange(size, dtype=np.float64) - (size - 1) / 2.0 for size in shape]
    d_rows, d_cols = np.meshgrid(*offsets, indexing="ij")
    cos, sin = np.cos(spatial.rotation), np.sin(spatial.rotation)
    rows = center[0] + spatial.scale * (cos * d_rows - sin * d_cols)
    cols = center[1] + spatial.scale * (sin * d_rows + cos * d_cols)
    return np.stack([rows, cols])


def crop_transformed(
    image: np.ndarray,
    labels: np.ndarray,
    *,
    center: tuple[float, float],
    patch_shape: tuple[int, int],
    spatial: SpatialParams | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Cut a patch centred on ``center`` after rotating, scaling and mirroring.

    Parameters
    ----------
    image : ndarray of shape (C, M, N), float
        Channels to transform with linear interpolation.
    labels : ndarray of shape (M, N), integer
        Instance labels, transformed with nearest-neighbour interpolation.
    center : (float, float)
        Patch centre in (row, column) pixel coordinates of the input.
    patch_shape : (int, int)
        Output ``(P, Q)``.
    spatial : SpatialParams, optional
        The transform; None is a plain crop. Outside the input, both are mirrored.

    Returns
    -------
    image_patch : ndarray of shape (C, P, Q), float32
    labels_patch : ndarray of shape (P, Q), same dtype as ``labels``
    """
    spatial = spatial or SpatialParams()
    if spatial.rotation == 0.0 and spatial.scale == 1.0:
        start = (
            int(round(center[0] - (patch_shape[0] - 1) / 2.0)),
            int(round(center[1] - (patch_shape[1] - 1) / 2.0)),
        )
        image_patch = _plain_crop(image, start, patch_shape).astype(np.float32)
        labels_patch = _plain_crop(labels, start, patch_shape)
    else:
        grid = _sample_grid(center, patch_shape, spatial)
        low = np.maximum(np.floor(grid.reshape(2, -1).min(axis=1)).astype(int) - 1, 0)
        high = np.minimum(np.ceil(grid.reshape(2, -1).max(axis=1)).astype(int) + 2, labels.shape)
        high = np.maximum(high, low + 1)
        window = (slice(low[0], high[0]), slice(low[1], high[1]))
        local = grid - low[:, None, None]
        image_patch = np.stack(
            [ndimage.map_coordinates(ch[window], local, order=1, mode="mirror") for ch in image]
        ).astype(np.float32)
        labels_patch = ndimage.map_coordinates(labels[window], local, order=0, mode="mirror")
    axes = [axis for axis, flag in ((-2, spatial.mirror_rows), (-1, spatial.mirror_cols)) if flag]
    if axes:
        image_patch = np.flip(image_patch, axis=tuple(axes))
        labels_patch = np.flip(labels_patch, axis=tuple(axes))
    return np.ascontiguousarray(image_patch), np.ascontiguousarray(labels_patch)


def _draw_factor(bounds: tuple[float, float], rng: np.random.Generator) -> float:
    """nnU-Net's draw for contrast and gamma: half the time below 1, half above."""
    low, high = bounds
    if rng.random() < 0.5 and low < 1.0:
        return float(rng.uniform(low, 1.0))
    return float(rng.uniform(max(low, 1.0), high))


def _gamma(values: np.ndarray, gamma: float, *, invert: bool) -> np.ndarray:
    values = -values if invert else values
    mean, std = values.mean(), values.std()
    low, span = values.min(), values.max() - values.min() + 1e-7
    out = np.power((values - low) / span, gamma) * span + low
    out = (out - out.mean()) / (out.std() + 1e-8) * std + mean
    return -out if invert else out


def _low_resolution(channel: np.ndarray, zoom: float) -> np.ndarray:
    rows, cols = channel.shape
    small = [max(1, int(round(size * zoom))) for size in (rows, cols)]
    pick = [
        np.minimum(((np.arange(s) + 0.5) * n / s).astype(int), n - 1)
        for s, n in zip(small, (rows, cols), strict=True)
    ]
    reduced = channel[np.ix_(*pick)]
    back = [(np.arange(n) + 0.5) * s / n - 0.5 for s, n in zip(small, (rows, cols), strict=True)]
    grid = np.stack(np.meshgrid(*back, indexing="ij"))
    return ndimage.map_coordinates(reduced, grid, order=1, mode="nearest")


def augment_intensity(
    image: np.ndarray,
    *,
    config: AugmentConfig,
    rng: np.random.Generator,
    channel_groups: Sequence[Sequence[int]] | None = None,
    channel_scale: Sequence[float] | None = None,
) -> np.ndarray:
    """Noise, blur, brightness, contrast, low resolution and gamma, in nnU-Net's order.

    Parameters
    ----------
    image : ndarray of shape (C, P, Q), float
        A patch; not modified.
    config : AugmentConfig
        Probabilities and ranges.
    rng : numpy.random.Generator
        Source of randomness.
    channel_groups : sequence of sequences of int, optional
        Channels that share one draw of blur, brightness, contrast, low resolution and gamma
        (e.g. ``[[0, 1, 2, 3], [4]]`` for four angles and a phase). Default: each channel alone.
    channel_scale : sequence of float, optional
        Typical standard deviation of each channel, for the noise level. Default: the patch's.

    Returns
    -------
    ndarray of shape (C, P, Q), float32
    """
    out = np.array(image, dtype=np.float32, copy=True)
    if not config.enabled:
        return out
    groups = [list(g) for g in channel_groups] if channel_groups else [[c] for c in range(len(out))]
    scale = np.asarray(channel_scale if channel_scale is not None else out.std(axis=(1, 2)), float)
    if rng.random() < config.p_noise:
        sd = np.sqrt(rng.uniform(*config.noise_variance)) * np.maximum(scale, 1e-6)
        out += (rng.standard_normal(out.shape) * sd[:, None, None]).astype(np.float32)
    if rng.random() < config.p_blur:
        for group in groups:
            if rng.random() < config.p_blur_per_channel:
                sigma = rng.uniform(*config.blur_sigma)
                out[group] = ndimage.gaussian_filter(out[group], sigma=(0, sigma, sigma))
    for group in groups:
        if rng.random() < config.p_brightness:
            out[group] *= rng.uniform(*config.brightness)
    for group in groups:
        if rng.random() < config.p_contrast:
            values = out[group]
            factor, mean = _draw_factor(config.contrast, rng), values.mean()
            out[group] = np.clip((values - mean) * factor + mean, values.min(), values.max())
    if rng.random() < config.p_low_resolution:
        for group in groups:
            if rng.random() < config.p_low_resolution_per_channel:
                zoom = rng.uniform(*config.low_resolution)
                out[group] = np.stack([_low_resolution(out[c], zoom) for c in group])
    for probability, invert in ((config.p_gamma_inverted, True), (config.p_gamma, False)):
        if rng.random() < probability:
            for group in groups:
                out[group] = _gamma(out[group], _draw_factor(config.gamma, rng), invert=invert)
    return out.astype(np.float32, copy=False)


def augment_patch(
    image: np.ndarray,
    labels: np.ndarray,
    *,
    center: tuple[float, float],
    patch_shape: tuple[int, int],
    config: AugmentConfig,
    rng: np.random.Generator,
    channel_groups: Sequence[Sequence[int]] | None = None,
    channel_scale: Sequence[float] | None = None,
    cell_diameter_px: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Cut one augmented patch: spatial transform of image and labels, then intensity transforms.

    Parameters
    ----------
    image : ndarray of shape (C, M, N), float
        All input channels (e.g. four angles then the phase); not modified.
    labels : ndarray of shape (M, N), integer
        Instance labels; not modified.
    center, patch_shape : see ``crop_transformed``
    config : AugmentConfig
    rng : numpy.random.Generator
    channel_groups, channel_scale : see ``augment_intensity``
    cell_diameter_px : float, optional
        The image's median cell diameter, for the scale augmentation by cell size
        (``config.p_diameter``); see ``draw_spatial``.

    Returns
    -------
    image_patch : ndarray of shape (C, P, Q), float32
    labels_patch : ndarray of shape (P, Q)

    Examples
    --------
    >>> image = np.arange(64, dtype=np.float32).reshape(1, 8, 8)
    >>> labels = (image[0] > 40).astype(np.int32)
    >>> off = AugmentConfig(enabled=False)
    >>> patch, lab = augment_patch(image, labels, center=(3.5, 3.5), patch_shape=(8, 8),
    ...                            config=off, rng=np.random.default_rng(0))
    >>> bool(np.array_equal(patch, image)) and bool(np.array_equal(lab, labels))
    True
    """
    spatial = draw_spatial(config, rng, cell_diameter_px=cell_diameter_px)
    image_patch, labels_patch = crop_transformed(
        image, labels, center=center, patch_shape=patch_shape, spatial=spatial
    )
    image_patch = augment_intensity(
        image_patch,
        config=config,
        rng=rng,
        channel_groups=channel_groups,
        channel_scale=channel_scale,
    )
    return image_patch, labels_patch
