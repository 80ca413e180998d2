"""A run folder resumes only the run asked for (issue 18, item 1): another base model, other
settings or other images are refused before any work, naming the difference and --overwrite."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from napari_dmqpm.training.config import TrainConfig
from napari_dmqpm.training.data import Sample
from napari_dmqpm.training.resume import check_resume, clear_run, data_digest, save_digest


def _stored_run(folder, config, digest):
    (folder / "last").mkdir(parents=True)
    config.save(folder / "train_config.json")
    save_digest(folder, digest)


def _samples(value=0.0):
    labels = np.zeros((8, 8), np.int32)
    labels[2:5, 2:5] = 1
    return [Sample(np.full((8, 8), value, np.float32), labels, name="a")]


def test_the_stored_run_resumes_with_another_budget_or_device(tmp_path):
    config = TrainConfig(checkpoint_dir=str(tmp_path), base_checkpoint="/models/a", simulator=None)
    digest = data_digest(_samples())
    assert not check_resume(config, digest=digest)  # nothing there yet
    _stored_run(tmp_path, config, digest)
    resumed = config.replace(minutes=9.0, epochs=3, device="cpu")
    assert check_resume(resumed, digest=data_digest(_samples()))


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (
            {"base_checkpoint": "/models/b"},
            'base_checkpoint: stored "/models/a", asked "/models/b"',
        ),
        ({"learning_rate": 0.5}, "learning_rate: stored 0.01, asked 0.5"),
        ({"samples": 1.0}, "the training images differ"),
    ],
)
def test_another_base_settings_or_images_are_refused(tmp_path, change, named):
    config = TrainConfig(checkpoint_dir=str(tmp_path), base_checkpoint="/models/a", simulator=None)
    _stored_run(tmp_path, config, data_digest(_samples()))
    value = change.pop("samples", 0.0)
    with pytest.raises(FileExistsError) as caught:
        check_resume(config.replace(**change), digest=data_digest(_samples(value)))
    message = str(caught.value)
    assert str(tmp_path) in message and named in message and "overwrite=True" in message


def test_a_run_without_readable_settings_is_refused_and_clear_run_removes_only_its_files(
    tmp_path,
):
    config = TrainConfig(checkpoint_dir=str(tmp_path), simulator=None)
    (tmp_path / "best").mkdir()
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="settings cannot be read"):
        check_resume(config)
    _stored_run(tmp_path, config, None)
    (tmp_path / "train_data.json").unlink()  # a run from before the digest: resumable
    stored = json.loads((tmp_path / "train_config.json").read_text())
    del stored["pixel_size_um"]  # a field added since: its default
    (tmp_path / "train_config.json").write_text(json.dumps(stored))
    assert check_resume(config)
    clear_run(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    assert not check_resume(config)


# --- end to end: dmqpm finetune --out on an earlier run of another base model ---


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _tiny(folder, features):
    from napari_dmqpm.model import DMQPMNet, ModelConfig, save_checkpoint

    torch.manual_seed(0)
    config = ModelConfig(inputs="phase", fusion="early", features=features)
    return save_checkpoint(folder, DMQPMNet(config), extra={"postprocessing": {}})


@pytest.mark.slow
def test_finetune_into_a_run_of_another_model_refuses_then_overwrites(tmp_path, one_thread, capsys):
    import tifffile

    from napari_dmqpm.cli import main
    from napari_dmqpm.model import load_checkpoint
    from napari_dmqpm.simulation import SimulationConfig, simulate_field

    field = simulate_field(SimulationConfig(shape=(64, 64), density="dense"), rng=1)
    tifffile.imwrite(tmp_path / "cells.tif", field.phase.astype(np.float32))
    tifffile.imwrite(tmp_path / "cells_labels.tif", field.labels.astype(np.uint16))
    first = _tiny(tmp_path / "a", (4, 8, 16, 32, 32))
    second = _tiny(tmp_path / "b", (8, 8, 16, 32, 32))
    run = tmp_path / "run"
    args = ["finetune", "--image", str(tmp_path / "cells.tif"), "--labels",
            str(tmp_path / "cells_labels.tif"), "--out", str(run), "--epochs", "1",
            "--device", "cpu"]  # fmt: skip
    assert main([*args, "--model", str(first)]) == 0
    before = json.loads((run / "best" / "config.json").read_text())
    capsys.readouterr()
    assert main([*args, "--model", str(second)]) == 2
    err = capsys.readouterr().err
    assert f"{run} holds an earlier run with other settings (--model: stored" in err
    assert "start afresh with --overwrite" in err and "\n" not in err.strip()
    assert json.loads((run / "best" / "config.json").read_text()) == before  # untouched
    assert main([*args, "--model", str(second), "--overwrite"]) == 0
    model, content = load_checkpoint(run / "best")
    assert model.config.features[0] == 8  # the network asked for, not the old run's
    assert content["training"]["base_checkpoint"] == str(second)
