"""Files in, files out, in memory: an image as ``io.read_image`` returns it, upscaled, with its placement kept.

:func:`upscale_loaded` is the step between reading and writing that the CLI and :func:`upscale_path` share:
Z first when asked (``engine.anisotropic``), then Y and X -- a scene's bands and nodata through
``engine.scene``, anything else through ``engine.api.upscale`` -- and the output's metadata from
``io.placement`` (pixel sizes, GeoTIFF georeferencing, NIfTI/DICOM affines), so that the output overlays its
input exactly on the map or in the scanner.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import InputError
from .axes import resolve_axes
from .normalize import check_array


def is_scene(meta: dict, bands="auto") -> bool:
    """Whether the bands/nodata path applies: a GeoTIFF, or the user said how bands go."""
    return meta.get("geotiff") is not None or bands != "auto"


def check_loaded(data, meta: dict, axes: Optional[str] = None) -> str:
    """Refuse what the engine cannot take (NaN allowed where it is a GeoTIFF's nodata); the resolved axes."""
    from .scene import check_scene

    geo = meta.get("geotiff")
    if geo is not None:
        check_scene(data, geo.nodata)
    else:
        check_array(data)
    return resolve_axes(axes or meta.get("axes"), data.shape)


def upscale_loaded(
    data,
    meta: dict,
    model,
    *,
    axes: Optional[str] = None,
    axes_known: bool = True,
    bands="auto",
    z_factor: Optional[int] = None,
    z_method: str = "model",
    **options,
):
    """``(result, output meta)`` for ``data`` read with ``meta``. ``axes``: the data's (default: the file's);
    ``axes_known``: write them into the output. ``options``: what ``engine.api.upscale`` takes."""
    from ..io.placement import upscaled_meta
    from .api import upscale
    from .predictor import as_srmodel

    srm = as_srmodel(model)
    axes = check_loaded(data, meta, axes)
    z = int(z_factor or 1)
    if z > 1:
        from .anisotropic import upscale_z

        if meta.get("geotiff") is not None:
            raise InputError("a GeoTIFF scene has no Z axis to upscale")
        data = upscale_z(
            data, srm, axes=axes, factor=z, method=z_method, normalization=options.get("normalization"),
            tile=options.get("tile"), batch_size=options.get("batch_size"),
        )
    if is_scene(meta, bands):
        from .scene import upscale_scene

        geo = meta.get("geotiff")
        result = upscale_scene(
            data, srm, axes=axes, bands=bands, photometric=meta.get("photometric"),
            nodata=None if geo is None else geo.nodata, **options,
        )
    else:
        result = upscale(data, srm, axes=axes, **options)
    scale = int(srm.scale)
    out = upscaled_meta(meta, {"Y": scale, "X": scale, "Z": z})
    if axes_known:
        out["axes"] = axes.replace("S", "C")  # files know channels as C
    return result, out


def upscale_path(src, dst, model, *, axes=None, bands="auto", z_factor=None, z_method="model", overwrite=False, **options) -> Path:
    """Read ``src`` (any format ``io.read_image`` reads: TIFF/GeoTIFF, PNG, JPEG, NPY, Zarr, NIfTI, a DICOM
    series folder), upscale it, write ``dst`` (its format from the suffix) with the placement updated."""
    from ..io import read_image, write_image

    data, meta = read_image(src)
    result, out_meta = upscale_loaded(
        data, meta, model, axes=axes, axes_known=bool(axes or meta.get("axes")), bands=bands,
        z_factor=z_factor, z_method=z_method, **options,
    )
    return write_image(dst, np.asarray(result), overwrite=overwrite, meta=out_meta)
