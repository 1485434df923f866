"""Upscaling along Z: for anisotropic stacks (e.g. 0.5 um in Y/X, 2 um in Z), with a 2D model or linearly.

Method "model" (the idea of CARE's isotropic reconstruction, Weigert et al. 2017/2018): a stack's XZ and YZ
planes look like its XY planes seen with a poorer resolution along Z, so a 2D super-resolution model can
restore them along Z. Our models upscale both axes of a plane by their scale ``s`` and were trained on images
reduced by bicubic interpolation in both axes; so each XZ plane is first reduced by ``s`` along X (bicubic,
the training degradation) to make it equally coarse in both axes, the model upscales it by ``s`` in both,
which restores X and adds Z detail. The same on YZ planes; the two results are averaged (each keeps the true
data along the axis it did not reduce). The factor in Z is the model's scale.

Method "linear": linear interpolation between slices, pixel centres aligned (output slice ``k`` sits at input
position ``(k + 0.5) / f - 0.5``), the baseline the model must beat (``docs/big-data.md`` has the numbers).

Only Z changes: Y and X keep their size (upscale them with ``engine.api.upscale`` afterwards, if wanted).
The values are normalised once for the whole stack (the model's own normalisation), so all planes share
one contrast; the output has the input's dtype (rounded and clipped for integers).
NumPy in, NumPy out; Dask in, Dask out (planes are computed in slabs: all of Z, some rows or columns).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..errors import InputError
from .axes import resolve_axes
from .normalize import Normalizer, check_array, fit_normalizer

METHODS = ("model", "linear")
SLAB = 32  # rows (or columns) of planes per dask block


def z_positions(n: int, factor: int) -> np.ndarray:
    """Input Z position of each output slice (pixel centres aligned), clamped to the stack."""
    k = np.arange(n * factor)
    return np.clip((k + 0.5) / factor - 0.5, 0, n - 1)


def linear_z(vol: np.ndarray, factor: int, axis: int = 0) -> np.ndarray:
    """Linear interpolation along ``axis`` by an integer ``factor`` (float32 out)."""
    v = np.moveaxis(np.asarray(vol, np.float32), axis, 0)
    pos = z_positions(v.shape[0], factor)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, v.shape[0] - 1)
    w = (pos - lo).astype(np.float32).reshape((-1,) + (1,) * (v.ndim - 1))
    return np.moveaxis(v[lo] * (1 - w) + v[hi] * w, 0, axis)


def _resize_axis1(planes: np.ndarray, size: int) -> np.ndarray:
    """Bicubic resize (Pillow, antialiased when reducing) of axis 1 of N x H x W planes to ``size``."""
    from PIL import Image

    n, h, w = planes.shape
    if w == size:
        return planes
    out = np.empty((n, h, size), np.float32)
    for i in range(n):
        img = Image.fromarray(np.ascontiguousarray(planes[i], np.float32))
        out[i] = np.asarray(img.resize((size, h), Image.BICUBIC))
    return out


def _model_planes(planes: np.ndarray, model, factor: int, tile, batch_size) -> np.ndarray:
    """N planes Z x L (normalised float) -> N x fZ x L: reduce L by ``factor``, upscale both by the model."""
    from .api import upscale_numpy

    n, z, length = planes.shape
    small = _resize_axis1(planes, -(-length // factor))
    up = upscale_numpy(small, model, axes="TYX", tile=tile, batch_size=batch_size, normalization="range")
    return _resize_axis1(up, length)


def _xz_slab(vol: np.ndarray, model, factor, tile, batch_size) -> np.ndarray:
    """Z x rows x X (normalised float) -> fZ x rows x X through the XZ planes."""
    planes = np.ascontiguousarray(vol.transpose(1, 0, 2))  # rows x Z x X
    return _model_planes(planes, model, factor, tile, batch_size).transpose(1, 0, 2)


def _yz_slab(vol: np.ndarray, model, factor, tile, batch_size) -> np.ndarray:
    """Z x Y x cols (normalised float) -> fZ x Y x cols through the YZ planes."""
    planes = np.ascontiguousarray(vol.transpose(2, 0, 1))  # cols x Z x Y
    return _model_planes(planes, model, factor, tile, batch_size).transpose(1, 2, 0)


def check_z_request(data, axes, model, factor, method):
    """``(axes, factor)`` of a valid request to upscale Z, else the :class:`InputError` that says why not."""
    if method not in METHODS:
        raise InputError(f"Unknown Z method {method!r}; use one of {', '.join(METHODS)}.")
    ax = resolve_axes(axes, data.shape)
    if "Z" not in ax:
        raise InputError(f"Upscaling Z needs a Z axis; the axes are {ax} (give them, e.g. axes='ZYX').")
    if any(a in "CS" for a in ax) and ax.index("C" if "C" in ax else "S") > ax.index("X"):
        raise InputError("Upscaling Z of colour (RGB) stacks is not supported; use a channel-first layout (CZYX).")
    scale = None if model is None else int(model.scale)
    factor = int(factor or scale or 0)
    if factor < 1:
        raise InputError("Give the Z factor (an integer >= 1).")
    if method == "model" and factor != scale:
        raise InputError(
            f"The model upscales by {scale}; upscaling Z by {factor} with it is not possible (use z factor {scale}, "
            "or the linear method)."
        )
    return ax, factor


def upscale_z(
    data,
    model=None,
    *,
    axes: Optional[str] = None,
    factor: Optional[int] = None,
    method: str = "model",
    normalization=None,
    tile: Optional[int] = None,
    batch_size: Optional[int] = None,
):
    """Upscale ``data`` along Z by ``factor`` (default: the model's scale) with ``method`` ("model" or
    "linear"); Y, X and other axes are unchanged. Returns the input's dtype (and type: NumPy or Dask)."""
    from .api import is_dask
    from .distributed import ModelHandle
    from .predictor import as_srmodel

    if isinstance(model, ModelHandle):
        model = model.get()
    srm = None if (method == "linear" and model is None) else as_srmodel(model)
    check_array(data)
    ax, factor = check_z_request(data, axes, srm, factor, method)
    dask_in = is_dask(data)
    # work in Z, Y, X order with every other axis in front
    lead = [i for i, a in enumerate(ax) if a not in "ZYX"]
    perm = lead + [ax.index("Z"), ax.index("Y"), ax.index("X")]
    vol = data.transpose(tuple(perm))
    spec = (srm.normalization if srm is not None else "range") if normalization is None else normalization
    if method == "linear" and normalization is None:
        spec = "range"  # interpolation needs no normalisation; range keeps values exact
    if dask_in:
        from .lazy import fit_normalizer_lazy

        chan = next((k for k, i in enumerate(lead) if ax[i] in "CS"), None)
        norm = fit_normalizer_lazy(vol, "".join(ax[i] for i in perm), spec)
        out = _upscale_z_dask(vol, srm, factor, method, norm, tile, batch_size, chan)
    else:
        vol = np.asarray(vol)
        chan = next((k for k, i in enumerate(lead) if ax[i] in "CS"), None)
        norm = fit_normalizer(vol, spec, channel_axis=chan)
        out = _upscale_z_numpy(vol, srm, factor, method, norm, tile, batch_size, chan)
    return out.transpose(tuple(int(i) for i in np.argsort(perm)))


def _apply(norm: Normalizer, vol, chan, inverse=False, dtype=None):
    """The normaliser on a (lead..., Z, Y, X) array whose channel axis (if any) is ``chan``."""
    if chan is None or len(norm.offset) == 1:
        return norm.inverse(vol, dtype) if inverse else norm.forward(vol)
    moved = np.moveaxis(vol, chan, -1)
    res = norm.inverse(moved, dtype) if inverse else norm.forward(moved)
    return np.moveaxis(res, -1, chan)


def _one_volume(v, srm, factor, method, tile, batch_size):
    """Z x Y x X normalised float -> fZ x Y x X float."""
    if method == "linear":
        return linear_z(v, factor)
    xz = _xz_slab(v, srm, factor, tile, batch_size)
    yz = _yz_slab(v, srm, factor, tile, batch_size)
    return (xz + yz) * np.float32(0.5)


def _upscale_z_numpy(vol, srm, factor, method, norm, tile, batch_size, chan):
    x = _apply(norm, vol, chan)
    lead_shape = x.shape[:-3]
    flat = x.reshape((-1,) + x.shape[-3:])
    out = np.stack([_one_volume(v, srm, factor, method, tile, batch_size) for v in flat])
    out = out.reshape(lead_shape + out.shape[-3:])
    return _apply(norm, out, chan, inverse=True, dtype=vol.dtype)


def _upscale_z_dask(vol, srm, factor, method, norm, tile, batch_size, chan):
    from .distributed import ModelHandle

    handle = None if srm is None else (srm if isinstance(srm, ModelHandle) else ModelHandle(srm))
    nl = vol.ndim - 3
    z = vol.shape[-3]
    whole_lead = {i: 1 for i in range(nl)}
    if chan is not None:
        whole_lead[chan] = -1
    if chan is not None:
        vol = vol.rechunk({chan: -1})  # one normalisation per channel: blocks hold every channel
    fwd = vol.map_blocks(_forward_block, norm=norm, chan=chan, dtype=np.float32)
    out_chunks = lambda a: a.chunks[:nl] + ((z * factor,),) + a.chunks[nl + 1 :]  # noqa: E731
    if method == "linear":
        a = fwd.rechunk({**whole_lead, nl: -1})
        up = a.map_blocks(_linear_block, factor=factor, chunks=out_chunks(a), dtype=np.float32)
    else:
        a = fwd.rechunk({**whole_lead, nl: -1, nl + 1: SLAB, nl + 2: -1})
        b = fwd.rechunk({**whole_lead, nl: -1, nl + 1: -1, nl + 2: SLAB})
        kw = dict(model=handle, factor=factor, tile=tile, batch_size=batch_size, dtype=np.float32)
        xz = a.map_blocks(_plane_block, which="xz", chunks=out_chunks(a), **kw)
        yz = b.map_blocks(_plane_block, which="yz", chunks=out_chunks(b), **kw)
        up = (xz.rechunk(yz.chunks) + yz) * np.float32(0.5)
    return up.map_blocks(_inverse_block, norm=norm, chan=chan, dtype=vol.dtype)


def _forward_block(block, norm, chan):
    return _apply(norm, block, chan)


def _inverse_block(block, norm, chan):
    return _apply(norm, block, chan, inverse=True, dtype=norm.dtype)


def _linear_block(block, factor):
    return linear_z(block, factor, axis=block.ndim - 3)


def _plane_block(block, model, factor, tile, batch_size, which):
    srm = model.get()
    lead = block.shape[:-3]
    flat = block.reshape((-1,) + block.shape[-3:])
    fn = _xz_slab if which == "xz" else _yz_slab
    out = np.stack([fn(v, srm, factor, tile, batch_size) for v in flat])
    return out.reshape(lead + out.shape[-3:])
