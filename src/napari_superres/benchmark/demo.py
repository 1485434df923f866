"""``bench/demo.py``'s work: one scikit-image photo, degraded as the bench does, upscaled by the default
shipped model, by bicubic and by Lanczos; the images written, PSNR/SSIM of each printed."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import InputError
from .config import SKIMAGE_PHOTOS
from .images import as_rgb8

def demo(out_dir="out", image: str = "astronaut", model: Optional[str] = None) -> dict:
    """Upscale a scikit-image photo with the default shipped model: its LR is made by the benchmark
    degradation, then the model, bicubic and Lanczos upscale it. Writes the images to ``out_dir`` and returns
    (and prints) PSNR/SSIM of each against the original."""
    from ..engine.api import upscale
    from ..io.images import write_image
    from ..models.catalog import DEFAULT_MODEL
    from ..models.loading import load_model
    from ..training.metrics import bicubic_downscale, bicubic_upscale, lanczos_upscale, modcrop, psnr, ssim

    from skimage import data

    if not hasattr(data, image):
        raise InputError(f"unknown scikit-image photo {image!r} (try: {', '.join(SKIMAGE_PHOTOS)})")
    hr = as_rgb8(np.asarray(getattr(data, image)()), image)
    if hr is None:
        raise InputError(f"scikit-image's {image!r} is not an 8-bit photo")
    t0 = time.perf_counter()
    srm = load_model(model or DEFAULT_MODEL)
    s = srm.scale
    hr = modcrop(hr, s)
    lr = bicubic_downscale(hr, s)
    t1 = time.perf_counter()
    sr = upscale(lr, srm)
    seconds = time.perf_counter() - t1
    results = {}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_image(out / f"{image}_hr.png", hr, overwrite=True)
    write_image(out / f"{image}_lr_x{s}.png", lr, overwrite=True)
    for key, img in (("model", sr), ("bicubic", bicubic_upscale(lr, s)), ("lanczos", lanczos_upscale(lr, s))):
        name = f"{image}_{srm.name if key == 'model' else key}_x{s}.png"
        write_image(out / name, img, overwrite=True)
        results[key] = {"psnr": psnr(hr, img, scale=s), "ssim": ssim(hr, img, scale=s), "file": str(out / name)}
    lines = [
        f"{image}: {hr.shape[1]}x{hr.shape[0]} photo from scikit-image, LR {lr.shape[1]}x{lr.shape[0]} by "
        f"bicubic downscale x{s}; model {srm.name} ({seconds:.2f} s, {time.perf_counter() - t0:.1f} s with loading)",
        f"{'method':<12} {'PSNR-Y':>7} {'SSIM-Y':>7}  file",
    ]
    for key, label in (("model", srm.name), ("bicubic", "bicubic"), ("lanczos", "Lanczos")):
        v = results[key]
        lines.append(f"{label:<12} {v['psnr']:7.2f} {v['ssim']:7.4f}  {v['file']}")
    gain_b = results["model"]["psnr"] - results["bicubic"]["psnr"]
    gain_l = results["model"]["psnr"] - results["lanczos"]["psnr"]
    lines.append(f"{srm.name} vs bicubic: {gain_b:+.2f} dB PSNR-Y; vs Lanczos: {gain_l:+.2f} dB")
    print("\n".join(lines), flush=True)
    return {"image": image, "model": srm.name, "scale": s, "seconds": seconds, **results}
