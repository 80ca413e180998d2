"""The "Phase unit", "Wavelength" and "Pixel size" fields shown under the phase image.

napari layers carry no phase unit, and QPM instruments store phase in radians, optical path or
dry mass density (a Q-PHASE map in pg/µm² read as radians is 1.74x too low at 650 nm). A layer
whose metadata states its unit (napari-dmqpm's reader for retrieved and converted phases)
locks the unit field to it. For any other layer the field shows "not stated: choose" and a
run is refused until the user picks one; a note under it says which units the values are
plausible in (:func:`napari_dmqpm.io.units.phase_unit_note`) and what was chosen last time.
A choice is kept for that layer while it is open, in both widgets. The wavelength starts
from the layer's metadata, else from the last one given; it also gives the dry mass. The
pixel size comes from the layer (its reader's metadata or a µm scale) and is locked then;
where the file states none the user may type it, and areas in µm² and dry mass in pg are
filled instead of left empty.
"""

from __future__ import annotations

import dataclasses
import weakref
from typing import Any

import numpy as np
from qtpy.QtWidgets import QComboBox, QLabel

from ._form import double_spin
from ._inputs import UNIT_NAMES, InputError, PhaseUnit, layer_pixel_size_um, stated_phase_unit
from ._settings import WidgetSettings

__all__ = ["PhaseUnitFields"]


def _number(value: Any) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value > 0
    return float(value) if ok else None


#: The unit combo box's first entry for a layer that states no unit.
NOT_STATED = "not stated: choose"
#: The unit the user chose for each open layer that states none (shared by both widgets).
_CHOSEN: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _key(layer: Any) -> Any:
    """The layer itself: a plugin's viewer hands out a new proxy of it on every access."""
    return getattr(layer, "__wrapped__", layer)


def _unit_note(layer: Any, remembered: WidgetSettings) -> str:
    """What the values of an unstated layer look like, and the unit chosen last time."""
    from napari_dmqpm.io.units import phase_unit_note

    data = layer.data if layer.ndim == 2 else layer.data[0]
    step = max(1, max(data.shape) // 512)  # a look at the values, not a measurement
    try:
        note = phase_unit_note(np.asarray(data[::step, ::step]))
    except (TypeError, ValueError):
        note = None
    last = f"Your last choice: {UNIT_NAMES[remembered.phase_unit]}"
    return f"The file states no unit; {note or 'the values give no hint'}. {last}."


class PhaseUnitFields:
    """Unit, wavelength and pixel-size fields that follow the chosen phase layer.

    Attributes
    ----------
    unit : QComboBox
        :data:`NOT_STATED` (item data None) and the units of :data:`~._inputs.UNIT_NAMES`
        (item data: the unit key).
    wavelength : QDoubleSpinBox
        Wavelength in µm; 0 shows "unknown".
    pixel_size : QDoubleSpinBox
        Pixel size in µm; 0 shows "unknown".
    note : QLabel
        Under the unit, for a layer that states none: what its values look like.
    stated : str or None
        The unit the current layer's metadata states (the field is then locked).
    """

    def __init__(self) -> None:
        self.unit = QComboBox()
        self.unit.addItem(NOT_STATED, None)
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
        self.pixel_size = double_spin(
            0.0, 0.0, 100.0, step=0.01, decimals=4, suffix=" µm", special="unknown"
        )
        self.note = QLabel("")
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: orange")
        self.stated: str | None = None
        self._layer: Any = None
        self.unit.currentIndexChanged.connect(self._unit_chosen)

    def follow(self, layer: Any | None, remembered: WidgetSettings) -> None:
        """Show the unit, wavelength and pixel size of ``layer`` (asking where it states none)."""
        self._layer = None  # no choice is recorded while the fields are being set
        self.stated = stated_phase_unit(layer) if layer is not None else None
        unit = self.stated or (_CHOSEN.get(_key(layer)) if layer is not None else None)
        self.unit.setCurrentIndex(max(self.unit.findData(unit), 0))
        self.unit.setEnabled(layer is not None and self.stated is None)
        self.unit.setToolTip(
            f"Stated by the layer's metadata: {UNIT_NAMES[self.stated]}"
            if self.stated
            else "What the phase image's values are: its file or layer states no unit"
        )
        unstated = layer is not None and self.stated is None
        self.note.setText(_unit_note(layer, remembered) if unstated else "")
        self.note.setVisible(unstated)
        wavelength = None if layer is None else _number(layer.metadata.get("wavelength_um"))
        if wavelength is None and self.stated is None:
            wavelength = remembered.wavelength_um
        self.wavelength.setValue(wavelength or 0.0)
        self._follow_pixel_size(layer)
        self._layer = layer

    def _follow_pixel_size(self, layer: Any | None) -> None:
        stated = None if layer is None else layer_pixel_size_um(layer)
        self.pixel_size.setValue(stated or 0.0)
        self.pixel_size.setEnabled(layer is not None and stated is None)
        self.pixel_size.setToolTip(
            f"Stated by the layer: {stated:g} µm"
            if stated
            else "Pixel size in µm (the file states none): gives areas in µm² and dry mass "
            "in pg; unknown leaves them empty"
        )

    def _unit_chosen(self, *_: Any) -> None:
        if self._layer is not None and self.stated is None and self.unit.currentData():
            _CHOSEN[_key(self._layer)] = self.unit.currentData()

    def value(self) -> PhaseUnit:
        """The :class:`~._inputs.PhaseUnit` of the fields (InputError when incomplete)."""
        if self.unit.currentData() is None:
            raise InputError(
                "the phase image's file states no unit: choose it under Phase unit "
                f"({', '.join(UNIT_NAMES.values())}). {self.note.text()}".strip()
            )
        wavelength = round(self.wavelength.value(), 6) or None
        return PhaseUnit(unit=self.unit.currentData(), wavelength_um=wavelength)

    def pixel_size_um(self) -> float | None:
        """The pixel size in µm of the field, None when unknown."""
        return round(self.pixel_size.value(), 6) or None

    def remember(self, settings: WidgetSettings) -> WidgetSettings:
        """``settings`` with this choice of unit and wavelength.

        Unchanged where the layer states its unit, or none is chosen: that is no choice of the
        user's.
        """
        if self.stated is not None or self.unit.currentData() is None:
            return settings
        wavelength = round(self.wavelength.value(), 6) or settings.wavelength_um
        return dataclasses.replace(
            settings, phase_unit=self.unit.currentData(), wavelength_um=wavelength
        )
