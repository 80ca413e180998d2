import hashlib
import json
import pickle
import re
from pathlib import Path

import pytest
import torch

from napari_dmqpm.model import (
    CheckpointError,
    DMQPMNet,
    ModelConfig,
    NormalizationConfig,
    load_checkpoint,
    read_checkpoint_config,
    save_checkpoint,
)

MODEL_DIR = Path(__file__).resolve().parents[2] / "model"


def tiny(**changes) -> ModelConfig:
    base = dict(features=(4, 8, 16), strides=(1, 2, 2), n_heads=2, fusion_stage=1)
    return ModelConfig(**{**base, **changes})


def batch(seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(1, 4, 32, 32, generator=generator), torch.randn(
        1, 1, 32, 32, generator=generator
    )


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    norm = NormalizationConfig(angle_mean=(0.5,) * 4, angle_std=(0.3,) * 4, phase_high=3.0)
    net = DMQPMNet(tiny(normalization=norm)).eval()
    folder = save_checkpoint(
        tmp_path / "ckpt",
        net,
        extra={"postprocessing": {"threshold": 0.5}, "training": {"epochs": 2}},
        model_card="# tiny\n",
    )
    return net, folder


def test_round_trip_gives_identical_outputs(saved):
    net, folder = saved
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md", "SHA256SUMS", "config.json", "model.safetensors",
    ]  # fmt: skip
    loaded, content = load_checkpoint(folder)
    assert not loaded.training and loaded.config == net.config
    assert content["postprocessing"] == {"threshold": 0.5} and content["training"]["epochs"] == 2
    assert content["model"]["normalization"]["phase_high"] == 3.0
    with torch.inference_mode():
        assert torch.equal(loaded(*batch()), net(*batch()))
    assert read_checkpoint_config(folder) == content


def test_recorded_hash_is_the_file_hash(saved):
    _, folder = saved
    digest = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    assert json.loads((folder / "config.json").read_text())["sha256"] == digest
    assert (folder / "SHA256SUMS").read_text() == f"{digest}  model.safetensors\n"
    load_checkpoint(folder, expected_sha256=digest.upper())


def test_weights_load_with_deep_supervision_on_or_off(saved, tmp_path):
    net, _ = saved
    other = DMQPMNet(tiny(deep_supervision=False, normalization=net.config.normalization))
    other.load_state_dict(net.state_dict(), strict=True)


def test_never_overwrites_unless_asked(saved):
    net, folder = saved
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_checkpoint(folder, net)
    torch.manual_seed(1)
    replacement = DMQPMNet(tiny())
    save_checkpoint(folder, replacement, overwrite=True)
    loaded, content = load_checkpoint(folder)
    assert content["postprocessing"] == {}  # a fresh folder, nothing left from before
    assert not (folder / "README.md").exists()
    assert torch.equal(loaded.state_dict()["decoder.heads.0.weight"],
                       replacement.state_dict()["decoder.heads.0.weight"])  # fmt: skip
    assert [p.name for p in folder.parent.iterdir()] == ["ckpt"]  # no temporary folders left


def test_reserved_and_unserialisable_extras_are_rejected(tmp_path):
    net = DMQPMNet(tiny())
    with pytest.raises(ValueError, match="reserved"):
        save_checkpoint(tmp_path / "a", net, extra={"sha256": "0" * 64})
    with pytest.raises(ValueError, match="JSON"):
        save_checkpoint(tmp_path / "b", net, extra={"training": {"when": object()}})
    assert list(tmp_path.iterdir()) == []


def test_hash_mismatch_is_a_clear_error(saved):
    _, folder = saved
    with pytest.raises(CheckpointError, match=f"{folder}.*expected_sha256"):
        load_checkpoint(folder, expected_sha256="0" * 64)
    content = json.loads((folder / "config.json").read_text())
    content["sha256"] = "f" * 64
    (folder / "config.json").write_text(json.dumps(content))
    with pytest.raises(CheckpointError, match="config.json 'sha256'"):
        load_checkpoint(folder)
    with pytest.raises(ValueError, match="expected_sha256 must be 64 hex"):
        load_checkpoint(folder, expected_sha256="abc")


def test_truncated_weights_are_a_clear_error(saved):
    _, folder = saved
    path = folder / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="sha256"):
        load_checkpoint(folder)
    # even when the hash of the truncated file is vouched for, parsing fails cleanly
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    (folder / "SHA256SUMS").unlink()
    content = json.loads((folder / "config.json").read_text())
    content["sha256"] = digest
    (folder / "config.json").write_text(json.dumps(content))
    with pytest.raises(CheckpointError, match=f"{folder}.*corrupt or truncated"):
        load_checkpoint(folder)


@pytest.mark.parametrize("name", ["config.json", "model.safetensors"])
def test_missing_files_are_clear_errors(saved, name):
    _, folder = saved
    (folder / name).unlink()
    with pytest.raises(CheckpointError, match=f"{folder} is missing {name}"):
        load_checkpoint(folder)


def test_missing_folder_and_missing_hash(saved, tmp_path):
    _, folder = saved
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nowhere")
    (folder / "SHA256SUMS").unlink()
    content = json.loads((folder / "config.json").read_text())
    del content["sha256"]
    (folder / "config.json").write_text(json.dumps(content))
    with pytest.raises(CheckpointError, match="no sha256"):
        load_checkpoint(folder)


def test_config_that_does_not_match_the_weights(saved):
    _, folder = saved
    content = json.loads((folder / "config.json").read_text())
    content["model"]["features"] = [4, 8, 32]
    (folder / "config.json").write_text(json.dumps(content))
    with pytest.raises(CheckpointError, match="does not match model.safetensors.*shape"):
        load_checkpoint(folder)
    content["model"]["fusion"] = "bogus"
    (folder / "config.json").write_text(json.dumps(content))
    with pytest.raises(CheckpointError, match="invalid model config.*fusion"):
        load_checkpoint(folder)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(folder)


def test_no_pickle_anywhere_in_the_model_package():
    torch_load = re.compile(r"(?<!safetensors\.)\btorch\.load\(")
    for path in MODEL_DIR.glob("*.py"):
        text = path.read_text()
        assert "import pickle" not in text and "from pickle" not in text, path
        for line in text.splitlines():
            if torch_load.search(line):
                assert "weights_only=True" in line, (path, line)


def test_loading_never_unpickles(saved, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("pickle used while loading a checkpoint")

    monkeypatch.setattr(torch, "load", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    load_checkpoint(saved[1])
