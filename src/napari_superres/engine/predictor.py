"""The model side of an upscale, shared by the in-memory (``api``), Dask (``lazy``) and out-of-core
(``chunked``) paths: the model resolved, the window plan for a slice size, the batch function tiles go
through, and :func:`upscale_batches`, the one predictor all three run. Dask and out-of-core blocks thus
equal the in-memory result by construction (up to float32 rounding).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

import numpy as np

from ..errors import ModelError
from .axes import ChannelPlan, fold_channels, unfold_channels
from .normalize import Normalizer
from .options import NO_CONTROL, RunControl, UpscaleOptions
from .tiling import TilePlan, cheapest_tile, plan_tiles, run_tiles
from .tta import tta_predict

__all__ = ["as_srmodel", "pixels_per_call", "tile_plan", "upscale_batches", "model_predict",
           "bicubic_alpha"]

# One model call works on about CALL_PIXELS low-resolution pixels (a whole slice, or windows of a larger one,
# batched up to MAX_BATCH); for a model that holds REFERENCE_FLOATS values per pixel at its widest
# step (EDSR at x2) that is 0.54 GB of them. A lighter model gets proportionally more pixels per call, up to
# the same memory: fewer tiles, less overlap computed twice. A heavier one keeps CALL_PIXELS.
CALL_PIXELS = 512 * 512
REFERENCE_FLOATS = 512
MAX_BATCH = 16


def as_srmodel(model):
    """An SRModel as is (anything with predict, scale and channels); everything else through load_model."""
    if all(hasattr(model, a) for a in ("predict", "scale", "channels", "overlap", "normalization")):
        return model
    from ..models.loading import load_model

    return load_model(model)


def pixels_per_call(srm) -> int:
    """The low-resolution pixels one call of ``srm`` may take: CALL_PIXELS, more for a lighter model than
    the reference (a model whose footprint is unknown gets CALL_PIXELS)."""
    floats = getattr(srm, "working_floats", None)
    return int(CALL_PIXELS * max(1.0, REFERENCE_FLOATS / floats)) if floats else CALL_PIXELS


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


def tile_plan(height: int, width: int, srm, options: UpscaleOptions) -> TilePlan:
    """The windows for slices of ``height`` x ``width`` pixels: the model's window constraints (fixed size,
    multiple) and overlap, the options' tile, overlap and batch size. The in-memory, Dask and out-of-core
    paths all take their plan from here, so they cut the same windows in the same batches."""
    fixed = tuple(srm.fixed_size) if getattr(srm, "fixed_size", None) else None
    overlap = int(srm.overlap if options.overlap is None else options.overlap)
    multiple = max(1, int(getattr(srm, "multiple", 1) or 1))
    call_pixels = pixels_per_call(srm)
    if fixed is not None:
        core = max(fixed) - 2 * overlap  # only used as an upper bound; the window is the fixed size
    elif options.tile is None:  # the whole image if it fits one call, else the windows that compute least
        core = cheapest_tile(height, width, call_pixels, overlap, multiple)
    else:
        core = int(options.tile)
        if core <= 0:  # 0: no tiling, one window covers the image
            core = max(height, width)
    plan = plan_tiles(
        height, width, scale=int(srm.scale), tile=core, overlap=overlap,
        multiple=multiple, batch_size=options.batch_size or 1, window=fixed,
    )
    if options.batch_size is None:
        per_call = max(1, min(MAX_BATCH, call_pixels // (plan.window[0] * plan.window[1])))
        plan = replace(plan, batch_size=per_call)
    return plan


def upscale_batches(
    x: np.ndarray,
    srm,
    channels: ChannelPlan,
    norm: Normalizer,
    tiles: TilePlan,
    *,
    tta: bool,
    dtype,
    control: RunControl = NO_CONTROL,
    **region,
) -> np.ndarray:
    """The model's part of every upscale: N x h x w x C batches (the data's values) in, N x h*s x w*s x C
    of ``dtype`` out. Normalises, folds the channels into what the model takes, predicts tile by tile
    (``tiling.run_tiles``, ``region`` as it takes it: a block of a larger image), refuses NaN/inf output,
    unfolds the channels and maps the values back. The in-memory, Dask and out-of-core paths all run this,
    so they compute the same numbers."""
    fed, alpha = fold_channels(norm.forward(x), channels)
    predict = model_predict(srm, channels, tta)
    cancel = control.cancelled if control.cancel is not None else None
    if not channels.separate and alpha is None:  # the model's channels are the data's: map back tile by tile

        def finish(values):
            refuse_non_finite(values)
            return norm.inverse(values, dtype, overwrite=values.flags.writeable)

        return run_tiles(predict, fed, tiles, progress=control.progress, cancel=cancel, finish=finish, **region)
    y = run_tiles(predict, fed, tiles, progress=control.progress, cancel=cancel, **region)
    refuse_non_finite(y)
    alpha_up = None if alpha is None else bicubic_alpha(alpha, tiles.scale)
    y = unfold_channels(y, channels, x.shape[0], alpha_up)
    return norm.inverse(y, dtype, overwrite=True)


def refuse_non_finite(values: np.ndarray) -> None:
    """ModelError when the model's output holds NaN or inf (a model that diverged, or an input far outside
    what it was trained on): such values have no grey level to map back to."""
    if np.isfinite(np.add.reduce(values, axis=None)):  # one pass, no mask; NaN and inf carry into the sum
        return
    if not np.isfinite(values).all():  # the sum may also overflow: look at every value
        raise ModelError("The model produced NaN/inf values (no grey level to map back to); it cannot be used on "
                         "this image.")


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
