"""Live training plot: loss, and validation PSNR of the model against bicubic, one point per epoch
(matplotlib's Qt canvas, drawn in napari's colours).

The axes, lines and legend are made once; each epoch only updates the lines' data and redraws (a full
rebuild with constrained layout costs several times more, on napari's event loop)."""

from __future__ import annotations

import math

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

_FG = "#d0d0d0"
_BG = "#262930"  # napari's dark theme background
_EDGE = "#5a626c"


def _finite(value) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return math.nan
    return value if math.isfinite(value) else math.nan


class TrainingPlot(FigureCanvasQTAgg):
    def __init__(self):
        figure = Figure(figsize=(4.2, 2.4), dpi=90, facecolor=_BG)
        super().__init__(figure)
        figure.subplots_adjust(left=0.12, right=0.98, bottom=0.2, top=0.88, wspace=0.35)
        self._loss_ax, self._psnr_ax = figure.subplots(1, 2)
        for ax, title in ((self._loss_ax, "training loss"), (self._psnr_ax, "validation PSNR (dB)")):
            ax.set_facecolor(_BG)
            ax.set_title(title, color=_FG, fontsize=9)
            ax.set_xlabel("epoch", color=_FG, fontsize=8)
            ax.tick_params(colors=_FG, labelsize=7)
            ax.xaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
            ax.yaxis.set_major_locator(MaxNLocator(nbins=4))
            for spine in ax.spines.values():
                spine.set_color(_EDGE)
        (self._loss_line,) = self._loss_ax.plot([], [], "o-", color="#f5a623", markersize=3)
        (self._model_line,) = self._psnr_ax.plot([], [], "o-", color="#50c878", markersize=3, label="model")
        (self._bicubic_line,) = self._psnr_ax.plot([], [], "--", color="#8ab4f8", label="bicubic")
        self._psnr_ax.legend(fontsize=7, facecolor=_BG, edgecolor=_EDGE, labelcolor=_FG, loc="lower right")
        self.clear()

    def clear(self) -> None:
        self.epochs: list[int] = []
        self.loss: list[float] = []
        self.val_psnr: list[float] = []
        self.bicubic_psnr: list[float] = []
        self._update()

    def add_epoch(self, event: dict) -> None:
        """Add one epoch event of the training log (keys: epoch, loss, val_psnr, bicubic_psnr)."""
        self.epochs.append(int(event.get("epoch", len(self.epochs) + 1)))
        self.loss.append(_finite(event.get("loss")))
        self.val_psnr.append(_finite(event.get("val_psnr")))
        self.bicubic_psnr.append(_finite(event.get("bicubic_psnr")))
        self._update()

    def _update(self) -> None:
        self._loss_line.set_data(self.epochs, self.loss)
        self._model_line.set_data(self.epochs, self.val_psnr)
        self._bicubic_line.set_data(self.epochs, self.bicubic_psnr)
        for ax in (self._loss_ax, self._psnr_ax):
            ax.relim()
            ax.autoscale_view()
        if self.epochs:  # one epoch: a visible span around it
            low, high = min(self.epochs), max(self.epochs)
            for ax in (self._loss_ax, self._psnr_ax):
                ax.set_xlim(low - 0.5, high + 0.5)
        self.draw_idle()
