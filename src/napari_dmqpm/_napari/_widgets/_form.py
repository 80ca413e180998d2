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

    def refresh(self, *, select: str | None = None) -> None:
        """Re-read the registry; keep the current model, or choose ``select``."""
        from napari.utils.notifications import show_warning

        from napari_dmqpm.model.registry import list_models

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            infos = list_models()
        for record in caught:
            show_warning(str(record.message))
        before, current = self.currentText(), select or self.currentText()
        self._infos = {info.name: info for info in infos}
        self.blockSignals(True)
        self.clear()
        for index, info in enumerate(infos):
            self.addItem(info.name)
            needs = {"both": "angles + phase", "angles": "angles", "phase": "phase only"}
            self.setItemData(
                index,
                f"{info.source} model, input: {needs.get(info.inputs, info.inputs)}",
                Qt.ItemDataRole.ToolTipRole,
            )
        if current in self._infos:
            self.setCurrentText(current)
        self.blockSignals(False)
        if self.currentText() != before or select is not None:
            self.currentIndexChanged.emit(self.currentIndex())

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
