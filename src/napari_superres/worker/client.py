"""The napari side of the model worker: start it, send it jobs, relay progress and cancel, survive its death.

Every call blocks until its job is done, so napari runs it inside a ``thread_worker`` thread; calls from several
threads queue on a lock (one job at a time). This module never imports Keras or TensorFlow: the worker process
(:mod:`.server`) does. Nothing listens on a network port: one ``multiprocessing`` pipe links the two processes.
"""

from __future__ import annotations

import atexit
import multiprocessing
import multiprocessing.util  # noqa: F401  (its exit handler must be registered before ours)
import os
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np

from ..engine.options import RunControl, UpscaleOptions, as_options
from ..errors import Cancelled, InputError
from . import server
from .process import exit_reason, kill, main_module_hidden
from .protocol import (
    CANCEL_GRACE_S,
    Block,
    WorkerDied,
    decode_error,
    expected_output_shape,
    model_spec,
    normalize_device,
    worker_env,
)

START_TIMEOUT_S = 120.0  # spawn + imports on a loaded machine; Keras itself is imported after the handshake
FINISH_TIMEOUT_S = 60.0  # after a cancel is acknowledged, time to wind down (training saves its model)
POLL_S = 0.05


class WorkerClient:
    """Talks to one model worker process, starting it on first use and again after it died or the device changed."""

    def __init__(self):
        self._lock = threading.Lock()  # one job at a time
        self._proc = None
        self._conn = None
        self._device: str | None = None
        self._stopping = None  # the process shutdown() is stopping, so its running job reports Cancelled
        self._devices: list[str] | None = None
        # the last upscale: output shape, dtype, model, scale, engine_seconds (in the worker), seconds (in all)
        self.last_run: dict = {}
        self._descriptions: dict = {}

    # ------------------------------------------------------------------------------------------ life cycle

    @property
    def pid(self) -> int | None:
        """Process id of the running worker, or None."""
        proc = self._proc
        return proc.pid if proc is not None and proc.is_alive() else None

    @property
    def device(self) -> str | None:
        """The device choice the running worker was started with (``"auto"``, ``"cpu"``, ``"gpu:N"``)."""
        return self._device if self.pid is not None else None

    def start(self, device: str = "auto") -> None:
        """Start the worker now (it imports Keras in the background), so the first job does not wait for it."""
        with self._lock:
            self._ensure(device)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop the worker; a job running in another thread ends with :class:`Cancelled`. Safe to call twice."""
        proc = self._proc
        if proc is not None:
            self._stopping = proc
        got = self._lock.acquire(timeout=timeout)
        try:
            if got:
                self._stop(graceful=True)
                self._stopping = None
            elif proc is not None:  # a job's thread is stuck in a callback: end the process under it
                kill(proc)
        finally:
            if got:
                self._lock.release()

    def _ensure(self, device: str | None) -> None:
        """A live worker for this device; ``None`` accepts whichever is running (else "auto")."""
        if device is None:
            device = self._device if self._alive() else "auto"
        device = normalize_device(device)
        if self._alive() and self._device == device:
            return
        self._stop(graceful=True)
        ctx = multiprocessing.get_context("spawn")
        parent_conn, child_conn = ctx.Pipe(duplex=True)
        proc = ctx.Process(
            target=server.main,
            args=(child_conn, worker_env(device), os.getpid()),
            name="napari-superres-worker",
            daemon=True,  # also ended by multiprocessing's own exit handler
        )
        with main_module_hidden():
            proc.start()
        child_conn.close()  # so that the worker's death reads as end-of-file here
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                if parent_conn.poll(POLL_S):
                    kind, _ = parent_conn.recv()
                    if kind == "hello":
                        break
            except (EOFError, OSError):
                pass
            if not proc.is_alive() or time.monotonic() > deadline:
                kill(proc)
                parent_conn.close()
                raise WorkerDied(f"the model worker could not start ({exit_reason(proc.exitcode)})")
        self._proc, self._conn, self._device = proc, parent_conn, device

    def _alive(self) -> bool:
        return self._proc is not None and self._proc.is_alive()

    def _stop(self, *, graceful: bool) -> None:
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        if proc is None:
            return
        if graceful and proc.is_alive():
            try:
                conn.send(("shutdown", None))
                proc.join(2.0)
            except (OSError, EOFError, ValueError):
                pass
        kill(proc)
        try:
            conn.close()
        except OSError:
            pass

    # ------------------------------------------------------------------------------------------ one job

    def _call(
        self,
        op: str,
        kwargs: dict,
        *,
        device: str | None = None,
        progress: Callable | None = None,
        on_event: Callable | None = None,
        need_block: Callable | None = None,
        cancel=None,
        cancel_grace: float = CANCEL_GRACE_S,
    ):
        """Run ``op`` in the worker and return its result, relaying messages until it ends."""
        with self._lock:
            self._ensure(device)
            proc = self._proc
            try:
                return self._relay(proc, op, kwargs, progress, on_event, need_block, RunControl(cancel=cancel).cancelled, cancel_grace)
            except _JobEnded as ended:
                raise ended.error from None
            except BaseException:
                # Anything else left the job running (a failing cancel callable, no memory for the output,
                # Ctrl-C): its late messages would reach the next job, so that worker has to go.
                if self._proc is proc:
                    self._stop(graceful=False)
                raise

    def _relay(self, proc, op, kwargs, progress, on_event, need_block, is_cancelled, cancel_grace):
        """Send one job and relay its messages until it ends. Raises ``_JobEnded`` when the job ended with an
        error; any other exception means the job may still be running."""
        conn = self._conn
        cancel_sent = acked = None
        callback_error: BaseException | None = None
        try:
            conn.send(("call", (op, kwargs)))
        except (OSError, EOFError):
            raise _JobEnded(self._died(proc)) from None
        while True:
            now = time.monotonic()
            if self._stopping is proc:
                self._stop(graceful=False)
                raise _JobEnded(Cancelled("stopped: the model worker was shut down"))
            if cancel_sent is None and (callback_error is not None or is_cancelled()):
                cancel_sent = now
                try:
                    conn.send(("cancel", None))
                except (OSError, EOFError):
                    pass
            if cancel_sent is not None:
                late = (now - cancel_sent > cancel_grace) if acked is None else (now - acked > FINISH_TIMEOUT_S)
                if late:  # the job does not stop: end the process, the next call starts a fresh one
                    self._stop(graceful=False)
                    raise _JobEnded(callback_error or Cancelled(
                        "cancelled (the model worker was stopped and restarts on the next run)"))
            try:
                if not conn.poll(POLL_S):
                    if not proc.is_alive():
                        raise EOFError
                    continue
                kind, payload = conn.recv()
            except (EOFError, OSError):
                raise _JobEnded(self._died(proc)) from None
            if kind == "result":
                if callback_error is not None:
                    raise _JobEnded(callback_error)
                return payload
            if kind == "error":
                raise _JobEnded(callback_error or decode_error(payload))
            if kind == "cancel_ack":
                acked = time.monotonic()
            elif kind == "need_block":
                desc = None
                if cancel_sent is None and need_block is not None:
                    desc = need_block(*payload)
                conn.send(("block", desc))
            elif callback_error is None:
                try:
                    # progress after a cancel would only confuse a progress bar; events (a training's
                    # final record, the model it kept) still matter
                    if kind == "progress" and progress is not None and cancel_sent is None:
                        progress(*payload)
                    elif kind == "event" and on_event is not None:
                        on_event(payload)
                except BaseException as exc:  # the caller's callback failed: stop the job, then re-raise
                    callback_error = exc

    def _died(self, proc) -> BaseException:
        """Forget a dead worker (the next call starts a fresh one) and say why it ended."""
        proc.join(2.0)
        stopping = self._stopping is proc
        self._stop(graceful=False)
        if stopping:
            return Cancelled("stopped: the model worker was shut down")
        return WorkerDied(
            f"the model worker stopped unexpectedly ({exit_reason(proc.exitcode)}); "
            "the next run starts a fresh one"
        )

    # ------------------------------------------------------------------------------------------ public API

    def upscale(
        self,
        array,
        model,
        options: UpscaleOptions | None = None,
        *,
        device="auto",
        progress=None,
        cancel=None,
        **settings,
    ) -> np.ndarray:
        """Upscale an array in the worker as ``options`` (or its fields as keywords) say (see
        ``napari_superres.upscale``; ``upscale_z``: Z first, with the engine's anisotropic method); returns a
        NumPy array of its dtype. The options go to the worker as they are.

        ``progress(done, total)`` is called from this thread; ``cancel`` is a ``threading.Event`` or a callable
        returning True to stop (raises :class:`Cancelled`).
        """
        options = as_options(options, settings)
        data = np.asarray(array)  # a Dask array is computed here: pass slices to keep memory small
        if data.size == 0:
            raise InputError(f"the image is empty (shape {data.shape})")
        if data.dtype.kind not in "buif":
            raise InputError(f"cannot upscale data of type {data.dtype}: use integer or floating-point images")
        path, desc = self._described(model)
        out_shape = expected_output_shape(data.shape, desc, options)
        blocks: list[Block] = []
        t0 = time.perf_counter()
        try:
            block = Block.create(data.shape, data.dtype)
            blocks.append(block)
            view = block.array()
            view[...] = data
            del view
            job = {"input": block.desc, "model": str(path), "options": options, "output": None}
            if out_shape is not None:  # the usual case: one round trip, the worker writes straight into it
                blocks.append(Block.create(out_shape, data.dtype))
                job["output"] = blocks[-1].desc

            def need_block(shape, dtype):  # the scale is known only after loading (a model without description)
                out = Block.create(shape, dtype)
                blocks.append(out)
                return out.desc

            info = self._call(
                "upscale", job, device=device, progress=progress, need_block=need_block, cancel=cancel,
            )
            out = blocks[-1]
            if len(blocks) < 2 or tuple(out.desc["shape"]) != tuple(info["shape"]):
                raise RuntimeError("the model worker returned no output")
            self.last_run = {**info, "seconds": time.perf_counter() - t0}
            view = out.array()
            result = view.copy()
            del view
            return result
        finally:
            for b in blocks:
                b.release(unlink=True)

    def train(self, config, *, on_event=None, cancel=None, device="auto", cancel_grace=5.0) -> str:
        """Run ``training.train(config)`` in the worker (a dict or a ``TrainConfig``); ``on_event(dict)`` gets
        each progress/epoch event.

        Returns the saved model's path. Cancel stops between training steps (the training decides whether a
        stopped run still saves its model).
        """
        if isinstance(config, dict):
            config = dict(config)
        return self._call(
            "train", {"config": config}, device=device, on_event=on_event, cancel=cancel,
            cancel_grace=cancel_grace,
        )

    def model_info(self, model) -> dict:
        """``{name, path, scale, channels, description}``; read from the file when it has a description (no
        worker needed), else probed by loading the model in the worker."""
        path, desc = self._described(model)
        if desc is not None:
            return {
                "name": desc.get("name") or path.stem,
                "path": str(path),
                "scale": int(desc["scale"]),
                "channels": int(desc["channels"]),
                "description": dict(desc),
            }
        return self._call("model_info", {"model": str(path)})

    def _described(self, model) -> tuple:
        """``(absolute path, description or None)``; the description only if it gives scale and channels.
        Cached while the file is unchanged. ModelError (here, not in the worker) for an unknown model."""
        from ..models.catalog import resolve_model
        from ..models.description import read_description

        path = Path(resolve_model(model_spec(model))).absolute()
        st = path.stat()
        key = (str(path), st.st_mtime_ns, st.st_size)
        if key not in self._descriptions:
            desc = read_description(path)
            ok = bool(desc and desc.get("scale") and desc.get("channels"))
            self._descriptions = {key: desc if ok else None}  # one entry: the model in use
        return path, self._descriptions[key]

    def devices(self) -> list[str]:
        """Devices the worker can use, e.g. ``["CPU", "GPU:0"]`` (asked once, from a worker that sees all)."""
        if self._devices is None:
            self._devices = list(self._call("devices", {}, device="auto"))
        return list(self._devices)

    def ping(self) -> dict:
        """A round trip to the worker (starts it if needed); for health checks and measuring overhead."""
        return self._call("ping", {})


class _JobEnded(Exception):
    """Carries the error a finished job ended with (the worker is idle again, or gone)."""

    def __init__(self, error: BaseException):
        super().__init__(str(error))
        self.error = error


# ---------------------------------------------------------------------------------------------- singleton

_client: WorkerClient | None = None
_client_lock = threading.Lock()


def get_client() -> WorkerClient:
    """The process-wide worker client (napari's widgets and menu command share one warm worker)."""
    global _client
    with _client_lock:
        if _client is None:
            _client = WorkerClient()
        return _client


@atexit.register
def _shutdown_at_exit() -> None:
    # registered after multiprocessing's own handler, so it runs first: no orphan worker survives napari
    if _client is not None:
        _client.shutdown(timeout=2.0)
