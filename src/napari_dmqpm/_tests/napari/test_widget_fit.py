"""Both widgets fit a 1280x800 screen: every button can be seen and clicked, docked as tabs
(as the demo docks them) or stacked (as the Plugins menu docks them, each dock scrolling)."""

from __future__ import annotations

import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from qtpy.QtCore import QRect  # noqa: E402
from qtpy.QtWidgets import QApplication, QPushButton, QTabBar  # noqa: E402

from napari_dmqpm._napari._demo_gui import PLUGIN_NAME, dock_plugin_widgets  # noqa: E402

pytestmark = pytest.mark.gui
SCREEN = QRect(0, 0, 1280, 800)
WIDGETS = ("Segment cells", "Fine-tune model", "Cell growth")


def _settle(qtbot, ms: int = 150) -> None:
    QApplication.processEvents()
    qtbot.wait(ms)


def _window(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    window = viewer.window._qt_window
    window.showNormal()
    window.setGeometry(SCREEN)
    viewer.open_sample(PLUGIN_NAME, "sparse")
    return viewer, window


def _unreachable(qtbot, dock, widget) -> list[str]:
    """Buttons of ``widget`` that cannot be clicked after unfolding and scrolling to them."""
    dock.raise_()
    for fold in widget.folds.values():
        fold.expand(animate=False)
    _settle(qtbot)
    missing = []
    for button in widget.findChildren(QPushButton):
        widget.scroll.ensureWidgetVisible(button)
        _settle(qtbot, 30)
        if not button.visibleRegion().boundingRect().contains(button.rect()):
            missing.append(f"{type(widget).__name__}: {button.text()!r} is cut off")
            continue
        center = button.mapToGlobal(button.rect().center())
        top = QApplication.widgetAt(center)
        clickable = top is button or (top is not None and button.isAncestorOf(top))
        if not (clickable and SCREEN.contains(center)):
            missing.append(f"{type(widget).__name__}: {button.text()!r} at {center}")
    return missing


def _check_fits(qtbot, window, docks) -> None:
    for _, widget in docks:  # a status naming a long path must not widen the dock
        widget.status.setText("Saved in " + "x" * 300)
    _settle(qtbot, 300)
    height = window.frameGeometry().height()
    assert height <= SCREEN.height(), f"the window grew to {height} px on an 800 px screen"
    assert window.frameGeometry().width() <= SCREEN.width()
    missing = [name for dock, widget in docks for name in _unreachable(qtbot, dock, widget)]
    assert not missing, missing


def test_demo_docking_as_tabs_fits_1280x800(make_napari_viewer, qtbot):
    viewer, window = _window(make_napari_viewer, qtbot)
    assert dock_plugin_widgets(viewer) == list(WIDGETS)
    _settle(qtbot)
    bars = [bar for bar in window.findChildren(QTabBar) if bar.count() == len(WIDGETS)]
    assert [bar.tabText(bar.currentIndex()) for bar in bars] == [f"Segment cells ({PLUGIN_NAME})"]
    widgets = [viewer.window.dock_widgets[f"{name} ({PLUGIN_NAME})"] for name in WIDGETS]
    docks = [(widget.parent(), widget) for widget in widgets]
    _check_fits(qtbot, window, docks)
    # the common fields fit without scrolling when the advanced sections stay folded
    for dock, widget in docks:
        widget.status.setText("")
        for fold in widget.folds.values():
            fold.collapse(animate=False)
        dock.raise_()
        _settle(qtbot)
        assert not widget.scroll.verticalScrollBar().isVisible(), type(widget).__name__


def test_stacked_docks_from_the_plugins_menu_scroll_to_every_button(make_napari_viewer, qtbot):
    viewer, window = _window(make_napari_viewer, qtbot)
    docks = [viewer.window.add_plugin_dock_widget(PLUGIN_NAME, name) for name in WIDGETS]
    _check_fits(qtbot, window, docks)
