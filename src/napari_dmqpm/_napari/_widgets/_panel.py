"""The layout both dock widgets share: titled sections of labelled rows, buttons, progress.

The rows sit in a scroll area, so a dock is usable at any height (two docks stacked on a
1280x800 screen get about 350 px each); sections of advanced options can be folded away
(superqt's ``QCollapsible``), so the common fields fit without scrolling.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qtpy.QtCore import QSize, Qt
from qtpy.QtWidgets import (
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)
from superqt import QCollapsible

from napari_dmqpm._napari._angle_axis import follow_angle_axis

__all__ = ["Panel"]


class Panel(QWidget):
    """A vertical form: :meth:`section` titles, :meth:`row` fields, a progress bar and status.

    Parameters
    ----------
    viewer : napari.viewer.Viewer

    Attributes
    ----------
    scroll : QScrollArea
        Holds every row; scrolls vertically when the dock is shorter than the form.
    folds : dict of str to QCollapsible
        The foldable sections, by title.
    """

    def __init__(self, viewer: Any) -> None:
        super().__init__()
        self.viewer = viewer
        follow_angle_axis(viewer)  # the angle slider reads "angle 45°", not step 1
        body = QWidget()
        self._layout = QVBoxLayout(body)
        self.scroll = QScrollArea()
        self.scroll.setWidget(body)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.scroll)
        self.folds: dict[str, QCollapsible] = {}
        self._target = self._layout  # where the current section's buttons go
        self._form: QFormLayout | None = None
        self.progress_bar = QProgressBar()
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # a long word (a path) wraps nowhere: it must not widen the dock past the screen
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

    def section(self, title: str, *, folded: bool | None = None) -> None:
        """Start a titled group of rows; foldable (and folded at first) if ``folded``.

        Parameters
        ----------
        title : str
        folded : bool, optional
            None: a plain title. True or False: a section the user folds and unfolds by its
            title, starting folded (True) or open (False).
        """
        self._form = QFormLayout()
        if folded is None:
            self._target = self._layout
            self._layout.addWidget(QLabel(f"<b>{title}</b>"))
            self._layout.addLayout(self._form)
            return
        fold = QCollapsible(title)
        fold.setDuration(0)  # no animation: the scroll area's size follows at once
        content = QWidget()
        self._target = QVBoxLayout(content)
        self._target.setContentsMargins(0, 0, 0, 0)
        self._target.addLayout(self._form)
        fold.addWidget(content)
        if folded:
            fold.collapse(animate=False)
        else:
            fold.expand(animate=False)
        self.folds[title] = fold
        self._layout.addWidget(fold)

    def row(self, label: str, *widgets: QWidget) -> None:
        """A labelled row of one or more widgets in the current section."""
        if self._form is None:
            self._form = QFormLayout()
            self._target.addLayout(self._form)
        if len(widgets) == 1:
            self._form.addRow(label, widgets[0])
            return
        line = QHBoxLayout()
        for widget in widgets:
            line.addWidget(widget, stretch=0 if isinstance(widget, QPushButton) else 1)
        self._form.addRow(label, line)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        """As wide as the fields need (they never scroll sideways); any height above 160 px."""
        bar = self.scroll.verticalScrollBar().sizeHint().width()
        return QSize(self.scroll.widget().minimumSizeHint().width() + bar, 160)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        """The whole form without scrolling, where the screen allows."""
        body = self.scroll.widget().sizeHint()
        return QSize(self.minimumSizeHint().width(), body.height())

    def end_fold(self) -> None:
        """Put the next rows and buttons below the current folded section, not in it."""
        self._target, self._form = self._layout, None

    def buttons(self, *buttons: QWidget) -> None:
        """A line of buttons under the current section."""
        line = QHBoxLayout()
        for button in buttons:
            line.addWidget(button)
        self._target.addLayout(line)
        self._form = None

    def add(self, widget: QWidget) -> None:
        """A full-width widget, under the fields (outside any folded section)."""
        self.end_fold()
        self._layout.addWidget(widget)

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

    def fail(self, message: str) -> None:
        """Report a problem: a notification, and the whole message in the status line.

        napari's notification fades after a few seconds and shows one elided line until it
        is expanded; the status line keeps the full text, wrapped and selectable, until the
        next run.
        """
        from napari.utils.notifications import show_error

        self.status.setText(message)
        show_error(message)

    def show_progress(self, done: int, total: int, text: str = "") -> None:
        """Show ``done`` of ``total`` (busy when total is 0), with ``text`` in the bar."""
        self.progress_bar.setVisible(True)
        self.progress_bar.setRange(0, max(int(total), 0))
        self.progress_bar.setValue(min(int(done), max(int(total), 0)))
        self.progress_bar.setFormat(f"{text}  %p%" if text else "%p%")

    def hide_progress(self) -> None:
        """Hide the progress bar."""
        self.progress_bar.setVisible(False)
