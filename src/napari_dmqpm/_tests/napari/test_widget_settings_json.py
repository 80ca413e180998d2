"""The widgets' remembered settings go through the configs' one JSON round-trip (_config.py)."""

from __future__ import annotations

import json

from napari_dmqpm._config import config_to_dict
from napari_dmqpm._napari._widgets._settings import WidgetSettings, load_settings, save_settings


def test_settings_round_trip_through_json_text_and_the_shared_helper(tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_DMQPM_CONFIG_DIR", str(tmp_path))
    settings = WidgetSettings(
        model="phase-only", device="cpu", diameter_px=24.5, tta=True, phase_unit="pg_per_um2",
        wavelength_um=0.65,
    )  # fmt: skip
    assert settings.to_dict() == config_to_dict(settings)
    assert WidgetSettings.from_dict(json.loads(json.dumps(settings.to_dict()))) == settings
    save_settings(settings)
    assert load_settings() == settings


def test_a_bad_or_unknown_value_falls_back_to_its_default_alone():
    data = {
        "model": "dmqpm-fast",
        "device": "gpu",  # not a choice
        "diameter_px": "24",  # a JSON string, not a number
        "tta": 1,  # not a JSON boolean
        "wavelength_um": 0.53,
        "theme": "dark",  # not a setting (a newer or older version's)
    }
    settings = WidgetSettings.from_dict(data)
    assert settings == WidgetSettings(model="dmqpm-fast", wavelength_um=0.53)
    assert WidgetSettings.from_dict(["not", "a", "dict"]) == WidgetSettings()
