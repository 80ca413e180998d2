"""The time budget of a fine-tuning run: too short a budget is refused, and no epoch overruns.

:func:`check_budget` measures, before anything is written, what the first training epoch
costs on this machine (setup, the base model's validation, optimizer steps, saving) and
raises :class:`BudgetTooShortError` when the budget cannot hold it. :class:`BudgetGuard` is
the ``should_stop`` of the run itself: an epoch that would not end, validated and saved,
before the deadline is not started.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from napari_dmqpm.model import resolve_device
from napari_dmqpm.training.config import TrainConfig
from napari_dmqpm.training.data import Sample
from napari_dmqpm.training.loop import _Trainer  # the run as iter_training builds it
from napari_dmqpm.training.setup import build_data
from napari_dmqpm.training.validation import validate


class BudgetTooShortError(ValueError):
    """A time budget too short for one training epoch; raised before any training.

    Parameters
    ----------
    minutes : float
        The budget given.
    needed_minutes : float
        What one epoch, its validation and its save take on this machine.
    iterations : int
        Optimizer steps of one epoch.

    Attributes
    ----------
    minutes : float
        The budget given.
    needed_minutes : float
        The smallest budget estimated to hold one epoch, rounded up to 0.1 min.
    iterations : int
        Iterations of that epoch.
    """

    def __init__(self, minutes: float, needed_minutes: float, iterations: int) -> None:
        self.minutes, self.iterations = float(minutes), int(iterations)
        self.needed_minutes = math.ceil(needed_minutes * 10.0) / 10.0
        super().__init__(
            f"minutes={self.minutes:g} is too short for one fine-tuning epoch: scoring the "
            f"base model, then {self.iterations} training iterations with their validation "
            f"and saving, take about {60.0 * needed_minutes:.0f} s ({needed_minutes:.2f} min) "
            f"on this machine; give "
            f"minutes={self.needed_minutes:g} or more, fewer iterations_per_epoch, or a "
            "number of epochs without minutes"
        )


@dataclass(frozen=True)
class EpochCost:
    """Measured costs of a run's parts, in seconds (see :func:`measure_epoch`)."""

    setup: float
    validation: float
    step: float
    save: float

    def first_epoch(self, iterations: int, *, base: bool) -> float:
        """Seconds from the start of a run to the end of its first training epoch, saved.

        Parameters
        ----------
        iterations : int
            Optimizer steps of one epoch.
        base : bool
            The run starts from a checkpoint, which is validated first (epoch 0).
        """
        scoring = self.validation + 2 * self.save if base else 0.0
        return self.setup + scoring + iterations * self.step + self.validation + 2 * self.save


def measure_epoch(
    config: TrainConfig,
    *,
    samples: Sequence[Sample] | None = None,
    val_samples: Sequence[Sample] | None = None,
    n_steps: int = 2,
) -> EpochCost:
    """Time a run's setup, one validation, an optimizer step and a save, writing nothing.

    The model is built as :func:`iter_training` builds it (twice: the first build pays
    one-time costs, such as imports, which the run itself will not pay again; the second is
    timed), validated once on the validation samples, trained for ``n_steps`` steps on real
    patches (the fastest counts) and saved into a temporary folder; then it is thrown away.

    Parameters
    ----------
    config : TrainConfig
        The run's config.
    samples : sequence of Sample, optional
        Training images in memory.
    val_samples : sequence of Sample, optional
        Validation images in memory.
    n_steps : int
        Optimizer steps timed.
    """
    import tempfile

    from napari_dmqpm.training.card import save_best

    device = resolve_device(config.device)
    for _ in range(2):
        began = time.perf_counter()
        data = build_data(config, samples=samples, val_samples=val_samples)
        trainer = _Trainer(config, data, device)
    setup, began = time.perf_counter() - began, time.perf_counter()
    validate(trainer.model, trainer.data.val, loss_fn=trainer.loss_fn, device=device,
             targets=trainer.targets, amp_dtype=trainer.amp_dtype,
             postprocessing=trainer.base_content.get("postprocessing"))  # fmt: skip
    validation, steps = time.perf_counter() - began, []
    trainer.model.train()
    for _, batch in zip(range(n_steps), trainer.loader(1), strict=False):
        began = time.perf_counter()
        trainer.step(batch)
        steps.append(time.perf_counter() - began)
    with tempfile.TemporaryDirectory(prefix="dmqpm-measure-") as folder:
        began = time.perf_counter()
        save_best(folder, trainer.model, extra={}, state=trainer.state)
        save = time.perf_counter() - began
    return EpochCost(setup, validation, min(steps, default=0.0), save)


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


def check_budget(
    config: TrainConfig,
    *,
    samples: Sequence[Sample],
    val_samples: Sequence[Sample],
    started: float,
    reserved: float = 0.0,
) -> EpochCost:
    """Refuse a budget that cannot hold one epoch, before anything is written.

    Parameters
    ----------
    config : TrainConfig
        A fine-tuning run (``base_checkpoint`` and ``minutes`` set).
    samples, val_samples : sequence of Sample
        Its training and validation images.
    started : float
        ``time.monotonic()`` at which the run began (the budget counts from there).
    reserved : float
        Share of the budget kept for work after training (threshold tuning).

    Returns
    -------
    EpochCost
        What was measured.

    Raises
    ------
    BudgetTooShortError
        When the time spent so far, the measurement included, and the estimated first epoch
        (the base model's validation, ``iterations_per_epoch`` steps, validation and saving)
        exceed the budget less ``reserved``.
    """
    if config.minutes is None:
        raise ValueError("check_budget needs a time budget; got config.minutes=None")
    cost = measure_epoch(config, samples=samples, val_samples=val_samples)
    first = cost.first_epoch(config.iterations_per_epoch, base=config.base_checkpoint is not None)
    needed = (time.monotonic() - started + first) / (1.0 - reserved)
    if needed > 60.0 * config.minutes:
        raise BudgetTooShortError(config.minutes, needed / 60.0, config.iterations_per_epoch)
    return cost
