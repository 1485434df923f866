"""The model side of an upscale, shared by the in-memory (``api``) and lazy (``lazy``) paths: the model
resolved, the tiling settings for a slice size, and the batch function tiles go through. Both paths take these
from here, so they cut the same windows and run the same arithmetic.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .tiling import padded_length, plan_axis
from .tta import tta_predict

__all__ = ["as_srmodel", "default_tile", "tiling_settings", "model_predict", "bicubic_alpha"]

# Images up to this many pixels per slice go through the model whole; larger ones in tiles of DEFAULT_TILE.
WHOLE_IMAGE_PIXELS = 512 * 512
DEFAULT_TILE = 256
# A batch holds about this many low-resolution pixels (all windows of a batch together), at most MAX_BATCH.
BATCH_PIXELS = 512 * 512
MAX_BATCH = 16


def as_srmodel(model):
    """An SRModel as is (anything with predict, scale and channels); everything else through load_model."""
    if all(hasattr(model, a) for a in ("predict", "scale", "channels", "overlap", "normalization")):
        return model
    from ..models.loading import load_model

    return load_model(model)


def default_tile(height: int, width: int) -> int:
    """The whole image when it is small, else DEFAULT_TILE."""
    if height * width <= WHOLE_IMAGE_PIXELS:
        return max(height, width)
    return DEFAULT_TILE


def _replicated(predict: Callable) -> Callable:
    """Feed one channel as three equal channels; average the three outputs back to one."""

    def run(batch: np.ndarray) -> np.ndarray:
        out = np.asarray(predict(np.repeat(batch, 3, axis=-1)), np.float32)
        return out.mean(axis=-1, keepdims=True)

    return run


def bicubic_alpha(x: np.ndarray, scale: int) -> np.ndarray:
    """N x H x W x 1 float -> N x H*s x W*s x 1 by bicubic interpolation (pixel centres aligned, as Pillow),
    clipped to the input's range (an alpha channel must not overshoot)."""
    from PIL import Image

    n, h, w, _ = x.shape
    out = np.empty((n, h * scale, w * scale, 1), np.float32)
    for i in range(n):
        img = Image.fromarray(np.ascontiguousarray(x[i, :, :, 0], dtype=np.float32))
        out[i, :, :, 0] = np.asarray(img.resize((w * scale, h * scale), Image.BICUBIC))
    return np.clip(out, x.min(), x.max(), out=out)


def _window_pixels(h: int, w: int, tile: int, overlap: int, multiple: int, fixed) -> int:
    hp = padded_length(h, multiple, fixed[0] if fixed else 1)
    wp = padded_length(w, multiple, fixed[1] if fixed else 1)
    wh, _ = plan_axis(hp, tile, overlap, multiple, fixed[0] if fixed else None)
    ww, _ = plan_axis(wp, tile, overlap, multiple, fixed[1] if fixed else None)
    return wh * ww


def tiling_settings(h: int, w: int, srm, tile=None, overlap=None, batch_size=None):
    """``(core tile, overlap, multiple, fixed window or None, batch size)`` for slices of h x w pixels: what
    ``predict_tiled`` gets. Shared with the lazy path, which must cut the same windows."""
    fixed = tuple(srm.fixed_size) if getattr(srm, "fixed_size", None) else None
    multiple = max(1, int(getattr(srm, "multiple", 1) or 1))
    ov = int(srm.overlap if overlap is None else overlap)
    if fixed is not None:
        core = max(fixed) - 2 * ov  # only used as an upper bound; the window is the fixed size
    else:
        core = default_tile(h, w) if tile is None else int(tile)
        if core <= 0:  # 0: no tiling, one window covers the image
            core = max(h, w)
    if batch_size is None:
        batch_size = max(1, min(MAX_BATCH, BATCH_PIXELS // _window_pixels(h, w, core, ov, multiple, fixed)))
    return core, ov, multiple, fixed, int(batch_size)


def model_predict(srm, plan, tta: bool = False) -> Callable:
    """The batch function tiles go through: the model's predict, replicated for gray data on a 3-channel
    model, wrapped in the self-ensemble when ``tta``."""
    fixed = tuple(srm.fixed_size) if getattr(srm, "fixed_size", None) else None
    predict = srm.predict
    if plan.replicate:
        predict = _replicated(predict)
    if tta:
        predict = tta_predict(predict, rotations=fixed is None or fixed[0] == fixed[1])
    return predict
