"""Which precision a model runs in: the fastest that keeps the output within one grey level of float32.

``auto`` (the default) decides per machine and model:

- a CPU without bfloat16 instructions (AVX512-BF16 or AMX) runs float32: there bfloat16 is emulated and
  no faster, so nothing is measured;
- a CPU with them, or a GPU, tries the 16-bit formats it runs natively in a short probe: float32 and each
  candidate on the same small crop of a real photo, timed in alternation (CPU time on a CPU, wall time on
  a GPU), and their largest difference. A candidate is taken when it is at least ``MIN_SPEEDUP`` times
  faster and differs by at most half a grey level (the half is a margin: the probe sees one crop, the user
  other images). The bound is relative to the value range, so one 8-bit grey level is 1/255 of the range
  for 16-bit and float data as well.

The probe's answer is kept in the user's cache folder, keyed by the machine (CPU, its flags, backend,
accelerator, Keras version) and the model's weights, so it runs once. ``float32``, ``bfloat16`` and
``float16`` force a precision; ``NAPARI_SUPERRES_PRECISION`` sets the default for a whole process.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import statistics
import time
import weakref
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from ..errors import InputError
from ..models.precision import PRECISIONS, with_precision
from .axes import luminance

CHOICES = ("auto",) + PRECISIONS
ENV = "NAPARI_SUPERRES_PRECISION"
GREY_LEVEL = 1 / 255  # one 8-bit grey level, relative to the value range: the bound on the difference
PROBE_FRACTION = 0.5  # the probe must stay within this fraction of the bound
MIN_SPEEDUP = 1.15  # a smaller gain is within the noise of a short probe
PROBE_SIDE = 128
PROBE_REPEATS = 3
BF16_FLAGS = ("amx_bf16", "avx512_bf16")

log = logging.getLogger("napari_superres")


@dataclass(frozen=True)
class PrecisionChoice:
    precision: str
    reason: str

    def __str__(self) -> str:
        return f"precision {self.precision}: {self.reason}"


def requested_precision(precision: Optional[str] = None) -> str:
    """``precision``, else the process default (``NAPARI_SUPERRES_PRECISION``), else ``auto``."""
    value = precision or os.environ.get(ENV, "").strip().lower() or "auto"
    if value not in CHOICES:
        raise InputError(f"precision must be one of {', '.join(CHOICES)}, not {value!r}")
    return value


# ----------------------------------------------------------------------------------------------- hardware


def cpu_info() -> tuple[str, frozenset]:
    """(model name, flags) of this machine's CPU from ``/proc/cpuinfo`` (empty where there is none)."""
    name, flags = "", frozenset()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and not name:
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return name, flags


def accelerator() -> Optional[str]:
    """The name of the GPU the Keras backend computes on, or None on a CPU."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_logical_devices("GPU")
        return gpus[0].name if gpus else None
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        return None if device.platform == "cpu" else str(device.device_kind)
    if backend == "torch":
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return None


def candidates(flags, gpu: Optional[str]) -> tuple[tuple, str]:
    """(16-bit precisions worth probing, why) for a CPU with ``flags`` or the GPU ``gpu``."""
    if gpu:
        return ("bfloat16", "float16"), f"GPU {gpu}"
    native = [f for f in BF16_FLAGS if f in flags]
    if native:
        return ("bfloat16",), f"CPU with {native[0]}"
    return (), "CPU without bfloat16 instructions (avx512_bf16, amx_bf16): float32 is its fast path"


# -------------------------------------------------------------------------------------------------- probe


def probe_input(channels: int) -> np.ndarray:
    """A PROBE_SIDE crop of a real photo (scikit-image's astronaut: skin, cloth, fine print), in [0, 1]."""
    from skimage import data

    img = np.asarray(data.astronaut())[100 : 100 + PROBE_SIDE, 160 : 160 + PROBE_SIDE].astype(np.float32) / 255
    if channels == 1:
        img = luminance(img)
    return img[None]


def probe(srm, precisions) -> dict:
    """{precision: (speed-up over float32, largest difference in grey levels)} measured on :func:`probe_input`.
    A precision the model cannot be built or run in is left out."""
    x = probe_input(srm.channels)
    clock = time.perf_counter if accelerator() else time.process_time
    runs, outputs = {"float32": srm}, {"float32": srm.predict(x)}
    for p in precisions:
        try:
            runs[p] = with_precision(srm, p)
            outputs[p] = runs[p].predict(x)  # builds and traces
        except Exception as exc:  # a custom layer without mixed-precision support: that precision is out
            log.info("precision %s unavailable for %s: %s", p, srm.name, str(exc).splitlines()[0][:200])
            runs.pop(p, None)
    times = {p: [] for p in runs}
    for _ in range(PROBE_REPEATS):
        for p, run in runs.items():
            t0 = clock()
            run.predict(x)
            times[p].append(clock() - t0)
    base = statistics.median(times["float32"])
    return {
        p: (base / max(statistics.median(times[p]), 1e-9),
            float(np.abs(outputs[p] - outputs["float32"]).max()) / GREY_LEVEL)
        for p in runs if p != "float32"
    }


def decide(measured: dict, hardware: str) -> PrecisionChoice:
    """The fastest precision of ``measured`` (see :func:`probe`) within the bound and the speed margin."""
    fine = {p: v for p, v in measured.items() if v[0] >= MIN_SPEEDUP and v[1] <= PROBE_FRACTION}
    if fine:
        p = max(fine, key=lambda k: fine[k][0])
        speedup, levels = fine[p]
        return PrecisionChoice(p, f"auto, {hardware}: x{speedup:.2f} faster than float32, within {levels:.2f} "
                                  "grey levels of it on the probe")
    said = "; ".join(f"{p} x{v[0]:.2f} faster, {v[1]:.2f} grey levels off" for p, v in measured.items())
    return PrecisionChoice("float32", f"auto, {hardware}: no 16-bit format both faster (x{MIN_SPEEDUP}) and "
                                      f"within {PROBE_FRACTION} grey levels ({said or 'none runs'})")


# -------------------------------------------------------------------------------------------------- cache


def cache_file() -> Path:
    """``$NAPARI_SUPERRES_HOME/cache/precision.json`` if that is set, else in the platform's user cache."""
    home = os.environ.get("NAPARI_SUPERRES_HOME")
    if home:
        folder = Path(home) / "cache"
    else:
        from platformdirs import user_cache_dir

        folder = Path(user_cache_dir("napari-superres", appauthor=False))
    return folder / "precision.json"


def cache_key(srm, flags, gpu: Optional[str]) -> str:
    """The machine (CPU, its bfloat16 flags, backend, accelerator, Keras) and the model (its weights)."""
    import keras

    h = hashlib.sha1()
    machine = [cpu_info()[0], *sorted(f for f in flags if f in BF16_FLAGS), keras.backend.backend(), gpu or "",
               keras.__version__]
    h.update(json.dumps(machine).encode())
    h.update(json.dumps(srm.description.get("architecture") or srm.keras_model.name).encode())
    for w in srm.keras_model.get_weights():
        h.update(np.ascontiguousarray(w).tobytes())
    return h.hexdigest()


def _read_cache(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _write_cache(path: Path, key: str, choice: PrecisionChoice) -> None:
    """Add one entry; a cache that cannot be written only costs a probe next time."""
    import tempfile

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        entries = _read_cache(path)
        entries[key] = {"precision": choice.precision, "reason": choice.reason}
        fd, tmp = tempfile.mkstemp(prefix=".precision-", dir=path.parent)
        with os.fdopen(fd, "w") as f:
            json.dump(entries, f, indent=1)
        os.replace(tmp, path)
    except OSError as exc:
        log.info("precision cache not written: %s", exc)


# ------------------------------------------------------------------------------------------------- choice

_decided = weakref.WeakKeyDictionary()  # keras model (float32) -> PrecisionChoice, for this process


def choose(srm, requested: Optional[str] = None, *, flags=None, gpu: Optional[str] = "detect",
           measure: Callable = probe) -> PrecisionChoice:
    """The precision ``srm`` runs in for ``requested`` (see :func:`requested_precision`). ``flags`` and
    ``gpu`` describe the hardware (default: this machine); ``measure`` is the probe."""
    requested = requested_precision(requested)
    if requested != "auto":
        return PrecisionChoice(requested, "requested")
    base = srm.variants.get("float32", srm)
    if base.keras_model in _decided:
        return _decided[base.keras_model]
    flags = cpu_info()[1] if flags is None else frozenset(flags)
    gpu = accelerator() if gpu == "detect" else gpu
    tries, hardware = candidates(flags, gpu)
    if not tries:
        choice = PrecisionChoice("float32", f"auto, {hardware}")
    else:
        key, path = cache_key(base, flags, gpu), cache_file()
        hit = _read_cache(path).get(key)
        if hit and hit.get("precision") in PRECISIONS:
            choice = PrecisionChoice(hit["precision"], f"{hit['reason']} (probed before, cached)")
        else:
            choice = decide(measure(base, tries), hardware)
            _write_cache(path, key, choice)
    _decided[base.keras_model] = choice
    return choice


def resolve(srm, requested: Optional[str] = None, **hardware):
    """``(the model computing in the chosen precision, PrecisionChoice)``. A model already resolved keeps its
    precision under ``auto``; an explicit request (argument or environment) always applies."""
    requested = requested_precision(requested)
    if requested == "auto" and srm.precision_reason:
        return srm, PrecisionChoice(srm.precision, srm.precision_reason)
    choice = choose(srm, requested, **hardware)
    variant = with_precision(srm, choice.precision)
    return replace(variant, precision_reason=choice.reason), choice
