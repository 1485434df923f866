"""An out-of-core input as the engine sees it: a file opened region by region (``io.source``) with its axes
resolved, and its nodata pixels filled before the model sees them (``engine.scene``)."""

from __future__ import annotations

from dataclasses import replace
from typing import Optional, Tuple

from ..errors import InputError
from ..io.meta import drop_bad_axes
from ..io.source import Source, open_file
from .axes import resolve_axes


def open_source(path, axes: Optional[str] = None) -> Tuple[Source, dict]:
    """Open a TIFF or Zarr/OME-Zarr input without reading its pixels (``io.source``). Returns ``(source,
    meta)`` with meta's ``axes`` resolved (``axes_known``: the file or the user stated them). A Zarr without
    axes metadata needs ``axes`` (except a plain 2D image)."""
    src, meta = open_file(path)
    drop_bad_axes(meta, src.ndim)
    file_axes = meta.get("axes")
    if axes is None and file_axes is None and src.kind == "zarr" and len(src.shape) > 2:
        raise InputError(
            f"{path} has no axes metadata; say what its {len(src.shape)} dimensions {src.shape} are with --axes "
            f"(e.g. --axes {'ZYX' if len(src.shape) == 3 else 'TZYX'})"
        )
    try:
        meta["axes"] = resolve_axes(axes or file_axes, src.shape)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
    meta["axes_known"] = bool(axes or file_axes)
    nodata = meta["geotiff"].nodata if meta.get("geotiff") is not None else None
    if nodata is not None:
        src = replace(src, nodata=nodata, yx=(meta["axes"].index("Y"), meta["axes"].index("X")))
    return src, meta


def input_dask(source: Source, chunks):
    """The input as a dask array, nodata pixels filled chunk by chunk (``engine.scene``) as blocks are."""
    data = source.to_dask(chunks)
    if source.nodata is None:
        return data
    return data.map_blocks(_filled, source.nodata, *source.yx, dtype=data.dtype)


def _filled(region, nodata, y_axis, x_axis):
    from .scene import fill_nodata, nodata_mask

    mask = nodata_mask(region, nodata)
    return region if mask is None else fill_nodata(region, mask, y_axis, x_axis)
