"""The quality section: mean PSNR/SSIM of each model on HR photos whose LR input is made by the benchmark
degradation, next to bicubic and Lanczos upscaling of the same input."""

from __future__ import annotations

import time

import numpy as np

from ..errors import InputError
from .config import log


def quality_section(models, images) -> list:
    """Per model: mean PSNR/SSIM and those of bicubic and Lanczos on the same LR inputs."""
    from ..engine.api import upscale
    from ..training.metrics import bicubic_downscale, bicubic_upscale, lanczos_upscale, modcrop, psnr, ssim

    baselines, rows = {}, []
    for srm in models:
        s = srm.scale
        if s not in baselines:
            samples = []
            for name, img in images:
                hr = modcrop(img, s)
                if min(hr.shape[:2]) < 2 * s + 11:
                    continue
                lr = bicubic_downscale(hr, s)
                samples.append((name, hr, lr))
            if not samples:
                raise InputError(f"no quality image is large enough for x{s}")
            scores = {"bicubic": [], "lanczos": []}
            for _, hr, lr in samples:
                for key, up in (("bicubic", bicubic_upscale), ("lanczos", lanczos_upscale)):
                    out = up(lr, s)
                    scores[key].append((psnr(hr, out, scale=s), ssim(hr, out, scale=s)))
            baselines[s] = (samples, {k: np.mean(v, axis=0) for k, v in scores.items()})
        samples, base = baselines[s]
        log(f"quality: {srm.name} on {len(samples)} images")
        t0 = time.perf_counter()
        scores = []
        for _, hr, lr in samples:
            out = upscale(lr, srm, precision="float32")  # the reference arithmetic
            scores.append((psnr(hr, out, scale=s), ssim(hr, out, scale=s)))
        p, q = np.mean(scores, axis=0)
        rows.append({
            "model": srm.name, "scale": s, "images": len(samples), "psnr": float(p), "ssim": float(q),
            "bicubic_psnr": float(base["bicubic"][0]), "bicubic_ssim": float(base["bicubic"][1]),
            "lanczos_psnr": float(base["lanczos"][0]), "lanczos_ssim": float(base["lanczos"][1]),
            "seconds": time.perf_counter() - t0,
        })
    return rows
