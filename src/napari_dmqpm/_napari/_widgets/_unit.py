"""The "Phase unit" and "Wavelength" fields that both widgets show under the phase image.

napari layers carry no unit, and QPM instruments store phase in radians, optical path or dry
mass density (a Q-PHASE map in pg/µm² read as radians is 1.74x too low at 650 nm). A layer
whose metadata states its unit (napari-dmqpm's reader for retrieved and converted phases)
locks the unit field to it; for any other layer the user picks the unit, starting from the last
choice. The wavelength starts from the layer's metadata, else (for a layer without a stated
unit) from the last one given; it also gives the dry mass.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from qtpy.QtWidgets import QComboBox

from ._form import double_spin
from ._inputs import UNIT_NAMES, PhaseUnit, stated_phase_unit
from ._settings import WidgetSettings

__all__ = ["PhaseUnitFields"]


def _number(value: Any) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value > 0
    return float(value) if ok else None


class PhaseUnitFields:
    """A unit combo box and a wavelength spin box that follow the chosen phase layer.

    Attributes
    ----------
    unit : QComboBox
        The units of :data:`~._inputs.UNIT_NAMES`; item data is the unit key.
    wavelength : QDoubleSpinBox
        Wavelength in µm; 0 shows "unknown".
    stated : str or None
        The unit the current layer's metadata states (the field is then locked).
    """

    def __init__(self) -> None:
        self.unit = QComboBox()
        for key, name in UNIT_NAMES.items():
            self.unit.addItem(name, key)
        self.wavelength = double_spin(
            0.0,
            0.0,
            10.0,
            step=0.005,
            decimals=3,
            suffix=" µm",
            special="unknown",
            tooltip="Illumination wavelength: converts pg/µm² and optical path to radians, "
            "and gives the dry mass",
        )
        self.stated: str | None = None

    def follow(self, layer: Any | None, remembered: WidgetSettings) -> None:
        """Show the unit and wavelength of ``layer`` (the remembered ones where it states none)."""
        self.stated = stated_phase_unit(layer) if layer is not None else None
        unit = self.stated or remembered.phase_unit
        self.unit.setCurrentIndex(max(self.unit.findData(unit), 0))
        self.unit.setEnabled(layer is not None and self.stated is None)
        self.unit.setToolTip(
            f"Stated by the layer's metadata: {UNIT_NAMES[self.stated]}"
            if self.stated
            else "What the phase image's values are: its file or layer states no unit"
        )
        wavelength = None if layer is None else _number(layer.metadata.get("wavelength_um"))
        if wavelength is None and self.stated is None:
            wavelength = remembered.wavelength_um
        self.wavelength.setValue(wavelength or 0.0)

    def value(self) -> PhaseUnit:
        """The :class:`~._inputs.PhaseUnit` of the fields (InputError when incomplete)."""
        wavelength = round(self.wavelength.value(), 6) or None
        return PhaseUnit(unit=self.unit.currentData(), wavelength_um=wavelength)

    def remember(self, settings: WidgetSettings) -> WidgetSettings:
        """``settings`` with this choice of unit and wavelength.

        Unchanged where the layer states its unit: that is no choice of the user's.
        """
        if self.stated is not None:
            return settings
        wavelength = round(self.wavelength.value(), 6) or settings.wavelength_um
        return dataclasses.replace(
            settings, phase_unit=self.unit.currentData(), wavelength_um=wavelength
        )
