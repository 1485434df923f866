"""Validation and evaluation on whole images, always side by side with bicubic (and Lanczos).

The low-resolution input of each image is made once, in the image's own dtype, then upscaled by the model
through the engine (tiling, normalisation and dtype handling exactly as a user's upscale) and by bicubic
interpolation. Metrics follow :mod:`.metrics`: 8-bit data is compared as the literature does (uint8, Y channel
for RGB, border crop = scale); anything else on the reference's percentile-normalised range (2 / 99.8,
``data_range=1``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from ..engine.normalize import fit_normalizer
from ..errors import InputError
from . import metrics
from .config import DEGRADATIONS
from .degrade import Degradation, degrade
from ..engine.axes import luminance
from .folders import PERCENTILES, ImageFile, normalizer_of, read_slices
from .linear_upscaler import DEFAULT_TAPS, apply_linear_upscaler, fit_linear_upscaler

SEED = 12345  # the validation LR is the same every epoch and every run


@dataclass
class Sample:
    name: str
    hr: np.ndarray  # H x W or H x W x 3, the file's dtype
    lr: np.ndarray
    bicubic: np.ndarray
    lanczos: np.ndarray
    _scores: dict = field(default_factory=dict)

    def reference_scores(self, scale: int, kind: str) -> dict:
        """Bicubic and Lanczos PSNR/SSIM (computed once: they do not change between epochs)."""
        if kind not in self._scores:
            bp, bq = score(self.hr, self.bicubic, scale, kind)
            lp, lq = score(self.hr, self.lanczos, scale, kind)
            self._scores[kind] = {"bicubic_psnr": bp, "bicubic_ssim": bq, "lanczos_psnr": lp, "lanczos_ssim": lq}
        return self._scores[kind]


def metric_kind(dtypes) -> str:
    """"uint8" (literature convention) when every image is 8-bit, else "normalised"."""
    return "uint8" if set(map(str, dtypes)) == {"uint8"} else "normalised"


def score(hr: np.ndarray, out: np.ndarray, scale: int, kind: str) -> tuple:
    """(PSNR, SSIM) of ``out`` against ``hr`` by the convention ``kind``."""
    if kind == "uint8":
        return (metrics.psnr(hr, out, scale=scale), metrics.ssim(hr, out, scale=scale))
    ref, x = metrics.normalise_like(hr, out, low=PERCENTILES["low"], high=PERCENTILES["high"])
    return (
        metrics.psnr(ref, x, scale=scale, data_range=1.0, y_channel=False),
        metrics.ssim(ref, x, scale=scale, data_range=1.0, y_channel=False),
    )


def _to_dtype(x: np.ndarray, dtype) -> np.ndarray:
    dtype = np.dtype(dtype)
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        return np.clip(np.rint(x), info.min, info.max).astype(dtype)
    return x.astype(dtype)


def _view(x: np.ndarray, channels: int, dtype) -> np.ndarray:
    """One H x W x C slice as the model sees it: luminance for a gray model on RGB; 2D when gray."""
    if channels == 1 and x.shape[-1] == 3:
        x = _to_dtype(luminance(x), dtype)
    return x[..., 0] if x.shape[-1] == 1 else x


def pick_slices(slices, limit: int) -> list:
    """At most ``limit`` slices, evenly spread over the stack."""
    slices = list(slices)
    if len(slices) <= limit:
        return slices
    return [slices[i] for i in np.linspace(0, len(slices) - 1, limit).round().astype(int)]


def make_samples(items, *, scale: int, channels: int, paired: bool, degradation: Optional[Degradation],
                 normalization: dict, limit: Optional[int] = None) -> list:
    """The validation images: (HR, LR, bicubic, Lanczos) per slice, at most ``limit`` slices in all."""
    rng = np.random.default_rng(SEED)
    per_item = max(1, (limit or 10**9) // max(1, len(items)))
    out = []
    for it in items:
        hr_all, _ = read_slices(it.hr.path)
        lr_all = read_slices(it.lr.path)[0] if paired else None
        for k in pick_slices(it.slices, per_item):
            hr = _view(metrics.modcrop(hr_all[k], scale), channels, hr_all.dtype)
            if paired:
                lr = _view(lr_all[k], channels, lr_all.dtype)
                hr = hr[: lr.shape[0] * scale, : lr.shape[1] * scale]
            else:
                lr = _degrade_stored(hr, it.hr, degradation, normalization, rng)
            if min(lr.shape[:2]) < 4 or min(hr.shape[:2]) - 2 * scale < 11:
                continue  # too small to score (SSIM needs 11x11 after the border crop)
            name = it.hr.name if it.hr.slices == 1 else f"{it.hr.name}[{k}]"
            out.append(Sample(name, hr, lr, metrics.bicubic_upscale(lr, scale), metrics.lanczos_upscale(lr, scale)))
            if limit and len(out) >= limit:
                return out
    return out


def _degrade_stored(hr: np.ndarray, f: ImageFile, deg: Degradation, normalization: dict, rng) -> np.ndarray:
    """LR of a stored HR slice, in the stored dtype. The plain benchmark degradation works on the stored
    values directly (uint8 through Pillow's 8-bit path, as the literature); others on normalised values."""
    if deg.plain:
        down = metrics.bicubic_downscale if deg.kind == "bicubic" else metrics.area_downscale
        return down(hr, deg.scale)
    x = hr[..., None] if hr.ndim == 2 else hr
    norm = normalizer_of(f, normalization)
    if len(norm.offset) != x.shape[-1]:  # luminance of RGB: fitted on the luminance, as inference would
        norm = fit_normalizer(x, normalization, channel_axis=-1)
    lr = norm.inverse(degrade(norm.forward(x), deg, rng), hr.dtype)
    return lr[..., 0] if hr.ndim == 2 else lr


def _mean(rows: list) -> dict:
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k not in ("name", "size")}


def baseline(samples, scale: int, kind: str) -> dict:
    """Mean PSNR/SSIM of bicubic and Lanczos on the samples."""
    return _mean([s.reference_scores(scale, kind) for s in samples])


def run_model(srm, samples, scale: int, kind: str, *, normalization=None, tile=None, cancel=None,
              per_image: bool = False):
    """Mean PSNR/SSIM of the model on the samples (and the per-image rows with ``per_image``)."""
    from ..engine.api import upscale

    rows = []
    for s in samples:
        axes = "YX" if s.lr.ndim == 2 else "YXC"
        t0 = time.perf_counter()
        # float32 as the model was saved: scores must not depend on this machine's fast path (nor probe it)
        sr = upscale(s.lr, srm, axes=axes, tile=tile, normalization=normalization, cancel=cancel, precision="float32")
        seconds = time.perf_counter() - t0
        p, q = score(s.hr, sr, scale, kind)
        rows.append({"name": s.name, "size": f"{s.hr.shape[1]}x{s.hr.shape[0]}", "psnr": p, "ssim": q,
                     **s.reference_scores(scale, kind), "seconds": seconds})
    return (_mean(rows), rows) if per_image else _mean(rows)


def evaluate(model, hr_dir, scale: Optional[int] = None, *, degradation: str = "bicubic", tile=None,
             limit: Optional[int] = None, progress: Optional[Callable[[int, int], None]] = None,
             allow_unsafe: bool = False) -> dict:
    """PSNR/SSIM of ``model`` on the images of ``hr_dir`` next to bicubic and Lanczos.

    ``hr_dir`` holds high-resolution images (the LR input is made by ``degradation``, ``bicubic`` being the
    benchmark's antialiased downscale) or ``lr/`` and ``hr/`` subfolders of pairs. Returns
    ``{"model", "scale", "metric", "images": [per-image rows], "mean": {...}}``; each row has psnr, ssim,
    bicubic_psnr, bicubic_ssim, lanczos_psnr, lanczos_ssim and seconds.
    """
    from ..models.loading import load_model
    from .folders import load_folder

    if degradation not in DEGRADATIONS:
        raise InputError(f"degradation must be one of {', '.join(DEGRADATIONS)}, not {degradation!r}")
    srm = load_model(model, allow_unsafe=allow_unsafe)
    if scale is not None and int(scale) != srm.scale:
        raise InputError(f"model {srm.name} upscales x{srm.scale}, not x{scale}")
    scale = srm.scale
    data = load_folder(hr_dir, scale=scale)
    # images as they are (the engine matches their channels to the model's); the benchmark degradation
    samples = make_samples(
        data.items, scale=scale, channels=3, paired=data.paired, degradation=Degradation(scale, degradation),
        normalization=PERCENTILES, limit=limit,
    )
    if not samples:
        raise InputError(f"no image in {hr_dir} is large enough to evaluate at x{scale}")
    kind = metric_kind(s.hr.dtype for s in samples)
    rows = []
    for i, s in enumerate(samples):
        _, r = run_model(srm, [s], scale, kind, tile=tile, per_image=True)
        rows += r
        if progress:
            progress(i + 1, len(samples))
    mean = _mean(rows)
    return {
        "model": srm.name,
        "path": str(srm.path) if srm.path else None,
        "scale": scale,
        "data": str(Path(hr_dir)),
        "mode": "paired" if data.paired else f"hr-only ({degradation})",
        "metric": "PSNR/SSIM on Y of uint8, border crop = scale" if kind == "uint8"
        else "PSNR/SSIM on the percentile-normalised range (2/99.8), data range 1, border crop = scale",
        "images": rows,
        "mean": mean,
    }


# ------------------------------------------------------------------------------------------------ microscopy

BACKGROUND_LEVEL = 0.1  # a background crop stays below this in the reference's percentile-normalised range


def background_crops(reference: np.ndarray, side: int, limit: int = 4) -> list:
    """Up to ``limit`` non-overlapping ``side x side`` windows ``(y, x)`` with no structure: the reference,
    percentile-normalised (2 / 99.8) and smoothed over 2 pixels, stays below ``BACKGROUND_LEVEL`` in them.
    The darkest come first; the image border (``side`` pixels) is left out."""
    from scipy.ndimage import gaussian_filter

    (ref,) = metrics.normalise_like(reference)
    smooth = gaussian_filter(ref, 2.0)
    h, w = ref.shape
    found = []
    for y in range(side, h - 2 * side + 1, side):
        for x in range(side, w - 2 * side + 1, side):
            window = smooth[y : y + side, x : x + side]
            if window.max() < BACKGROUND_LEVEL:
                found.append((float(window.mean()), y, x))
    return [(y, x) for _, y, x in sorted(found)[:limit]]


def microscopy_scores(srm, images, *, photons=None, seed: int = SEED, background_side: int = 48, tile=None) -> dict:
    """PSNR/SSIM of a model and of bicubic on real microscopy images whose LR a camera makes by binning.

    ``images``: ``[(name, 2D array)]`` (e.g. :func:`.microscopy.validation_images`). ``photons`` None: LR =
    the mean of each ``scale x scale`` block in the image's dtype (binning, the image's own noise kept); a
    number: a camera at that photon level (:func:`.fluorescence.microscope_lr`, uint16 counts), scored
    against the clean counts. Scores on the reference's percentile-normalised range (2 / 99.8), data range 1,
    border = scale; also on background-only crops of each image (where a model must not invent structure).
    Returns ``{"images": [rows], "mean": {...}}``.
    """
    from ..engine.api import upscale
    from . import fluorescence as fl
    from .microscopy import relative_intensity

    scale = srm.scale
    rng = np.random.default_rng(seed)
    rows = []
    for name, img in images:
        img = metrics.modcrop(np.asarray(img), scale)
        if photons is None:
            ref, lr = img, metrics.area_downscale(img, scale)
        else:
            rel = relative_intensity(img)
            lr, p = fl.microscope_lr(rel, scale, rng, photons=float(photons))
            ref = fl.expected_counts(rel, scale, p)
        outputs = {"model": upscale(lr, srm, axes="YX", tile=tile, precision="float32"),
                   "bicubic": metrics.bicubic_upscale(lr, scale)}
        row = {"name": name, "size": f"{img.shape[1]}x{img.shape[0]}"}
        for key, out in outputs.items():
            prefix = "" if key == "model" else f"{key}_"
            row[f"{prefix}psnr"], row[f"{prefix}ssim"] = score(ref, out, scale, "normalised")
        crops = background_crops(ref, background_side)
        row["background_crops"] = len(crops)
        if crops:
            normed = metrics.normalise_like(ref, outputs["model"], outputs["bicubic"])
            for key, out in (("background", normed[1]), ("background_bicubic", normed[2])):
                vals = [metrics.psnr(normed[0][y : y + background_side, x : x + background_side],
                                     out[y : y + background_side, x : x + background_side],
                                     data_range=1.0, y_channel=False) for y, x in crops]
                row[f"{key}_psnr"] = float(np.mean(vals))
        rows.append(row)
    keys = [k for k in rows[0] if k not in ("name", "size", "background_crops")] if rows else []
    mean = {k: float(np.mean([r[k] for r in rows if k in r])) for k in keys}
    return {"model": srm.name, "scale": scale, "photons": photons,
            "metric": "PSNR/SSIM on the reference's percentile-normalised range (2/99.8), data range 1, "
                      f"border = scale; background: {background_side}x{background_side} crops without structure",
            "images": rows, "mean": mean}


def linear_baseline_scores(training, images, scale: int, taps: int = DEFAULT_TAPS) -> dict:
    """Mean PSNR on ``images`` (``[(name, 2D array)]``, LR by binning as :func:`microscopy_scores`) of bicubic
    and of the least-squares linear upscaler (:mod:`.linear_upscaler`) fitted on ``training`` (2D arrays of
    the same kind: what a learned linear filter reaches) and fitted on ``images`` themselves (the best any linear
    filter can reach there). Tells how much of a model's gain the data leave to non-linear learning."""

    def pairs(imgs):
        return [(hr, metrics.area_downscale(hr, scale)) for hr in (metrics.modcrop(np.asarray(i), scale) for i in imgs)]

    val = pairs([img for _, img in images])
    fitted = {"trained": fit_linear_upscaler(pairs(training), scale, taps),
              "fitted_on_validation": fit_linear_upscaler(val, scale, taps)}
    rows = {"bicubic": [score(hr, metrics.bicubic_upscale(lr, scale), scale, "normalised")[0] for hr, lr in val]}
    for key, filters in fitted.items():
        rows[key] = [score(hr, _to_dtype(apply_linear_upscaler(filters, lr, scale), hr.dtype), scale, "normalised")[0]
                     for hr, lr in val]
    return {key: float(np.mean(v)) for key, v in rows.items()}


def evaluate_microscopy(model, images=None, *, photons=(None, 100.0), tile=None, allow_unsafe: bool = False) -> dict:
    """Validate a microscopy model on held-out real fluorescence (default: :func:`.microscopy.validation_images`):
    :func:`microscopy_scores` for each camera setting of ``photons`` (None: binning alone). Returns
    ``{"binning": {...}, "photons=100": {...}}``."""
    from ..models.loading import load_model
    from .microscopy import validation_images

    srm = load_model(model, allow_unsafe=allow_unsafe)
    images = validation_images() if images is None else images
    if not images:
        raise InputError("no validation images: install mahotas (pip install mahotas), which ships them")
    return {("binning" if p is None else f"photons={p:g}"): microscopy_scores(srm, images, photons=p, tile=tile)
            for p in photons}
