"""``upscale``: any image or stack in, the same dtype out, upscaled in Y and X by a Keras SR model.

The steps, each in its own module: validate the values (``normalize.check_array``), map the axes to
N x H x W x C batches (``axes``), normalise to float (``normalize``), match the data's channels to the
model's (``axes.plan_channels``), predict tile by tile (``tiling``, optionally through ``tta``), then undo
each step in reverse order.
"""

from __future__ import annotations

import logging
import sys
from typing import Callable, Optional, Sequence

import numpy as np

from ..errors import ModelError
from .axes import fold_channels, from_batches, make_layout, output_shape, plan_channels, to_batches, unfold_channels
from .normalize import check_array, fit_normalizer
from .predictor import as_srmodel, bicubic_alpha, model_predict, tiling_settings
from .tiling import predict_tiled

__all__ = ["upscale", "upscale_numpy", "output_shape", "output_nbytes", "is_dask"]

log = logging.getLogger("napari_superres")


def is_dask(data) -> bool:
    """True for a dask array (without importing dask when the caller never did)."""
    da = sys.modules.get("dask.array")
    return da is not None and isinstance(data, da.Array)


def output_nbytes(shape: Sequence[int], dtype, scale: int, axes: Optional[str] = None) -> int:
    """Bytes of the upscaled array (what the caller must have free before running)."""
    return int(np.prod(output_shape(shape, scale, axes), dtype=np.int64)) * np.dtype(dtype).itemsize


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
            model = in_requested_precision(as_srmodel(model), precision)
        return upscale_dask(
            data, model, axes=axes, tile=tile, overlap=overlap, tta=tta, batch_size=batch_size,
            normalization=normalization, channel_mode=channel_mode, progress=progress, cancel=cancel,
        )
    return upscale_numpy(
        data, model, axes=axes, tile=tile, overlap=overlap, tta=tta, batch_size=batch_size,
        normalization=normalization, channel_mode=channel_mode, progress=progress, cancel=cancel,
        precision=precision,
    )


def in_requested_precision(srm, precision: Optional[str]):
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

    srm = in_requested_precision(as_srmodel(model), precision)
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
    y = unfold_channels(y, plan, x.shape[0], None if alpha is None else bicubic_alpha(alpha, scale))
    return from_batches(norm.inverse(y, data.dtype, overwrite=True), layout, scale)
