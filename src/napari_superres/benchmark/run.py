"""One bench run: check the configuration, load the models, time the machine's matmul ceiling, then measure the
sections asked for, in this order; the result is a JSON-able dict (:func:`.report.format_report` prints it)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from ..errors import InputError, ModelError
from .config import PRECISIONS, SECTIONS, BenchConfig, log
from .images import quality_images
from .machine import machine
from .options import options_section
from .peers import peers_section
from .quality import quality_section
from .speed import speed_section
from .tiling import tiling_section
from .timing import Matmul, time_calls


def select_models(config: BenchConfig) -> list:
    """The SRModels to measure: the named ones (names or paths), else every shipped model; filtered by scale."""
    from ..models.catalog import list_models
    from ..models.loading import load_model

    specs = config.models or [m.path for m in list_models() if m.source == "shipped"]
    if not specs:
        raise ModelError("no shipped models are installed; name models with --models")
    models = [load_model(s) for s in specs]
    if config.scales:
        models = [m for m in models if m.scale in config.scales]
        if not models:
            raise InputError(f"no model of scale {', '.join(f'x{s}' for s in config.scales)} among those selected")
    return models


def run_bench(config: BenchConfig) -> dict:
    """Every section; returns a JSON-able dict (see :func:`.report.format_report`)."""
    if config.precision not in PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, not {config.precision!r}")
    if config.size < 8 or config.large < 16 or 0 < config.e2e_size < 8 or config.e2e_size < 0:
        raise InputError("the speed input needs at least 8 pixels a side, the end-to-end photo 8 (0: none), "
                         "the tiling input 16")
    unknown = set(config.sections) - set(SECTIONS)
    if unknown or not config.sections:
        raise InputError(f"sections are some of {', '.join(SECTIONS)}, not {', '.join(sorted(unknown)) or 'none'}")
    started = time.perf_counter()
    if "quality" in config.sections:
        label, images = quality_images(config)  # a wrong folder fails before any model loads
    models = select_models(config)
    result = {"config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(config).items()},
              "machine": machine()}

    log(f"matmul rate ({config.matmul_n}x{config.matmul_n})")
    matmuls = {p: Matmul(config.matmul_n, p) for p in PRECISIONS}
    t = time_calls(matmuls, warmup=2, repeats=config.repeats)
    result["matmul"] = {"n": config.matmul_n}
    for p, timing in t.items():
        result["matmul"][f"{p}_gmac_per_s"] = matmuls[p].macs / timing.wall / 1e9
        result["matmul"][f"{p}_gmac_per_cpu_s"] = matmuls[p].macs / timing.cpu / 1e9

    if "quality" in config.sections:
        result["quality_set"] = label
        result["quality"] = quality_section(models, images)
    if "speed" in config.sections:
        result["speed"] = speed_section(models, config, matmuls[config.precision])
    if "tiling" in config.sections:
        from ..models.catalog import DEFAULT_MODEL

        main = next((m for m in models if m.name == DEFAULT_MODEL), models[0])
        result["tiling"] = tiling_section(main, config)
    if "options" in config.sections:
        # the options for the models of the smallest scale measured (the fast and the quality model at x2)
        smallest = min(m.scale for m in models)
        result["options"] = options_section([m for m in models if m.scale == smallest], config, matmuls)
    if "peers" in config.sections:
        result["peers"] = peers_section(models, config)
    result["machine"]["load_average_end"] = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    result["seconds"] = time.perf_counter() - started
    return result
