"""A light live plot of training loss and validation Dice, drawn with QPainter (no matplotlib).

The loss uses the left axis (from 0 to its maximum so far) and the Dice the right axis (0 to 1);
the x axis is the epoch. Epoch 0 (the base model, before any training) has a Dice but no loss.
"""

from __future__ import annotations

import math

from qtpy.QtCore import QPointF, QRectF, QSize, Qt
from qtpy.QtGui import QColor, QFont, QPainter, QPainterPath, QPen
from qtpy.QtWidgets import QSizePolicy, QWidget

__all__ = ["LossPlot"]

LOSS_COLOR = QColor(255, 160, 60)
DICE_COLOR = QColor(90, 200, 120)
_MARGIN = (34, 10, 34, 22)  # left, top, right, bottom, in pixels


class LossPlot(QWidget):
    """Training loss and validation Dice per epoch, updated as epochs finish."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(110)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setToolTip("Training loss (orange, left axis) and validation Dice (green, right axis)")
        self.epochs: list[int] = []
        self.losses: list[float] = []
        self.dices: list[float] = []

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        """Preferred size."""
        return QSize(320, 130)

    def clear(self) -> None:
        """Forget every point."""
        self.epochs, self.losses, self.dices = [], [], []
        self.update()

    def add(self, epoch: int, loss: float, dice: float) -> None:
        """Add one epoch (NaN values are not drawn)."""
        self.epochs.append(int(epoch))
        self.losses.append(float(loss))
        self.dices.append(float(dice))
        self.update()

    def _frame(self) -> QRectF:
        left, top, right, bottom = _MARGIN
        return QRectF(left, top, self.width() - left - right, self.height() - top - bottom)

    def _path(self, values: list[float], top: float) -> QPainterPath | None:
        frame, path, started = self._frame(), QPainterPath(), False
        last = max(self.epochs[-1], 1) if self.epochs else 1
        for epoch, value in zip(self.epochs, values, strict=True):
            if not math.isfinite(value):
                continue
            point = QPointF(
                frame.left() + frame.width() * epoch / last,
                frame.bottom() - frame.height() * min(max(value / top, 0.0), 1.0),
            )
            if started:
                path.lineTo(point)
            else:
                path.moveTo(point)
                started = True
            path.addEllipse(point, 1.5, 1.5)
            path.moveTo(point)
        return path if started else None

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        """Draw the axes, both curves and a legend."""
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        frame, text = self._frame(), self.palette().windowText().color()
        font = QFont(painter.font())
        font.setPointSizeF(max(6.0, font.pointSizeF() * 0.85))
        painter.setFont(font)
        painter.setPen(QPen(text, 1))
        painter.drawRect(frame)
        finite = [v for v in self.losses if math.isfinite(v)]
        loss_top = max(finite) * 1.1 if finite and max(finite) > 0 else 1.0
        last = max(self.epochs[-1], 1) if self.epochs else 1
        align_right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        align_left = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
        for fraction in (0.0, 0.5, 1.0):
            y = frame.bottom() - frame.height() * fraction
            painter.drawText(
                QRectF(0, y - 8, _MARGIN[0] - 3, 16), align_right, f"{loss_top * fraction:.2g}"
            )
            painter.drawText(
                QRectF(frame.right() + 3, y - 8, _MARGIN[2], 16), align_left, f"{fraction:.1f}"
            )
        below = QRectF(frame.left(), frame.bottom() + 2, frame.width(), 18)
        painter.drawText(below, align_right, f"epoch (0 to {last})" if self.epochs else "epoch")
        for values, top, color in (
            (self.losses, loss_top, LOSS_COLOR),
            (self.dices, 1.0, DICE_COLOR),
        ):
            path = self._path(values, top)
            if path is not None:
                painter.setPen(QPen(color, 2))
                painter.drawPath(path)
        offset = 0.0
        for name, color in (("— loss", LOSS_COLOR), ("— validation Dice", DICE_COLOR)):
            painter.setPen(QPen(color))
            painter.drawText(below.translated(offset, 0), align_left, name)
            offset += painter.fontMetrics().horizontalAdvance(f"{name}   ")
        painter.end()
