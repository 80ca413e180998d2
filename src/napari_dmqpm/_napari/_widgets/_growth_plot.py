"""Two light plots of the growth dock, drawn with QPainter (no matplotlib, as ``_plot``).

:class:`MassPlot` draws dry mass against time for a track, its mother and its daughters;
:class:`RateHistogram` the growth rates of every track of the field, the chosen one marked.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from qtpy.QtCore import QPointF, QRectF, QSize, Qt
from qtpy.QtGui import QColor, QPainter, QPainterPath, QPen
from qtpy.QtWidgets import QSizePolicy, QWidget

from napari_dmqpm.tracking.curves import Curve

__all__ = ["MassPlot", "RateHistogram"]

ROLE_COLORS = {
    "mother": QColor(150, 150, 150),
    "track": QColor(255, 160, 60),
    "daughter": QColor(90, 200, 120),
}
_MARGIN = (44, 20, 10, 24)  # left, top (axis title and legend), right, bottom, in pixels
_TEXT = QColor(200, 200, 200)


def _span(values: np.ndarray, pad: float = 0.0) -> tuple[float, float]:
    """The range of the finite values, widened by ``pad`` of its width on each side."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = float(finite.min()), float(finite.max())
    if high <= low:
        return low - 0.5, high + 0.5
    margin = pad * (high - low)
    return low - margin, high + margin


#: How the legend of :class:`MassPlot` names each role.
_ROLE_NAMES = {"track": "this track", "mother": "mother", "daughter": "daughters"}


class _Axes(QWidget):
    """A plot frame with numbered x and y ranges and axis titles."""

    def __init__(self, tooltip: str) -> None:
        super().__init__()
        self.setMinimumHeight(120)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setToolTip(tooltip)
        self.x_title, self.y_title = "", ""

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        """Preferred size."""
        return QSize(320, 150)

    def frame(self) -> QRectF:
        """The plotting area inside the margins."""
        left, top, right, bottom = _MARGIN
        return QRectF(left, top, self.width() - left - right, self.height() - top - bottom)

    def draw_axes(self, painter: QPainter, x: tuple[float, float], y: tuple[float, float]) -> None:
        """The frame, the range of each axis and their titles."""
        frame = self.frame()
        painter.setPen(QPen(_TEXT, 1))
        painter.drawRect(frame)
        bottom, left = frame.bottom(), frame.left()
        painter.drawText(QPointF(2, frame.top() + 10), f"{y[1]:.4g}")
        painter.drawText(QPointF(2, bottom), f"{y[0]:.4g}")
        painter.drawText(QPointF(left, bottom + 14), f"{x[0]:.4g}")
        painter.drawText(QRectF(left, bottom + 2, frame.width(), 20),
                         Qt.AlignmentFlag.AlignRight, f"{x[1]:.4g}")  # fmt: skip
        painter.drawText(QRectF(left, bottom + 2, frame.width(), 20),
                         Qt.AlignmentFlag.AlignHCenter, self.x_title)  # fmt: skip
        painter.drawText(QPointF(left, frame.top() - 6), self.y_title)  # above: no curve there

    def to_screen(self, x: float, y: float, xs: tuple, ys: tuple) -> QPointF:
        """A data point in the frame's pixels."""
        frame = self.frame()
        u = (x - xs[0]) / (xs[1] - xs[0])
        v = (y - ys[0]) / (ys[1] - ys[0])
        return QPointF(frame.left() + u * frame.width(), frame.bottom() - v * frame.height())


class MassPlot(_Axes):
    """Dry mass (pg) against time of a track (orange), its mother (grey), its daughters (green)."""

    def __init__(self) -> None:
        super().__init__("Dry mass of the track (orange), its mother (grey), its daughters (green)")
        self.curves: list[Curve] = []

    def set_curves(self, curves: Sequence[Curve]) -> None:
        """Draw these curves (an empty list clears the plot)."""
        self.curves = list(curves)
        unit = self.curves[0].time_unit if self.curves else "h"
        self.x_title, self.y_title = f"time ({unit})", "dry mass (pg)"
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        """Draw the frame and one polyline per curve."""
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        times = np.concatenate([c.time for c in self.curves]) if self.curves else np.zeros(0)
        masses = np.concatenate([c.dry_mass_pg for c in self.curves]) if self.curves else times
        xs, ys = _span(times), _span(masses, pad=0.08)  # no curve on the frame's edge
        self.draw_axes(painter, xs, ys)
        self._draw_legend(painter)
        for curve in self.curves:
            path, started = QPainterPath(), False
            for x, y in zip(curve.time, curve.dry_mass_pg, strict=True):
                if not (math.isfinite(x) and math.isfinite(y)):
                    continue
                point = self.to_screen(x, y, xs, ys)
                path.lineTo(point) if started else path.moveTo(point)
                started = True
            width = 2.5 if curve.role == "track" else 1.5
            painter.setPen(QPen(ROLE_COLORS.get(curve.role, _TEXT), width))
            painter.drawPath(path)
        painter.end()

    def _draw_legend(self, painter: QPainter) -> None:
        """The roles shown, each in its colour, along the top right of the frame."""
        roles = [role for role in _ROLE_NAMES if any(c.role == role for c in self.curves)]
        right, top = self.frame().right(), self.frame().top() - 6
        for role in reversed(roles):
            text = _ROLE_NAMES[role]
            width = painter.fontMetrics().horizontalAdvance(text)
            painter.setPen(QPen(ROLE_COLORS[role], 1))
            painter.drawText(QPointF(right - width, top), text)
            right -= width + 10


class RateHistogram(_Axes):
    """A histogram of the field's growth rates, the chosen track's rate as a vertical line."""

    def __init__(self) -> None:
        super().__init__("Growth rates of every track of the field; the line marks the chosen one")
        self.counts, self.edges, self.marked = np.zeros(0), np.zeros(0), float("nan")

    def set_rates(self, rates: np.ndarray, unit: str, marked: float = float("nan")) -> None:
        """Histogram of the finite ``rates`` (in ``unit``), with ``marked`` drawn as a line."""
        finite = np.asarray(rates, dtype=np.float64)
        finite = finite[np.isfinite(finite)]
        bins = max(1, min(20, int(np.sqrt(finite.size)) + 1)) if finite.size else 1
        self.counts, self.edges = np.histogram(finite, bins=bins) if finite.size else (
            np.zeros(0), np.zeros(0))  # fmt: skip
        self.marked = float(marked)
        self.x_title, self.y_title = f"growth rate ({unit})", "tracks"
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        """Draw the frame, the bars and the marked rate."""
        painter = QPainter(self)
        xs = (float(self.edges[0]), float(self.edges[-1])) if self.edges.size else (0.0, 1.0)
        xs = xs if xs[1] > xs[0] else (xs[0] - 0.5, xs[1] + 0.5)
        ys = (0.0, float(max(self.counts.max(), 1))) if self.counts.size else (0.0, 1.0)
        self.draw_axes(painter, xs, ys)
        painter.setPen(QPen(ROLE_COLORS["daughter"], 1))
        painter.setBrush(ROLE_COLORS["daughter"].darker(150))
        for count, low, high in zip(self.counts, self.edges[:-1], self.edges[1:], strict=True):
            corner = self.to_screen(low, count, xs, ys)
            base = self.to_screen(high, 0.0, xs, ys)
            painter.drawRect(QRectF(corner, base))
        if math.isfinite(self.marked) and xs[0] <= self.marked <= xs[1]:
            painter.setPen(QPen(ROLE_COLORS["track"], 2))
            painter.drawLine(self.to_screen(self.marked, 0.0, xs, ys),
                             self.to_screen(self.marked, ys[1], xs, ys))  # fmt: skip
        painter.end()
