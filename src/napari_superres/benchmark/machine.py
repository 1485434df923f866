"""What the bench's figures were measured on: CPU, cores, instruction sets, memory, versions, load."""

from __future__ import annotations

import os
import platform


def onednn_default_on() -> bool:
    """Whether TensorFlow in this process uses its oneDNN kernels (on unless ``TF_ENABLE_ONEDNN_OPTS`` says no)."""
    return os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1").strip().lower() not in ("0", "false")


def machine() -> dict:
    """What the figures were measured on."""
    cpu, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and cpu in ("", platform.machine(), platform.processor()):
                    cpu = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    import keras

    info = {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "isa": " ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in flags),
        "python": platform.python_version(),
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "system": f"{platform.system()} {platform.release()}",
    }
    if info["backend"] == "tensorflow":
        import tensorflow as tf

        info["tensorflow"] = tf.__version__
        info["onednn"] = onednn_default_on()
        info["gpus"] = len(tf.config.list_physical_devices("GPU"))
    try:
        import psutil

        info["memory_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
        info["load_average"] = round(os.getloadavg()[0], 2)
    except (ImportError, OSError):
        pass
    return info
