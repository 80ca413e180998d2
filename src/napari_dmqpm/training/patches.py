"""Augmented training patches as a torch ``IterableDataset``, seeded by (seed, epoch, worker).

Each item is a dict of arrays: ``angles`` (4, P, Q) float32 when the samples have them,
``phase`` (1, P, Q) float32, ``classes`` (P, Q) int64 and, when asked, ``distance`` (P, Q)
float32. Patches are centred on a random pixel, except the last third of every batch (nnU-Net's
``oversample_foreground_percent = 0.33``), which is centred on a random cell pixel. The targets are
computed from the augmented labels, so boundaries keep their width after scaling.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
from torch.utils.data import IterableDataset, get_worker_info

from napari_dmqpm.inference.diameter import cell_diameters
from napari_dmqpm.training.augment import AugmentConfig, augment_patch
from napari_dmqpm.training.data import Sample, simulate_samples
from napari_dmqpm.training.targets import TargetConfig, make_targets

_MAX_FOREGROUND_POINTS = 20_000


def _foreground_points(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    points = np.flatnonzero(labels)
    if points.size > _MAX_FOREGROUND_POINTS:
        points = rng.choice(points, _MAX_FOREGROUND_POINTS, replace=False)
    return points


def _median_diameter(labels: np.ndarray) -> float | None:
    diameters = cell_diameters(labels, exclude_border=False)
    return float(np.median(diameters)) if diameters.size else None


def is_foreground_slot(index: int, *, batch_size: int, fraction: float) -> bool:
    """nnU-Net's rule: the last ``fraction`` of each batch is centred on foreground.

    Parameters
    ----------
    index : int
        Position of the patch in the stream of patches.
    batch_size : int
        Patches per batch.
    fraction : float
        Share of each batch centred on foreground, in [0, 1].

    Examples
    --------
    >>> [is_foreground_slot(i, batch_size=3, fraction=0.33) for i in range(3)]
    [False, False, True]
    """
    return index % batch_size >= round(batch_size * (1.0 - fraction))


class PatchDataset(IterableDataset):
    """A finite stream of augmented patches for one epoch.

    Parameters
    ----------
    samples : sequence of Sample, or callable ``(n_workers, worker, rng) -> list of Sample``
        The images, or a factory that makes this worker's images (the simulator).
    n_patches : int
        Patches in the epoch, over all workers.
    patch_shape : (int, int)
        ``(P, Q)``.
    batch_size : int
        For the foreground-oversampling slots.
    seed, epoch : int
        The stream depends only on ``(seed, epoch, worker)``.
    augment : AugmentConfig
    targets : TargetConfig
        ``targets.distance`` decides whether items carry ``distance``.
    foreground_fraction : float
        nnU-Net's ``oversample_foreground_percent``.
    channel_scale : sequence of float, optional
        Typical standard deviation per channel (angles then phase) for the noise level.
    """

    def __init__(
        self,
        samples: Sequence[Sample] | Callable[[int, int, np.random.Generator], list[Sample]],
        *,
        n_patches: int,
        patch_shape: tuple[int, int],
        batch_size: int,
        seed: int,
        epoch: int,
        augment: AugmentConfig | None = None,
        targets: TargetConfig | None = None,
        foreground_fraction: float = 0.33,
        channel_scale: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        self.samples = samples if callable(samples) else list(samples)
        if not callable(samples) and not self.samples:
            raise ValueError("PatchDataset needs at least one training sample; got none")
        self.n_patches = int(n_patches)
        rows, cols = patch_shape
        self.patch_shape = (int(rows), int(cols))
        self.batch_size = int(batch_size)
        self.seed, self.epoch = int(seed), int(epoch)
        self.augment = augment or AugmentConfig()
        self.targets = targets or TargetConfig()
        self.foreground_fraction = float(foreground_fraction)
        self.channel_scale = None if channel_scale is None else list(channel_scale)

    def __len__(self) -> int:
        return self.n_patches

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        info = get_worker_info()
        n_workers, worker = (1, 0) if info is None else (info.num_workers, info.id)
        rng = np.random.default_rng([self.seed, self.epoch, worker])
        samples = self.samples(n_workers, worker, rng) if callable(self.samples) else self.samples
        if not samples:
            return
        points = [_foreground_points(s.labels, rng) for s in samples]
        diameters = [_median_diameter(s.labels) for s in samples]
        for index in range(worker, self.n_patches, n_workers):
            which = int(rng.integers(len(samples)))
            foreground = is_foreground_slot(
                index, batch_size=self.batch_size, fraction=self.foreground_fraction
            )
            yield self.patch(
                samples[which],
                points[which],
                foreground=foreground,
                rng=rng,
                cell_diameter_px=diameters[which],
            )

    def patch(
        self,
        sample: Sample,
        points: np.ndarray,
        *,
        foreground: bool,
        rng: np.random.Generator,
        cell_diameter_px: float | None = None,
    ) -> dict[str, np.ndarray]:
        """One augmented patch and its targets from ``sample``.

        ``cell_diameter_px`` (the sample's median cell diameter) drives the scale augmentation
        by cell size (``AugmentConfig.p_diameter``).

        Parameters
        ----------
        sample : Sample
            The image and labels to cut from.
        points : ndarray of int
            Flat indices of the foreground pixels of ``sample`` (patch centres to draw from).
        foreground : bool
            Centre the patch on a foreground pixel (else anywhere).
        rng : numpy.random.Generator
            The random source of the centre and the augmentation.
        cell_diameter_px : float, optional
            Median cell diameter of ``sample``, px: enables the zoom to the training diameters.
        """
        rows, cols = sample.shape
        if foreground and points.size:
            row, col = np.unravel_index(int(points[rng.integers(points.size)]), (rows, cols))
            center = (float(row), float(col))
        else:
            center = (rng.uniform(0, rows - 1), rng.uniform(0, cols - 1))
        channels = (
            [sample.phase[None]] if sample.angles is None else [sample.angles, sample.phase[None]]
        )
        image = np.concatenate(channels, axis=0)
        groups = [[0]] if sample.angles is None else [[0, 1, 2, 3], [4]]
        scale = self.channel_scale
        if scale is not None and len(scale) != len(image):
            scale = scale[-len(image) :]
        image_patch, labels_patch = augment_patch(
            image,
            sample.labels,
            center=(float(center[0]), float(center[1])),
            patch_shape=self.patch_shape,
            config=self.augment,
            rng=rng,
            channel_groups=groups,
            channel_scale=scale,
            cell_diameter_px=cell_diameter_px,
        )
        targets = make_targets(labels_patch, config=self.targets)
        item = {"phase": image_patch[-1:], "classes": targets.classes.astype(np.int64)}
        if sample.angles is not None:
            item["angles"] = image_patch[:4]
        if targets.distance is not None:
            item["distance"] = targets.distance
        return item


class SimulatorFactory:
    """A ``PatchDataset`` sample source: each worker simulates its share of ``n_fields``.

    A class rather than a closure, so DataLoader workers started with "spawn" can pickle it.

    Parameters
    ----------
    spec : SimulatorData
        What to simulate.
    n_fields : int
        Fields per epoch over all workers.
    fixed : sequence of Sample
        Fixed images (folders, arrays) added to every worker's simulated ones.
    """

    def __init__(self, spec, *, n_fields: int, fixed: Sequence[Sample] = ()) -> None:
        self.spec, self.n_fields, self.fixed = spec, int(n_fields), list(fixed)

    def __call__(self, n_workers: int, worker: int, rng: np.random.Generator) -> list[Sample]:
        """Simulate the images of worker ``worker`` for one epoch, drawn with ``rng``."""
        share = len(range(worker, self.n_fields, n_workers))
        return simulate_samples(self.spec, n=max(share, 1), rng=rng) + self.fixed
