"""The fine-tuning time budget holds for the whole run: training, validation and saving."""

from __future__ import annotations

import math
import time

import pytest
import torch

from napari_dmqpm.model import DMQPMNet, ModelConfig, load_checkpoint, save_checkpoint
from napari_dmqpm.training import budget as budget_module
from napari_dmqpm.training import finetune as finetune_module
from napari_dmqpm.training.budget import (
    BudgetTooShortError,
    EpochCost,
    check_budget,
    measure_epoch,
)
from napari_dmqpm.training.finetune import (
    BudgetGuard,
    finetune_config,
    finetune_split,
    iter_finetune,
)


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: on a shared CPU, competing threads make iteration times erratic."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def field():
    from napari_dmqpm.simulation import SimulationConfig, simulate_field

    return simulate_field(SimulationConfig(shape=(128, 96), density="dense"), rng=5)


@pytest.fixture
def base(tmp_path):
    """A tiny phase-only checkpoint, with torch warmed up.

    The optimizer's first creation imports torch._dynamo, and the first backward pass is slow:
    seconds that a test of a few seconds' budget cannot spare.
    """
    torch.manual_seed(0)
    network = DMQPMNet(ModelConfig(inputs="phase", fusion="early", features=(4, 8, 16, 32, 32)))
    torch.optim.SGD(network.parameters(), lr=0.1)
    outputs = network(None, torch.zeros(1, 1, 64, 64))
    sum(o.mean() for o in (outputs if isinstance(outputs, list) else [outputs])).backward()
    network.zero_grad(set_to_none=True)
    return save_checkpoint(tmp_path / "base", network)


class _Clock:
    """A fake ``time.monotonic`` that moves only when told."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _epoch(guard, clock, *, step=1.0, tail=2.0) -> list[bool]:
    """Poll like the loop: before each iteration (``step`` s), then ``tail`` s of validation
    and saving; the guard sees ``step + tail`` from the last poll to the report."""
    polls = []
    for _ in range(guard.iterations):
        polls.append(guard())
        if polls[-1]:
            return polls  # the loop drops the epoch at once
        clock.now += step
    clock.now += tail
    guard.epoch_done()
    return polls


def test_the_guard_stops_before_an_epoch_that_would_end_past_the_deadline(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(finetune_module.time, "monotonic", clock)
    guard = BudgetGuard(deadline=130.0, iterations_per_epoch=4)
    guard.epoch_done(since=97.0)  # epoch 0: setup + validation + saving took 3 s
    assert guard.reserve == 3.0
    # each epoch: 4 iterations of 1 s, then 2 s of validation and saving = 6 s... plus 1 s
    assert _epoch(guard, clock, tail=3.0) == [False] * 4 and clock.now == 107.0
    assert guard.step == pytest.approx(1.0) and guard.reserve == pytest.approx(4.0)
    for _ in range(3):  # epochs 2-4 (3 s tails) end at 114, 121, 128
        assert _epoch(guard, clock, tail=3.0) == [False] * 4
    assert clock.now == 128.0
    assert _epoch(guard, clock) == [True] and guard.fired  # 128 + 3 + 4 > 130: not started
    assert clock.now == 128.0


def test_a_slower_epoch_is_dropped_before_it_can_overrun(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(finetune_module.time, "monotonic", clock)
    guard = BudgetGuard(deadline=116.0, iterations_per_epoch=4)
    guard.epoch_done(since=90.0)  # epoch 0 with its setup: 10 s, a first (too long) tail
    assert _epoch(guard, clock) == [False] * 4 and clock.now == 106.0
    assert guard.reserve == pytest.approx(3.0)  # the tail of a training epoch replaces it
    # 106 + 3 * 1 + 3 <= 116: epoch 2 starts, but the machine slows down to 3 s per
    # iteration; the second poll sees that 109 + 2 * 3 + 3 > 116 and drops the epoch
    assert _epoch(guard, clock, step=3.0) == [False, True] and clock.now == 109.0


def test_the_users_stop_is_polled_first(monkeypatch):
    guard = BudgetGuard(deadline=time.monotonic() + 60.0, iterations_per_epoch=4,
                        should_stop=lambda: True)  # fmt: skip
    assert guard() and not guard.fired


#: Scheduling noise allowed past the budget: the guard predicts from the iterations it timed,
#: and on a shared, busy CPU one of them can take a few hundred ms longer than the others.
NOISE_S = 0.2


def test_a_tiny_budget_ends_validated_and_saved_within_the_budget(tmp_path, field, base):
    minutes = 0.1  # 6 s: epoch 0 (setup, validation, saving), then a few tiny epochs
    began, arrivals, reports = time.monotonic(), [], []
    for report in iter_finetune(
        field.phase,
        field.labels,
        base=base,
        out=tmp_path / "tuned",
        minutes=minutes,
        iterations_per_epoch=2,
        patch_size=64,
        device="cpu",
    ):
        arrivals.append(time.monotonic() - began)
        reports.append(report)
    spent = time.monotonic() - began
    if arrivals[0] > 0.4 * 60.0 * minutes:
        pytest.skip(f"the CPU is too busy to time this: epoch 0 alone took {arrivals[0]:.1f} s")
    timeline = [(round(a, 2), r.epoch) for a, r in zip(arrivals, reports, strict=True)]
    assert spent < 60.0 * minutes + NOISE_S, timeline
    assert len(reports) >= 2 and all(math.isfinite(r.val_dice) for r in reports)
    assert all(r.stop_reason is None for r in reports)  # the guard ended it, not the loop
    _, content = load_checkpoint(tmp_path / "tuned" / "best")  # saved within the budget
    assert content["training"]["best_epoch"] == reports[-1].best_epoch


def test_a_budget_too_short_for_one_epoch_is_refused_before_anything_is_written(
    tmp_path, field, base, monkeypatch
):
    trained = []
    monkeypatch.setattr(finetune_module, "iter_training", lambda *a, **k: trained.append(a))
    with pytest.raises(BudgetTooShortError, match=r"minutes=0.0001 is too short") as caught:
        list(
            iter_finetune(
                field.phase,
                field.labels,
                base=base,
                out=tmp_path / "tuned",
                minutes=1e-4,
                iterations_per_epoch=2,
                patch_size=64,
                device="cpu",
            )
        )
    assert trained == [] and not (tmp_path / "tuned").exists()  # nothing trained or written
    assert caught.value.minutes == 1e-4 and caught.value.needed_minutes >= 0.1
    assert f"give minutes={caught.value.needed_minutes:g} or more" in str(caught.value)


def _fake_cost(monkeypatch, **seconds):
    cost = EpochCost(**{"setup": 1.0, "validation": 2.0, "step": 1.0, "save": 0.5, **seconds})
    monkeypatch.setattr(budget_module, "measure_epoch", lambda *a, **k: cost)
    return cost


def test_the_check_asks_for_the_base_scoring_and_one_epoch(monkeypatch, base):
    """Setup 1 s, validation 2 + 2 s, saves 4 x 0.5 s, 10 steps of 1 s: 17 s."""
    cost = _fake_cost(monkeypatch)
    assert cost.first_epoch(10, base=True) == pytest.approx(17.0)
    config = finetune_config(base=base, out="unused", minutes=17.5 / 60, iterations_per_epoch=10)
    now = time.monotonic()
    assert check_budget(config, samples=[], val_samples=[], started=now) is cost
    with pytest.raises(BudgetTooShortError) as caught:
        check_budget(config.replace(minutes=16.5 / 60), samples=[], val_samples=[], started=now)
    assert caught.value.needed_minutes == 0.3 and caught.value.iterations == 10
    with pytest.raises(BudgetTooShortError):  # 10 % kept for threshold tuning: 18.9 s needed
        check_budget(config.replace(minutes=18.0 / 60), samples=[], val_samples=[],
                     started=now, reserved=0.1)  # fmt: skip
    with pytest.raises(BudgetTooShortError):  # the time already spent counts
        check_budget(config, samples=[], val_samples=[], started=now - 1.0)


def test_a_real_measurement_is_positive_and_writes_nothing(tmp_path, field, base):
    config = finetune_config(base=base, out=tmp_path / "tuned", minutes=1.0,
                             iterations_per_epoch=2, patch_size=64, device="cpu")  # fmt: skip
    train, val = finetune_split(field.phase, field.labels)
    cost = measure_epoch(config, samples=train, val_samples=val)
    assert min(cost.setup, cost.validation, cost.step, cost.save) > 0
    assert not (tmp_path / "tuned").exists()
