"""The model registry (napari_dmqpm.model.registry), tested with tiny checkpoints."""

import pytest

from napari_dmqpm.model import CheckpointError, registry, save_checkpoint
from napari_dmqpm.model.registry import (
    MODELS_ENV,
    ModelNotFoundError,
    default_model_for,
    find_model,
    list_models,
    load_model,
    user_model_path,
    user_models_dir,
)


@pytest.fixture
def no_shipped(monkeypatch, tmp_path):
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    monkeypatch.setattr(registry, "shipped_model_dirs", lambda: [shipped])
    return shipped


def test_user_models_are_listed_with_what_they_need(helpers, models_dir, no_shipped):
    helpers.save_tiny(models_dir / "dual", inputs="both", cell_diameter_px=24.0)
    helpers.save_tiny(models_dir / "phase", inputs="phase", postprocessing={"seed_threshold": 0.6})
    (models_dir / "notes").mkdir()  # not a model: ignored
    models = {m.name: m for m in list_models()}
    assert sorted(models) == ["dual", "phase"]
    dual, phase = models["dual"], models["phase"]
    assert dual.source == "user" and dual.inputs == "both" and dual.needs_angles
    assert dual.cell_diameter_px == 24.0 and len(dual.sha256) == 64
    assert phase.inputs == "phase" and not phase.needs_angles and phase.needs_phase
    assert phase.cell_diameter_px is None and phase.postprocessing == {"seed_threshold": 0.6}


def test_shipped_models_come_first_and_hide_user_models_of_the_same_name(
    helpers, models_dir, no_shipped
):
    helpers.save_tiny(no_shipped / "phase-only", inputs="phase")
    helpers.save_tiny(models_dir / "phase-only", inputs="both")
    helpers.save_tiny(models_dir / "mine", inputs="both")
    models = list_models()
    assert [(m.name, m.source) for m in models] == [("phase-only", "shipped"), ("mine", "user")]
    assert find_model("phase-only").inputs == "phase"


def test_load_model_is_cached_per_device_until_the_files_change(helpers, models_dir, no_shipped):
    helpers.save_tiny(models_dir / "tiny", inputs="phase")
    first = load_model("tiny", device="cpu")
    assert first.info.name == "tiny" and first.device.type == "cpu"
    assert not first.network.training
    assert load_model("tiny", device="cpu") is first
    save_checkpoint(models_dir / "tiny", helpers.tiny_net(inputs="phase", seed=1), overwrite=True)
    second = load_model("tiny", device="cpu")
    assert second is not first


def test_a_model_loads_from_a_folder_path(helpers, tmp_path, models_dir):
    folder = helpers.save_tiny(tmp_path / "somewhere" / "model", inputs="phase")
    loaded = load_model(folder, device="cpu")
    assert loaded.info.source == "path" and loaded.info.name == "model"
    assert load_model(str(folder), device="cpu") is loaded


def test_a_tampered_weights_file_is_refused(helpers, models_dir, no_shipped):
    folder = helpers.save_tiny(models_dir / "tiny", inputs="phase")
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256"):
        load_model("tiny", device="cpu")


def test_an_unknown_name_lists_what_there_is(helpers, models_dir, no_shipped):
    with pytest.raises(ModelNotFoundError, match="ships no trained weights yet"):
        load_model("dmqpm-default", device="cpu")
    helpers.save_tiny(models_dir / "mine", inputs="phase")
    with pytest.raises(ModelNotFoundError, match=r"Available: mine \(user\)"):
        load_model("dmqpm-default", device="cpu")


def test_a_broken_config_is_skipped_with_a_warning(models_dir, no_shipped):
    (models_dir / "broken").mkdir()
    (models_dir / "broken" / "config.json").write_text("{not json")
    with pytest.warns(registry.RegistryWarning, match="broken"):
        assert list_models() == []


def test_default_models_by_input_kind():
    # angle images: the fast model, as accurate at a fraction of the CPU time (issue 17)
    assert default_model_for("ssqpm-stack") == "dmqpm-fast"
    assert default_model_for("angles-stack") == "dmqpm-fast"
    assert default_model_for("raw-mosaic") == "dmqpm-fast"
    assert default_model_for("phase-map") == "phase-only"
    with pytest.raises(ValueError, match="kind must be one of"):
        default_model_for("movie")


def test_user_models_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(MODELS_ENV, str(tmp_path / "elsewhere"))
    assert user_models_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv(MODELS_ENV)
    assert user_models_dir().parts[-2:] == ("napari-dmqpm", "models")


def test_user_model_path_never_names_a_shipped_model(helpers, models_dir, no_shipped):
    helpers.save_tiny(no_shipped / "phase-only", inputs="phase")
    assert user_model_path("my-cells_v2") == models_dir / "my-cells_v2"
    with pytest.raises(ValueError, match="shipped model"):
        user_model_path("phase-only")
    for bad in ("", "../up", "a/b", ".hidden"):
        with pytest.raises(ValueError, match="name must be"):
            user_model_path(bad)
