"""The layout both dock widgets share: titled sections of labelled rows, buttons, progress."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qtpy.QtWidgets import (
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

__all__ = ["Panel"]


class Panel(QWidget):
    """A vertical form: :meth:`section` titles, :meth:`row` fields, a progress bar and status.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
    """

    def __init__(self, viewer: Any) -> None:
        super().__init__()
        self.viewer = viewer
        self._layout = QVBoxLayout(self)
        self._form: QFormLayout | None = None
        self.progress_bar = QProgressBar()
        self.status = QLabel("")
        self.status.setWordWrap(True)

    def section(self, title: str) -> None:
        """Start a titled group of rows."""
        label = QLabel(f"<b>{title}</b>")
        self._layout.addWidget(label)
        self._form = QFormLayout()
        self._layout.addLayout(self._form)

    def row(self, label: str, *widgets: QWidget) -> None:
        """A labelled row of one or more widgets in the current section."""
        if self._form is None:
            self.section("")
        if len(widgets) == 1:
            self._form.addRow(label, widgets[0])
            return
        line = QHBoxLayout()
        for widget in widgets:
            line.addWidget(widget, stretch=0 if isinstance(widget, QPushButton) else 1)
        self._form.addRow(label, line)

    def buttons(self, *buttons: QWidget) -> None:
        """A line of buttons under the current section."""
        line = QHBoxLayout()
        for button in buttons:
            line.addWidget(button)
        self._layout.addLayout(line)
        self._form = None

    def add(self, widget: QWidget) -> None:
        """A full-width widget."""
        self._layout.addWidget(widget)
        self._form = None

    def finish(self) -> None:
        """End the layout: spare height goes below the last row, not between rows."""
        self._layout.addStretch(1)

    def button(self, text: str, slot: Callable[[], Any], tooltip: str = "") -> QPushButton:
        """A push button calling ``slot()`` (without Qt's ``checked`` argument)."""
        button = QPushButton(text)
        button.setToolTip(tooltip)
        button.clicked.connect(lambda *_: slot())
        if len(text) <= 2:
            button.setMaximumWidth(32)
        return button

    @staticmethod
    def note(text: str) -> QLabel:
        """A small grey label."""
        label = QLabel(text)
        label.setStyleSheet("color: gray")
        return label

    def add_progress(self) -> None:
        """The progress bar (hidden until a job runs) and the status line."""
        self.progress_bar.setVisible(False)
        self.add(self.progress_bar)
        self.add(self.status)

    def show_progress(self, done: int, total: int, text: str = "") -> None:
        """Show ``done`` of ``total`` (busy when total is 0), with ``text`` in the bar."""
        self.progress_bar.setVisible(True)
        self.progress_bar.setRange(0, max(int(total), 0))
        self.progress_bar.setValue(min(int(done), max(int(total), 0)))
        self.progress_bar.setFormat(f"{text}  %p%" if text else "%p%")

    def hide_progress(self) -> None:
        """Hide the progress bar."""
        self.progress_bar.setVisible(False)
