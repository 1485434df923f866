"""How the bench times and weighs: medians of interleaved calls (wall and CPU time), the matrix product that
is the machine's practical ceiling, and the peak resident memory of a block of code."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Optional

import numpy as np


@dataclass(frozen=True)
class Timing:
    """Median seconds of a call: ``wall`` (what a user waits) and ``cpu`` (CPU time of this process, all its
    threads). On a machine shared with other work the wall time moves with their load, the CPU time hardly;
    rates per CPU-second compare two computations fairly even then."""

    wall: float
    cpu: float


def time_calls(fns: dict, *, warmup: int = 2, repeats: int = 5) -> dict:
    """{key: Timing} of each ``fns[key]()``, medians over ``repeats`` calls after ``warmup`` calls. The calls
    are interleaved (a, b, a, b, ...) so that all figures share the same moments of the machine's load."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    wall, cpu = {key: [] for key in fns}, {key: [] for key in fns}
    for _ in range(max(1, repeats)):
        for key, fn in fns.items():
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall[key].append(time.perf_counter() - t0)
            cpu[key].append(time.process_time() - c0)
    return {key: Timing(statistics.median(wall[key]), statistics.median(cpu[key])) for key in fns}


class Matmul:
    """An n x n by n x n matrix product in the Keras backend, ``precision`` float32 or bfloat16: the
    practical peak the model's convolutions are compared against. ``macs`` per call: n**3."""

    def __init__(self, n: int = 2048, precision: str = "float32"):
        from keras import ops

        rng = np.random.default_rng(0)
        self.a, self.b = (ops.cast(ops.convert_to_tensor(rng.standard_normal((n, n), dtype=np.float32)), precision)
                          for _ in range(2))
        self.n, self.macs = n, n**3

    def __call__(self):
        from keras import ops

        # reading one element back waits for the product on asynchronous backends
        return ops.convert_to_numpy(ops.matmul(self.a, self.b)[:1, :1])


class PeakRSS:
    """Peak resident memory of this process during a ``with`` block, in bytes (``.peak``; ``.before`` is the
    resident size at entry). On Linux the kernel's high-water mark is reset at entry (``/proc/self/clear_refs``)
    and read at exit, so every allocation counts, TensorFlow's included; elsewhere a thread samples the
    resident size every 2 ms."""

    def __enter__(self):
        import psutil

        self._proc = psutil.Process()
        self.before = self._proc.memory_info().rss
        self._kernel = _reset_hwm()
        self._samples, self._stop = [self.before], None
        if not self._kernel:
            import threading

            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.002):
            self._samples.append(self._proc.memory_info().rss)

    def __exit__(self, *exc):
        if self._kernel:
            self.peak = _read_hwm() or self._proc.memory_info().rss
        else:
            self._stop.set()
            self._thread.join()
            self.peak = max(self._samples + [self._proc.memory_info().rss])
        return False


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return _read_hwm() is not None
    except OSError:
        return False


def _read_hwm() -> Optional[int]:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None
