"""Fine-tuning a checkpoint on in-memory images and corrected labels, within a time budget.

This is what the napari fine-tune widget and ``dmqpm finetune`` run. Validation works with a
single image (a held-out strip of it, see :func:`~napari_dmqpm.training.data.split_samples`).
Epoch 0 scores the base model on that validation split, so ``best/`` always exists and
"Dice before" is known; afterwards ``best/`` holds the weights with the best mean of
validation Dice and F1, which is what Stop keeps. When no epoch beats the base model, the
result says so (``FinetuneResult.improved`` is False) and :func:`export_model` refuses to
install the base's weights under a new name.

The time budget (``minutes``) is wall time for the whole run, validation and saving included.
A budget too short for one training epoch is refused before anything is written
(:func:`~napari_dmqpm.training.budget.check_budget`); afterwards an epoch that would not end,
validated and saved, within the budget is not started (see :class:`BudgetGuard`).
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_dmqpm.training.augment import AugmentConfig
from napari_dmqpm.training.budget import (  # BudgetTooShortError: re-exported
    BudgetGuard,
    BudgetTooShortError,  # noqa: F401
    check_budget,
)
from napari_dmqpm.training.config import TrainConfig
from napari_dmqpm.training.data import samples_from_arrays, split_samples
from napari_dmqpm.training.loop import EpochReport, iter_training
from napari_dmqpm.training.resume import check_resume, data_digest
from napari_dmqpm.training.setup import resolve_checkpoint
from napari_dmqpm.training.state import BEST


@dataclass(frozen=True)
class FinetuneResult:
    """Outcome of :func:`finetune`.

    Attributes
    ----------
    model_dir : Path
        ``<out>/best``: the checkpoint with the best validation score (the base model's
        weights if no epoch beat it), with its model card.
    dice_before, dice_after : float
        Validation foreground Dice of the base model and of ``model_dir``.
    f1_before, f1_after : float
        The same for F1 at IoU 0.5 (``f1_after`` is that of the best epoch, with the tuned
        thresholds when they were tuned).
    reports : tuple of EpochReport
        Every report, epoch 0 first.
    improved : bool
        Some epoch beat the base model's validation score (``select_by``). When False,
        ``model_dir`` holds the base model's weights and thresholds: nothing to install.
    best_epoch, epochs, iterations : int
        The epoch of ``model_dir``, the epochs run and the optimizer steps taken.
    minutes : float
        Wall time of the run, in minutes (setup, training, validation, saving and threshold
        tuning; summed over resumes, except the setup of earlier sessions).
    """

    model_dir: Path
    dice_before: float
    dice_after: float
    f1_before: float
    f1_after: float
    reports: tuple[EpochReport, ...]
    improved: bool = True
    best_epoch: int = 0
    epochs: int = 0
    iterations: int = 0
    minutes: float = 0.0

    def format(self) -> str:
        """One line: what the run did and whether it beat the base model."""
        done = f"{self.epochs} epochs, {self.iterations} optimizer steps, {self.minutes:.1f} min"
        if not self.improved:
            return (
                "no improvement: the base model was kept (no epoch beat its validation Dice "
                f"{self.dice_before:.3f}, F1@0.5 {self.f1_before:.3f}; {done})"
            )
        return (
            f"{done}; validation Dice {self.dice_before:.3f} (base) -> {self.dice_after:.3f}, "
            f"F1@0.5 {self.f1_before:.3f} -> {self.f1_after:.3f} (best epoch {self.best_epoch})"
        )


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

    Parameters
    ----------
    base : str or Path
        Checkpoint folder (or model name) to start from.
    out : str or Path
        Run folder.
    minutes : float or None
        Wall-clock budget (None: ``epochs`` alone ends the run).
    epochs : int, optional
        Most epochs (default: as many as the budget allows).
    iterations_per_epoch : int
        Optimizer steps per epoch.
    learning_rate : float
        Initial learning rate of the poly schedule.
    batch_size : int
        Patches per optimizer step.
    patch_size : int or (int, int)
        Patch side(s), px.
    seed : int
        Seed of the patches and augmentation.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"mps"``.
    select_by : str
        Validation score that picks the best epoch (see ``TrainConfig.select_by``).
    **changes
        Any other ``TrainConfig`` field.
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
        patch_size=(patch_size, patch_size) if isinstance(patch_size, int) else patch_size,
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
    """Number of labelled cells in ``samples`` (a cell cut by a split counts in each part).

    Parameters
    ----------
    samples : sequence of Sample
        Images with their labels.
    """
    return int(sum(np.count_nonzero(np.unique(s.labels)) for s in samples))


def finetune_split(
    phase,
    labels,
    *,
    angles=None,
    val_fraction: float = 0.2,
    seed: int = 0,
    diameter_px: float | None = None,
):
    """The training and validation samples :func:`iter_finetune` makes of its inputs.

    ``diameter_px``: the base model's trained cell diameter; each image is first resampled to
    it (:func:`at_model_scale`).

    Parameters
    ----------
    phase : ndarray or list of ndarray
        Phase image(s), as :func:`iter_finetune` takes them.
    labels : ndarray or list of ndarray
        Their corrected labels.
    angles : ndarray or list of ndarray, optional
        Angle images, for models that take them.
    val_fraction : float
        Share held out for validation.
    seed : int
        Seed of the split.
    diameter_px : float, optional
        Median cell diameter the model was trained at: the samples are resampled to it.

    Returns
    -------
    train, val : list of Sample
        See :func:`~napari_dmqpm.training.data.split_samples` (a held-out strip of each image
        when there are fewer than 5).
    """
    samples = samples_from_arrays(phase, labels, angles=angles, name="finetune")
    samples = at_model_scale(samples, diameter_px)
    return split_samples(samples, val_fraction=val_fraction, rng=seed)


#: Images whose median cell diameter is within this fraction of the model's are not resampled.
SCALE_TOLERANCE = 0.05


def at_model_scale(samples, diameter_px: float | None) -> list:
    """Each sample resampled so that its median cell diameter becomes ``diameter_px``.

    Inference resamples every image to the diameter the model was trained at
    (``cell_diameter_px`` of its checkpoint); fine-tuning shows the network the user's cells
    at that same scale, so the fine-tuned model keeps the base's trained diameter, and a run
    that keeps the base's weights (no epoch beat it) is not given another one. Phase and
    angles are resampled bilinearly (antialiased when shrinking), labels by nearest
    neighbour. Samples without cells, within :data:`SCALE_TOLERANCE` of the diameter, or with
    ``diameter_px`` None are returned as they are.

    Parameters
    ----------
    samples : sequence of Sample
        Images with their labels.
    diameter_px : float or None
        Target median cell diameter, px (None: unchanged).
    """
    from skimage.transform import resize as resize_image

    from napari_dmqpm.inference.diameter import MIN_CELLS, cell_diameters
    from napari_dmqpm.inference.predict import resize
    from napari_dmqpm.training.data import Sample

    if not diameter_px:
        return list(samples)
    out = []
    for sample in samples:
        diameters = cell_diameters(sample.labels)  # as the estimate measures them
        if diameters.size < MIN_CELLS:
            diameters = cell_diameters(sample.labels, exclude_border=False)
        factor = diameter_px / float(np.median(diameters)) if diameters.size else 1.0
        if abs(factor - 1.0) <= SCALE_TOLERANCE:
            out.append(sample)
            continue
        shape = tuple(max(1, round(n * factor)) for n in sample.labels.shape)
        labels = resize_image(
            sample.labels, shape, order=0, preserve_range=True, anti_aliasing=False
        ).astype(sample.labels.dtype)
        angles = None if sample.angles is None else resize(sample.angles, shape)
        phase = resize(sample.phase[None], shape)[0]
        out.append(Sample(phase=phase, labels=labels, angles=angles, name=sample.name))
    return out


def _base_augment(trained: dict) -> AugmentConfig | None:
    """The base model's augmentation; None (nnU-Net's) when it states none or an unreadable one.

    An unreadable one (written by another version) gives a warning: the run then lacks the
    base's scale augmentation.
    """
    stored = (trained.get("config") or {}).get("augment")
    if not stored:
        return None
    try:
        return AugmentConfig.from_dict(stored)
    except ValueError as error:
        warnings.warn(
            f"the base model's augmentation cannot be read ({error}); fine-tuning uses "
            "nnU-Net's defaults",
            UserWarning,
            stacklevel=3,
        )
        return None


def base_training(base: str | Path) -> dict:
    """The ``training`` record of a checkpoint's config.json ({} when it has none).

    Parameters
    ----------
    base : str or Path
        Checkpoint folder or model name.
    """
    from napari_dmqpm.model import read_checkpoint_config

    return read_checkpoint_config(resolve_checkpoint(base)).get("training") or {}


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
    overwrite: bool = False,
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
        Augmentations; default: the base model's (its scale augmentation included), else
        nnU-Net's. The images are resampled to the base model's trained cell diameter first
        (:func:`at_model_scale`), so the fine-tuned model keeps it.
    overwrite : bool
        Remove an earlier run in ``out`` and start afresh. Without it, a run there is
        resumed only when it is this one (base, settings and images), else ``FileExistsError``
        before any work (:func:`~napari_dmqpm.training.resume.check_resume`).
    **options
        ``minutes`` (default 3), ``epochs``, ``iterations_per_epoch`` (10),
        ``learning_rate`` (1e-3), ``batch_size``, ``patch_size``, ``seed``, ``device``, and any
        other ``TrainConfig`` field (see :func:`finetune_config`). ``minutes`` is wall time
        from this call to the last checkpoint written, validation and saving included.

    Yields
    ------
    EpochReport
        Epoch 0 is the base model's validation. The last report is the last epoch that fit
        in the budget (its ``stop_reason`` is None when the budget, not the loop, ended it).

    Raises
    ------
    BudgetTooShortError
        Before anything is written, when ``minutes`` cannot hold the base model's
        validation and one training epoch (measured here: the setup, one validation, two
        optimizer steps and a save, a few seconds; see
        :func:`~napari_dmqpm.training.budget.check_budget`).

    Notes
    -----
    When no epoch beats the base model, the thresholds are not tuned and ``best/`` keeps the
    base model's weights; ``best/README.md`` says so. After the run, ``best/config.json``
    records what the whole run did (``training.run``: epochs, optimizer steps, wall time).
    """
    started = time.monotonic()
    config = finetune_config(base=base, out=out, val_fraction=val_fraction, **options)
    assert config.base_checkpoint is not None  # finetune_config always sets it
    trained = base_training(config.base_checkpoint)
    # the images are shown at the base's trained diameter, which best/ then records
    config = dataclasses.replace(config, cell_diameter_px=trained.get("cell_diameter_px"))
    if augment is None:
        augment = _base_augment(trained)
    if augment is not None:
        config = dataclasses.replace(config, augment=augment)
    train, val = finetune_split(
        phase,
        labels,
        angles=angles,
        val_fraction=val_fraction,
        seed=config.seed,
        diameter_px=config.cell_diameter_px,
    )
    config = _fit_patch(config, train)
    if not overwrite:  # refuse a folder holding another run before measuring the budget
        check_resume(config, digest=data_digest([*train, *val]))
    if tune_thresholds is None:
        tune_thresholds = count_cells(val) >= MIN_TUNING_CELLS
    share = TUNING_SHARE if tune_thresholds else 0.0
    if config.minutes is not None:
        check_budget(config, samples=train, val_samples=val, started=started, reserved=share)
    first, last = yield from _train(
        config, train, val, should_stop, started=started, share=share, overwrite=overwrite
    )
    stopped = should_stop is not None and should_stop()
    if first is None or last is None:
        return
    if tune_thresholds and not stopped and last.best_epoch > 0:
        deadline = None if config.minutes is None else started + 60.0 * config.minutes
        tune_on_validation(Path(out) / BEST, val, device=config.device, deadline=deadline)
    from napari_dmqpm.training.card import record_run

    earlier = first.elapsed - first.seconds  # the training time of earlier sessions, if resumed
    run = {"epochs": last.epoch, "iterations": last.iteration,
           "wall_s": round(earlier + time.monotonic() - started, 1),
           "ended": "stop" if stopped else (last.stop_reason or "budget")}  # fmt: skip
    record_run(config.checkpoint_dir, run)


def _train(config: TrainConfig, train, val, should_stop, *, started, share, overwrite=False):
    """``iter_training`` under the budget guard; returns the first and last reports (or None)."""
    first = last = None
    guard = should_stop
    if config.minutes is not None:
        deadline = started + 60.0 * config.minutes * (1.0 - share)
        guard = BudgetGuard(deadline, config.iterations_per_epoch, should_stop)
    began = time.monotonic()
    runs = iter_training(
        config, samples=train, val_samples=val, should_stop=guard, overwrite=overwrite
    )
    for last in runs:
        first = last if first is None else first
        if isinstance(guard, BudgetGuard):
            guard.epoch_done(since=began if last.epoch == 0 else None)
        yield last
    return first, last


def tune_on_validation(folder: Path, samples, *, device: str, deadline: float | None) -> None:
    """Tune the post-processing thresholds of the checkpoint ``folder`` and store them.

    Scored on the validation ``samples``; nothing happens when the folder has no weights.

    Parameters
    ----------
    folder : Path
        The checkpoint folder whose thresholds are tuned and stored.
    samples : sequence of Sample
        The validation samples.
    device : str
        Device of the predictions.
    deadline : float or None
        ``time.monotonic()`` value by which tuning must stop (None: no limit).
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

    Parameters
    ----------
    phase, labels, angles
        The images, as :func:`iter_finetune` takes them.
    base : str or Path
        Checkpoint folder (or registered model name) to start from.
    out : str or Path
        Run folder.
    progress : callable, optional
        Called with every :class:`EpochReport`.
    should_stop : callable returning bool, optional
        Polled before every iteration (see :func:`iter_finetune`).
    **options
        The other keyword arguments of :func:`iter_finetune`.

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
    """A :class:`FinetuneResult` from the reports of a fine-tuning run (epoch 0 first).

    Parameters
    ----------
    out : str or Path
        The run folder.
    reports : sequence of EpochReport
        The reports of the run, epoch 0 (the base model) first.
    """
    from napari_dmqpm.training.card import read_history

    history = read_history(out)
    before = next((h for h in history if h["epoch"] == 0), None)
    if before is None:
        raise ValueError(f"{out} holds no epoch-0 validation; was it a fine-tuning run?")
    last = history[-1]
    best = next(h for h in history if h["epoch"] == last["best_epoch"])
    content = _best_config(out)
    tuning = content.get("postprocessing_tuning")
    run = content.get("training", {}).get("run") or {}
    return FinetuneResult(
        model_dir=Path(out) / BEST,
        dice_before=float(before["val_dice"]),
        dice_after=float(best["val_dice"]),
        f1_before=float(before["val_f1"]),
        f1_after=float(tuning["f1_after"] if tuning else best["val_f1"]),
        reports=tuple(reports),
        improved=best["epoch"] > 0,
        best_epoch=int(best["epoch"]),
        epochs=int(last["epoch"]),
        iterations=int(last["iteration"]),
        minutes=float(run.get("wall_s", last["elapsed"])) / 60.0,
    )


def _best_config(run_dir: str | Path) -> dict:
    import json

    path = Path(run_dir) / BEST / "config.json"
    return json.loads(path.read_text("utf-8")) if path.is_file() else {}


def tuning_record(folder: str | Path) -> dict | None:
    """The ``postprocessing_tuning`` record of a checkpoint's config.json, if any.

    Parameters
    ----------
    folder : str or Path
        A checkpoint folder.
    """
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
    ValueError
        A fine-tuning run in which no epoch beat the base model: ``best/`` holds the base
        model's weights, which would be installed under a new name.
    """
    source, destination = Path(run_dir) / BEST, Path(destination)
    if not (source / "model.safetensors").is_file():
        raise FileNotFoundError(f"{run_dir} has no best/ checkpoint yet")
    training = _best_config(run_dir).get("training", {})
    if training.get("base_checkpoint") and training.get("best_epoch") == 0:
        raise ValueError(
            f"no improvement: no epoch of {run_dir} beat its base model "
            f"{training['base_checkpoint']}; best/ holds the base's weights, nothing to export"
        )
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
