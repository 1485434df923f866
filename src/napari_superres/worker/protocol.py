"""What crosses between the napari process and the model worker, and how.

Messages are small tuples ``(kind, payload)`` sent over one ``multiprocessing`` pipe; arrays never travel in
them: they sit in shared-memory blocks (:class:`Block`) that the client creates (and always unlinks, whatever
happens) and the worker only attaches to. The client sizes the output block from the model's description; for
a model without one the worker asks for it (``need_block``) once the scale is known. This module is imported
on both sides, so it imports neither Keras nor TensorFlow.

Client -> worker: ``("call", (op, kwargs))``, ``("cancel", None)``, ``("block", desc_or_None)`` (an answer to
``need_block``), ``("shutdown", None)``.
Worker -> client: ``("hello", info)`` once at start, ``("progress", (done, total))``, ``("event", dict)``,
``("need_block", (shape, dtype))``, ``("cancel_ack", None)``, ``("result", value)``,
``("error", (class_name, message, traceback_text))``.
"""

from __future__ import annotations

import mmap
import os
import secrets
import tempfile
from multiprocessing import shared_memory

import numpy as np

from .. import errors
from ..errors import ModelError, SuperResError


class WorkerDied(SuperResError):
    """The model worker process ended unexpectedly (crash, out of memory, killed). The next run starts a fresh one."""


class WorkerError(RuntimeError):
    """An unexpected error (a bug, not bad input) inside the model worker; carries the worker's traceback."""

    def __init__(self, message: str, remote_traceback: str = ""):
        super().__init__(message)
        self.remote_traceback = remote_traceback


# seconds a worker has to acknowledge a cancel before it is terminated
CANCEL_GRACE_S = 2.0


# ---------------------------------------------------------------------------------------------- shared memory

_SHM_DIR = "/dev/shm"


class Block:
    """An array-sized buffer both processes map.

    POSIX shared memory normally; a temporary file when ``/dev/shm`` is too small for it (containers often give
    it 64 MB, and writing past its end would crash the process with SIGBUS). The creator alone unlinks it.
    """

    def __init__(self, desc: dict, *, create: bool = False):
        self.desc = desc
        self._shm = self._mmap = None
        size = _nbytes(desc)
        if desc["kind"] == "shm":
            if create:
                self._shm = shared_memory.SharedMemory(name=_new_name(), create=True, size=size)
                self.desc = desc = {**desc, "name": self._shm.name}
            else:
                self._shm = shared_memory.SharedMemory(name=desc["name"], create=False)
            self.buf = self._shm.buf
        else:
            if create:
                fd, name = tempfile.mkstemp(prefix=_new_name() + "-", suffix=".buf")
                self.desc = desc = {**desc, "name": name}
                os.ftruncate(fd, size)
            else:
                fd = os.open(desc["name"], os.O_RDWR)
            try:
                self._mmap = mmap.mmap(fd, size)
            finally:
                os.close(fd)
            self.buf = memoryview(self._mmap)

    @classmethod
    def create(cls, shape, dtype) -> "Block":
        desc = {"kind": "shm", "name": None, "shape": tuple(int(s) for s in shape), "dtype": np.dtype(dtype).str}
        if not _shm_has_room(_nbytes(desc)):
            desc["kind"] = "file"
        return cls(desc, create=True)

    def array(self) -> np.ndarray:
        """A NumPy view on the block. Drop every view before :meth:`release`."""
        n = int(np.prod(self.desc["shape"], dtype=np.int64))
        return np.frombuffer(self.buf, dtype=np.dtype(self.desc["dtype"]), count=n).reshape(self.desc["shape"])

    def release(self, *, unlink: bool) -> None:
        """Close (and, for the creator, unlink); never raises, so it is safe in ``finally``."""
        try:
            self.buf.release()
        except Exception:  # a view is still alive: the mapping goes when the view does
            pass
        for closer in (self._shm, self._mmap):
            if closer is not None:
                try:
                    closer.close()
                except Exception:
                    pass
        if unlink:
            try:
                if self._shm is not None:
                    self._shm.unlink()
                else:
                    os.unlink(self.desc["name"])
            except FileNotFoundError:
                pass


def block_prefix(pid: int | None = None) -> str:
    """Names of the blocks a process creates start with this (so a test can find any left behind)."""
    return f"nsr_{os.getpid() if pid is None else pid}_"


def _new_name() -> str:
    return block_prefix() + secrets.token_hex(6)


def _nbytes(desc: dict) -> int:
    return max(int(np.prod(desc["shape"], dtype=np.int64)) * np.dtype(desc["dtype"]).itemsize, 1)


def _shm_has_room(nbytes: int) -> bool:
    if not os.path.isdir(_SHM_DIR):  # macOS, Windows: shared memory is not a size-limited file system
        return True
    st = os.statvfs(_SHM_DIR)
    return nbytes + (16 << 20) <= st.f_bavail * st.f_frsize


# ---------------------------------------------------------------------------------------------- errors

def encode_error(exc: BaseException, traceback_text: str = "") -> tuple[str | None, str, str]:
    """A worker-side exception as ``(class name or None, one-line message, traceback)``.

    User errors (``SuperResError`` subclasses) keep their class and message; anything else is a bug and keeps
    its traceback so the napari side can show it.
    """
    if isinstance(exc, SuperResError):
        return type(exc).__name__, str(exc), ""
    return None, f"{type(exc).__name__}: {exc}", traceback_text


def decode_error(payload) -> BaseException:
    """The exception to raise in the client for an ``error`` message."""
    name, message, tb = payload
    if name is None:
        return WorkerError(f"unexpected error in the model worker: {message}", tb)
    cls = getattr(errors, name, None)
    if cls is None and name == "WorkerDied":
        cls = WorkerDied
    if not (isinstance(cls, type) and issubclass(cls, SuperResError)):
        cls = SuperResError
    return cls(message)


# ---------------------------------------------------------------------------------------------- devices

def normalize_device(device: str | None) -> str:
    """``"auto"``, ``"cpu"`` or ``"gpu:N"`` from what a user or widget passes (``None``, ``"CPU"``, ``"GPU:0"``)."""
    d = (device or "auto").strip().lower()
    if d in ("auto", "cpu"):
        return d
    if d == "gpu":
        return "gpu:0"
    if d.startswith("gpu:") and d[4:].isdigit():
        return d
    raise errors.InputError(f"unknown device {device!r}: use 'auto', 'cpu' or 'gpu' (e.g. 'GPU:0')")


def device_env(device: str) -> dict[str, str]:
    """Environment the worker sets before importing Keras for a device choice ("auto": as inherited)."""
    device = normalize_device(device)
    if device == "cpu":
        return {"CUDA_VISIBLE_DEVICES": "-1", "JAX_PLATFORMS": "cpu"}
    if device.startswith("gpu:"):
        return {"CUDA_VISIBLE_DEVICES": device[4:]}
    return {}


def worker_env(device: str) -> dict[str, str]:
    """All environment settings for a worker: the device, and quiet TensorFlow unless the user chose otherwise."""
    env = device_env(device)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    return env


def expected_output_shape(shape, desc, options) -> tuple | None:
    """The output shape of an upscale job when the model's description gives its scale (else None: the worker
    asks for its output block once it knows)."""
    if desc is None:
        return None
    from ..engine.axes import resolve_axes  # NumPy only

    try:
        ax = resolve_axes(options.axes, shape)
    except Exception:  # bad axes: the worker reports it with the engine's own message
        return None
    return options.upscaled_shape(shape, ax, int(desc["scale"]))


def model_spec(model) -> str:
    """What names a model across the process boundary: a shipped/user model name or a file path."""
    if isinstance(model, (str, os.PathLike)):
        return os.fspath(model)
    path = getattr(model, "path", None)
    if path is not None:
        return os.fspath(path)
    raise ModelError(
        f"cannot send a {type(model).__name__} object to the model worker: save it as a .keras file and pass its path"
    )
