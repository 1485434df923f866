"""The model worker: a separate process that imports Keras, keeps models loaded and runs jobs one at a time.

Started by :class:`~napari_superres.worker.client.WorkerClient` with the ``spawn`` method. Its environment (the
device choice) is set before Keras is imported, which happens here and only here: the napari process never
imports TensorFlow (see docs/architecture.md, "Why Keras runs in its own process").
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import traceback
from collections import OrderedDict

import numpy as np

from ..errors import Cancelled, InputError
from .protocol import Block, encode_error

MODEL_CACHE_SIZE = 3


def main(conn, env: dict, parent_pid: int) -> None:
    """Process entry point (the ``target`` of the spawned process)."""
    os.environ.update(env)
    # Ctrl-C in a terminal reaches the whole process group; the parent decides what to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_parent(parent_pid)
    conn.send(("hello", {"pid": os.getpid(), "env": env}))
    server = Server(conn)
    server.warm_up()
    server.serve()
    # Nothing is left to save (results went to the client, files are written atomically): skip the slow
    # interpreter teardown of TensorFlow so that shutdown and the client's death end this process at once.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(0)


def _exit_with_parent(parent_pid: int) -> None:
    """End this process if napari goes away without shutting it down (killed, crashed)."""

    def watch():
        while True:
            time.sleep(1.0)
            if os.getppid() != parent_pid:
                os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


class Server:
    def __init__(self, conn):
        self.conn = conn
        self.models: OrderedDict = OrderedDict()  # (path, mtime_ns, size) -> SRModel
        self.cancelled = False
        self.stopping = False

    # ------------------------------------------------------------------------------------------ loop

    def warm_up(self) -> None:
        """Import Keras while the napari side is still setting up the first job."""
        try:
            import keras  # noqa: F401
        except Exception:  # reported properly by the first job that needs it
            pass

    def serve(self) -> None:
        while not self.stopping:
            try:
                kind, payload = self.conn.recv()
            except (EOFError, OSError):
                return  # the client is gone
            if kind == "shutdown":
                return
            if kind != "call":
                continue  # a late cancel or answer for a job that already finished
            op, kwargs = payload
            self.cancelled = False
            try:
                result = getattr(self, "op_" + op)(**kwargs)
            except Exception as exc:
                reply = ("error", encode_error(_user_error(exc) or exc, traceback.format_exc()))
            else:
                reply = ("result", result)
            try:
                self.conn.send(reply)
            except (EOFError, OSError):
                return

    # ------------------------------------------------------------------------------------------ job helpers

    def poll_cancel(self) -> bool:
        """Read what the client sent during a job; True once a cancel arrived (acknowledged at once)."""
        while not self.stopping and self.conn.poll():
            kind, _ = self.conn.recv()
            if kind == "cancel" and not self.cancelled:
                self.cancelled = True
                self.conn.send(("cancel_ack", None))
            elif kind == "shutdown":
                self.stopping = True
                self.cancelled = True
        return self.cancelled

    def progress(self, done, total) -> None:
        self.conn.send(("progress", (int(done), int(total))))
        self.poll_cancel()

    def request_block(self, shape, dtype):
        """Ask the client for an output block; None if the job was cancelled meanwhile."""
        self.conn.send(("need_block", (tuple(int(s) for s in shape), np.dtype(dtype).str)))
        while True:
            kind, payload = self.conn.recv()
            if kind == "block":
                return payload
            if kind == "cancel" and not self.cancelled:
                self.cancelled = True
                self.conn.send(("cancel_ack", None))
            elif kind == "shutdown":
                self.stopping = self.cancelled = True

    def model(self, spec):
        """A loaded model, from the cache while its file is unchanged (same path, mtime and size)."""
        from ..models.catalog import resolve_model
        from ..models.loading import load_model

        path = resolve_model(spec)
        st = os.stat(path)
        key = (os.path.realpath(path), st.st_mtime_ns, st.st_size)
        if key in self.models:
            self.models.move_to_end(key)
            return self.models[key]
        for old in [k for k in self.models if k[0] == key[0]]:  # the file changed: forget the old version
            del self.models[old]
        model = load_model(path)
        self.models[key] = model
        while len(self.models) > MODEL_CACHE_SIZE:
            self.models.popitem(last=False)
        return model

    # ------------------------------------------------------------------------------------------ operations

    def op_ping(self):
        return {"pid": os.getpid(), "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES")}

    def op_upscale(self, input, model, options, output=None):
        from ..engine.api import upscale

        block = Block(input)
        data = out = None
        try:
            data = block.array()
            data.flags.writeable = False  # the engine never changes its input
            m = self.model(model)
            if self.poll_cancel():  # pressed while the model was loading
                raise Cancelled("upscaling cancelled")
            t0 = time.perf_counter()
            if options.z_upscaled:
                data, options = _upscale_z_first(data, m, options)
                if self.poll_cancel():
                    raise Cancelled("upscaling cancelled")
            out = np.asarray(upscale(data, m, options, progress=self.progress, cancel=self.poll_cancel))
            seconds = time.perf_counter() - t0
            if self.poll_cancel():
                raise Cancelled("upscaling cancelled")
            fits = output is not None and tuple(output["shape"]) == out.shape and output["dtype"] == out.dtype.str
            desc = output if fits else self.request_block(out.shape, out.dtype)
            if desc is None or self.cancelled:
                raise Cancelled("upscaling cancelled")
            out_block = Block(desc)
            try:
                view = out_block.array()
                view[...] = out
                del view
            finally:
                out_block.release(unlink=False)
            return {"shape": out.shape, "dtype": out.dtype.str, "model": m.name, "scale": int(m.scale),
                    "engine_seconds": seconds}
        finally:
            data = out = None
            block.release(unlink=False)

    def op_model_info(self, model):
        m = self.model(model)
        return {
            "name": m.name,
            "path": str(m.path) if m.path is not None else None,
            "scale": int(m.scale),
            "channels": int(m.channels),
            "description": dict(m.description or {}),
        }

    def op_train(self, config):
        from ..training import TrainConfig, train

        if isinstance(config, dict):
            try:
                config = TrainConfig(**config)
            except TypeError as exc:
                raise InputError(f"bad training settings: {exc}") from None

        def progress(done, total):
            self.conn.send(("event", {"event": "progress", "done": int(done), "total": int(total)}))
            self.poll_cancel()

        def on_event(record):
            self.conn.send(("event", _plain(record)))

        path = train(config, progress=progress, cancel=self.poll_cancel, on_event=on_event)
        return str(path)

    def op_devices(self):
        return visible_devices()


def _upscale_z_first(data, model, options):
    """Z by the engine's anisotropic method (the model on the XZ and YZ planes), before Y and X; returns the
    data and the options for Y and X. Both passes share one normalisation, fitted on the input as the engine
    would fit it."""
    from ..engine.anisotropic import upscale_z
    from ..engine.axes import make_layout, to_batches
    from ..engine.normalize import fit_normalizer

    spec = options.normalization
    layout = make_layout(data.shape, options.axes)
    norm = fit_normalizer(to_batches(data, layout), model.normalization if spec is None else spec, channel_axis=-1)
    zdata = upscale_z(
        data, model, axes=layout.axes, factor=options.z_factor_for(int(model.scale)), method=options.z_method,
        normalization=norm, tile=options.tile, batch_size=options.batch_size,
    )
    return zdata, options.replace(axes=layout.axes, normalization=norm, upscale_z=False, z_factor=None)


def _user_error(exc: BaseException):
    """Out-of-memory in the model, from any backend, is something the user can act on."""
    name = type(exc).__name__
    if isinstance(exc, MemoryError) or name in ("ResourceExhaustedError", "OutOfMemoryError") or (
        "RESOURCE_EXHAUSTED" in str(exc)
    ):
        return InputError("the model ran out of memory: choose a smaller tile size or use the CPU")
    return None


def _plain(value):
    """An event with NumPy scalars turned into Python numbers (pickles small, reads the same everywhere)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def visible_devices() -> list[str]:
    """Devices the worker's Keras backend can use, as ``["CPU", "GPU:0", ...]``."""
    import keras

    backend = keras.backend.backend()
    gpus: list[str] = []
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = [f"GPU:{i}" for i, _ in enumerate(tf.config.list_physical_devices("GPU"))]
    elif backend == "jax":
        import jax

        gpus = [f"GPU:{i}" for i, d in enumerate(d for d in jax.devices() if d.platform == "gpu")]
    elif backend == "torch":
        import torch

        gpus = [f"GPU:{i}" for i in range(torch.cuda.device_count())]
    return ["CPU"] + gpus
