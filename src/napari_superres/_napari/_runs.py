"""Background runs of the widgets, wired once: a generator in napari's ``thread_worker`` with a cancel flag it
polls, napari's progress bar, the widget's ``RunState`` and its Run/Cancel buttons, bar and status line, and
one notification line when a run fails. The Upscale widget, the layer menu command and the Train widget all
start their runs through ``start_run``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from magicgui.widgets import Container

from napari_superres.errors import Cancelled, SuperResError

from . import _models
from ._state import RunState

log = logging.getLogger(__name__)

# Runs in flight, so their Qt workers stay referenced and tests can wait for them to finish.
ACTIVE_RUNS: set = set()


class RunWidget(Container):
    """What both dock widgets share: their viewer, one background run at a time (``_worker``, ``state``), the
    layer menu command registered, and the teardown when the Qt widget goes. Subclasses define
    ``_on_library_changed(select="")``: the user's model library changed."""

    def __init__(self, viewer, **kwargs):
        from ._menu import ensure_context_menu_item

        super().__init__(**kwargs)
        ensure_context_menu_item()
        self._viewer = viewer
        self._worker = None
        self._alive = True  # False once the Qt widget is gone (late background results are dropped)
        self.state = RunState()
        _models.LIBRARY.changed.connect(self._on_library_changed)
        self.native.destroyed.connect(self._on_destroyed)

    def _on_destroyed(self, *_):
        # Closing the widget or the viewer stops its run (training keeps the model so far; the worker process
        # stays for the next run) and unhooks the view: late results must not touch deleted Qt widgets.
        self._alive = False
        if self._worker is not None:
            self._worker.cancel_event.set()
        self.state.events.disconnect()
        _models.LIBRARY.changed.disconnect(self._on_library_changed)


class NapariProgress:
    """napari's progress bar (status bar and activity dock) for a background run. napari's bar processes
    pending Qt events while it updates, so a run may end in the middle of an update: every call checks."""

    def __init__(self, description: str):
        from napari.utils import progress

        self._bar = progress(total=0, desc=description)
        self._description = description
        self.closed = False

    def update(self, done: int, total: int, description: str | None = None) -> None:
        if not self.closed and description is not None and self._description != description:
            self._description = description
            self._bar.set_description(description)
        if not self.closed and self._bar.total != total:
            self._bar.total = total
        if not self.closed and self._bar.n != done:
            self._bar.n = done
            self._bar.update(0)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._bar.close()


def show_failure(exc: BaseException, what: str) -> None:
    """One notification line for a failed run, never a traceback in the user's face (logged for debugging)."""
    from napari.utils.notifications import show_error, show_info

    if isinstance(exc, Cancelled):
        show_info(f"{what} cancelled")
    elif isinstance(exc, SuperResError):
        show_error(f"{what} failed: {exc}")
    else:
        log.error("%s failed", what, exc_info=exc)
        show_error(f"{what} failed: {type(exc).__name__}: {exc}")


def _cancel_flag():
    """A cancel event and the ``cancel()`` the worker client polls: true once the event is set or napari asks
    the thread worker to quit (closing the viewer waits for running workers after asking them to quit)."""
    event = threading.Event()

    def cancel() -> bool:
        worker = getattr(cancel, "worker", None)
        return event.is_set() or bool(worker is not None and worker.abort_requested)

    return event, cancel


def start_run(
    steps: Callable,
    *args,
    state: RunState,
    description: str,
    on_item: Callable[[object, NapariProgress], None],
    on_error: Callable[[BaseException], None],
    on_finished: Callable[[], None] | None = None,
    **kwargs,
):
    """Run the generator ``steps(*args, cancel=..., **kwargs)`` in a napari ``thread_worker``.

    ``on_item(item, progress)`` gets each yielded item with the run's napari progress bar, ``on_error`` the
    exception that ended the run (``Cancelled`` when it was stopped); when the run ends either way the bar
    closes, the run leaves ``ACTIVE_RUNS``, ``state.running`` turns false and ``on_finished`` is called.
    Returns the worker; ``worker.cancel_event`` stops the run."""
    from napari.qt.threading import create_worker

    cancel_event, cancel = _cancel_flag()
    worker = create_worker(steps, *args, cancel=cancel, _ignore_errors=True, **kwargs)
    cancel.worker = worker
    worker.cancel_event = cancel_event
    progress = NapariProgress(description)

    def finished():
        progress.close()
        ACTIVE_RUNS.discard(worker)
        state.running = False
        if on_finished is not None:
            on_finished()

    worker.yielded.connect(lambda item: on_item(item, progress))
    worker.errored.connect(on_error)
    worker.finished.connect(finished)
    ACTIVE_RUNS.add(worker)
    state.running = True
    worker.start()
    return worker


def stop_run(worker, state: RunState, message: str) -> None:
    """Ask the widget's run to stop and say so (pressing Cancel/Stop again changes nothing)."""
    if worker is not None and state.running:
        worker.cancel_event.set()
        state.message = message


def show_run_state(state: RunState, run, cancel, bar, status, *, hide_bar_when_idle: bool = False) -> None:
    """Show a widget's ``RunState``: Run enabled and Cancel disabled while idle (the other way round while a run
    is going), its progress in the magicgui ``bar`` (busy with no known length), its message in ``status``."""

    def on_running(running: bool):
        run.enabled = not running
        cancel.enabled = running
        if hide_bar_when_idle and not running:
            bar.visible = False

    def on_progress(*_):
        bar.max = max(state.total, 1)
        bar.value = min(state.done, state.total) if state.total else 0

    state.events.running.connect(on_running)
    state.events.message.connect(status.set_value)
    state.events.done.connect(on_progress)
