"""Making a low-resolution input from a high-resolution patch (HR-only training).

Order as in Real-ESRGAN's first-order model: blur (the optics' PSF), downscale (the sensor), noise (shot and
read noise), JPEG (the file). Values are the normalised floats the model sees (about 0..1).

``kind="microscope"`` is a fluorescence camera (:mod:`.fluorescence`): area binning of the HR pixels, shot
noise at a photon level drawn over a range (``poisson`` > 0: that level), Gaussian read noise, an offset and
integer counts; the LR comes back in the HR's units. A model then sees both LR and HR through the percentile
map of the LR (:func:`renormalise`), as the engine normalises a microscopy image at inference.

A patch is degraded together with a margin of context around it (:func:`margin`), so that its LR equals the
corresponding part of the whole degraded image: the resampling and blur kernels then never see the patch's
artificial border.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..engine.normalize import DEFAULT_PERCENTILES as PERCENTILES
from ..engine.normalize import fit_normalizer
from .fluorescence import OFFSET as OFFSET_COUNTS
from .metrics import area_downscale, bicubic_downscale


@dataclass(frozen=True)
class Degradation:
    scale: int
    kind: str = "bicubic"  # "bicubic" | "area" | "microscope"
    blur: float = 0.0  # Gaussian PSF sigma, HR pixels
    noise: float = 0.0  # largest Gaussian sigma (normalised units); each call draws one in [0, noise]
    poisson: float = 0.0  # photons at value 1.0 (0: no shot noise; microscope: 0 draws a level per patch)
    jpeg: int = 0  # lowest JPEG quality; each call draws one in [jpeg, 95] (0: no JPEG)

    @property
    def plain(self) -> bool:
        """Only the resampling: the same as the benchmark's downscale of the stored image."""
        return self.kind != "microscope" and not (self.blur or self.noise or self.poisson or self.jpeg)

    @classmethod
    def from_config(cls, cfg) -> "Degradation":
        return cls(int(cfg.scale), cfg.degradation, float(cfg.blur), float(cfg.noise), float(cfg.poisson),
                   int(cfg.jpeg))

    def to_dict(self) -> dict:
        d = {"kind": self.kind, "blur": self.blur, "noise": self.noise, "poisson": self.poisson, "jpeg": self.jpeg}
        if self.kind == "microscope":
            from .fluorescence import PHOTONS, READ_NOISE

            d.update(binning="sum", photons=self.poisson or list(PHOTONS), read_noise=list(READ_NOISE),
                     counts="uint16", normalisation="percentile of the LR, same map on the HR")
        return d


def margin(deg: Degradation) -> int:
    """HR pixels of context a patch needs on each side, a multiple of the scale (keeps the LR grid aligned)."""
    s = deg.scale
    need = math.ceil(3 * deg.blur)  # the blur's truncated Gaussian
    if deg.kind == "bicubic":
        need += 2 * s  # antialiased bicubic: kernel radius 2 LR pixels
    return s * math.ceil(need / s)


def downscale(x: np.ndarray, deg: Degradation) -> np.ndarray:
    return bicubic_downscale(x, deg.scale) if deg.kind == "bicubic" else area_downscale(x, deg.scale)


def _blur(x: np.ndarray, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(x, sigma=(sigma, sigma, 0), mode="reflect", truncate=3.0)


def _jpeg(x: np.ndarray, quality: int) -> np.ndarray:
    u8 = np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)
    img = Image.fromarray(u8[..., 0] if u8.shape[-1] == 1 else u8)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=int(quality))
    out = np.asarray(Image.open(buf), dtype=np.float32) / 255.0
    return out.reshape(x.shape)


def _camera(x: np.ndarray, deg: Degradation, rng: np.random.Generator) -> np.ndarray:
    """A fluorescence camera's LR of HR values ``x`` (about 0..1), back in the units of ``x``."""
    from .fluorescence import PHOTONS, microscope_lr

    photons = deg.poisson or PHOTONS
    counts, p = microscope_lr(x, deg.scale, rng, photons=photons)
    return ((counts.astype(np.float32) - OFFSET_COUNTS) / np.float32(p)).astype(np.float32)


def renormalise(lr: np.ndarray, hr: np.ndarray, percentiles=PERCENTILES) -> tuple:
    """Both through the percentile map fitted on ``lr`` (per channel), as the engine maps a microscopy input:
    the model learns values that the engine's inverse of that map turns back into the input's units."""
    norm = fit_normalizer(lr, {"mode": "percentile", "low": percentiles[0], "high": percentiles[1]},
                          channel_axis=-1)
    return norm.forward(lr), norm.forward(hr)


def degrade(hr: np.ndarray, deg: Degradation, rng: np.random.Generator) -> np.ndarray:
    """(H, W, C) float32 HR -> (H/s, W/s, C) float32 LR."""
    x = np.asarray(hr, np.float32)
    if deg.blur:
        x = _blur(x, deg.blur)
    if deg.kind == "microscope":
        x = _camera(x, deg, rng)
        return x + rng.normal(0.0, rng.uniform(0.0, deg.noise), x.shape).astype(np.float32) if deg.noise else x
    x = downscale(x, deg)
    if deg.poisson:
        x = rng.poisson(np.clip(x, 0, None) * deg.poisson).astype(np.float32) / deg.poisson
    if deg.noise:
        x = x + rng.normal(0.0, rng.uniform(0.0, deg.noise), x.shape).astype(np.float32)
    if deg.jpeg:
        x = _jpeg(x, rng.integers(deg.jpeg, 96))
    return x.astype(np.float32, copy=False)
