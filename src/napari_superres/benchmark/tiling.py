"""The tiling section: tiled against whole-image inference of a large photo through the engine (time, largest
difference, peak resident memory), and the child-process task that measures the memory of one mode."""

from __future__ import annotations

import numpy as np

from .child import run_child
from .config import BenchConfig, log
from .images import photo_crop
from .timing import PeakRSS, time_calls


def tiling_section(srm, config: BenchConfig) -> dict:
    """Tiled against whole-image inference of a large photo through the engine (uint8 in and out): time
    (interleaved calls in this process), largest difference, and peak resident memory, each mode in a fresh
    process (earlier work would otherwise leave its buffers in the allocator and blur the figure)."""
    from ..engine.api import upscale
    from ..engine.options import UpscaleOptions
    from ..engine.predictor import tile_plan

    side, tile = config.large, config.tile  # None: the engine's default windows, as a user gets them
    lr = photo_crop(side)
    if srm.channels == 1:
        from ..training.metrics import rgb_to_y

        lr = np.clip(np.rint(rgb_to_y(lr)), 0, 255).astype(np.uint8)
    plan = tile_plan(side, side, srm, UpscaleOptions(tile=tile))
    windows = f"{len(plan.rows) * len(plan.cols)} windows of {plan.window[0]}x{plan.window[1]}"
    log(f"tiling: {srm.name} on {side}x{side}, {windows}, against whole image")
    result = {"model": srm.name, "scale": srm.scale, "input": f"{side}x{side}", "tile": tile, "windows": windows}
    outputs, calls = {}, {}
    for mode, t in (("tiled", tile), ("whole", 0)):
        calls[mode] = lambda t=t: upscale(lr, srm, tile=t, precision="float32")
        outputs[mode] = calls[mode]()  # the first call traces the model for this shape
    for mode, t in time_calls(calls, warmup=0, repeats=max(1, config.repeats // 2)).items():
        result[mode] = {"seconds": t.wall, "cpu_seconds": t.cpu, "mp_per_s": (side * srm.scale) ** 2 / 1e6 / t.wall}
    result["ratio"] = result["tiled"]["seconds"] / result["whole"]["seconds"]
    diff = np.abs(outputs["tiled"].astype(np.int16) - outputs["whole"].astype(np.int16))
    result["max_abs_diff"] = int(diff.max())
    result["differing_pixels"] = float((diff > 0).mean())
    if srm.path is not None:
        for mode, t in (("tiled", tile), ("whole", 0)):
            log(f"memory: {srm.name} {mode} (subprocess)")
            mem = run_child({"task": "memory", "model": str(srm.path), "tile": t}, {"lr": lr})
            if "error" in mem:
                result[mode]["memory_error"] = mem["error"]
                continue
            result[mode].update(peak_rss_mb=mem["peak"] / 2**20, baseline_rss_mb=mem["baseline"] / 2**20,
                                added_rss_mb=(mem["peak"] - mem["baseline"]) / 2**20)
    return result


def memory_task(task: dict) -> dict:
    """In the child: peak resident memory of one upscale, above the loaded model's baseline."""
    import psutil

    from ..engine.api import upscale
    from ..models.loading import load_model

    srm = load_model(task["model"])
    lr = np.load(task["lr"])
    upscale(lr[:32, :32], srm, tile=0, precision="float32")  # the backend's kernels and threads, set up once
    baseline = psutil.Process().memory_info().rss
    with PeakRSS() as mem:
        upscale(lr, srm, tile=task["tile"], precision="float32")
    return {"baseline": baseline, "peak": mem.peak}
