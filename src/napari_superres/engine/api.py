"""``upscale``: any image or stack in, the same dtype out, upscaled in Y and X by a Keras SR model.

The steps, each in its own module: validate the values (``normalize.check_array``), map the axes to
N x H x W x C batches (``axes``), normalise to float (``normalize``), match the data's channels to the
model's (``axes.plan_channels``), predict tile by tile (``tiling``, optionally through ``tta``), then undo
each step in reverse order.
"""

from __future__ import annotations

import logging
import sys
from typing import Callable, Optional, Sequence, Tuple

import numpy as np

from ..errors import ModelError
from .axes import fold_channels, from_batches, make_layout, output_shape, plan_channels, to_batches, unfold_channels
from .normalize import check_array, fit_normalizer
from .tiling import padded_length, plan_axis, predict_tiled
from .tta import tta_predict

__all__ = ["upscale", "upscale_numpy", "output_shape", "upscaled_shape", "output_nbytes", "default_tile", "is_dask"]

# Images up to this many pixels per slice go through the model whole; larger ones in tiles of DEFAULT_TILE.
WHOLE_IMAGE_PIXELS = 512 * 512
DEFAULT_TILE = 256
# A batch holds about this many low-resolution pixels (all windows of a batch together), at most MAX_BATCH.
BATCH_PIXELS = 512 * 512
MAX_BATCH = 16

log = logging.getLogger("napari_superres")


def is_dask(data) -> bool:
    """True for a dask array (without importing dask when the caller never did)."""
    da = sys.modules.get("dask.array")
    return da is not None and isinstance(data, da.Array)


def default_tile(height: int, width: int) -> int:
    """The whole image when it is small, else DEFAULT_TILE."""
    if height * width <= WHOLE_IMAGE_PIXELS:
        return max(height, width)
    return DEFAULT_TILE


def output_nbytes(shape: Sequence[int], dtype, scale: int, axes: Optional[str] = None) -> int:
    """Bytes of the upscaled array (what the caller must have free before running)."""
    return int(np.prod(output_shape(shape, scale, axes), dtype=np.int64)) * np.dtype(dtype).itemsize


def _as_srmodel(model):
    """An SRModel as is (anything with predict, scale and channels); everything else through load_model."""
    if all(hasattr(model, a) for a in ("predict", "scale", "channels", "overlap", "normalization")):
        return model
    from ..models.loading import load_model

    return load_model(model)


def _replicated(predict: Callable) -> Callable:
    """Feed one channel as three equal channels; average the three outputs back to one."""

    def run(batch: np.ndarray) -> np.ndarray:
        out = np.asarray(predict(np.repeat(batch, 3, axis=-1)), np.float32)
        return out.mean(axis=-1, keepdims=True)

    return run


def _bicubic(x: np.ndarray, scale: int) -> np.ndarray:
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


def upscale(
    data,
    model,
    *,
    axes: Optional[str] = None,
    tile: Optional[int] = None,
    overlap: Optional[int] = None,
    tta: bool = False,
    batch_size: Optional[int] = None,
    normalization=None,
    channel_mode: str = "auto",
    progress: Optional[Callable[[int, int], None]] = None,
    cancel: Optional[Callable[[], bool]] = None,
    precision: Optional[str] = None,
):
    """Upscale ``data`` in Y and X with ``model``; return an array of the input's dtype and axes.

    - ``model``: an SRModel, a ``keras.Model``, a shipped/user model name or a ``.keras`` path (anything
      ``models.loading.load_model`` accepts).
    - ``axes``: napari-order axes string (``YX``, ``YXC``, ``CYX``, ``ZYX``, ``TZYX``...); inferred when None
      (see ``axes.infer_axes``). Channels follow the policy in ``engine/axes.py``.
    - ``tile``: core tile size in input pixels (None: whole image up to 512x512 pixels, else 256; 0: the
      whole image);
      ``overlap``: context pixels per tile side (None: the model's own ``overlap``).
    - ``tta``: x8 self-ensemble (8 times slower). ``batch_size``: windows per model call (None: about
      512x512 input pixels per call).
    - ``normalization``: None (the model's), ``"range"``, ``"percentile"``, a dict, or a fitted
      ``normalize.Normalizer`` (to share statistics between blocks of a larger stack).
    - ``progress(done, total)`` after each batch; ``cancel()`` before each batch (raises ``Cancelled``).
    - ``precision``: ``"auto"`` (default, or ``NAPARI_SUPERRES_PRECISION``): the fastest arithmetic that keeps
      the output within one grey level of float32 on this machine (see ``engine/precision.py``);
      ``"float32"``, ``"bfloat16"`` or ``"float16"`` force one. The choice and its reason are logged on the
      ``napari_superres`` logger.

    NumPy in, NumPy out; Dask in, Dask out (lazy, block by block).
    """
    if is_dask(data):
        from .distributed import ModelHandle
        from .lazy import upscale_dask

        if not isinstance(model, ModelHandle):  # a handle is already resolved: it runs as it is
            model = with_precision(_as_srmodel(model), precision)
        return upscale_dask(
            data, model, axes=axes, tile=tile, overlap=overlap, tta=tta, batch_size=batch_size,
            normalization=normalization, channel_mode=channel_mode, progress=progress, cancel=cancel,
        )
    return upscale_numpy(
        data, model, axes=axes, tile=tile, overlap=overlap, tta=tta, batch_size=batch_size,
        normalization=normalization, channel_mode=channel_mode, progress=progress, cancel=cancel,
        precision=precision,
    )


def with_precision(srm, precision: Optional[str]):
    """``srm`` in the precision chosen for it (see ``engine/precision.py``); the choice goes to the log."""
    from .precision import requested_precision, resolve

    if not hasattr(srm, "variants"):  # a duck-typed model: it computes as it is
        if requested_precision(precision) not in ("auto", "float32"):
            raise ModelError(f"{type(srm).__name__} cannot be rebuilt in {precision}; pass a Keras model")
        return srm
    srm, choice = resolve(srm, precision)
    log.info("%s: %s", srm.name, choice)
    return srm


def upscale_numpy(
    data,
    model,
    *,
    axes: Optional[str] = None,
    tile: Optional[int] = None,
    overlap: Optional[int] = None,
    tta: bool = False,
    batch_size: Optional[int] = None,
    normalization=None,
    channel_mode: str = "auto",
    progress: Optional[Callable[[int, int], None]] = None,
    cancel: Optional[Callable[[], bool]] = None,
    precision: Optional[str] = None,
) -> np.ndarray:
    """:func:`upscale` for in-memory data (anything ``numpy.asarray`` takes)."""
    data = np.asarray(data)
    check_array(data)
    layout = make_layout(data.shape, axes)

    srm = with_precision(_as_srmodel(model), precision)
    scale = int(srm.scale)
    plan = plan_channels(layout, srm.channels, channel_mode)

    x = to_batches(data, layout)
    norm = fit_normalizer(x, srm.normalization if normalization is None else normalization, channel_axis=-1)
    fed, alpha = fold_channels(norm.forward(x), plan)

    core, ov, multiple, fixed, batch_size = tiling_settings(layout.height, layout.width, srm, tile, overlap, batch_size)
    predict = model_predict(srm, plan, tta)
    y = predict_tiled(
        predict, fed, scale=scale, tile=core, overlap=ov, multiple=multiple, batch_size=batch_size,
        window=fixed, progress=progress, cancel=cancel,
    )
    if not np.isfinite(y).all():
        raise ModelError(f"The model produced {int((~np.isfinite(y)).sum())} NaN/inf values; it cannot be used on this image.")
    y = unfold_channels(y, plan, x.shape[0], None if alpha is None else _bicubic(alpha, scale))
    return from_batches(norm.inverse(y, data.dtype, overwrite=True), layout, scale)


def upscaled_shape(shape: Sequence[int], scale: int, axes: Optional[str] = None) -> Tuple[int, ...]:
    """Alias of :func:`axes.output_shape`."""
    return output_shape(shape, scale, axes)
