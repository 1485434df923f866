"""Simulated fluorescence microscopy: structures, optics and camera, in NumPy and SciPy only.

A training pair is made the way a microscope makes its images:

- **structures** (:func:`simulate_hr`): dye density on a fine grid — filaments (microtubule-like smooth
  curves), puncta (vesicles, spots of a few sizes), textured nuclei (blobs with chromatin-like texture and a
  brighter rim), membranes (cell outlines as thin closed contours) — on a dim, slowly varying background
  (out-of-focus light, autofluorescence);
- **optics**: the structures seen through a PSF, Gaussian or Airy-like (the in-focus pattern of a circular
  aperture, :func:`psf_kernel`), at the high resolution;
- **camera** (:func:`microscope_lr`): each camera pixel collects the photons of the ``scale x scale`` HR
  pixels it covers (area binning, a sum), shot noise (Poisson) at a photon level drawn over a range, Gaussian
  read noise, an offset, integer counts (uint16).

Everything draws from the ``numpy.random.Generator`` it is given: the same seed gives the same images on any
machine. No Keras here: the GPU training script and the CPU trainer both import it.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

KINDS = ("filaments", "puncta", "nuclei", "membranes")
PHOTONS = (20.0, 5000.0)  # photons per LR pixel at the brightest structures (drawn log-uniformly)
READ_NOISE = (0.5, 3.0)  # camera read noise sigma, counts (sCMOS / cooled CCD range)
OFFSET = 100  # camera baseline, counts
SATURATION_MARGIN = 0.9  # the brightest expected count at most this share of the camera's range above the offset


# ----------------------------------------------------------------------------------------------- optics


def psf_kernel(sigma: float, kind: str = "gaussian") -> np.ndarray:
    """A normalised 2D PSF (sums to 1). ``sigma``: the Gaussian's sigma in HR pixels; the Airy pattern has the
    same central width (its first dark ring at about 2.9 sigma) and faint rings around it."""
    radius = max(2, int(np.ceil((6.0 if kind == "airy" else 3.0) * sigma)))
    y, x = np.mgrid[-radius : radius + 1, -radius : radius + 1].astype(np.float64)
    r = np.hypot(y, x)
    if kind == "gaussian":
        k = np.exp(-(r**2) / (2 * sigma**2))
    elif kind == "airy":
        from scipy.special import j1

        v = 1.3 * np.maximum(r, 1e-9) / sigma  # 1.3 / sigma: central lobe matches the Gaussian of sigma
        k = (2 * j1(v) / v) ** 2
    else:
        raise ValueError(f"unknown PSF kind {kind!r}: use 'gaussian' or 'airy'")
    return (k / k.sum()).astype(np.float32)


def blur(x: np.ndarray, sigma: float, kind: str = "gaussian") -> np.ndarray:
    """``x`` seen through the PSF (reflecting borders)."""
    if sigma <= 0:
        return x.astype(np.float32, copy=False)
    if kind == "gaussian":
        return ndimage.gaussian_filter(x.astype(np.float32), sigma, mode="reflect", truncate=3.0)
    return ndimage.convolve(x.astype(np.float32), psf_kernel(sigma, kind), mode="reflect")


# ----------------------------------------------------------------------------------------------- structures


def _smooth_path(shape, rng, steps: int, step: float, turn: float) -> np.ndarray:
    """Points of a smooth random curve (persistent random walk), (steps, 2) in pixel coordinates."""
    h, w = shape
    p = np.array([rng.uniform(0, h), rng.uniform(0, w)])
    angle, curvature = rng.uniform(0, 2 * np.pi), 0.0
    pts = np.empty((steps, 2))
    for i in range(steps):
        curvature = 0.9 * curvature + rng.normal(0, turn)
        angle += curvature
        p = p + step * np.array([np.sin(angle), np.cos(angle)])
        pts[i] = p
    return pts


def _draw_points(img: np.ndarray, pts: np.ndarray, weight) -> None:
    """Add ``weight`` at each point, split over its 4 neighbouring pixels (bilinear: no aliasing)."""
    h, w = img.shape
    y, x = pts[:, 0], pts[:, 1]
    y0, x0 = np.floor(y).astype(int), np.floor(x).astype(int)
    fy, fx = y - y0, x - x0
    weight = np.broadcast_to(np.asarray(weight, np.float64), y.shape)
    for dy, dx, wt in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
        yy, xx = y0 + dy, x0 + dx
        ok = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
        np.add.at(img, (yy[ok], xx[ok]), (weight * wt)[ok])


def filaments(shape, rng) -> np.ndarray:
    """Microtubule-like filaments: long smooth curves, one molecule-density line each, of varied brightness."""
    img = np.zeros(shape, np.float64)
    n = int(rng.integers(3, 25))
    for _ in range(n):
        steps = int(rng.integers(max(shape) // 2, 3 * max(shape)))
        pts = _smooth_path(shape, rng, steps, step=0.5, turn=rng.uniform(0.002, 0.02))
        _draw_points(img, pts, rng.uniform(0.3, 1.0) * rng.uniform(0.7, 1.3, len(pts)))
    return ndimage.gaussian_filter(img, rng.uniform(0.3, 0.8))  # filament width below the PSF


def puncta(shape, rng) -> np.ndarray:
    """Vesicles and spots: points of a few sizes, some clustered."""
    h, w = shape
    img = np.zeros(shape, np.float64)
    n = int(rng.integers(10, 1 + max(20, h * w // 150)))
    centres = rng.uniform([0, 0], [h, w], size=(n, 2))
    clustered = rng.random(n) < 0.4
    centres[clustered] = centres[rng.integers(0, n, clustered.sum())] + rng.normal(0, 6, (clustered.sum(), 2))
    for size in (0.5, 1.5, 3.0):
        pick = rng.random(n) < 1 / 3
        layer = np.zeros(shape, np.float64)
        _draw_points(layer, centres[pick], rng.uniform(0.2, 1.0, pick.sum()))
        img += ndimage.gaussian_filter(layer, size) * (2 * np.pi * size**2)  # peak ~ weight whatever the size
    return img


def _blob_masks(shape, rng, n: int, radius: tuple) -> list:
    """Irregular round objects: a disc deformed by a few random harmonics; (distance inside, mask) each."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    out = []
    for _ in range(n):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        r0 = rng.uniform(*radius)
        theta = np.arctan2(yy - cy, xx - cx)
        r = np.hypot(yy - cy, xx - cx)
        edge = r0 * (1 + sum(rng.normal(0, 0.08) * np.cos(k * theta + rng.uniform(0, 6.3)) for k in (2, 3, 5)))
        out.append((edge - r, r < edge))
    return out


def nuclei(shape, rng) -> np.ndarray:
    """Textured nuclei: filled blobs with chromatin-like texture, dark nucleoli and a slightly brighter rim."""
    img = np.zeros(shape, np.float64)
    side = min(shape)
    for depth, mask in _blob_masks(shape, rng, int(rng.integers(1, 8)), (side / 10, side / 4)):
        texture = ndimage.gaussian_filter(rng.normal(0, 1, shape), rng.uniform(0.8, 2.5))
        texture = 1 + 0.35 * texture / (texture.std() + 1e-9)
        rim = 1 + 0.4 * np.exp(-np.clip(depth, 0, None) / 2.0)
        img += mask * np.clip(texture, 0.1, None) * rim * rng.uniform(0.3, 1.0)
    for depth, mask in _blob_masks(shape, rng, int(rng.integers(0, 6)), (side / 60, side / 25)):
        img[mask] *= 0.4  # nucleoli (only where a nucleus is)
    return ndimage.gaussian_filter(img, 0.5)


def membranes(shape, rng) -> np.ndarray:
    """Cell outlines: thin closed contours (the boundaries of a random tessellation), of uneven labelling."""
    h, w = shape
    n = int(rng.integers(3, 15))
    seeds = rng.uniform([0, 0], [h, w], size=(n, 2))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    # warp the grid a little so the outlines curve like membranes, not straight Voronoi edges
    warp = [ndimage.gaussian_filter(rng.normal(0, 1, shape), max(shape) / 12) for _ in range(2)]
    scale = rng.uniform(2, 8) / (max(np.abs(warp[0]).max(), 1e-9))
    d = np.stack([np.hypot(yy + scale * warp[0] - sy, xx + scale * warp[1] - sx) for sy, sx in seeds])
    d.sort(axis=0)
    gap = d[1] - d[0]  # zero on the boundary between two cells
    line = np.exp(-(gap**2) / (2 * rng.uniform(0.4, 1.0) ** 2))
    patchy = 1 + 0.5 * ndimage.gaussian_filter(rng.normal(0, 1, shape), 4) * 4
    return line * np.clip(patchy, 0.1, None) * rng.uniform(0.4, 1.0)


_MAKERS = {"filaments": filaments, "puncta": puncta, "nuclei": nuclei, "membranes": membranes}


def simulate_hr(shape, rng: np.random.Generator, kind=None, *, psf: str | None = None,
                psf_sigma: float | None = None) -> np.ndarray:
    """Clean (noise-free, high-photon) fluorescence at high resolution: float32, the brightest structures near
    1, a dim background above 0. ``kind``: one of :data:`KINDS`, a list of them, or None (one or two drawn).
    ``psf``/``psf_sigma``: the optics (default: drawn, Gaussian or Airy, sigma 0.8-2.0 HR pixels)."""
    shape = tuple(int(s) for s in shape)
    if kind is None:
        kinds = list(rng.choice(KINDS, size=int(rng.integers(1, 3)), replace=False))
    else:
        kinds = [kind] if isinstance(kind, str) else list(kind)
    unknown = [k for k in kinds if k not in _MAKERS]
    if unknown:
        raise ValueError(f"unknown structure {unknown[0]!r}: use one of {', '.join(KINDS)}")
    dye = sum(_MAKERS[k](shape, rng) / 1.0 for k in kinds)
    psf = psf or ("airy" if rng.random() < 0.5 else "gaussian")
    sigma = float(psf_sigma if psf_sigma is not None else rng.uniform(0.8, 2.0))
    img = blur(np.asarray(dye, np.float32), sigma, psf).astype(np.float64)
    top = np.percentile(img, 99.9)
    img = img / top if top > 0 else img
    background = rng.uniform(0.0, 0.08) * (1 + 0.5 * ndimage.gaussian_filter(rng.normal(0, 1, shape), max(shape) / 6)
                                           * max(shape) / 6)
    return np.clip(img + np.clip(background, 0, None), 0, None).astype(np.float32)


# ----------------------------------------------------------------------------------------------- camera


def bin_pixels(x: np.ndarray, scale: int) -> np.ndarray:
    """Sum of each ``scale x scale`` block of the first two axes (a camera pixel collects what falls on it);
    remainder rows and columns are dropped."""
    x = np.asarray(x)
    h, w = x.shape[0] // scale, x.shape[1] // scale
    blocks = x[: h * scale, : w * scale].reshape(h, scale, w, scale, *x.shape[2:])
    return blocks.sum(axis=(1, 3), dtype=np.float64)


def draw_log_uniform(rng, lo_hi) -> float:
    lo, hi = (float(v) for v in lo_hi)
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi)))) if hi > lo else lo


def microscope_lr(hr: np.ndarray, scale: int, rng: np.random.Generator, *, photons=PHOTONS,
                  read_noise=READ_NOISE, offset: int = OFFSET, dtype=np.uint16, avoid_saturation: bool = False,
                  levels=None):
    """The camera image of ``hr`` (relative intensity, brightest structures near 1): integer counts.

    A photon level ``p`` is drawn log-uniformly in ``photons`` (a number: fixed): an LR pixel fully covered by
    a structure of intensity 1 collects ``p`` photons on average. Then shot noise (Poisson), read noise
    (Gaussian, sigma drawn in ``read_noise``), ``offset``, rounding and clipping to ``dtype``. With
    ``avoid_saturation``, ``p`` is lowered where it would saturate the camera, as a microscopist sets the
    exposure (for training pairs: a saturated pixel has no recoverable target). ``levels`` (a number, or a
    range drawn log-uniformly): the camera's gain puts the brightest pixel at most this many counts above the
    offset (never below one count per photon),
    so a bright, clean image can still have few grey levels (an 8-bit camera, a low-gain setting); None: one
    count per photon.
    Returns ``(counts, k)``: the clean expectation of a count is ``offset + k * mean of the HR block`` (``k``:
    counts per unit of intensity, the photon level over the gain).
    """
    p = draw_log_uniform(rng, photons if np.ndim(photons) else (photons, photons))
    binned = bin_pixels(np.clip(hr, 0, None), scale) / scale**2
    info = np.iinfo(dtype)
    peak = float(binned.max())
    if avoid_saturation and peak > 0:  # exposed as a microscopist exposes: the brightest pixel below saturation
        p = min(p, SATURATION_MARGIN * (info.max - offset) / peak)
    expected = binned * p
    counts = rng.poisson(expected).astype(np.float64)
    gain = 1.0
    if levels is not None and peak > 0:
        gain = max(1.0, p * peak / draw_log_uniform(rng, levels if np.ndim(levels) else (levels, levels)))
        counts /= gain
    sigma = rng.uniform(*read_noise) if np.ndim(read_noise) else float(read_noise)
    counts += rng.normal(0.0, sigma, counts.shape) + offset
    return np.clip(np.rint(counts), info.min, info.max).astype(dtype), p / gain


def expected_counts(hr: np.ndarray, scale: int, photons: float, offset: int = OFFSET) -> np.ndarray:
    """The noise-free counts at HR in the camera's units: what each small HR pixel would read if it had the
    LR pixel's gain (mean-preserving: binning this by the mean gives the LR's expectation)."""
    return (offset + photons * np.asarray(hr, np.float64)).astype(np.float32)
