"""The shipped weights (``weights/``): intact, consistent with their cards, and still good.

Each shipped model loads by name through the registry; ``model.safetensors`` hashes to what
``SHA256SUMS``, ``config.json`` and the model card (README.md) record; a corrupted copy is
refused; and each model holds a Dice and F1@0.5 floor on four seeded simulated fields.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from napari_dmqpm.inference import InferenceConfig, predict_probabilities, probabilities_to_labels
from napari_dmqpm.inference.config import PostprocessConfig
from napari_dmqpm.model import CheckpointError, load_checkpoint
from napari_dmqpm.model.registry import (
    MODELS_ENV,
    clear_model_cache,
    list_models,
    load_model,
    shipped_model_dirs,
)
from napari_dmqpm.simulation import SimulationConfig, simulate_field
from napari_dmqpm.training.metrics import score_image

SHIPPED = ("dmqpm-default", "dmqpm-fast", "phase-only")
#: Mean Dice and F1@0.5 over the four fields below, floors a little under the values measured
#: (CPU, float32, no resampling, the thresholds stored with each model, 2026-12-06):
#: dmqpm-default Dice 0.9926 F1 0.9950; dmqpm-fast 0.9949 / 0.9975; phase-only 0.9916 / 0.9975.
#: Every single field scored Dice >= 0.985 and F1 >= 0.98.
FLOORS = {
    "dmqpm-default": (0.985, 0.97),
    "dmqpm-fast": (0.985, 0.97),
    "phase-only": (0.980, 0.97),
}
DENSITIES = ("sparse", "medium", "dense", "confluent")
_CARD_HASH = re.compile(r"`model\.safetensors` sha256 `([0-9a-f]{64})`")


@pytest.fixture(autouse=True)
def _no_user_models(tmp_path, monkeypatch):
    """An empty user models folder and model cache: only the shipped models answer."""
    folder = tmp_path / "user-models"
    folder.mkdir()
    monkeypatch.setenv(MODELS_ENV, str(folder))
    clear_model_cache()
    yield
    clear_model_cache()


def _folder(name: str) -> Path:
    (info,) = [m for m in list_models() if m.name == name]
    assert info.source == "shipped" and info.path.parent in shipped_model_dirs()
    return info.path


def recorded_hashes(folder: Path) -> dict[str, str | None]:
    """The sha256 of ``model.safetensors`` and what each file of the folder records."""
    sums = (folder / "SHA256SUMS").read_text(encoding="utf-8").split()
    card = _CARD_HASH.findall((folder / "README.md").read_text(encoding="utf-8"))
    return {
        "file": hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest(),
        "SHA256SUMS": sums[0] if sums[1:] == ["model.safetensors"] else None,
        "config.json": json.loads((folder / "config.json").read_text(encoding="utf-8"))["sha256"],
        "README.md": card[-1] if len(card) == 1 else None,
    }


def test_every_shipped_model_is_listed_by_the_registry():
    shipped = {m.name for m in list_models() if m.source == "shipped"}
    assert shipped == set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_weights_match_sha256sums_config_and_model_card(name):
    hashes = recorded_hashes(_folder(name))
    assert len(set(hashes.values())) == 1, hashes


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_loads_by_name_with_its_recorded_hash(name):
    loaded = load_model(name, device="cpu")
    assert loaded.info.sha256 == recorded_hashes(_folder(name))["file"]
    assert not loaded.network.training
    assert loaded.info.postprocessing, "the tuned post-processing thresholds are stored"


def _corrupt_copy(name: str, tmp_path: Path, how: str) -> Path:
    copy = tmp_path / name
    shutil.copytree(_folder(name), copy)  # never touch weights/ itself
    if how == "weights":
        data = bytearray((copy / "model.safetensors").read_bytes())
        data[-100] ^= 0x01  # one bit of one weight
        (copy / "model.safetensors").write_bytes(bytes(data))
    else:
        path = copy / how
        text = path.read_text(encoding="utf-8")
        digest = recorded_hashes(copy)["file"]
        path.write_text(text.replace(digest, digest[::-1]), encoding="utf-8")
    return copy


@pytest.mark.parametrize("how", ["weights", "SHA256SUMS", "config.json"])
def test_a_corrupted_copy_of_a_shipped_model_is_refused(tmp_path, how):
    copy = _corrupt_copy("dmqpm-fast", tmp_path, how)
    assert len(set(recorded_hashes(copy).values())) > 1
    with pytest.raises(CheckpointError, match="sha256"):
        load_model(str(copy), device="cpu")
    with pytest.raises(CheckpointError, match="sha256"):  # without the registry's hash too
        load_checkpoint(copy)


def test_a_model_card_with_another_hash_is_detected(tmp_path):
    copy = _corrupt_copy("dmqpm-fast", tmp_path, "README.md")
    hashes = recorded_hashes(copy)
    assert hashes["README.md"] != hashes["file"] == hashes["SHA256SUMS"]


@pytest.fixture(scope="module")
def fields():
    """Four seeded 256 x 256 fields, sparse to confluent (7 to 100 cells)."""
    return [
        simulate_field(SimulationConfig(shape=(256, 256), density=density), rng=1500 + i)
        for i, density in enumerate(DENSITIES)
    ]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_holds_its_dice_and_f1_floor(name, fields):
    loaded = load_model(name, device="cpu")
    config = InferenceConfig(device="cpu", diameter_px=None)
    postprocess = PostprocessConfig.from_dict(loaded.info.postprocessing)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        scores = []
        for field in fields:
            angles = field.angles if loaded.info.needs_angles else None
            probabilities = predict_probabilities(
                loaded, angles=angles, phase=field.phase, config=config
            )
            labels = probabilities_to_labels(probabilities, config=postprocess)
            scores.append(score_image(labels, field.labels))
    finally:
        torch.set_num_threads(threads)
    dice = float(np.mean([s.dice for s in scores]))
    f1 = float(np.mean([s.f1 for s in scores]))
    dice_floor, f1_floor = FLOORS[name]
    assert dice >= dice_floor and f1 >= f1_floor, f"{name}: Dice {dice:.4f}, F1@0.5 {f1:.4f}"
