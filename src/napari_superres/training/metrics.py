"""Image quality metrics and classic resamplers, by the conventions of the super-resolution literature.

Photos (BasicSR / EDSR / RCAN / SwinIR): uint8 images, ``scale`` pixels cropped from every border, PSNR and
SSIM on the Y channel of BT.601 as MATLAB's ``rgb2ycbcr`` defines it
(``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255`` with R, G, B in 0..255; Y is kept as a float, not
rounded, as BasicSR does), peak 255, SSIM of Wang et al. (11x11 Gaussian window, sigma 1.5, statistics over
the valid region only).

Microscopy and other non-photo data: both images are normalised by the reference's percentiles (or its value
range) and compared with ``data_range=1``; :func:`normalise_like` does the normalisation.

Resamplers use Pillow's antialiased bicubic / Lanczos, which matches MATLAB ``imresize`` closely.
NumPy and Pillow only: importing this module never loads Keras.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image

__all__ = [
    "psnr",
    "ssim",
    "rgb_to_y",
    "crop_border",
    "normalise_like",
    "bicubic_upscale",
    "lanczos_upscale",
    "bicubic_downscale",
    "area_downscale",
    "modcrop",
]

_Y_WEIGHTS = np.array([65.481, 128.553, 24.966]) / 255.0


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """Y of BT.601 (MATLAB ``rgb2ycbcr``) as float64 in 16..235 for a uint8-range RGB image (..., 3)."""
    img = np.asarray(img, dtype=np.float64)
    return img[..., :3] @ _Y_WEIGHTS + 16.0


def crop_border(img: np.ndarray, border: int) -> np.ndarray:
    """Drop ``border`` pixels from each side of the two spatial axes (Y, X are the first two)."""
    if border <= 0:
        return img
    if img.shape[0] <= 2 * border or img.shape[1] <= 2 * border:
        raise ValueError(f"image {img.shape[:2]} is too small for a border crop of {border}")
    return img[border:-border, border:-border]


def _prepare(a, b, scale, y_channel):
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    if a.ndim not in (2, 3):
        raise ValueError(f"expected a 2D image (H, W) or (H, W, C), got shape {a.shape}")
    if y_channel and a.ndim == 3 and a.shape[-1] in (3, 4):
        a, b = rgb_to_y(a), rgb_to_y(b)
    else:
        a, b = a.astype(np.float64), b.astype(np.float64)
    return crop_border(a, scale), crop_border(b, scale)


def psnr(a, b, *, scale: int = 0, data_range: float = 255.0, y_channel: bool = True) -> float:
    """Peak signal-to-noise ratio in dB; ``inf`` for identical images.

    ``scale`` pixels are cropped from each border. With ``y_channel`` an RGB image is compared on its Y
    channel (values must then be in 0..255); gray images and other channel counts are compared as they are.
    """
    a, b = _prepare(a, b, scale, y_channel)
    mse = np.mean((a - b) ** 2)
    if mse == 0:
        return float("inf")
    return float(10.0 * np.log10(data_range**2 / mse))


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size) - (size - 1) / 2.0
    w = np.exp(-(x**2) / (2 * sigma**2))
    return w / w.sum()


def _filter_valid(img: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Separable correlation of a 2D image with the 1D window ``w`` on both axes, 'valid' region only."""
    n = len(w)
    h, wd = img.shape
    rows = sum(w[k] * img[k : h - n + 1 + k, :] for k in range(n))
    return sum(w[k] * rows[:, k : wd - n + 1 + k] for k in range(n))


def _ssim_2d(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    w = _gaussian_window()
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    mu_a, mu_b = _filter_valid(a, w), _filter_valid(b, w)
    var_a = _filter_valid(a * a, w) - mu_a**2
    var_b = _filter_valid(b * b, w) - mu_b**2
    cov = _filter_valid(a * b, w) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return float(np.mean(num / den))


def ssim(a, b, *, scale: int = 0, data_range: float = 255.0, y_channel: bool = True) -> float:
    """Structural similarity of Wang et al. (11x11 Gaussian window, sigma 1.5, K1=0.01, K2=0.03).

    Same cropping and Y-channel rules as :func:`psnr`; multi-channel images that are not compared on Y are
    averaged over channels. Images need at least 11 pixels per side after the crop.
    """
    a, b = _prepare(a, b, scale, y_channel)
    if min(a.shape[:2]) < 11:
        raise ValueError(f"SSIM needs at least 11x11 pixels after the border crop, got {a.shape[:2]}")
    if a.ndim == 2:
        return _ssim_2d(a, b, data_range)
    return float(np.mean([_ssim_2d(a[..., c], b[..., c], data_range) for c in range(a.shape[-1])]))


def normalise_like(reference, *others, low: float | None = 2.0, high: float = 99.8):
    """Map ``reference`` and ``others`` with the affine map that takes the reference's ``low``/``high``
    percentiles to 0/1 (``low=None``: its min/max). Returns float64 arrays, for ``data_range=1`` metrics."""
    ref = np.asarray(reference, dtype=np.float64)
    if low is None:
        lo, hi = float(ref.min()), float(ref.max())
    else:
        lo, hi = (float(v) for v in np.percentile(ref, [low, high]))
    span = hi - lo if hi > lo else 1.0
    return tuple((np.asarray(x, dtype=np.float64) - lo) / span for x in (reference, *others))


# ----------------------------------------------------------------------------------------------- resampling


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom/right so that H and W are multiples of ``scale`` (the benchmark convention)."""
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]


def _resize(img: np.ndarray, size_hw: tuple[int, int], resample) -> np.ndarray:
    """Resize a (H, W) or (H, W, C) image with Pillow. uint8 gray/RGB go through Pillow's 8-bit path
    (rounded like MATLAB); anything else is resampled per channel in float32 and cast back (integers rounded
    and clipped, never wrapped)."""
    img = np.asarray(img)
    h, w = size_hw
    if img.dtype == np.uint8 and (img.ndim == 2 or (img.ndim == 3 and img.shape[-1] == 3)):
        return np.asarray(Image.fromarray(img).resize((w, h), resample))
    planes = img[..., None] if img.ndim == 2 else img
    out = np.stack(
        [
            np.asarray(Image.fromarray(np.ascontiguousarray(planes[..., c], dtype=np.float32)).resize((w, h), resample))
            for c in range(planes.shape[-1])
        ],
        axis=-1,
    )
    if img.ndim == 2:
        out = out[..., 0]
    if np.issubdtype(img.dtype, np.integer):
        info = np.iinfo(img.dtype)
        return np.clip(np.rint(out), info.min, info.max).astype(img.dtype)
    return out.astype(img.dtype, copy=False)


def bicubic_upscale(img, scale: int) -> np.ndarray:
    """Bicubic upscaling by an integer factor (Pillow BICUBIC); same dtype as the input."""
    img = np.asarray(img)
    return _resize(img, (img.shape[0] * scale, img.shape[1] * scale), Image.BICUBIC)


def lanczos_upscale(img, scale: int) -> np.ndarray:
    """Lanczos-3 upscaling by an integer factor (Pillow LANCZOS); same dtype as the input."""
    img = np.asarray(img)
    return _resize(img, (img.shape[0] * scale, img.shape[1] * scale), Image.LANCZOS)


def _cubic(x: np.ndarray, a: float = -0.5) -> np.ndarray:
    x = np.abs(x)
    return np.where(x < 1, ((a + 2) * x - (a + 3)) * x * x + 1, np.where(x < 2, (((x - 5) * x + 8) * x - 4) * a, 0.0))


@lru_cache(maxsize=64)
def _downscale_matrix(n_in: int, scale: int) -> np.ndarray:
    """(n_in // scale, n_in) weights of Pillow's antialiased bicubic reduction by ``scale`` (its coefficients,
    edge handling included: the kernel is cut at the border and renormalised)."""
    n_out = n_in // scale
    m = np.zeros((n_out, n_in), np.float64)
    support = 2.0 * scale
    for i in range(n_out):
        centre = (i + 0.5) * scale
        lo = max(int(centre - support + 0.5), 0)
        hi = min(int(centre + support + 0.5), n_in)
        w = _cubic((np.arange(lo, hi) - centre + 0.5) / scale)
        m[i, lo:hi] = w / w.sum()
    return m.astype(np.float32)


def bicubic_downscale(img, scale: int) -> np.ndarray:
    """Antialiased bicubic downscaling, like MATLAB ``imresize(img, 1/scale)`` (the benchmark degradation).

    The output is ``floor(H/scale) x floor(W/scale)``; the bottom/right remainder rows are ignored, so that
    output pixel ``i`` covers input pixels ``i*scale .. (i+1)*scale-1`` exactly. Same dtype as the input.
    uint8 gray/RGB go through Pillow's 8-bit path (as benchmark LR images are made); other dtypes through
    Pillow's coefficients as two float32 matrix products (fast for the many small patches of training).
    """
    img = np.asarray(img)
    h, w = img.shape[0] // scale, img.shape[1] // scale
    if h < 1 or w < 1:
        raise ValueError(f"image {img.shape[:2]} is smaller than the scale {scale}")
    img = img[: h * scale, : w * scale]
    if img.dtype == np.uint8 and (img.ndim == 2 or (img.ndim == 3 and img.shape[-1] == 3)):
        return _resize(img, (h, w), Image.BICUBIC)
    mh = _downscale_matrix(h * scale, scale)
    mw = _downscale_matrix(w * scale, scale)
    x = img.astype(np.float32, copy=False).reshape(h * scale, w * scale, -1)
    out = mh @ np.moveaxis(x, -1, 0) @ mw.T  # (C, h, w)
    out = np.moveaxis(out, 0, -1).reshape((h, w) + img.shape[2:])
    if np.issubdtype(img.dtype, np.integer):
        info = np.iinfo(img.dtype)
        return np.clip(np.rint(out), info.min, info.max).astype(img.dtype)
    return out.astype(img.dtype, copy=False)


def area_downscale(img, scale: int) -> np.ndarray:
    """Average of each ``scale x scale`` block (pixel binning, as a camera with larger pixels would see it).
    Same dtype as the input (integers rounded)."""
    img = np.asarray(img)
    h, w = img.shape[0] // scale, img.shape[1] // scale
    if h < 1 or w < 1:
        raise ValueError(f"image {img.shape[:2]} is smaller than the scale {scale}")
    blocks = img[: h * scale, : w * scale].reshape(h, scale, w, scale, *img.shape[2:])
    out = blocks.mean(axis=(1, 3), dtype=np.float64)
    if np.issubdtype(img.dtype, np.integer):
        return np.rint(out).astype(img.dtype)
    return out.astype(img.dtype)


def noise_sigma(img) -> float:
    """Standard deviation of an image's pixel noise (Immerkaer 1996: the mean absolute response to a 3x3
    Laplacian difference that cancels smooth structure). Structure sharper than noise inflates it a little."""
    from scipy.signal import convolve2d

    x = np.asarray(img, dtype=np.float64)
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float64)
    response = convolve2d(x, kernel, mode="valid")
    return float(np.sqrt(np.pi / 2) * np.abs(response).mean() / 6)


def binning_ceiling_psnr(img, scale: int, low: float = 2.0, high: float = 99.8) -> float:
    """The PSNR (on the image's ``low``/``high`` percentile range) that a perfect upscaler of the binned image
    would reach: binning keeps each block's mean noise, so what no method can predict is the rest of the
    reference's own noise, ``sigma^2 (1 - 1 / scale^2)`` per pixel."""
    lo, hi = np.percentile(np.asarray(img, dtype=np.float64), [low, high])
    unpredictable = noise_sigma(img) ** 2 * (1 - 1 / scale**2)
    return float(10 * np.log10((hi - lo) ** 2 / max(unpredictable, 1e-12)))
