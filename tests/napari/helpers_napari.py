"""Helpers of the napari tests (imported by the test modules)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np


class Notifications:
    """The napari notifications shown since the fixture started."""

    def __init__(self):
        from napari.utils.notifications import notification_manager

        self._manager = notification_manager
        self._start = len(notification_manager.records)

    @property
    def messages(self) -> list[str]:
        return [str(n.message) for n in self._manager.records[self._start :]]

    def errors(self) -> list[str]:
        from napari.utils.notifications import NotificationSeverity

        return [
            str(n.message)
            for n in self._manager.records[self._start :]
            if n.severity == NotificationSeverity.ERROR
        ]


def browse(qtbot, widget, path: str) -> None:
    """Pick a .keras file as the user's "Browse..." does, and wait until it is the selected model."""
    widget.add_model_file(path)
    target = str(Path(path).resolve())
    qtbot.waitUntil(lambda: widget._model.value == target, timeout=60_000)


def wait_idle(qtbot, widget, timeout_s: float = 120) -> None:
    """Wait for the widget's background run to end (the worker finished, errored or was cancelled)."""
    qtbot.waitUntil(lambda: not widget.state.running, timeout=int(timeout_s * 1000))


def world_box(layer) -> np.ndarray:
    """The layer's extent in world coordinates including the pixels' own size: (2, D) min and max edges.
    An upscaled layer overlays its input exactly when these match."""
    extent = layer.extent
    step = np.asarray(extent.step, float)
    return np.stack([extent.world[0] - step / 2, extent.world[1] + step / 2])


def _thread_sched() -> tuple[float, float] | None:
    """(seconds on a CPU, seconds waiting for a CPU) of the calling thread, from Linux's schedstat."""
    try:
        with open(f"/proc/self/task/{threading.get_native_id()}/schedstat") as f:
            on_cpu, waiting, _ = f.read().split()
    except (OSError, ValueError):
        return None
    return int(on_cpu) / 1e9, int(waiting) / 1e9


class LoopGapMeter:
    """Gaps between ticks of a 20 ms QTimer: how long napari's event loop could not turn.

    Each gap is measured twice: on the wall clock, and "blocked": minus the time the main thread was ready to
    run but waiting for a CPU (Linux schedstat). On a machine shared with other busy processes that wait is the
    machine's load, not the plugin; what is left is time the thread ran code or was blocked (a lock, the GIL,
    I/O, the X server) while the loop could not turn. Without schedstat both are the wall-clock gap.
    """

    def __init__(self):
        from qtpy.QtCore import QTimer

        self.gaps: list[tuple[float, float, float]] = []  # (end time, wall seconds, blocked seconds)
        self._last = None
        self._timer = QTimer()
        self._timer.setInterval(20)
        self._timer.timeout.connect(self._tick)

    def _tick(self):
        now, sched = time.perf_counter(), _thread_sched()
        waited = sched[1] - self._sched[1] if sched and self._sched else 0.0
        self.gaps.append((now, now - self._last, now - self._last - waited))
        self._last, self._sched = now, sched

    def __enter__(self):
        self._last, self._sched = time.perf_counter(), _thread_sched()
        self._timer.start()
        return self

    def __exit__(self, *exc):
        self._timer.stop()
        self._tick()

    def worst(self, start: float = 0.0, end: float = float("inf")) -> tuple[float, float]:
        """(worst wall-clock gap, worst blocked gap) among the gaps that ended in [start, end)."""
        inside = [(wall, blocked) for t, wall, blocked in self.gaps if start <= t < end] or [(0.0, 0.0)]
        return max(w for w, _ in inside), max(b for _, b in inside)

    @staticmethod
    def describe(worst: tuple[float, float]) -> str:
        return f"{worst[0] * 1000:.0f} ms wall clock, {worst[1] * 1000:.0f} ms not counting waits for a CPU"
