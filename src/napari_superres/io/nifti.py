"""NIfTI-1/2 volumes (``.nii``, ``.nii.gz``) with nibabel (the ``medical`` extra).

Arrays are in napari order: the file's voxel axes ``(i, j, k[, t])`` become ``(Z, Y, X)`` reversed, i.e. axes
``"ZYX"`` (``"TZYX"`` for a time series, ``"YX"`` for a single slice), so the (i, j) plane is the plane a 2D
model upscales. The values are the stored ones (the file's dtype); a ``scl_slope``/``scl_inter`` scaling is kept
in the header, not applied, so the output has the input's dtype and the same scaling.

``meta["affine"]`` maps voxel indices ``(i, j, k)`` to scanner millimetres (RAS), ``meta["nifti_header"]`` is
the header itself, written back with the pixel sizes and the qform/sform updated (``io.placement``).
"""

from __future__ import annotations

import gzip
import io as _bytesio
from pathlib import Path

import numpy as np

from ..errors import InputError, OutputError
from .extras import require

NIFTI_SUFFIXES = (".nii", ".nii.gz")
_AXES = {2: "YX", 3: "ZYX", 4: "TZYX"}
_UNITS = {"mm": "mm", "micron": "µm", "meter": "m"}


def is_nifti(path) -> bool:
    return Path(path).name.lower().endswith(NIFTI_SUFFIXES)


def check_nifti_axes(axes, ndim: int, path=None) -> None:
    """OutputError unless NIfTI can hold data with these axes (None: the usual ones for ``ndim``): its voxel
    axes are spatial (and time), so YX, ZYX or TZYX; channels go to TIFF."""
    axes = axes or _AXES.get(ndim)
    if axes not in _AXES.values() or len(axes) != ndim:
        where = f": {path} (use .tif)" if path is not None else ""
        raise OutputError(f"NIfTI holds YX, ZYX or TZYX data, not {axes or f'{ndim}-D data'}{where}")


def _nibabel():
    return require("nibabel", "NIfTI (.nii, .nii.gz)")


def read_nifti(path):
    """``(array, meta)`` of a NIfTI file; see the module docstring."""
    nib = _nibabel()
    img = nib.load(str(path))
    if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
        raise InputError(f"not a NIfTI image: {path}")
    proxy = img.dataobj
    data = np.asarray(proxy.get_unscaled() if hasattr(proxy, "get_unscaled") else proxy)
    while data.ndim > 3 and data.shape[-1] == 1:  # trailing singleton dimensions (e.g. t = 1)
        data = data[..., 0]
    if data.ndim not in _AXES:
        raise InputError(f"{path}: NIfTI with {data.ndim} dimensions {data.shape} is not supported (2D, 3D or 3D+t)")
    header = img.header.copy()
    slope, inter = getattr(proxy, "slope", 1.0), getattr(proxy, "inter", 0.0)
    if (slope, inter) != (1.0, 0.0):
        header.set_slope_inter(slope, inter)  # loading moved them to the proxy; the header carries them out
    axes = _AXES[data.ndim]
    zooms = header.get_zooms()[: data.ndim]
    spatial = [a for a in reversed(axes) if a in "XYZ"]  # file order i, j, k
    meta = {
        "axes": axes,
        "pixel_size": {a: float(z) for a, z in zip(spatial, zooms)},
        "affine": np.array(img.affine, dtype=float),
        "nifti_header": header,
    }
    unit = _UNITS.get(header.get_xyzt_units()[0])
    if unit:
        meta["unit"] = unit
    return np.ascontiguousarray(data.transpose()), meta


def nifti_bytes(array: np.ndarray, meta: dict, *, compressed: bool) -> bytes:
    """The file content of a NIfTI image of ``array`` (napari order, as :func:`read_nifti` returns it).

    With ``meta["nifti_header"]`` that header is kept (its data type set to the array's); otherwise a new
    one is made from ``meta["affine"]`` (scanner coordinates, qform and sform codes 1) or the pixel sizes."""
    check_nifti_axes(meta.get("axes"), array.ndim)
    nib = _nibabel()
    axes = meta.get("axes") or _AXES[array.ndim]
    data = array.transpose()  # napari order -> the file's i, j, k[, t]
    header = meta.get("nifti_header")
    if header is not None:
        header = header.copy()
        slope, inter = header.get_slope_inter()
        header.set_slope_inter(np.nan, np.nan)  # written as is; the scaling is restored below
        img = nib.Nifti1Image(data, None, header=header) if isinstance(header, nib.Nifti1Header) else nib.Nifti2Image(
            data, None, header=header
        )
    else:
        slope = inter = None
        img = nib.Nifti1Image(data, _affine_from(meta, axes))
        img.header.set_qform(img.affine, code=1)
        img.header.set_sform(img.affine, code=1)
        if meta.get("unit") in ("mm", "µm", "m"):
            img.header.set_xyzt_units({"µm": "micron", "m": "meter"}.get(meta["unit"], "mm"))
    img.header.set_data_dtype(array.dtype)
    raw = img.to_bytes()
    if slope is not None and np.isfinite(slope) and (slope, inter) != (1.0, 0.0):
        out_header = type(img.header).from_fileobj(_bytesio.BytesIO(raw))
        out_header.set_slope_inter(slope, inter if inter is not None and np.isfinite(inter) else 0.0)
        block = out_header.binaryblock
        raw = block + raw[len(block) :]
    return gzip.compress(raw, compresslevel=6) if compressed else raw


def _affine_from(meta, axes):
    affine = meta.get("affine")
    if affine is not None:
        return np.asarray(affine, dtype=float)
    sizes = meta.get("pixel_size") or {}
    return np.diag([float(sizes.get(a, 1.0)) for a in "XYZ"] + [1.0])
