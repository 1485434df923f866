"""The model worker as a process: started without re-running the user's main script, ended for sure, and
its end put in words."""

from __future__ import annotations

import contextlib
import signal
import sys


@contextlib.contextmanager
def main_module_hidden():
    """Start the worker as from an interactive session: ``spawn`` would otherwise re-run the user's script (or
    napari's launcher) in the worker as ``__mp_main__``, opening viewers there or failing without a main guard."""
    main = sys.modules.get("__main__")
    saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if main is not None and k in main.__dict__}
    try:
        if main is not None:
            main.__dict__.pop("__file__", None)
            main.__spec__ = None
        yield
    finally:
        if main is not None:
            main.__dict__.pop("__spec__", None)
            main.__dict__.update(saved)


def kill(proc) -> None:
    """End a process for sure (SIGTERM, then SIGKILL) and reap it."""
    if proc.is_alive():
        proc.terminate()
        proc.join(1.0)
    if proc.is_alive():
        proc.kill()
        proc.join(2.0)


def exit_reason(code) -> str:
    if code is None:
        return "it did not answer"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = ", e.g. out of memory or killed by the user" if -code == signal.SIGKILL else ""
        return f"killed by {name}{hint}"
    return f"exit code {code}"
