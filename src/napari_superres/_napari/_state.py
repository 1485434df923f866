"""State shared by the widgets and the menu command, as small evented dataclasses (the Qt side subscribes).

``LAST_SETTINGS`` holds the upscale settings last used in the Upscale widget: the layer context-menu command
runs with them. ``RunState`` is the state of one widget's background run.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass

from psygnal import evented

from ..engine.options import UpscaleOptions


@evented
@dataclass
class UpscaleSettings:
    model: str = ""  # path of a .keras file or a catalog name; "" means the catalog's default model
    tile: int = 0  # LR tile size in pixels; 0 lets the engine choose
    tta: bool = False  # test-time augmentation (8 flips/rotations averaged)
    device: str = "auto"  # "auto" (GPU if the worker sees one), "cpu" or "gpu:N"
    upscale_z: bool = False  # also upscale Z of a stack (anisotropic data)
    precision: str = ""  # "" (auto, or the process's NAPARI_SUPERRES_PRECISION), "float32", "bfloat16"

    def options(self) -> UpscaleOptions:
        """The engine's options for these settings (the model and the device are chosen per run)."""
        return UpscaleOptions(
            tile=self.tile or None, tta=self.tta, precision=self.precision or None, upscale_z=self.upscale_z
        )


LAST_SETTINGS = UpscaleSettings()


@evented
@dataclass
class RunState:
    running: bool = False
    message: str = ""
    done: int = 0  # progress of the current run; total 0 while its length is unknown
    total: int = 0


_END = object()


def stream(call: Callable[[Callable[[object], None]], object]) -> Generator[object, None, object]:
    """Run the blocking ``call(emit)`` in a helper thread and yield every value it passes to ``emit`` as it
    arrives; return the call's result (``yield from`` gives it) or raise the call's exception.

    This turns the worker client's blocking calls with progress callbacks into the generators the widgets
    run in napari's ``thread_worker`` (and tests iterate synchronously)."""
    events: queue.Queue = queue.Queue()
    box: dict = {}

    def target():
        try:
            box["result"] = call(events.put)
        except BaseException as exc:  # handed to the consuming thread below
            box["error"] = exc
        finally:
            events.put(_END)

    thread = threading.Thread(target=target, name="napari-superres-call", daemon=True)
    thread.start()
    while (item := events.get()) is not _END:
        yield item
    thread.join()
    if "error" in box:
        raise box.pop("error")
    return box.get("result")
