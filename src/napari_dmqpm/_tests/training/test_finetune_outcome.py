"""Fine-tuning never pretends: a run that beat no epoch of its base says so, installs nothing,
and the model card states what the run did (epochs, optimizer steps, minutes, base score)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from napari_dmqpm.model import DMQPMNet, ModelConfig, load_checkpoint, save_checkpoint
from napari_dmqpm.training import loop as loop_module
from napari_dmqpm.training.finetune import export_model, finetune
from napari_dmqpm.training.validation import ValidationResult

TINY = ModelConfig(inputs="phase", fusion="early", features=(4, 8, 16, 32, 32))
#: Small settings: epochs of 2 iterations on 64-px patches, no threshold tuning by default.
QUICK = dict(minutes=None, iterations_per_epoch=2, patch_size=64, device="cpu")


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def field():
    """A sparse field: the untrained tiny model over-predicts cells, so training helps."""
    from napari_dmqpm.simulation import SimulationConfig, simulate_field

    return simulate_field(SimulationConfig(shape=(128, 96), density="sparse"), rng=5)


@pytest.fixture
def base(tmp_path):
    torch.manual_seed(0)
    return save_checkpoint(tmp_path / "base", DMQPMNet(TINY), extra={"postprocessing": {}})


@pytest.fixture
def flat_scores(monkeypatch):
    """Every validation scores the same: no epoch can beat the base model (strictly)."""
    result = ValidationResult(loss=1.0, dice=0.5, f1=0.25, dices=(0.5,))
    monkeypatch.setattr(loop_module, "validate", lambda *args, **kwargs: result)


def test_a_run_that_beats_no_epoch_keeps_the_base_and_says_so(tmp_path, field, base, flat_scores):
    result = finetune(field.phase, field.labels, base=base, out=tmp_path / "run", epochs=2,
                      tune_thresholds=True, **QUICK)  # fmt: skip
    assert not result.improved and result.best_epoch == 0
    assert (result.epochs, result.iterations) == (2, 4)
    assert result.format().startswith("no improvement: the base model was kept")
    assert (result.dice_before, result.dice_after) == (0.5, 0.5)
    _, content = load_checkpoint(result.model_dir)
    assert content["sha256"] == load_checkpoint(base)[1]["sha256"]  # the base's weights
    assert "postprocessing_tuning" not in content  # no thresholds tuned for the base
    card = (result.model_dir / "README.md").read_text()
    assert "no epoch improved on the base model: these are its weights" in card
    with pytest.raises(ValueError, match="no improvement: no epoch of .* beat its base model"):
        export_model(tmp_path / "run", tmp_path / "models" / "mine")
    assert not (tmp_path / "models").exists()


def test_the_card_and_the_result_give_epochs_steps_minutes_and_the_base_score(
    tmp_path, field, base
):
    seen = []
    result = finetune(field.phase, field.labels, base=base, out=tmp_path / "run", epochs=2,
                      progress=seen.append, **QUICK)  # fmt: skip
    assert result.improved and result.best_epoch > 0 and result.dice_after > result.dice_before
    assert (result.epochs, result.iterations) == (2, 4) and 0 < result.minutes < 1
    assert "2 epochs, 4 optimizer steps" in result.format()
    best = seen[result.best_epoch]
    assert seen[-1].best_val_f1 == best.val_f1 and seen[-1].best_val_dice == best.val_dice
    content = json.loads((result.model_dir / "config.json").read_text())
    training = content["training"]
    assert training["base_validation"]["val_dice"] == pytest.approx(result.dice_before)
    run = training["run"]
    assert (run["epochs"], run["iterations"], run["ended"]) == (2, 4, "epochs")
    assert run["wall_s"] == pytest.approx(60 * result.minutes)
    card = (result.model_dir / "README.md").read_text()
    assert "- run: 2 epochs, 4 optimizer steps, " in card
    assert "min wall time (ended by the planned epochs)" in card
    assert f"base model, before fine-tuning: validation Dice {result.dice_before:.4f}" in card
    assert f"these weights: epoch {result.best_epoch}," in card
    assert load_checkpoint(export_model(tmp_path / "run", tmp_path / "models" / "mine"))


# the same through ``dmqpm finetune``


@pytest.fixture
def files(tmp_path, field):
    import tifffile

    tifffile.imwrite(tmp_path / "cells.tif", field.phase.astype(np.float32))
    tifffile.imwrite(tmp_path / "cells_labels.tif", field.labels.astype(np.uint16))
    return ["--image", str(tmp_path / "cells.tif"), "--labels", str(tmp_path / "cells_labels.tif")]


@pytest.fixture
def user_models(tmp_path, monkeypatch):
    from napari_dmqpm.model.registry import MODELS_ENV, clear_model_cache

    monkeypatch.setenv(MODELS_ENV, str(tmp_path / "user_models"))
    clear_model_cache()
    yield tmp_path / "user_models"
    clear_model_cache()


def test_the_cli_refuses_a_budget_too_short_before_writing(tmp_path, files, base, capsys):
    from napari_dmqpm.cli import main

    out = tmp_path / "run"
    args = ["finetune", *files, "--out", str(out), "--model", str(base), "--device", "cpu"]
    assert main([*args, "--minutes", "0.0001"]) == 2
    err = capsys.readouterr().err
    assert "--minutes 0.0001 is too short for one epoch" in err and "--epochs" in err
    assert not out.exists()


def test_the_cli_installs_nothing_without_improvement(
    tmp_path, files, base, user_models, flat_scores, capsys
):
    from napari_dmqpm.cli import main

    args = ["finetune", *files, "--out", str(tmp_path / "run"), "--model", str(base),
            "--epochs", "1", "--device", "cpu", "--name", "my-cells"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "no improvement: the base model was kept" in out
    assert "nothing installed as 'my-cells'" in out and "\ninstalled as" not in out
    assert not (user_models / "my-cells").exists()
