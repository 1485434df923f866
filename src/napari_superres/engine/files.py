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
from .options import UpscaleOptions, as_options


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
    options: Optional[UpscaleOptions] = None,
    *,
    axes_known: bool = True,
    progress=None,
    cancel=None,
    **settings,
):
    """``(result, output meta)`` for ``data`` read with ``meta``, upscaled as ``options`` (or its fields as
    keywords) say. ``options.axes``: the data's (default: the file's); ``axes_known``: write them into the
    output."""
    from ..io.placement import upscaled_meta
    from .api import upscale
    from .predictor import as_srmodel

    options = as_options(options, settings)
    srm = as_srmodel(model)
    axes = check_loaded(data, meta, options.axes)
    options = options.replace(axes=axes)
    z = options.z_factor_for(int(srm.scale))
    if z > 1:
        from .anisotropic import upscale_z

        if meta.get("geotiff") is not None:
            raise InputError("a GeoTIFF scene has no Z axis to upscale")
        data = upscale_z(
            data, srm, axes=axes, factor=z, method=options.z_method, normalization=options.normalization,
            tile=options.tile, batch_size=options.batch_size,
        )
    options = options.replace(upscale_z=False, z_factor=None)  # Z is done: what follows is Y and X
    if is_scene(meta, options.bands):
        from .scene import upscale_scene

        geo = meta.get("geotiff")
        result = upscale_scene(
            data, srm, options, photometric=meta.get("photometric"), nodata=None if geo is None else geo.nodata,
            progress=progress, cancel=cancel,
        )
    else:
        result = upscale(data, srm, options, progress=progress, cancel=cancel)
    scale = int(srm.scale)
    out = upscaled_meta(meta, {"Y": scale, "X": scale, "Z": z})
    if axes_known:
        out["axes"] = file_axes(axes)
    return result, out


def file_axes(axes: str) -> str:
    """The axes as a written file states them: files know channels as C."""
    return axes.replace("S", "C")


def upscale_path(
    src, dst, model, options: Optional[UpscaleOptions] = None, *, overwrite=False, progress=None, cancel=None, **settings
) -> Path:
    """Read ``src`` (any format ``io.read_image`` reads: TIFF/GeoTIFF, PNG, JPEG, NPY, Zarr, NIfTI, a DICOM
    series folder), upscale it as ``options`` (or its fields as keywords) say, write ``dst`` (its format from
    the suffix) with the placement updated. An output that cannot be written is refused before the model
    runs: its axes before the model loads, its size, folder and an existing file once the scale is known."""
    from ..io import check_output_axes, check_writable, read_image, write_image
    from .predictor import as_srmodel

    options = as_options(options, settings)
    data, meta = read_image(src)
    axes = resolve_axes(options.axes or meta.get("axes"), data.shape)
    check_output_axes(dst, file_axes(axes))
    srm = as_srmodel(model)
    shape = options.upscaled_shape(data.shape, axes, int(srm.scale))
    check_writable(dst, shape, data.dtype, overwrite=overwrite, axes=file_axes(axes))
    result, out_meta = upscale_loaded(
        data, meta, srm, options, axes_known=bool(options.axes or meta.get("axes")), progress=progress, cancel=cancel
    )
    return write_image(dst, np.asarray(result), overwrite=overwrite, meta=out_meta)
