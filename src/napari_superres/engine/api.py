"""``upscale``: any image or stack in, the same dtype out, upscaled in Y and X by a Keras SR model.

The steps, each in its own module: validate the values (``normalize.check_array``), map the axes to
N x H x W x C batches (``axes``), normalise to float (``normalize``), match the data's channels to the
model's (``axes.plan_channels``), predict tile by tile (``predictor.upscale_batches``, the predictor the
Dask and out-of-core paths share), then undo each step in reverse order. The settings come in one
``options.UpscaleOptions``, built from the keywords here at the edge.
"""

from __future__ import annotations

import logging
import sys
from typing import Optional, Sequence

import numpy as np

from ..errors import ModelError
from .axes import from_batches, make_layout, output_shape, plan_channels, to_batches
from .normalize import check_array, fit_normalizer
from .options import NO_CONTROL, RunControl, UpscaleOptions, as_options
from .predictor import as_srmodel, tile_plan, upscale_batches

__all__ = ["upscale", "upscale_numpy", "output_shape", "output_nbytes", "is_dask"]

log = logging.getLogger("napari_superres")


def is_dask(data) -> bool:
    """True for a dask array (without importing dask when the caller never did)."""
    da = sys.modules.get("dask.array")
    return da is not None and isinstance(data, da.Array)


def output_nbytes(shape: Sequence[int], dtype, scale: int, axes: Optional[str] = None) -> int:
    """Bytes of the upscaled array (what the caller must have free before running)."""
    return int(np.prod(output_shape(shape, scale, axes), dtype=np.int64)) * np.dtype(dtype).itemsize


def upscale(data, model, options: Optional[UpscaleOptions] = None, *, progress=None, cancel=None, **settings):
    """Upscale ``data`` in Y and X with ``model``; return an array of the input's dtype and axes.

    - ``model``: an SRModel, a ``keras.Model``, a shipped/user model name or a ``.keras`` path (anything
      ``models.loading.load_model`` accepts).
    - ``options``: an :class:`~napari_superres.engine.options.UpscaleOptions`; or its fields as keywords
      (``settings``, applied on top of ``options``):

      - ``axes``: napari-order axes string (``YX``, ``YXC``, ``CYX``, ``ZYX``, ``TZYX``...); inferred when
        None (see ``axes.infer_axes``). Channels follow the policy in ``engine/axes.py``.
      - ``tile``: core tile size in input pixels (None: the whole image when it fits one call, else windows
        of one call each, cut so that the least context is computed twice; 0: the whole image); ``overlap``:
        context pixels per tile side (None: the model's own ``overlap``).
      - ``tta``: x8 self-ensemble (8 times slower). ``batch_size``: windows per model call (None: one call's
        worth of pixels: 512x512 for EDSR-x2, more for lighter models; see ``engine/predictor.py``).
      - ``normalization``: None (the model's), ``"range"``, ``"percentile"``, a dict, or a fitted
        ``normalize.Normalizer`` (to share statistics between blocks of a larger stack).
      - ``channel_mode``: ``"auto"``, ``"joint"`` or ``"separate"`` (see ``axes.plan_channels``).
      - ``precision``: ``"auto"`` (default, or ``NAPARI_SUPERRES_PRECISION``): the fastest arithmetic that
        keeps the output within one grey level of float32 on this machine (see ``engine/precision.py``);
        ``"float32"``, ``"bfloat16"`` or ``"float16"`` force one. The choice and its reason are logged on
        the ``napari_superres`` logger.
    - ``progress(done, total)`` after each batch; ``cancel()`` before each batch (raises ``Cancelled``).

    NumPy in, NumPy out; Dask in, Dask out (lazy, block by block).
    """
    options = as_options(options, settings).xy_only()
    control = RunControl(progress, cancel)
    if is_dask(data):
        from .distributed import ModelHandle
        from .lazy import upscale_dask

        if not isinstance(model, ModelHandle):  # a handle is already resolved: it runs as it is
            model = in_requested_precision(as_srmodel(model), options.precision)
        return upscale_dask(data, model, options, control)
    return upscale_numpy(data, model, options, control)


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
    data, model, options: Optional[UpscaleOptions] = None, control: RunControl = NO_CONTROL, **settings
) -> np.ndarray:
    """:func:`upscale` for in-memory data (anything ``numpy.asarray`` takes)."""
    options = as_options(options, settings).xy_only()
    data = np.asarray(data)
    check_array(data)
    layout = make_layout(data.shape, options.axes)
    srm = in_requested_precision(as_srmodel(model), options.precision)
    channels = plan_channels(layout, srm.channels, options.channel_mode)
    x = to_batches(data, layout)
    norm = fit_normalizer(x, srm.normalization if options.normalization is None else options.normalization, channel_axis=-1)
    tiles = tile_plan(layout.height, layout.width, srm, options)
    y = upscale_batches(x, srm, channels, norm, tiles, tta=options.tta, dtype=data.dtype, control=control)
    return from_batches(y, layout, tiles.scale)
