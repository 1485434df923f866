"""Live training plot: loss, and validation PSNR of the model against bicubic, one point per epoch
(matplotlib's Qt canvas, drawn in napari's colours)."""

from __future__ import annotations

import math

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure

_FG = "#d0d0d0"
_BG = "#262930"  # napari's dark theme background


def _finite(value) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return math.nan
    return value if math.isfinite(value) else math.nan


class TrainingPlot(FigureCanvasQTAgg):
    def __init__(self):
        figure = Figure(figsize=(4.2, 2.6), dpi=90, facecolor=_BG, layout="constrained")
        super().__init__(figure)
        self._loss_ax, self._psnr_ax = figure.subplots(1, 2)
        self.clear()

    def clear(self) -> None:
        self.epochs: list[int] = []
        self.loss: list[float] = []
        self.val_psnr: list[float] = []
        self.bicubic_psnr: list[float] = []
        self._redraw()

    def add_epoch(self, event: dict) -> None:
        """Add one epoch event of the training log (keys: epoch, loss, val_psnr, bicubic_psnr)."""
        self.epochs.append(int(event.get("epoch", len(self.epochs) + 1)))
        self.loss.append(_finite(event.get("loss")))
        self.val_psnr.append(_finite(event.get("val_psnr")))
        self.bicubic_psnr.append(_finite(event.get("bicubic_psnr")))
        self._redraw()

    def _redraw(self) -> None:
        for ax, title in ((self._loss_ax, "training loss"), (self._psnr_ax, "validation PSNR (dB)")):
            ax.clear()
            ax.set_facecolor(_BG)
            ax.set_title(title, color=_FG, fontsize=9)
            ax.tick_params(colors=_FG, labelsize=7)
            for spine in ax.spines.values():
                spine.set_color("#5a626c")
            ax.set_xlabel("epoch", color=_FG, fontsize=8)
        if self.epochs:
            self._loss_ax.plot(self.epochs, self.loss, "o-", color="#f5a623", markersize=3)
            self._psnr_ax.plot(self.epochs, self.val_psnr, "o-", color="#50c878", markersize=3, label="model")
            self._psnr_ax.plot(self.epochs, self.bicubic_psnr, "--", color="#8ab4f8", label="bicubic")
            self._psnr_ax.legend(fontsize=7, facecolor=_BG, edgecolor="#5a626c", labelcolor=_FG)
        self.draw_idle()
