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
    """A fluorescence-like focal series of tissue nuclei: the hematoxylin stain of scikit-image's
    immunohistochemistry image at half resolution, 12 Z slices (2 um apart, 0.5 um pixels) whose defocus blur
    grows away from the middle, with photon noise. ZYX, uint8, 12 x 256 x 256."""
    from skimage import color, data
    from skimage.filters import gaussian

    stain = color.rgb2hed(data.immunohistochemistry())[..., 0]
    low, high = np.percentile(stain, (0.5, 99.8))
    stain = np.clip((stain - low) / (high - low), 0, 1)
    nuclei = _bicubic_downscale((stain * 255).round().astype(np.uint8), 2).astype(np.float32) / 255.0
    rng = np.random.default_rng(0)
    planes = []
    for z in range(12):
        defocus = 0.7 * abs(z - 5.5)
        plane = 0.04 + 0.9 * gaussian(nuclei, sigma=defocus)
        plane = rng.poisson(plane * 1000.0) / 1000.0  # photon noise, 1000 photons at full scale
        planes.append(np.clip(plane * 255.0, 0, 255))
    stack = np.stack(planes).round().astype(np.uint8)
    meta = {
        "name": "nuclei focal stack (ZYX)",
        "scale": (2.0, 0.5, 0.5),
        "units": ("um", "um", "um"),
        "colormap": "cyan",
        "blending": "additive",
        "metadata": {
            "description": "hematoxylin stain of scikit-image's immunohistochemistry image, simulated defocus and "
            "photon noise"
        },
    }
    return [(stack, meta, "image")]
