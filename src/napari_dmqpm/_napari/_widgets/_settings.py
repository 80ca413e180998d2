"""What the widgets remember between sessions: model, device, diameter, TTA, phase unit.

A small JSON file, ``settings.json``, in the platformdirs user config folder of napari-dmqpm
(``$NAPARI_DMQPM_CONFIG_DIR`` when that is set), written atomically. A missing, unreadable or
foreign file gives the defaults; reading never raises.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from napari_dmqpm._config import config_from_dict, config_to_dict
from napari_dmqpm.io.units import PHASE_UNITS
from napari_dmqpm.io.write import atomic_write

__all__ = ["CONFIG_ENV", "WidgetSettings", "load_settings", "save_settings", "settings_path"]

#: Environment variable that overrides the folder of ``settings.json``.
CONFIG_ENV = "NAPARI_DMQPM_CONFIG_DIR"
#: Devices the widgets offer.
DEVICES = ("auto", "cpu", "cuda", "mps")


@dataclass(frozen=True, kw_only=True)
class WidgetSettings:
    """The remembered choices of the widgets.

    Parameters
    ----------
    model : str or None
        Name of the last model used (None: the default for the input).
    device : {"auto", "cpu", "cuda", "mps"}
        Last device asked for.
    diameter_px : float or None
        Last cell diameter in pixels (None: auto, estimated on each image).
    tta : bool
        Test-time augmentation on or off.
    phase_unit : {"rad", "pg_per_um2", "opd_nm", "opd_um"}
        Last unit chosen for a phase layer that states none (offered again for such layers).
    wavelength_um : float or None
        Last wavelength in µm given for such a layer.
    """

    model: str | None = None
    device: str = "auto"
    diameter_px: float | None = None
    tta: bool = False
    phase_unit: str = "rad"
    wavelength_um: float | None = None

    def __post_init__(self) -> None:
        if self.model is not None and (not isinstance(self.model, str) or not self.model):
            raise ValueError(f"model must be a non-empty string or None; got {self.model!r}")
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}; got device={self.device!r}")
        _check_positive("diameter_px", self.diameter_px)
        if not isinstance(self.tta, bool):
            raise ValueError(f"tta must be True or False; got tta={self.tta!r}")
        if self.phase_unit not in PHASE_UNITS:
            raise ValueError(f"phase_unit must be one of {PHASE_UNITS}; got {self.phase_unit!r}")
        _check_positive("wavelength_um", self.wavelength_um)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, data: Any) -> WidgetSettings:
        """Settings from a dict; unknown keys are ignored and bad values fall back to defaults.

        Each known key is read alone with the configs' JSON round-trip
        (:func:`~napari_dmqpm._config.config_from_dict`), which refuses a value of the wrong
        JSON type, then checked by ``__post_init__``; a key refused either way is left out.
        """
        if not isinstance(data, dict):
            return cls()
        values = {}
        for field in dataclasses.fields(cls):
            if field.name in data:
                one = {field.name: data[field.name]}
                try:
                    config_from_dict(cls, one)
                except (TypeError, ValueError):
                    continue
                values.update(one)
        return config_from_dict(cls, values)


def _check_positive(name: str, value: Any) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if value is not None and not (ok and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number or None; got {name}={value!r}")


def settings_path() -> Path:
    """``<config dir>/settings.json``: ``$NAPARI_DMQPM_CONFIG_DIR`` or the platformdirs folder."""
    override = os.environ.get(CONFIG_ENV, "").strip()
    if override:
        folder = Path(override).expanduser()
    else:
        import platformdirs

        folder = platformdirs.user_config_path("napari-dmqpm", appauthor=False)
    return folder / "settings.json"


def load_settings() -> WidgetSettings:
    """The saved settings, or the defaults when there are none or they cannot be read.

    Returns
    -------
    WidgetSettings
    """
    try:
        data = json.loads(settings_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return WidgetSettings()
    return WidgetSettings.from_dict(data)


def save_settings(settings: WidgetSettings) -> Path:
    """Write ``settings`` atomically (a crash leaves the old file or the new one, never half).

    Parameters
    ----------
    settings : WidgetSettings

    Returns
    -------
    Path
        The settings file.
    """
    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(settings.to_dict(), indent=2, sort_keys=True) + "\n"
    return atomic_write(path, lambda handle: handle.write(text.encode("utf-8")), overwrite=True)
