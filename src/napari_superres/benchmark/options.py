"""The options section: XLA ``jit_compile``, bfloat16 inference, and TensorFlow's oneDNN kernels switched
(a child process: ``TF_ENABLE_ONEDNN_OPTS`` is read when TensorFlow loads), each with its speed and its effect
on the output; and the child-process task that times a model with oneDNN switched."""

from __future__ import annotations

import numpy as np

from .child import run_child
from .config import BenchConfig, log
from .images import speed_input
from .machine import onednn_default_on
from .macs import count_macs
from .speed import with_options
from .timing import Matmul, Timing, time_calls


def _to_uint8(batch_out: np.ndarray) -> np.ndarray:
    y = np.clip(np.rint(batch_out[0] * 255.0), 0, 255).astype(np.uint8)
    return y[..., 0] if y.shape[-1] == 1 else y


def _backend() -> str:
    import keras

    return keras.backend.backend()


def options_section(models, config: BenchConfig, matmuls: dict) -> list:
    """Per model: float32, XLA, bfloat16, bfloat16 + XLA in this process; oneDNN switched (off, or on when
    this process runs with it off) in a subprocess. Each row: wall time and output MP/s; speed-up over float32
    and efficiency against the matmul of the same precision, both from CPU time of interleaved calls (steady
    under load); PSNR-Y of the output against the HR crop; largest difference to float32 (grey levels)."""
    rows = []
    tf = _backend() == "tensorflow"
    for srm in models:
        hr, x = speed_input(srm, config.size)
        macs = count_macs(srm.keras_model, config.size, config.size)
        base_out = _to_uint8(srm.predict(x))
        variants = [("float32", "float32", False)] + ([("float32 + XLA", "float32", True)] if tf else [])
        variants += [("bfloat16", "bfloat16", False)] + ([("bfloat16 + XLA", "bfloat16", True)] if tf else [])
        base_cpu = None
        for label, precision, jit in variants:
            log(f"options: {srm.name} {label}")
            try:
                variant = with_options(srm, precision, jit)
                calls = {"variant": lambda: variant.predict(x), "matmul": matmuls[precision]}
                if variant is not srm:
                    calls["float32"] = lambda: srm.predict(x)
                t = time_calls(calls, warmup=2, repeats=config.repeats)
                t.setdefault("float32", t["variant"])
                base_cpu = t["float32"].cpu if base_cpu is None else base_cpu
                out = _to_uint8(variant.predict(x))
            except Exception as e:  # an option the backend or CPU cannot run is reported, not fatal
                rows.append({"model": srm.name, "option": label, "error": str(e).strip().splitlines()[0][:120]})
                continue
            rows.append(_option_row(srm, label, t["variant"], t["float32"].cpu, t["matmul"], matmuls[precision].macs,
                                    out, base_out, hr, config.size, macs))
        if tf and srm.path is not None:
            label = "oneDNN off" if onednn_default_on() else "oneDNN on"
            log(f"options: {srm.name} {label} (subprocess)")
            child = run_child({"task": "speed", "model": str(srm.path), "repeats": config.repeats,
                               "matmul_n": config.matmul_n}, {"x": x},
                              env={"TF_ENABLE_ONEDNN_OPTS": "0" if onednn_default_on() else "1"})
            if "error" in child:
                rows.append({"model": srm.name, "option": label, "error": child["error"]})
            else:
                mm = Timing(*child["matmul"])
                rows.append(_option_row(srm, label, Timing(*child["model"]), base_cpu, mm, child["matmul_macs"],
                                        _to_uint8(child["out"]), base_out, hr, config.size, macs))
                rows[-1]["matmul_gmac_per_cpu_s"] = child["matmul_macs"] / mm.cpu / 1e9
    return rows


def _option_row(srm, label, t: Timing, base_cpu, mm: Timing, mm_macs, out, base_out, hr, size, macs) -> dict:
    from ..training.metrics import psnr, rgb_to_y

    s = srm.scale
    if out.ndim == 2 and hr.ndim == 3:  # a gray model: compared with the photo's luminance
        hr = np.clip(np.rint(rgb_to_y(hr)), 0, 255).astype(np.uint8)
    return {
        "model": srm.name, "option": label, "ms": t.wall * 1e3, "cpu_ms": t.cpu * 1e3,
        "mp_per_s": (size * s) ** 2 / 1e6 / t.wall, "speedup": base_cpu / t.cpu, "macs": macs,
        "efficiency": (macs / t.cpu) / (mm_macs / mm.cpu), "psnr": psnr(hr, out, scale=s),
        "max_abs_diff": int(np.abs(out.astype(np.int16) - base_out.astype(np.int16)).max()),
    }


def speed_task(task: dict) -> dict:
    """In the child: the model and a float32 matmul, alternating, on ``task["x"]``; the output saved to
    ``task["out"]``."""
    from ..models.loading import load_model

    srm = load_model(task["model"])
    x = np.load(task["x"])
    matmul = Matmul(task["matmul_n"], "float32")
    t = time_calls({"model": lambda: srm.predict(x), "matmul": matmul}, warmup=2, repeats=task["repeats"])
    np.save(task["out"], srm.predict(x))
    return {"model": [t["model"].wall, t["model"].cpu], "matmul": [t["matmul"].wall, t["matmul"].cpu],
            "matmul_macs": matmul.macs}
