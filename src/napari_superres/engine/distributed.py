"""Running the engine on Dask workers: a model reference that travels cheaply, a per-process model cache, and
connecting to a ``dask.distributed`` scheduler with a clear error when it cannot be reached.

A task graph holds a :class:`ModelHandle`, never the Keras model itself. Pickled, a handle is the model file's
path (or, for a model that has no file, its saved bytes); on a worker it loads the model on first use and
keeps it in a module-level cache keyed by the file's identity, so each worker process loads a model once, not
once per block. In the process that made it, a handle simply holds the model already loaded.

Importing this module imports neither Keras nor ``distributed``.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Optional

from ..errors import SuperResError

SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"
CONNECT_TIMEOUT_S = 10

_CACHE: dict = {}
_LOADS: Counter = Counter()
_LOCK = threading.Lock()


def model_loads() -> dict:
    """How many times this process loaded each model (key -> count); tests ask every worker."""
    with _LOCK:
        return dict(_LOADS)


def cached_model(key: str, load):
    """The model for ``key``, loaded by ``load()`` the first time in this process."""
    with _LOCK:  # one lock: a worker with several threads still loads a model once
        if key not in _CACHE:
            _CACHE[key] = load()
            _LOADS[key] += 1
        return _CACHE[key]


class ModelHandle:
    """A picklable reference to an :class:`~napari_superres.models.loading.SRModel`.

    ``get()`` returns the model: the one given to the constructor in this process, else the process's cached
    copy (loaded once). The engine-relevant attributes (scale, channels, overlap, multiple, normalization,
    fixed_size) are available without loading.
    """

    _ATTRS = ("name", "scale", "channels", "overlap", "multiple", "normalization", "fixed_size", "working_floats")

    def __init__(self, model):
        self._model = model
        for a in self._ATTRS:
            setattr(self, a, getattr(model, a, None))
        path = getattr(model, "path", None)
        self.path = str(Path(path).resolve()) if path and os.path.isfile(path) else None
        self._payload = None
        if self.path:
            st = os.stat(self.path)
            self.key = f"{self.path}:{st.st_size}:{st.st_mtime_ns}"
        else:  # a model built in memory: its saved bytes go with the handle when it is pickled
            self.key = f"memory:{uuid.uuid4().hex}"

    def get(self):
        if self._model is None:
            self._model = cached_model(self.key, self._load)
        return self._model

    def _load(self):
        from ..models.loading import load_model

        if self.path:
            return load_model(self.path)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.keras"
            path.write_bytes(self._payload)
            srm = load_model(path)
        srm.path = None
        return srm

    def __getstate__(self):
        if self.path is None and self._payload is None:
            self._payload = _model_bytes(self._model)  # once, on first pickling
        state = dict(self.__dict__)
        state["_model"] = None  # never pickle Keras: the receiving process loads (once) from path or bytes
        return state

    def __dask_tokenize__(self):
        return ("ModelHandle", self.key)

    def __repr__(self):
        return f"ModelHandle({self.name!r}, {self.path or self.key[:15]})"


def _model_bytes(model) -> bytes:
    """A model without a file, saved to bytes (architecture, weights and description)."""
    from ..models.loading import save_model

    keras_model = getattr(model, "keras_model", model)
    desc = dict(getattr(model, "description", None) or {})
    for a in ("scale", "channels", "multiple", "overlap", "normalization"):
        if getattr(model, a, None) is not None:
            desc[a] = getattr(model, a)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.keras"
        save_model(keras_model, path, desc)
        return path.read_bytes()


# ----------------------------------------------------------------------------------------------- scheduler


def scheduler_address(address: Optional[str] = None) -> Optional[str]:
    """The scheduler to use: ``address`` if given, else ``$DASK_SCHEDULER_ADDRESS``, else None (run locally)."""
    return address or os.environ.get(SCHEDULER_ENV) or None


def connect(address: str, timeout: float = CONNECT_TIMEOUT_S):
    """A ``distributed.Client`` for the scheduler at ``address`` (``tcp://host:8786``, ``host:8786``).
    Raises SuperResError within ``timeout`` seconds when the scheduler cannot be reached."""
    try:
        from distributed import Client
    except ImportError:
        from ..io.extras import distribution_name

        raise SuperResError(
            f"--scheduler needs the 'distributed' package: pip install '{distribution_name()}[distributed]'"
        ) from None
    start = time.monotonic()
    try:
        return Client(address, timeout=f"{timeout}s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        waited = time.monotonic() - start
        reason = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise SuperResError(
            f"cannot reach the Dask scheduler at {address} (gave up after {waited:.0f} s: {reason}); "
            "check the address and that the scheduler is running"
        ) from None
    except ValueError as exc:
        raise SuperResError(f"not a Dask scheduler address: {address!r} ({exc})") from None
