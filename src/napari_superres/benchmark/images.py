"""The bench's inputs: the quality set (held-out corpus photos, a folder, or scikit-image's photos) and the fixed
crop of a real photo that the speed, options, tiling and peers sections run on."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import InputError
from .config import CORPUS, HELD_OUT, SKIMAGE_PHOTOS, SPEED_PHOTO, BenchConfig, log


def _skimage_photo(name: str) -> np.ndarray:
    from skimage import data

    return np.asarray(getattr(data, name)())


def as_rgb8(img: np.ndarray, name: str) -> Optional[np.ndarray]:
    """uint8 RGB (alpha dropped) or uint8 gray; None for anything else (the metric convention is 8-bit)."""
    if img.dtype != np.uint8:
        log(f"skipping {name}: quality is measured on 8-bit photos, this one is {img.dtype}")
        return None
    if img.ndim == 3 and img.shape[-1] == 4:
        img = img[..., :3]
    if img.ndim == 2 or (img.ndim == 3 and img.shape[-1] == 3):
        return img
    log(f"skipping {name}: not a gray or RGB image (shape {img.shape})")
    return None


def _centre_crop(img: np.ndarray, side: Optional[int]) -> np.ndarray:
    if not side:
        return img
    h, w = img.shape[:2]
    y, x = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return img[y : y + side, x : x + side]


def quality_images(config: BenchConfig) -> tuple[str, list]:
    """(description of the set, [(name, uint8 HR image)]) for the quality section."""
    if config.quality_dir is not None and str(config.quality_dir) != "skimage":
        from ..io.images import list_images, read_image

        folder = Path(config.quality_dir)
        if not folder.is_dir():
            raise InputError(f"quality folder not found: {folder}")
        images = []
        for path in list_images(folder):
            img = as_rgb8(read_image(path)[0], path.name)
            if img is not None:
                images.append((path.name, _centre_crop(img, config.quality_crop)))
        if not images:
            raise InputError(f"no 8-bit gray or RGB image in {folder}")
        label = f"{len(images)} images of {folder}"
    elif config.quality_dir is None and all((CORPUS / n).is_file() for n in HELD_OUT) and not config.quick:
        from PIL import Image

        images = [(n, _centre_crop(np.asarray(Image.open(CORPUS / n).convert("RGB")), config.quality_crop))
                  for n in HELD_OUT]
        label = f"{len(images)} held-out corpus photos (whole images, never seen in training)"
    else:
        images = [(n, _centre_crop(_skimage_photo(n), config.quality_crop)) for n in SKIMAGE_PHOTOS]
        crop = f", centre {config.quality_crop}px crops" if config.quality_crop else ""
        label = f"{len(images)} scikit-image photos ({', '.join(SKIMAGE_PHOTOS)}{crop})"
    return label, images


def photo_crop(side: int) -> np.ndarray:
    """A side x side uint8 RGB crop of a real photo (the held-out wood texture of the corpus if present, else
    scikit-image's retina or astronaut, reflected if smaller): the fixed input of the speed and tiling sections."""
    img = None
    if (CORPUS / SPEED_PHOTO).is_file():
        from PIL import Image

        img = np.asarray(Image.open(CORPUS / SPEED_PHOTO).convert("RGB"))
    if img is None or min(img.shape[:2]) < side:
        img = _skimage_photo("retina" if side > 512 else "astronaut")
    if min(img.shape[:2]) < side:
        reps = -(-side // min(img.shape[:2]))
        img = np.pad(img, ((0, reps * img.shape[0]), (0, reps * img.shape[1]), (0, 0)), mode="reflect")
    return np.ascontiguousarray(_centre_crop(img, side)[:side, :side])


def speed_input(srm, size: int):
    """(HR crop, float32 NHWC LR batch) for a model: a real photo crop, LR by the benchmark degradation."""
    from ..training.metrics import bicubic_downscale, rgb_to_y

    hr = photo_crop(size * srm.scale)
    lr = bicubic_downscale(hr, srm.scale)
    x = lr.astype(np.float32) / 255.0
    if srm.channels == 1:
        x = (np.rint(rgb_to_y(lr)) / 255.0).astype(np.float32)[..., None]
    return hr, x[None]
