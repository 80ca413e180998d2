"""Fine-tuning a checkpoint on in-memory images and corrected labels, within a time budget.

This is what the napari fine-tune widget and ``dmqpm finetune`` run. Validation works with a
single image (a held-out strip of it, see :func:`~napari_dmqpm.training.data.split_samples`).
Epoch 0 scores the base model on that validation split, so ``best/`` always exists and
"Dice before" is known; afterwards ``best/`` holds the weights with the best validation Dice,
which is what Stop keeps.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from napari_dmqpm.training.augment import AugmentConfig
from napari_dmqpm.training.config import TrainConfig
from napari_dmqpm.training.data import samples_from_arrays, split_samples
from napari_dmqpm.training.loop import EpochReport, iter_training
from napari_dmqpm.training.setup import resolve_checkpoint
from napari_dmqpm.training.state import BEST


@dataclass(frozen=True)
class FinetuneResult:
    """Outcome of :func:`finetune`.

    Attributes
    ----------
    model_dir : Path
        ``<out>/best``: the checkpoint with the best validation Dice (the base model's weights
        if no epoch beat it), with its model card.
    dice_before, dice_after : float
        Validation foreground Dice of the base model and of ``model_dir``.
    f1_before, f1_after : float
        The same for F1 at IoU 0.5 (``f1_after`` is that of the best epoch).
    reports : tuple of EpochReport
        Every report, epoch 0 first.
    """

    model_dir: Path
    dice_before: float
    dice_after: float
    f1_before: float
    f1_after: float
    reports: tuple[EpochReport, ...]


def finetune_config(
    *,
    base: str | Path,
    out: str | Path,
    minutes: float | None = 3.0,
    epochs: int | None = None,
    iterations_per_epoch: int = 10,
    learning_rate: float = 1e-3,
    batch_size: int = 2,
    patch_size: int | tuple[int, int] = 256,
    seed: int = 0,
    device: str = "auto",
    **changes,
) -> TrainConfig:
    """The ``TrainConfig`` of a fine-tuning run (no simulator; data passed in memory).

    With ``minutes`` and no ``epochs``, epochs are unlimited (10 000) and the budget stops
    the run; the poly schedule then decays over the budget.
    """
    if minutes is None and epochs is None:
        raise ValueError("give minutes or epochs (or both); got neither")
    return TrainConfig(
        base_checkpoint=resolve_checkpoint(base),
        simulator=None,
        checkpoint_dir=str(out),
        minutes=minutes,
        epochs=epochs if epochs is not None else 10_000,
        iterations_per_epoch=iterations_per_epoch,
        learning_rate=learning_rate,
        batch_size=batch_size,
        patch_size=patch_size,
        seed=seed,
        device=device,
        **changes,
    )


def _fit_patch(config: TrainConfig, train) -> TrainConfig:
    """Shrink the patch to the training images when they are smaller (multiples of 32)."""
    rows = min(s.shape[0] for s in train)
    cols = min(s.shape[1] for s in train)
    patch = tuple(
        max(32, min(p, n // 32 * 32)) for p, n in zip(config.patch_size, (rows, cols), strict=True)
    )
    return config if patch == config.patch_size else dataclasses.replace(config, patch_size=patch)


def iter_finetune(
    phase,
    labels,
    *,
    base: str | Path,
    out: str | Path,
    angles=None,
    should_stop: Callable[[], bool] | None = None,
    val_fraction: float = 0.2,
    augment: AugmentConfig | None = None,
    **options,
) -> Iterator[EpochReport]:
    """Fine-tune ``base`` on images and labels, yielding an :class:`EpochReport` per epoch.

    Parameters
    ----------
    phase : ndarray of shape (M, N) or (T, M, N), or a list of them
        Phase in radians (one image, several frames, or a list of images of any sizes).
    labels : ndarray of shape (M, N) or (T, M, N), integer, or a list of them
        Corrected instance labels; frames without any label are skipped.
    base : str or Path
        Checkpoint folder (or registered model name) to start from.
    out : str or Path
        Run folder: ``last/`` (resumable) and ``best/`` (the result) go there.
    angles : ndarray of shape (4, M, N) or (T, 4, M, N), or a list of them, optional
        Angle images, for models that take them.
    should_stop : callable returning bool, optional
        Polled before every iteration (the GUI's Stop); ``best/`` keeps the best so far.
    val_fraction : float
        Share held out for validation (a strip of each image when there are fewer than 5).
    augment : AugmentConfig, optional
        Augmentations (nnU-Net's defaults).
    **options
        ``minutes`` (default 3), ``epochs``, ``iterations_per_epoch`` (10),
        ``learning_rate`` (1e-3), ``batch_size``, ``patch_size``, ``seed``, ``device``, and any
        other ``TrainConfig`` field (see :func:`finetune_config`).

    Yields
    ------
    EpochReport
        Epoch 0 is the base model's validation.
    """
    samples = samples_from_arrays(phase, labels, angles=angles, name="finetune")
    config = finetune_config(base=base, out=out, val_fraction=val_fraction, **options)
    if augment is not None:
        config = dataclasses.replace(config, augment=augment)
    train, val = split_samples(samples, val_fraction=val_fraction, rng=config.seed)
    config = _fit_patch(config, train)
    yield from iter_training(config, samples=train, val_samples=val, should_stop=should_stop)


def finetune(
    phase,
    labels,
    *,
    base: str | Path,
    out: str | Path,
    angles=None,
    progress: Callable[[EpochReport], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    **options,
) -> FinetuneResult:
    """Run :func:`iter_finetune` to the end; ``progress`` is called with every report.

    Returns
    -------
    FinetuneResult
        Where the fine-tuned model is and the validation scores before and after.
    """
    reports = []
    for report in iter_finetune(
        phase, labels, base=base, out=out, angles=angles, should_stop=should_stop, **options
    ):
        reports.append(report)
        if progress is not None:
            progress(report)
    return summarize_finetune(out, reports)


def summarize_finetune(out: str | Path, reports) -> FinetuneResult:
    """A :class:`FinetuneResult` from the reports of a fine-tuning run (epoch 0 first)."""
    from napari_dmqpm.training.card import read_history

    history = read_history(out)
    before = next((h for h in history if h["epoch"] == 0), None)
    if before is None:
        raise ValueError(f"{out} holds no epoch-0 validation; was it a fine-tuning run?")
    best_epoch = history[-1]["best_epoch"] if history else 0
    best = next(h for h in history if h["epoch"] == best_epoch)
    return FinetuneResult(
        model_dir=Path(out) / BEST,
        dice_before=float(before["val_dice"]),
        dice_after=float(best["val_dice"]),
        f1_before=float(before["val_f1"]),
        f1_after=float(best["val_f1"]),
        reports=tuple(reports),
    )


def export_model(run_dir: str | Path, destination: str | Path, *, overwrite: bool = False) -> Path:
    """Copy ``<run_dir>/best`` to ``destination`` atomically (a complete folder or nothing).

    Parameters
    ----------
    run_dir : str or Path
        A training or fine-tuning run folder.
    destination : str or Path
        The new model folder, e.g. ``registry.user_model_path(name)``.
    overwrite : bool
        Replace an existing ``destination``.

    Returns
    -------
    Path
        ``destination``.

    Raises
    ------
    FileNotFoundError
        The run has no ``best/`` yet.
    FileExistsError
        ``destination`` exists and ``overwrite`` is False.
    """
    source, destination = Path(run_dir) / BEST, Path(destination)
    if not (source / "model.safetensors").is_file():
        raise FileNotFoundError(f"{run_dir} has no best/ checkpoint yet")
    if destination.exists() and not overwrite:
        raise FileExistsError(f"model folder {destination} exists; pass overwrite=True")
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    try:
        shutil.copytree(source, staging, dirs_exist_ok=True)
        if destination.exists():
            old = staging.with_name(staging.name + ".old")
            destination.rename(old)
            staging.rename(destination)
            shutil.rmtree(old, ignore_errors=True)
        else:
            staging.rename(destination)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return destination
