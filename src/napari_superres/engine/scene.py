"""Scenes: multiband rasters with a nodata value (GeoTIFF), through a model that knows one or three channels.

Bands (``bands``):

- ``"each"``: every band through the model on its own (a gray model, or a colour model fed the band as gray);
- ``"rgb"`` or three 0-based band indices ``(r, g, b)``: those three bands through a colour (3-channel) model
  together, the other bands each on its own;
- ``"auto"`` (default): as ``"rgb"`` when the file marks its bands as RGB (``photometric == "rgb"``) and the
  model is a colour model, else ``"each"`` -- the bands of a satellite scene are rarely the colours a photo
  model learned, and mixing near-infrared into "red" would invent colour.

Nodata (``nodata``: a value, NaN allowed): nodata pixels are not data, so they must neither reach the model as
values (a -9999 border would ring into its neighbours) nor come back as something else. Each band's nodata
pixels are first filled with the nearest valid pixel of that band (so the model sees the data continue, as at
an image border), and afterwards every output pixel covering an input nodata pixel is set to nodata.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import InputError
from .axes import make_layout, resolve_axes
from .normalize import check_array, check_finite
from .options import UpscaleOptions, as_options

BAND_MODES = ("auto", "each", "rgb")
Bands = Union[str, Tuple[int, int, int]]


def parse_bands(text: str) -> Bands:
    """``"auto"``, ``"each"``, ``"rgb"`` or ``"R,G,B"`` (1-based band numbers) -> the ``bands`` argument."""
    text = str(text).strip().lower()
    if text in BAND_MODES:
        return text
    parts = text.split(",")
    if len(parts) == 3 and all(p.strip().isdigit() and int(p) >= 1 for p in parts):
        picked = tuple(int(p) - 1 for p in parts)
        if len(set(picked)) == 3:
            return picked
    raise InputError(f"bands must be auto, each, rgb or three different band numbers like 4,3,2, not {text!r}")


def nodata_mask(data: np.ndarray, nodata: Optional[float]) -> Optional[np.ndarray]:
    """Where ``data`` is nodata (None when there is no nodata value or no nodata pixel)."""
    if nodata is None:
        return None
    if np.isnan(nodata):
        mask = np.isnan(data) if data.dtype.kind == "f" else np.zeros(data.shape, bool)
    else:
        mask = data == np.asarray(nodata).astype(data.dtype) if _representable(nodata, data.dtype) else None
    return mask if mask is not None and mask.any() else None


def _representable(value: float, dtype) -> bool:
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return True
    info = np.iinfo(dtype)
    return float(value).is_integer() and info.min <= value <= info.max


def fill_nodata(data: np.ndarray, mask: np.ndarray, y_axis: int, x_axis: int) -> np.ndarray:
    """A copy of ``data`` with each masked pixel replaced by the nearest unmasked pixel of its own plane (Y, X);
    a plane with no valid pixel becomes 0."""
    from scipy.ndimage import distance_transform_edt

    moved = np.moveaxis(data, (y_axis, x_axis), (-2, -1))
    mmask = np.moveaxis(mask, (y_axis, x_axis), (-2, -1))
    out = np.array(moved, copy=True)
    for lead in np.ndindex(*moved.shape[:-2]):
        m = mmask[lead]
        if not m.any():
            continue
        if m.all():
            out[lead] = 0
            continue
        iy, ix = distance_transform_edt(m, return_distances=False, return_indices=True)
        out[lead] = moved[lead][iy, ix]
    return np.moveaxis(out, (-2, -1), (y_axis, x_axis))


def upscaled_mask(mask: np.ndarray, factors: Sequence[int]) -> np.ndarray:
    """The input mask on the output grid: each output pixel takes the value of the input pixel it came from."""
    for axis, f in enumerate(factors):
        if f > 1:
            mask = np.repeat(mask, f, axis=axis)
    return mask


def check_scene(data: np.ndarray, nodata: Optional[float]) -> None:
    """``normalize.check_array``, except that NaN is allowed where it is the nodata value."""
    if nodata is None or not np.isnan(nodata) or data.dtype.kind != "f":
        check_array(data)
        return
    check_array(np.zeros((1,) * data.ndim, data.dtype))  # dtype and shape rules
    if 0 in data.shape:
        check_array(data)
    check_finite(data[~np.isnan(data)])


def band_groups(n_bands: int, bands: Bands, model_channels: int, photometric: Optional[str]):
    """``[(band indices, channel_mode)]``: which bands go through the model together (``"joint"``) and which
    each on its own (``"separate"``)."""
    if bands == "auto":
        bands = "rgb" if photometric == "rgb" and model_channels == 3 and n_bands >= 3 else "each"
    if bands == "each":
        return [(tuple(range(n_bands)), "separate")]
    rgb = (0, 1, 2) if bands == "rgb" else tuple(bands)
    if model_channels != 3:
        raise InputError(f"putting bands through together as RGB needs a colour (3-channel) model, not {model_channels}")
    if max(rgb) >= n_bands:
        raise InputError(f"band {max(rgb) + 1} asked for as a colour, but the scene has {n_bands} band(s)")
    rest = tuple(i for i in range(n_bands) if i not in rgb)
    return [(rgb, "joint")] + ([(rest, "separate")] if rest else [])


def upscale_scene(
    data,
    model,
    options: Optional[UpscaleOptions] = None,
    *,
    photometric: Optional[str] = None,
    nodata: Optional[float] = None,
    progress=None,
    cancel=None,
    **settings,
) -> np.ndarray:
    """Upscale a scene (NumPy) in Y and X: bands as ``options.bands`` says, nodata kept (see the module
    docstring). ``options`` (or its fields as keywords): as :func:`engine.api.upscale` takes them."""
    from .api import upscale
    from .predictor import as_srmodel

    options = as_options(options, settings)
    data = np.asarray(data)
    check_scene(data, nodata)
    srm = as_srmodel(model)
    layout = make_layout(data.shape, resolve_axes(options.axes, data.shape))
    bands = options.bands
    options = options.replace(axes=layout.axes, bands="auto")  # the bands are planned here, from now on
    y, x = layout.axes.index("Y"), layout.axes.index("X")
    mask = nodata_mask(data, nodata)
    filled = data if mask is None else fill_nodata(data, mask, y, x)

    chan = layout.channel_axis
    if chan is None:
        out = upscale(filled, srm, options, progress=progress, cancel=cancel)
    else:
        groups = band_groups(data.shape[chan], bands, srm.channels, photometric)
        out = None
        for idx, mode in groups:
            part = upscale(
                np.take(filled, idx, axis=chan), srm, options.replace(channel_mode=mode), progress=progress,
                cancel=cancel,
            )
            if out is None:
                out = np.empty(part.shape[:chan] + (data.shape[chan],) + part.shape[chan + 1 :], part.dtype)
            where = [slice(None)] * out.ndim
            where[chan] = list(idx)
            out[tuple(where)] = part
    if mask is not None:
        factors = [out.shape[i] // data.shape[i] for i in range(data.ndim)]
        out[upscaled_mask(mask, factors)] = np.asarray(nodata).astype(out.dtype)
    return out


def channel_mode_for(shape, axes: str, bands: Bands, model_channels: int, photometric: Optional[str]) -> str:
    """The one ``channel_mode`` that does what ``bands`` asks on the whole array (the out-of-core path runs
    one channel plan per job); InputError when the bands need two (RGB bands plus others)."""
    layout = make_layout(shape, axes)
    if layout.channel_axis is None:
        return "auto"
    n = shape[layout.channel_axis]
    groups = band_groups(n, bands, model_channels, photometric)
    if len(groups) > 1 or groups[0][0] != tuple(range(n)):
        raise InputError(
            "out of core, bands go through either all together as RGB (a 3-band scene) or each on its own; "
            "use --bands each, or upscale in memory (without --chunk)"
        )
    return groups[0][1]
