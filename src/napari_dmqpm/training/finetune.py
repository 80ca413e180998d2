"""Fine-tuning a checkpoint on in-memory images and corrected labels, within a time budget.

This is what the napari fine-tune widget and ``dmqpm finetune`` run. Validation works with a
single image (a held-out strip of it, see :func:`~napari_dmqpm.training.data.split_samples`).
Epoch 0 scores the base model on that validation split, so ``best/`` always exists and
"Dice before" is known; afterwards ``best/`` holds the weights with the best mean of
validation Dice and F1, which is what Stop keeps.

The time budget (``minutes``) is wall time for the whole run, validation and saving included:
an epoch that would not end, validated and saved, within the budget is not started (see
:class:`BudgetGuard`).
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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
        The same for F1 at IoU 0.5 (``f1_after`` is that of the best epoch, with the tuned
        thresholds when they were tuned).
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
    select_by: str = "dice_f1",
    **changes,
) -> TrainConfig:
    """The ``TrainConfig`` of a fine-tuning run (no simulator; data passed in memory).

    With ``minutes`` and no ``epochs``, epochs are unlimited (10 000) and the budget stops
    the run; the poly schedule then decays over the budget. ``best/`` keeps the epoch of the
    best mean of validation Dice and F1 (``select_by``): on the real Q-PHASE set, fine-tuned
    on dense_011, the best-Dice epoch (4 of 22) scored F1 0.734 on the other 14 images and
    the last one (also the best by Dice and F1) 0.799.
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
        select_by=select_by,
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


#: Share of a fine-tuning budget kept for tuning the post-processing thresholds afterwards.
TUNING_SHARE = 0.1

#: Fewest validation cells on which :func:`iter_finetune` tunes the thresholds by default.
#: Five thresholds tuned on the ~20 cells of one image's held-out strip fit that strip more
#: than the user's other images: on the real Q-PHASE set (benchmarks/finetune_real.py) they
#: cost F1 on the other 14 images after fine-tuning on two of three images (dense_011 0.799
#: -> 0.764, qpi15 0.596 -> 0.579; dense_003 0.774 -> 0.801).
MIN_TUNING_CELLS = 100


def count_cells(samples) -> int:
    """Number of labelled cells in ``samples`` (a cell cut by a split counts in each part)."""
    return int(sum(np.count_nonzero(np.unique(s.labels)) for s in samples))


class BudgetGuard:
    """``should_stop`` for a run that must end, validated and saved, before a deadline.

    Polled by the training loop before every iteration. It learns the time of an iteration
    (the mean over the current epoch) and the time from an epoch's last poll to its report
    (the last iteration, validation and saving; for epoch 0, the whole epoch with the run's
    setup), and says stop when the iterations left in this epoch and that tail would end
    past the deadline. At the start of an epoch that stops the run before any of the epoch's
    work, so nothing is lost: the previous epoch is already validated and saved.

    Parameters
    ----------
    deadline : float
        ``time.monotonic()`` by which the run must be over.
    iterations_per_epoch : int
        Iterations in one epoch.
    should_stop : callable returning bool, optional
        The user's stop (a GUI's Stop button), polled first.
    """

    def __init__(
        self,
        deadline: float,
        iterations_per_epoch: int,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        self.deadline, self.iterations = float(deadline), int(iterations_per_epoch)
        self.should_stop = should_stop
        #: Seconds from an epoch's last poll to its report (the longest seen).
        self.reserve, self._measured = 0.0, False
        #: Mean seconds per iteration (None before the second poll).
        self.step: float | None = None
        #: True once the guard (not the user) stopped the run.
        self.fired = False
        self._polls, self._first, self._last = 0, 0.0, 0.0

    def epoch_done(self, *, since: float | None = None) -> None:
        """Call when an epoch's report arrives: learn its tail and start counting anew.

        Parameters
        ----------
        since : float, optional
            ``time.monotonic()`` at which that epoch began, when no iteration ran (epoch 0:
            the run's start). Its whole time, setup included, is the first estimate of the
            tail; the tails measured after training epochs replace it.
        """
        now = time.monotonic()
        if since is not None and not self._measured:
            self.reserve = now - since
        elif self._polls:
            tail = now - self._last
            self.reserve = max(self.reserve, tail) if self._measured else tail
            self._measured = True
        self._polls = 0

    def __call__(self) -> bool:
        """True when the run must stop now (the user asked, or the budget cannot hold)."""
        if self.should_stop is not None and self.should_stop():
            return True
        now = time.monotonic()
        if self._polls == 0:
            self._first = now
        else:
            self.step = (now - self._first) / self._polls
        after_this = max(self.iterations - self._polls - 1, 0)  # iterations before the tail
        self._last, self._polls = now, self._polls + 1
        self.fired = now + after_this * (self.step or 0.0) + self.reserve > self.deadline
        return self.fired


def finetune_split(phase, labels, *, angles=None, val_fraction: float = 0.2, seed: int = 0):
    """The training and validation samples :func:`iter_finetune` makes of its inputs.

    Returns
    -------
    train, val : list of Sample
        See :func:`~napari_dmqpm.training.data.split_samples` (a held-out strip of each image
        when there are fewer than 5).
    """
    samples = samples_from_arrays(phase, labels, angles=angles, name="finetune")
    return split_samples(samples, val_fraction=val_fraction, rng=seed)


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
    tune_thresholds: bool | None = None,
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
        When it returns True the epoch in progress is dropped.
    val_fraction : float
        Share held out for validation (a strip of each image when there are fewer than 5).
    tune_thresholds : bool, optional
        After training, tune the post-processing thresholds of ``best/`` on the validation
        split (:func:`~napari_dmqpm.training.tuning.tune_postprocess`, starting from the base
        model's) and store them with it; within the budget, which keeps
        :data:`TUNING_SHARE` of it for this. None (default): only when the validation split
        holds at least :data:`MIN_TUNING_CELLS` cells; otherwise ``best/`` keeps the base
        model's thresholds.
    augment : AugmentConfig, optional
        Augmentations (nnU-Net's defaults).
    **options
        ``minutes`` (default 3), ``epochs``, ``iterations_per_epoch`` (10),
        ``learning_rate`` (1e-3), ``batch_size``, ``patch_size``, ``seed``, ``device``, and any
        other ``TrainConfig`` field (see :func:`finetune_config`). ``minutes`` is wall time
        from this call to the last checkpoint written, validation and saving included; only
        epoch 0 (setup and the base model's validation) always runs, whatever the budget.

    Yields
    ------
    EpochReport
        Epoch 0 is the base model's validation. The last report is the last epoch that fit
        in the budget (its ``stop_reason`` is None when the budget, not the loop, ended it).
    """
    started = time.monotonic()
    config = finetune_config(base=base, out=out, val_fraction=val_fraction, **options)
    if augment is not None:
        config = dataclasses.replace(config, augment=augment)
    train, val = finetune_split(
        phase, labels, angles=angles, val_fraction=val_fraction, seed=config.seed
    )
    config = _fit_patch(config, train)
    if tune_thresholds is None:
        tune_thresholds = count_cells(val) >= MIN_TUNING_CELLS
    if config.minutes is None:
        yield from iter_training(config, samples=train, val_samples=val, should_stop=should_stop)
        deadline = None
    else:
        deadline = started + 60.0 * config.minutes
        share = TUNING_SHARE if tune_thresholds else 0.0
        guard = BudgetGuard(deadline - share * 60.0 * config.minutes,
                            config.iterations_per_epoch, should_stop)  # fmt: skip
        for report in iter_training(config, samples=train, val_samples=val, should_stop=guard):
            guard.epoch_done(since=started if report.epoch == 0 else None)
            yield report
    if tune_thresholds and (should_stop is None or not should_stop()):
        tune_on_validation(Path(out) / BEST, val, device=config.device, deadline=deadline)


def tune_on_validation(folder: Path, samples, *, device: str, deadline: float | None) -> None:
    """Tune the post-processing thresholds of the checkpoint ``folder`` and store them.

    Scored on the validation ``samples``; nothing happens when the folder has no weights.
    """
    from napari_dmqpm.training.tuning import tune_checkpoint

    if not (folder / "model.safetensors").is_file() or not samples:
        return
    tune_checkpoint(
        folder,
        samples,
        tuned_on=f"{len(samples)} held-out validation part(s) of the fine-tuning images",
        device=device,
        from_stored=True,
        should_stop=None if deadline is None else (lambda: time.monotonic() > deadline),
    )


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
    tuning = tuning_record(Path(out) / BEST)
    return FinetuneResult(
        model_dir=Path(out) / BEST,
        dice_before=float(before["val_dice"]),
        dice_after=float(best["val_dice"]),
        f1_before=float(before["val_f1"]),
        f1_after=float(tuning["f1_after"] if tuning else best["val_f1"]),
        reports=tuple(reports),
    )


def tuning_record(folder: str | Path) -> dict | None:
    """The ``postprocessing_tuning`` record of a checkpoint's config.json, if any."""
    import json

    path = Path(folder) / "config.json"
    content = json.loads(path.read_text("utf-8")) if path.is_file() else {}
    return content.get("postprocessing_tuning")


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
