"""Live training plot: loss, and validation PSNR of the model against bicubic, one point per epoch, drawn with
Qt's QPainter in napari's colours.

Qt is what napari already ships, so the plot needs nothing beyond a plain napari install (a plotting library
would add tens of megabytes and a few hundred milliseconds of import to the Train widget). Each epoch only
appends a point and schedules a repaint."""

from __future__ import annotations

import math

from qtpy.QtCore import QPointF, QRectF, Qt
from qtpy.QtGui import QColor, QFont, QPainter, QPen
from qtpy.QtWidgets import QSizePolicy, QWidget

BACKGROUND = QColor("#262930")  # napari's dark theme background
FOREGROUND = QColor("#d0d0d0")
EDGE = QColor("#5a626c")
LOSS = QColor("#f5a623")
MODEL = QColor("#50c878")
BICUBIC = QColor("#8ab4f8")


def _finite(value) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return math.nan
    return value if math.isfinite(value) else math.nan


def nice_ticks(low: float, high: float, count: int = 4) -> list[float]:
    """About ``count`` round tick values (steps of 1, 2 or 5 times a power of ten) inside [low, high]."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low] if math.isfinite(low) else []
    raw = (high - low) / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step - 1e-9) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def value_range(values: list[float]) -> tuple[float, float]:
    """The span the y axis shows: the finite values plus a margin (a flat series gets a visible span)."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return 0.0, 1.0
    low, high = min(finite), max(finite)
    margin = (high - low) * 0.08 or max(abs(high) * 0.05, 1e-3)
    return low - margin, high + margin


def _label(value: float, step: float) -> str:
    decimals = max(0, -math.floor(math.log10(step))) if step > 0 else 0
    return f"{value:.{min(decimals, 4)}f}"


class TrainingPlot(QWidget):
    """Two panels: training loss, and validation PSNR (model, and bicubic dashed) against the epoch."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(300, 160)
        self.clear()

    def clear(self) -> None:
        self.epochs: list[int] = []
        self.loss: list[float] = []
        self.val_psnr: list[float] = []
        self.bicubic_psnr: list[float] = []
        self.update()

    def add_epoch(self, event: dict) -> None:
        """Add one epoch event of the training log (keys: epoch, loss, val_psnr, bicubic_psnr)."""
        self.epochs.append(int(event.get("epoch", len(self.epochs) + 1)))
        self.loss.append(_finite(event.get("loss")))
        self.val_psnr.append(_finite(event.get("val_psnr")))
        self.bicubic_psnr.append(_finite(event.get("bicubic_psnr")))
        self.update()

    # ---- drawing

    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        try:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.fillRect(self.rect(), BACKGROUND)
            font = QFont(painter.font())
            font.setPointSizeF(7.5)
            painter.setFont(font)
            half = self.width() / 2
            self._panel(painter, QRectF(0, 0, half, self.height()), "training loss", [(self.loss, LOSS, False)])
            self._panel(
                painter,
                QRectF(half, 0, self.width() - half, self.height()),
                "validation PSNR (dB)",
                [(self.val_psnr, MODEL, False), (self.bicubic_psnr, BICUBIC, True)],
                legend=[("model", MODEL, False), ("bicubic", BICUBIC, True)],
            )
        finally:
            painter.end()

    def _panel(self, painter: QPainter, box: QRectF, title: str, series, legend=()) -> None:
        metrics = painter.fontMetrics()
        text_h = metrics.height()
        area = QRectF(QPointF(box.left() + 6 * metrics.averageCharWidth() + 8, box.top() + text_h + 6),
                      QPointF(box.right() - 10, box.bottom() - 2 * text_h - 6))
        if area.width() < 20 or area.height() < 20:
            return
        painter.setPen(FOREGROUND)
        painter.drawText(QRectF(box.left(), box.top() + 2, box.width(), text_h), Qt.AlignmentFlag.AlignCenter, title)
        painter.drawText(QRectF(area.left(), box.bottom() - text_h - 2, area.width(), text_h),
                         Qt.AlignmentFlag.AlignCenter, "epoch")

        x_low, x_high = (min(self.epochs) - 0.5, max(self.epochs) + 0.5) if self.epochs else (0.5, 1.5)
        y_low, y_high = value_range([v for values, _, _ in series for v in values])

        def at(x: float, y: float) -> QPointF:
            return QPointF(area.left() + (x - x_low) / (x_high - x_low) * area.width(),
                           area.bottom() - (y - y_low) / (y_high - y_low) * area.height())

        painter.setPen(QPen(EDGE, 1))
        painter.drawRect(area)
        y_ticks = nice_ticks(y_low, y_high)
        y_step = y_ticks[1] - y_ticks[0] if len(y_ticks) > 1 else 1.0
        for y in y_ticks:
            p = at(x_low, y)
            painter.setPen(QPen(EDGE, 1))
            painter.drawLine(p, QPointF(p.x() - 3, p.y()))
            painter.setPen(FOREGROUND)
            painter.drawText(QRectF(box.left(), p.y() - text_h / 2, area.left() - box.left() - 5, text_h),
                             Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, _label(y, y_step))
        for x in nice_ticks(x_low, x_high):
            if x != int(x):
                continue
            p = at(x, y_low)
            painter.setPen(QPen(EDGE, 1))
            painter.drawLine(p, QPointF(p.x(), p.y() + 3))
            painter.setPen(FOREGROUND)
            painter.drawText(QRectF(p.x() - 30, p.y() + 3, 60, text_h), Qt.AlignmentFlag.AlignCenter, str(int(x)))

        painter.save()
        painter.setClipRect(area)
        for values, colour, dashed in series:
            pen = QPen(colour, 1.6, Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine)
            points = [at(x, y) for x, y in zip(self.epochs, values) if math.isfinite(y)]
            painter.setPen(pen)
            for a, b in zip(points, points[1:]):
                painter.drawLine(a, b)
            if not dashed:
                painter.setBrush(colour)
                for p in points:
                    painter.drawEllipse(p, 2.2, 2.2)
                painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.restore()

        y = area.bottom() - 6 - text_h * len(legend)
        for name, colour, dashed in legend:
            x = area.right() - 10 * metrics.averageCharWidth()
            painter.setPen(QPen(colour, 1.6, Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine))
            painter.drawLine(QPointF(x, y + text_h / 2), QPointF(x + 16, y + text_h / 2))
            painter.setPen(FOREGROUND)
            painter.drawText(QPointF(x + 20, y + metrics.ascent()), name)
            y += text_h
