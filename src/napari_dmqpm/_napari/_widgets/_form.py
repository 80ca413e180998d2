"""Small Qt pieces shared by the widgets: layer and model pickers, spin boxes, the model signal.

:func:`model_events` is one process-wide Qt object: the fine-tune widget emits ``added`` when
it saves a model, and every segment widget refreshes its list at once and selects it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

from qtpy.QtCore import QObject, Qt, Signal
from qtpy.QtWidgets import QComboBox, QDoubleSpinBox, QSpinBox

__all__ = ["LayerBox", "ModelBox", "ModelEvents", "double_spin", "int_spin", "model_events"]


class ModelEvents(QObject):
    """Signals about the model registry, shared by all widgets of the process."""

    #: A model was saved (its name): model lists refresh.
    added = Signal(str)


_EVENTS: ModelEvents | None = None


def model_events() -> ModelEvents:
    """The shared :class:`ModelEvents` (created on first use, on the GUI thread)."""
    global _EVENTS
    if _EVENTS is None:
        _EVENTS = ModelEvents()
    return _EVENTS


class LayerBox(QComboBox):
    """A combo box of the viewer's layers that a filter accepts, refreshed on demand.

    Parameters
    ----------
    viewer : napari.Viewer
    choose : callable
        ``choose(layers) -> list of layers`` offered, in order.
    none_text : str, optional
        When given, a first entry with this text stands for "no layer".
    """

    def __init__(
        self, viewer: Any, choose: Callable[[Sequence[Any]], list], *, none_text: str | None = None
    ) -> None:
        super().__init__()
        self._viewer, self._choose, self._none_text = viewer, choose, none_text
        #: True once the user picked an entry by hand: automatic pairing leaves it alone.
        self.user_chose = False
        self.activated.connect(self._picked)
        self.refresh()

    def _picked(self, *_: Any) -> None:
        self.user_chose = True

    def refresh(self) -> None:
        """Re-list the layers, keeping the current choice when it is still there."""
        current = self.currentText()
        names = [layer.name for layer in self._choose(list(self._viewer.layers))]
        entries = ([self._none_text] if self._none_text else []) + names
        if entries == [self.itemText(i) for i in range(self.count())]:
            return
        self.blockSignals(True)
        self.clear()
        self.addItems(entries)
        if current in entries:
            self.setCurrentText(current)
        self.blockSignals(False)
        if self.currentText() != current:
            self.currentIndexChanged.emit(self.currentIndex())

    def layer(self) -> Any | None:
        """The chosen layer, or None ("no layer", or nothing to choose)."""
        name = self.currentText()
        if not name or name == self._none_text or name not in self._viewer.layers:
            return None
        return self._viewer.layers[name]

    def select(self, layer: Any | None) -> None:
        """Choose ``layer`` (None: the "no layer" entry, if any)."""
        name = self._none_text if layer is None else layer.name
        if name is not None and self.findText(name) >= 0:
            self.setCurrentText(name)

    def suggest(self, layer: Any | None, *, force: bool = False) -> None:
        """Choose ``layer`` unless the user picked another by hand (``force`` overrides)."""
        if force:
            self.user_chose = False
        if not self.user_chose:
            self.select(layer)


class ModelBox(QComboBox):
    """The models of the registry (shipped and the user's), by name, with a tooltip each."""

    def __init__(self) -> None:
        super().__init__()
        self.setToolTip("Shipped models and your fine-tuned ones")
        self._infos: dict[str, Any] = {}
        self._has_angles = True
        self._displaced: str | None = None  # the model given up for lack of angle images

    def refresh(self, *, select: str | None = None) -> None:
        """Re-read the registry; keep the current model, or choose ``select``."""
        from napari.utils.notifications import show_warning

        from napari_dmqpm.model.registry import list_models

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            infos = list_models()
        for record in caught:
            show_warning(str(record.message))
        from napari_dmqpm.model.registry import default_model_for

        before, current = self.currentText(), select or self.currentText()
        current = current or default_model_for("ssqpm-stack")  # the first fill: the default
        self._infos = {info.name: info for info in infos}
        self.blockSignals(True)
        self.clear()
        for info in infos:
            self.addItem(info.name)
        if current in self._infos:
            self.setCurrentText(current)
        self._mark_inputs()
        self.blockSignals(False)
        if self.currentText() != before or select is not None:
            self.currentIndexChanged.emit(self.currentIndex())

    def follow_inputs(self, *, has_angles: bool) -> None:
        """Offer only the models that take the chosen inputs.

        Without angle images, the models that need them are greyed out (their tooltip says
        why) and a chosen one gives way to the shipped phase model; it comes back when angle
        images are chosen again.
        """
        self._has_angles = bool(has_angles)
        before = self.currentText()
        self.blockSignals(True)
        self._mark_inputs()
        self.blockSignals(False)
        if self.currentText() != before:
            self.currentIndexChanged.emit(self.currentIndex())

    def _mark_inputs(self) -> None:
        from napari_dmqpm.model.registry import default_model_for

        items = self.model()
        for index in range(self.count()):
            info = self._infos[self.itemText(index)]
            usable = self._has_angles or not info.needs_angles
            item = items.item(index) if hasattr(items, "item") else None
            if item is not None:
                item.setEnabled(usable)
            needs = {"both": "angles + phase", "angles": "angles", "phase": "phase only"}
            tip = f"{info.source} model, input: {needs.get(info.inputs, info.inputs)}"
            if not usable:
                tip = f"{info.name} needs the four angle images: choose an angles layer"
            self.setItemData(index, tip, Qt.ItemDataRole.ToolTipRole)
        current = self.info()
        if current is not None and current.needs_angles and not self._has_angles:
            phase_models = [name for name, info in self._infos.items() if not info.needs_angles]
            preferred = default_model_for("phase-map")
            if phase_models:
                self._displaced = current.name
                self.setCurrentText(preferred if preferred in phase_models else phase_models[0])
        elif self._has_angles and self._displaced in self._infos:
            self.setCurrentText(self._displaced)
            self._displaced = None

    def info(self) -> Any | None:
        """The :class:`~napari_dmqpm.model.registry.ModelInfo` chosen, or None."""
        return self._infos.get(self.currentText())

    def names(self) -> list[str]:
        """Every listed model name."""
        return list(self._infos)


def double_spin(
    value: float,
    low: float,
    high: float,
    *,
    step: float = 0.05,
    decimals: int = 2,
    suffix: str = "",
    special: str | None = None,
    tooltip: str = "",
) -> QDoubleSpinBox:
    """A QDoubleSpinBox; ``special`` is shown instead of the minimum (e.g. "auto")."""
    box = QDoubleSpinBox()
    box.setDecimals(decimals)
    box.setRange(low, high)
    box.setSingleStep(step)
    box.setValue(value)
    if suffix:
        box.setSuffix(suffix)
    if special:
        box.setSpecialValueText(special)
    box.setToolTip(tooltip)
    return box


def int_spin(value: int, low: int, high: int, *, special: str = "", tooltip: str = "") -> QSpinBox:
    """A QSpinBox; ``special`` is shown instead of the minimum."""
    box = QSpinBox()
    box.setRange(low, high)
    box.setValue(value)
    if special:
        box.setSpecialValueText(special)
    box.setToolTip(tooltip)
    return box
