"""The speed section: output megapixels per second of each model on the fixed input, and its efficiency
(multiply-accumulates per CPU-second over those of a matrix product timed in alternation with it)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..errors import InputError
from .config import PRECISIONS, BenchConfig, log
from .images import photo_crop, speed_input
from .macs import count_macs
from .timing import Matmul, time_calls


def with_options(srm, precision: str = "float32", jit: bool = False):
    """The same model (same weights) computing in ``precision`` (see :mod:`napari_superres.models.precision`),
    with XLA ``jit_compile`` if asked (on a copy: the precision variants are shared with the engine)."""
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    from ..models.precision import with_precision

    variant = with_precision(srm, precision)
    if not jit:
        return variant
    import keras

    model = keras.models.clone_model(variant.keras_model)
    model.set_weights(variant.keras_model.get_weights())
    model.jit_compile = True
    return replace(variant, keras_model=model, variants={})


def speed_row(srm, size: int, repeats: int, matmul: Matmul) -> dict:
    """Output megapixels/s and efficiency of one model (any variant) on the fixed input. The model's calls
    alternate with the matmul's. Efficiency is the ratio of their MACs per CPU-second (steady on a shared
    machine); ``efficiency_wall`` the ratio of their wall-clock rates (the same on an idle machine, when both
    keep every core busy)."""
    _, x = speed_input(srm, size)
    t = time_calls({"model": lambda: srm.predict(x), "matmul": matmul}, warmup=2, repeats=repeats)
    m, mm = t["model"], t["matmul"]
    macs = count_macs(srm.keras_model, size, size)
    return {
        "model": srm.name, "scale": srm.scale, "parameters": int(srm.keras_model.count_params()),
        "input": f"{size}x{size}", "macs": macs, "ms": m.wall * 1e3, "cpu_ms": m.cpu * 1e3,
        "mp_per_s": (size * srm.scale) ** 2 / 1e6 / m.wall, "cores_busy": m.cpu / m.wall,
        "gmac_per_s": macs / m.wall / 1e9, "gmac_per_cpu_s": macs / m.cpu / 1e9,
        "matmul_gmac_per_s": matmul.macs / mm.wall / 1e9, "matmul_gmac_per_cpu_s": matmul.macs / mm.cpu / 1e9,
        "efficiency": (macs / m.cpu) / (matmul.macs / mm.cpu),
        "efficiency_wall": (macs / m.wall) / (matmul.macs / mm.wall),
    }


def end_to_end_row(srm, size: int, precision: str, repeats: int, matmul: Matmul) -> dict:
    """What a user gets: ``napari_superres.upscale`` on a ``size`` x ``size`` uint8 photo (normalisation,
    tiling, the model, the inverse map to uint8), in alternation with the matmul. Its efficiency counts only
    the model's MACs on the whole image: tile overlap and everything around the model count against it."""
    from ..engine.api import upscale
    from ..training.metrics import rgb_to_y

    photo = photo_crop(size)
    if srm.channels == 1:
        photo = np.rint(rgb_to_y(photo)).astype(np.uint8)
    t = time_calls({"upscale": lambda: upscale(photo, srm, precision=precision), "matmul": matmul},
                   warmup=2, repeats=repeats)
    u, mm = t["upscale"], t["matmul"]
    macs = count_macs(srm.keras_model, size, size)
    return {"e2e_input": f"{size}x{size}", "e2e_ms": u.wall * 1e3,
            "e2e_mp_per_s": (size * srm.scale) ** 2 / 1e6 / u.wall,
            "e2e_efficiency": (macs / u.cpu) / (matmul.macs / mm.cpu)}


def speed_section(models, config: BenchConfig, matmul: Matmul) -> list:
    rows = []
    for srm in models:
        log(f"speed: {srm.name} ({config.precision}{', XLA' if config.jit else ''})")
        variant = with_options(srm, config.precision, config.jit)
        rows.append(speed_row(variant, config.size, config.repeats, matmul))
        if config.e2e_size and not config.jit:  # the engine has no XLA option
            rows[-1].update(end_to_end_row(srm, config.e2e_size, config.precision, config.repeats, matmul))
    return rows
