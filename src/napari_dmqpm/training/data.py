"""Training images with instance labels: from the simulator, from folders, from arrays.

Every source gives a list of :class:`Sample` (one frame each: optional angles, phase, labels).
:mod:`napari_dmqpm.training.patches` cuts augmented patches from them. Validation comes from
fixed simulated fields, from validation folders, or from :func:`split_samples`, which works with
a single image by holding out a strip of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_dmqpm.training.config import SimulatorData

_IMAGE_SUFFIXES = (".tif", ".tiff", ".png")


def _as_int32_labels(labels: np.ndarray, name: str) -> np.ndarray:
    """Instance labels as int32: refused when negative, renumbered 1..n when too large.

    A plain cast would wrap label IDs of 2**31 and above (uint32, int64, uint64 images) to
    negative numbers or to 0, so those cells would silently become background.

    Examples
    --------
    >>> _as_int32_labels(np.array([[0, 2**40], [7, 2**40]], np.int64), "a").tolist()
    [[0, 2], [1, 2]]
    """
    if labels.size == 0:
        return labels.astype(np.int32, copy=False)
    low, high = labels.min(), labels.max()
    if low < 0:
        raise ValueError(
            f"labels of {name or 'an image'} hold negative values (min {int(low)}); instance "
            "labels are 0 for background and a positive integer per cell"
        )
    if high <= np.iinfo(np.int32).max:
        return labels.astype(np.int32, copy=False)
    from skimage.segmentation import relabel_sequential

    return relabel_sequential(labels)[0].astype(np.int32)


@dataclass(frozen=True)
class Sample:
    """One training frame.

    Attributes
    ----------
    phase : ndarray of shape (M, N), float32
        Phase in radians.
    labels : ndarray of shape (M, N), int32
        Instance labels, 0 background.
    angles : ndarray of shape (4, M, N), float32, or None
        Intensities at 0, 45, 90, 135 degrees; None for phase-only data.
    name : str
        Where it came from (file stem, ``"sim-3"``, ``"array-0"``), for reports.
    """

    phase: np.ndarray
    labels: np.ndarray
    angles: np.ndarray | None = None
    name: str = ""

    def __post_init__(self) -> None:
        phase, labels = np.asarray(self.phase), np.asarray(self.labels)
        if phase.ndim != 2:
            raise ValueError(f"phase must have shape (M, N); got phase.shape={phase.shape}")
        if labels.shape != phase.shape:
            raise ValueError(
                f"labels must have the phase's shape {phase.shape}; got labels.shape={labels.shape}"
            )
        if not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels must be integers; got labels.dtype={labels.dtype}")
        if self.angles is not None and np.shape(self.angles) != (4, *phase.shape):
            raise ValueError(
                f"angles must have shape (4, M, N) = {(4, *phase.shape)}; "
                f"got angles.shape={np.shape(self.angles)}"
            )
        object.__setattr__(self, "phase", phase.astype(np.float32, copy=False))
        object.__setattr__(self, "labels", _as_int32_labels(labels, self.name))
        if self.angles is not None:
            object.__setattr__(self, "angles", np.asarray(self.angles, dtype=np.float32))

    @property
    def shape(self) -> tuple[int, int]:
        """``(M, N)``."""
        return (int(self.phase.shape[0]), int(self.phase.shape[1]))

    def crop(self, rows: slice, cols: slice, *, name: str | None = None) -> Sample:
        """The sub-image ``[rows, cols]`` (copies).

        Parameters
        ----------
        rows, cols : slice
            The window.
        name : str, optional
            The crop's name (default: the sample's).
        """
        angles = None if self.angles is None else self.angles[:, rows, cols].copy()
        return Sample(
            self.phase[rows, cols].copy(), self.labels[rows, cols].copy(), angles, name or self.name
        )


def simulate_samples(spec: SimulatorData, *, n: int, rng=None, shape=None) -> list[Sample]:
    """Simulate ``n`` fields with densities and pixel sizes drawn from ``spec``.

    Parameters
    ----------
    spec : SimulatorData
        Densities, pixel-size range, field shape and simulator overrides.
    n : int
        Number of fields.
    rng : int or numpy.random.Generator, optional
        Seed or generator; the same seed gives the same fields.
    shape : (int, int), optional
        Field shape; default ``spec.field_shape``.

    Returns
    -------
    list of Sample
        With angles (counts), phase (radians) and labels.
    """
    from napari_dmqpm.simulation import SimulationConfig, simulate_field

    rng = np.random.default_rng(rng)
    samples = []
    for index in range(int(n)):
        density = spec.densities[int(rng.integers(len(spec.densities)))]
        pixel_size = float(rng.uniform(*spec.pixel_size_um))
        config = SimulationConfig(
            shape=tuple(shape or spec.field_shape),
            density=density,
            pixel_size_um=pixel_size,
            **spec.overrides,
        )
        field = simulate_field(config, rng=rng)
        samples.append(Sample(field.phase, field.labels, field.angles, f"sim-{index}-{density}"))
    return samples


def validation_fields(spec: SimulatorData, *, seed: int) -> list[Sample]:
    """The fixed simulated validation set: ``spec.n_val_fields`` fields, densities in turn.

    Parameters
    ----------
    spec : SimulatorData
        What to simulate (densities, field shape, number of validation fields).
    seed : int
        Seed of the validation set (the same for every epoch and every resumed run).
    """
    rng = np.random.default_rng([seed, 1_000_003])
    samples = []
    for index in range(spec.n_val_fields):
        density = spec.densities[index % len(spec.densities)]
        one = SimulatorData(
            densities=(density,),
            pixel_size_um=spec.pixel_size_um,
            overrides=spec.overrides,
        )
        sample = simulate_samples(one, n=1, rng=rng, shape=spec.val_shape)[0]
        samples.append(Sample(sample.phase, sample.labels, sample.angles, f"val-{index}-{density}"))
    return samples


def _as_frames(array, *, name: str, frame_ndim: int) -> list[np.ndarray]:
    if isinstance(array, (list, tuple)):  # images of different sizes
        return [f for item in array for f in _as_frames(item, name=name, frame_ndim=frame_ndim)]
    array = np.asarray(array)
    if array.ndim == frame_ndim:
        return [array]
    if array.ndim == frame_ndim + 1:
        return list(array)
    raise ValueError(
        f"{name} must have {frame_ndim} or {frame_ndim + 1} dimensions (one frame or a stack); "
        f"got {name}.shape={array.shape}"
    )


def samples_from_arrays(phase, labels, *, angles=None, name: str = "array") -> list[Sample]:
    """Samples from in-memory arrays (what the napari fine-tune widget passes).

    Parameters
    ----------
    phase : ndarray of shape (M, N) or (T, M, N), or a list of them
        Phase in radians; a list holds images of different sizes.
    labels : ndarray of shape (M, N) or (T, M, N), integer, or a list of them
        Corrected instance labels, same shapes as ``phase``.
    angles : ndarray of shape (4, M, N) or (T, 4, M, N), or a list of them, optional
        The four angle images.
    name : str
        Prefix of the sample names.

    Returns
    -------
    list of Sample
        One per frame; frames whose labels are all 0 are dropped (nothing was annotated).

    Raises
    ------
    ValueError
        Mismatched shapes, or no frame with any label.
    """
    phases = _as_frames(phase, name="phase", frame_ndim=2)
    label_frames = _as_frames(labels, name="labels", frame_ndim=2)
    if len(label_frames) != len(phases):
        raise ValueError(
            f"labels must have one frame per phase frame ({len(phases)}); got {len(label_frames)}"
        )
    angle_frames: Sequence[np.ndarray | None] = [None] * len(phases)
    if angles is not None:
        angle_frames = _as_frames(angles, name="angles", frame_ndim=3)
        if len(angle_frames) != len(phases):
            raise ValueError(
                f"angles must have one frame per phase frame ({len(phases)}); "
                f"got {len(angle_frames)}"
            )
    for index, (p, lab) in enumerate(zip(phases, label_frames, strict=True)):
        if np.shape(lab) != np.shape(p):
            raise ValueError(
                f"labels must have the phase's shape {np.shape(p)}; got frame {index} of "
                f"shape {np.shape(lab)}"
            )
    samples = [
        Sample(p, lab, a, f"{name}-{i}")
        for i, (p, lab, a) in enumerate(zip(phases, label_frames, angle_frames, strict=True))
        if np.any(np.asarray(lab))
    ]
    if not samples:
        raise ValueError("labels are empty (all 0): paint or correct some cells before training")
    return samples


def _read_labels(path: Path) -> np.ndarray:
    import tifffile

    array = np.asarray(tifffile.imread(path))
    while array.ndim > 2 and array.shape[0] == 1:
        array = array[0]
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{path}: labels must be integers; got dtype {array.dtype}")
    return array


def label_pairs(folder: str | Path) -> list[tuple[Path, Path]]:
    """``(image, labels)`` paths of a folder: every ``<stem>.tif`` with a ``<stem>_labels.tif``.

    Parameters
    ----------
    folder : str or Path
        A folder of training images and their ``_labels.tif``.

    Raises
    ------
    FileNotFoundError
        The folder is missing or holds no pair.
    ValueError
        Some images have no labels file (all of them are named).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"training folder does not exist: {str(folder)!r}")
    files = {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in _IMAGE_SUFFIXES}
    labels = {stem[: -len("_labels")]: p for stem, p in files.items() if stem.endswith("_labels")}
    images = {stem: p for stem, p in files.items() if not stem.endswith("_labels")}
    unlabelled = sorted(set(images) - set(labels))
    if unlabelled:
        raise ValueError(
            f"{len(unlabelled)} image(s) in {str(folder)!r} have no <stem>_labels.tif: "
            + ", ".join(images[s].name for s in unlabelled[:10])
        )
    pairs = [(images[s], labels[s]) for s in sorted(set(images) & set(labels))]
    if not pairs:
        raise FileNotFoundError(f"no <stem>.tif + <stem>_labels.tif pairs in {str(folder)!r}")
    return pairs


def read_folder(folder: str | Path, **read_options) -> list[Sample]:
    """Samples from a folder of images (any kind ``read_acquisition`` reads) and label TIFFs.

    Parameters
    ----------
    folder : str or Path
        Holds ``<stem>.tif`` (ssQPM stack, angles stack, raw mosaic or phase map; time-lapses
        give one sample per frame) and ``<stem>_labels.tif`` of shape (M, N) or (T, M, N).
    **read_options
        Passed to :func:`napari_dmqpm.io.read_acquisition` (e.g. ``phase_unit``).

    Returns
    -------
    list of Sample
    """
    from napari_dmqpm.io import read_acquisition

    samples = []
    for image_path, labels_path in label_pairs(folder):
        # training holds its frames in memory: read eagerly, not as a lazy dask stack
        acquisition = read_acquisition(image_path, **({"lazy": False} | dict(read_options)))
        labels = _read_labels(labels_path)
        if labels.ndim == 2:
            labels = labels[None]
        if labels.shape != acquisition.phase.shape:
            raise ValueError(
                f"{labels_path.name} has shape {labels.shape} (T, M, N) but {image_path.name} "
                f"has frames of shape {acquisition.phase.shape}"
            )
        for t in range(acquisition.n_frames):
            angles = None if acquisition.angles is None else acquisition.angles[t]
            name = image_path.stem if acquisition.n_frames == 1 else f"{image_path.stem}[{t}]"
            samples.append(Sample(acquisition.phase[t], labels[t], angles, name))
    return samples


def split_samples(
    samples: Sequence[Sample], *, val_fraction: float = 0.2, min_images: int = 5, rng=None
) -> tuple[list[Sample], list[Sample]]:
    """Split into training and validation, with at least one validation image, even from one.

    From ``min_images`` images up, ``round(val_fraction * n)`` whole images (at least one, chosen
    with ``rng``) are held out. Below that, each image is cut in two along its longer axis: the
    last ``val_fraction`` of it is a validation tile, the rest trains (so no pixel is in both).

    Parameters
    ----------
    samples : sequence of Sample
    val_fraction : float
        In (0, 1).
    min_images : int
        Fewest images for a split by whole images.
    rng : int or numpy.random.Generator, optional
        Picks the held-out images.

    Returns
    -------
    train, val : list of Sample

    Examples
    --------
    >>> one = Sample(np.zeros((100, 60), np.float32), np.ones((100, 60), np.int32))
    >>> train, val = split_samples([one], val_fraction=0.2)
    >>> train[0].shape, val[0].shape
    ((80, 60), (20, 60))
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1); got {val_fraction!r}")
    samples = list(samples)
    if not samples:
        raise ValueError("split_samples needs at least one sample; got none")
    if len(samples) >= min_images:
        n_val = max(1, int(round(val_fraction * len(samples))))
        held = set(np.random.default_rng(rng).permutation(len(samples))[:n_val].tolist())
        train = [s for i, s in enumerate(samples) if i not in held]
        return train, [s for i, s in enumerate(samples) if i in held]
    train, val = [], []
    for sample in samples:
        rows, cols = sample.shape
        axis_len = max(rows, cols)
        cut = axis_len - max(1, int(round(val_fraction * axis_len)))
        if rows >= cols:
            parts = (slice(0, cut), slice(None)), (slice(cut, None), slice(None))
        else:
            parts = (slice(None), slice(0, cut)), (slice(None), slice(cut, None))
        train.append(sample.crop(*parts[0], name=f"{sample.name}-train"))
        val.append(sample.crop(*parts[1], name=f"{sample.name}-val"))
    return train, val
