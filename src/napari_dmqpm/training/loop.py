"""The training loop as a generator: one :class:`EpochReport` per epoch, resumable, seeded.

``iter_training(config)`` trains, validates, writes ``<checkpoint_dir>/last/`` (resumable
state) and ``best/`` (a clean checkpoint with the best validation Dice) after every epoch, and
yields a report. A GUI runs it in a thread worker and stops it at any yield (or through
``should_stop``); a script prints one line per report. Calling it again with the same
``checkpoint_dir`` resumes from ``last/``: the data of epoch ``e`` depend only on
``(seed, e)`` and the torch RNG state is restored, so an interrupted run ends with the same
weights as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from napari_dmqpm.model import DMQPMNet, autocast_dtype, resolve_device
from napari_dmqpm.training.config import SELECTION_SCORES, TrainConfig
from napari_dmqpm.training.data import Sample
from napari_dmqpm.training.losses import SegmentationLoss
from napari_dmqpm.training.patches import PatchDataset
from napari_dmqpm.training.resume import check_resume, clear_run, data_digest, save_digest
from napari_dmqpm.training.setup import (
    TrainingData,
    build_data,
    build_model,
    check_trainable,
    checkpoint_extra,
)
from napari_dmqpm.training.state import RunState, find_last, load_last, restore_rng, save_last
from napari_dmqpm.training.validation import model_inputs, validate


@dataclass(frozen=True)
class EpochReport:
    """What one epoch did; yielded by :func:`iter_training`.

    Attributes
    ----------
    epoch, epochs : int
        This epoch (1-based; 0 is the validation of a base model before fine-tuning) and the
        planned number.
    iteration : int
        Optimizer steps so far.
    train_loss : float
        Mean training loss of the epoch (nan for epoch 0).
    val_loss, val_dice, val_f1 : float
        Validation loss, foreground Dice and F1 at IoU 0.5 (means over validation images;
        nan when this epoch did not validate).
    lr : float
        Learning rate at the end of the epoch.
    seconds, elapsed : float
        Wall time of this epoch, and of the whole run so far (summed over resumes).
    best_val_dice : float
        Validation Dice of the best epoch so far (by ``TrainConfig.select_by``); ``best/``
        holds its weights.
    best_epoch : int
        That epoch.
    is_best : bool
        This epoch set a new best.
    stop_reason : str or None
        ``"epochs"``, ``"budget"`` when this is the last report, else None.
    fraction_done : float
        Share of the run done, in [0, 1]: iterations over planned iterations, or elapsed time
        over the budget, whichever is further (for a progress bar).
    best_val_f1 : float
        Validation F1 at IoU 0.5 of the best epoch so far (nan before any validation).
    """

    epoch: int
    epochs: int
    iteration: int
    train_loss: float
    val_loss: float
    val_dice: float
    val_f1: float
    lr: float
    seconds: float
    elapsed: float
    best_val_dice: float
    best_epoch: int
    is_best: bool
    stop_reason: str | None = None
    fraction_done: float = 0.0
    best_val_f1: float = float("nan")

    def to_dict(self) -> dict[str, Any]:
        """JSON-native dictionary (nan becomes None)."""
        return {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in dataclasses.asdict(self).items()
        }

    def format(self) -> str:
        """One progress line, e.g. for a log file."""
        mark = " *" if self.is_best else ""
        return (
            f"epoch {self.epoch:4d}/{self.epochs} it {self.iteration:6d} "
            f"loss {self.train_loss:.4f} val_loss {self.val_loss:.4f} "
            f"val_dice {self.val_dice:.4f} val_f1 {self.val_f1:.4f} lr {self.lr:.2e} "
            f"{self.seconds:6.1f}s total {self.elapsed / 60:7.1f} min{mark}"
        )


def _fraction_done(config: TrainConfig, iteration: int, elapsed: float) -> float:
    done = iteration / config.total_iterations
    if config.minutes is not None:
        done = max(done, elapsed / (60.0 * config.minutes))
    return float(min(done, 1.0))


def poly_lr(config: TrainConfig, iteration: int, elapsed: float) -> float:
    """nnU-Net's poly schedule over iterations, or over the time budget if that ends first.

    Parameters
    ----------
    config : TrainConfig
        The run's config.
    iteration : int
        Optimizer steps taken so far.
    elapsed : float
        Training seconds so far (the time budget's clock).
    """
    progress = _fraction_done(config, iteration, elapsed)
    return config.learning_rate * (1.0 - progress) ** config.poly_exponent


class _Trainer:
    """Holds the model, optimizer, data and counters of one run."""

    def __init__(self, config: TrainConfig, data: TrainingData, device: torch.device) -> None:
        self.config, self.data, self.device = config, data, device
        self.state = RunState()
        self.base_content: dict[str, Any] = {}
        last = find_last(config.checkpoint_dir)
        payload = None
        if last is not None:
            model, payload, self.state, content = load_last(last, device=device)
            self.base_content = content
        else:
            model, self.base_content = build_model(config, data, device=device)
        self.model: DMQPMNet = model.to(device)
        if device.type == "cuda":
            # torch's overloads of Module.to omit memory_format, which Module.to accepts
            self.model = self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.amp_dtype = autocast_dtype(device) if config.amp else None
        self.optimizer = torch.optim.SGD(
            self.model.parameters(),
            lr=config.learning_rate,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
            nesterov=config.momentum > 0,
        )
        use_scaler = self.amp_dtype == torch.float16
        self.scaler = torch.amp.GradScaler(device.type, enabled=use_scaler)
        self.loss_fn = SegmentationLoss(
            self.model.config.heads,
            distance_loss=config.distance_loss,
            distance_weight=config.distance_weight,
        )
        self.targets = dataclasses.replace(config.targets, distance=self.loss_fn.uses_distance)
        if payload is not None:
            self.optimizer.load_state_dict(payload["optimizer"])
            if payload.get("scaler") and use_scaler:
                self.scaler.load_state_dict(payload["scaler"])
            restore_rng(payload)

    def loader(self, epoch: int) -> DataLoader:
        config = self.config
        norm = self.model.config.normalization
        dataset = PatchDataset(
            self.data.train,
            n_patches=config.iterations_per_epoch * config.batch_size,
            patch_shape=config.patch_size,
            batch_size=config.batch_size,
            seed=config.seed,
            epoch=epoch,
            augment=config.augment,
            targets=self.targets,
            foreground_fraction=config.foreground_fraction,
            channel_scale=[*norm.angle_std, norm.phase_std],
        )
        generator = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
        return DataLoader(
            dataset,
            batch_size=config.batch_size,
            num_workers=config.num_workers,
            generator=generator,
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
        )

    def step(self, batch: dict[str, torch.Tensor]) -> float:
        angles, phase = model_inputs(
            self.model, batch.get("angles"), batch.get("phase"), device=self.device
        )
        classes = batch["classes"].to(self.device, non_blocking=True)
        distance = batch.get("distance")
        distance = None if distance is None else distance.to(self.device, non_blocking=True)
        enabled = self.amp_dtype is not None
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=enabled):
            outputs = self.model(angles, phase)
        loss = self.loss_fn(outputs, classes, distance)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.config.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return float(loss.detach())

    def set_lr(self, elapsed: float) -> float:
        lr = poly_lr(self.config, self.state.iteration, elapsed)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def budget_left(self, elapsed: float) -> bool:
        minutes = self.config.minutes
        return minutes is None or elapsed < 60.0 * minutes

    def save(self, *, best: bool) -> None:
        from napari_dmqpm.training.card import save_best

        extra = checkpoint_extra(self.config, self.data, self.base_content, self.state, self.device)
        base = next((h for h in self.state.history if h["epoch"] == 0), None)
        if base is not None:  # fine-tuning: the base model's validation, beside the best
            keys = ("val_loss", "val_dice", "val_f1")
            extra["training"]["base_validation"] = {k: base[k] for k in keys}
        if best:
            save_best(self.config.checkpoint_dir, self.model, extra=extra, state=self.state)
        save_last(
            self.config.checkpoint_dir,
            self.model,
            self.optimizer,
            self.state,
            scaler=self.scaler,
            extra=extra,
        )


def _train_epoch(trainer: _Trainer, epoch: int, should_stop, began: float) -> tuple:
    """Run one epoch; returns (mean loss, stopped_by_user, budget_spent)."""
    trainer.model.train()
    start, losses = trainer.state.elapsed, []
    for batch in trainer.loader(epoch):
        if should_stop is not None and should_stop():
            return float("nan"), True, False
        trainer.set_lr(start + time.perf_counter() - began)
        loss = trainer.step(batch)
        if not math.isfinite(loss):
            raise FloatingPointError(
                f"training loss is {loss} at epoch {epoch}, iteration {trainer.state.iteration}; "
                "lower learning_rate or check the data"
            )
        losses.append(loss)
        trainer.state.iteration += 1
        if not trainer.budget_left(start + time.perf_counter() - began):
            return float(np.mean(losses)), False, True
    return float(np.mean(losses)) if losses else float("nan"), False, False


def _run_epoch(trainer: _Trainer, should_stop) -> EpochReport | None:
    """Train, validate and save one epoch; None when ``should_stop`` interrupted it."""
    config, state = trainer.config, trainer.state
    epoch, start, began = state.epoch + 1, state.elapsed, time.perf_counter()
    train_loss, stopped, spent = _train_epoch(trainer, epoch, should_stop, began)
    if stopped:
        return None
    state.epoch = epoch
    reason = "budget" if spent else ("epochs" if epoch >= config.epochs else None)
    validate_now = epoch % config.validate_every == 0 or reason is not None
    state.elapsed = start + time.perf_counter() - began
    report = _report(trainer, epoch, train_loss, 0.0, validate_now, reason)
    state.elapsed = start + time.perf_counter() - began
    if report.stop_reason is None and not trainer.budget_left(state.elapsed):
        report = dataclasses.replace(report, stop_reason="budget")
    report = dataclasses.replace(
        report,
        seconds=state.elapsed - start,
        elapsed=state.elapsed,
        fraction_done=_fraction_done(config, state.iteration, state.elapsed),
    )
    state.history.append(report.to_dict())
    trainer.save(best=report.is_best)
    return report


def _report(
    trainer: _Trainer,
    epoch: int,
    train_loss: float,
    seconds: float,
    validate_now: bool,
    stop_reason: str | None,
) -> EpochReport:
    state, nan = trainer.state, float("nan")
    result = None
    if validate_now:
        result = validate(
            trainer.model,
            trainer.data.val,
            loss_fn=trainer.loss_fn,
            device=trainer.device,
            targets=trainer.targets,
            amp_dtype=trainer.amp_dtype,
            postprocessing=trainer.base_content.get("postprocessing"),
        )
    is_best, best_f1 = False, _history_f1(state.history, state.best_epoch)
    if result is not None:
        score = SELECTION_SCORES[trainer.config.select_by](result.dice, result.f1)
        if score > state.best_score:
            is_best, best_f1 = True, result.f1
            state.best_val_dice, state.best_score, state.best_epoch = result.dice, score, epoch
    return EpochReport(
        epoch=epoch,
        epochs=trainer.config.epochs,
        iteration=state.iteration,
        train_loss=train_loss,
        val_loss=result.loss if result else nan,
        val_dice=result.dice if result else nan,
        val_f1=result.f1 if result else nan,
        lr=trainer.optimizer.param_groups[0]["lr"],
        seconds=seconds,
        elapsed=state.elapsed,
        best_val_dice=state.best_val_dice,
        best_epoch=state.best_epoch,
        is_best=is_best,
        stop_reason=stop_reason,
        best_val_f1=best_f1,
    )


def _history_f1(history: list[dict[str, Any]], epoch: int) -> float:
    f1 = next((h.get("val_f1") for h in history if h["epoch"] == epoch), None)
    return float("nan") if f1 is None else float(f1)


def iter_training(
    config: TrainConfig,
    *,
    samples: Sequence[Sample] | None = None,
    val_samples: Sequence[Sample] | None = None,
    should_stop: Callable[[], bool] | None = None,
    overwrite: bool = False,
) -> Iterator[EpochReport]:
    """Train (or resume) the run described by ``config``, yielding after every epoch.

    Parameters
    ----------
    config : TrainConfig
        Model, data, schedule and ``checkpoint_dir``.
    samples : sequence of Sample, optional
        In-memory training images (added to the config's sources), e.g. from
        :func:`~napari_dmqpm.training.data.samples_from_arrays`.
    val_samples : sequence of Sample, optional
        Validation images; default: the config's validation (see ``TrainConfig``).
    should_stop : callable returning bool, optional
        Polled before every iteration; when it returns True the generator returns at once,
        abandoning the epoch in progress (``best/`` and ``last/`` keep the previous epoch).
    overwrite : bool
        Remove an earlier run in ``checkpoint_dir`` and start afresh. Without it, a run
        there is resumed only when it is this one (settings and in-memory images; see
        :func:`~napari_dmqpm.training.resume.check_resume`), else ``FileExistsError``.

    Yields
    ------
    EpochReport
        One per epoch (and one for epoch 0 when fine-tuning from ``base_checkpoint``).

    Notes
    -----
    Seeds torch from ``config.seed`` (the data use their own generators, keyed by the
    seed). Uses CUDA with autocast (and channels_last) when ``config.device`` resolves to it.
    """
    given = [*(samples or ()), *(val_samples or ())]
    digest = data_digest(given) if given else None
    if overwrite:
        clear_run(config.checkpoint_dir)
    check_resume(config, digest=digest)  # before any work: only the run asked for resumes
    check_trainable(config)  # and a new model's parameters must fit in memory
    torch.manual_seed(config.seed)
    device = resolve_device(config.device)
    data = build_data(config, samples=samples, val_samples=val_samples)
    trainer = _Trainer(config, data, device)
    folder = trainer.config.checkpoint_dir
    config.save(_mkdir(folder) / "train_config.json")
    save_digest(folder, digest)
    if trainer.state.epoch == 0 and not trainer.state.history and config.base_checkpoint:
        first = _report(trainer, 0, float("nan"), 0.0, True, None)
        trainer.state.history.append(first.to_dict())
        trainer.save(best=True)
        yield first
    while trainer.state.epoch < config.epochs and trainer.budget_left(trainer.state.elapsed):
        report = _run_epoch(trainer, should_stop)
        if report is None:
            return
        yield report
        if report.stop_reason is not None:
            return


def _mkdir(folder: str):
    from pathlib import Path

    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    return path
