"""Hostile inputs and faults give one line naming the file, the flag and the problem (issue 18).

Each case runs ``dmqpm`` in process and checks the exit status, that stderr is one line
(no traceback) and what that line says; none trains a model or reads a whole file first.
"""

from __future__ import annotations

import errno
import tempfile

import numpy as np
import pytest
import tifffile

from napari_dmqpm.cli import main


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


@pytest.fixture
def user_models(tmp_path, monkeypatch):
    from napari_dmqpm.model.registry import MODELS_ENV, clear_model_cache

    monkeypatch.setenv(MODELS_ENV, str(tmp_path / "user_models"))
    clear_model_cache()
    yield tmp_path / "user_models"
    clear_model_cache()


@pytest.fixture
def finetune_args(tmp_path):
    """A tiny phase map with labels and a tiny phase-only base model."""
    import torch

    from napari_dmqpm.model import DMQPMNet, ModelConfig, save_checkpoint

    phase = np.zeros((64, 64), np.float32)
    labels = np.zeros((64, 64), np.uint16)
    phase[10:30, 10:30], labels[10:30, 10:30] = 1.0, 1
    tifffile.imwrite(tmp_path / "cells.tif", phase)
    tifffile.imwrite(tmp_path / "cells_labels.tif", labels)
    torch.manual_seed(0)
    config = ModelConfig(inputs="phase", fusion="early", features=(4, 8, 16, 32, 32))
    base = save_checkpoint(tmp_path / "base", DMQPMNet(config), extra={"postprocessing": {}})
    return ["finetune", "--image", str(tmp_path / "cells.tif"), "--labels",
            str(tmp_path / "cells_labels.tif"), "--out", str(tmp_path / "run"),
            "--model", str(base), "--epochs", "1", "--device", "cpu"]  # fmt: skip


# --- item 8: a --name that cannot be installed is refused before training ---


def test_an_existing_name_is_refused_before_training(tmp_path, user_models, finetune_args, capsys):
    (user_models / "mine").mkdir(parents=True)
    assert main([*finetune_args, "--name", "mine"]) == 2
    err = _one_line(capsys)
    assert "a user model named 'mine' exists" in err and "choose another --name" in err
    assert "overwrite=True" not in err
    assert not (tmp_path / "run").exists()  # nothing trained


def test_a_user_models_folder_that_cannot_be_written_is_refused_before_training(
    tmp_path, monkeypatch, finetune_args, capsys
):
    from napari_dmqpm.model.registry import MODELS_ENV

    (tmp_path / "a_file").write_text("")
    monkeypatch.setenv(MODELS_ENV, str(tmp_path / "a_file" / "models"))
    assert main([*finetune_args, "--name", "mine"]) == 2
    err = _one_line(capsys)
    assert f"cannot install a user model in {tmp_path / 'a_file' / 'models'}" in err
    assert MODELS_ENV in err and not (tmp_path / "run").exists()


def test_a_read_only_user_models_folder_is_refused_before_training(
    tmp_path, user_models, monkeypatch, finetune_args, capsys
):
    def read_only(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    assert main([*finetune_args, "--name", "mine"]) == 2
    err = _one_line(capsys)
    assert f"cannot install a user model in {user_models} (Permission denied)" in err
    assert not (tmp_path / "run").exists()


def test_an_invalid_name_names_the_flag(finetune_args, user_models, capsys):
    assert main([*finetune_args, "--name", "../x"]) == 2
    assert "--name must be 1-100 letters" in _one_line(capsys)
