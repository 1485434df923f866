"""Sample data made from images bundled in scikit-image's wheel (no download): a low-resolution photo and a
microscopy-like focal stack, both small enough to upscale on a laptop CPU in seconds."""

from __future__ import annotations

import numpy as np


def _bicubic_downscale(image: np.ndarray, factor: int) -> np.ndarray:
    """Downscale with antialiasing like MATLAB's imresize (Pillow's BICUBIC), the degradation of SR benchmarks."""
    from PIL import Image

    height, width = image.shape[:2]
    small = Image.fromarray(image).resize((width // factor, height // factor), Image.Resampling.BICUBIC)
    return np.asarray(small)


def low_res_photo():
    """Chelsea the cat at half resolution (150 x 225 RGB, uint8), made by bicubic downscaling."""
    from skimage import data

    photo = _bicubic_downscale(data.chelsea(), 2)
    return [(photo, {"name": "chelsea (low-res x1/2)", "rgb": True}, "image")]


def focal_stack():
    """A widefield-like focal series of scikit-image's ``cell`` image: 12 Z slices (2 um apart, 0.5 um pixels)
    whose defocus blur grows away from the middle slice, with shot noise. ZYX, uint8, 12 x 165 x 138."""
    from skimage import data
    from skimage.filters import gaussian

    cell = _bicubic_downscale(data.cell(), 4).astype(np.float32) / 255.0
    rng = np.random.default_rng(0)
    planes = []
    for z in range(12):
        defocus = 0.9 * abs(z - 5.5)
        plane = gaussian(cell, sigma=defocus) if defocus > 0 else cell
        plane = rng.poisson(plane * 400.0) / 400.0  # photon noise at about 400 photons at full scale
        planes.append(np.clip(plane * 255.0, 0, 255))
    stack = np.stack(planes).round().astype(np.uint8)
    meta = {
        "name": "cell focal stack (ZYX)",
        "scale": (2.0, 0.5, 0.5),
        "units": ("um", "um", "um"),
        "colormap": "gray",
        "metadata": {"description": "scikit-image 'cell' with simulated defocus blur and photon noise"},
    }
    return [(stack, meta, "image")]
