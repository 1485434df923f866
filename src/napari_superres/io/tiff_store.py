"""TIFF (tifffile): the axes and pixel sizes a TIFF states (OME, ImageJ or our own metadata), written whole or
as a BigTIFF allocated empty and filled block by block.

Axes OME-TIFF can express are written as OME-TIFF with the pixel sizes; other axes (e.g. channels last but not
RGB) as a plain TIFF with tifffile's JSON description. A georeferenced scene is a GeoTIFF (``io.geotiff``),
tiled when written block by block (``io.tiff_tiles``).
"""

from __future__ import annotations

import logging
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from ..errors import InputError, OutputError
from .geotiff import geotiff_layout, tiff_placement, write_geotiff
from .meta import KNOWN_AXES
from .tiff_tiles import pwrite_all, read_layout, write_region

# ----------------------------------------------------------------------------------------------- reading


def tiff_meta(tif, path) -> dict:
    """What an open TIFF says about its first series: axes, pixel sizes and unit, placement (GeoTIFF tags)."""
    if not tif.series or not tif.pages:
        raise InputError(f"cannot read {path}: no image data (corrupt or truncated TIFF)")
    series = tif.series[0]
    meta = {}
    axes = series.axes.replace("S", "C") if "C" not in series.axes else series.axes
    shaped = tif.shaped_metadata[0] if tif.is_shaped and tif.shaped_metadata else {}
    if tif.is_ome or tif.is_imagej or "axes" in shaped or set(axes) <= set(KNOWN_AXES):
        meta["axes"] = axes
    if tif.is_ome:
        meta.update(_ome_tiff_pixel_size(tif.ome_metadata))
    elif tif.is_imagej:
        meta.update(_imagej_pixel_size(tif))
    elif isinstance(shaped.get("pixel_size"), dict):
        meta["pixel_size"] = {k: float(v) for k, v in shaped["pixel_size"].items()}
        if shaped.get("unit"):
            meta["unit"] = str(shaped["unit"])
    meta.update(tiff_placement(tif))
    return meta


def read_tiff(path) -> tuple:
    """``(array, meta)`` of the first series of the TIFF at ``path``."""
    import tifffile

    logger = logging.getLogger("tifffile")
    level = logger.level
    logger.setLevel(logging.CRITICAL)  # its messages about broken files would add lines to our one-line error
    try:
        with tifffile.TiffFile(path) as tif:
            meta = tiff_meta(tif, path)
            return tif.series[0].asarray(), meta
    finally:
        logger.setLevel(level)


def _ome_tiff_pixel_size(xml):
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return {}
    pixels = next((el for el in root.iter() if el.tag.endswith("}Pixels") or el.tag == "Pixels"), None)
    if pixels is None:
        return {}
    sizes = {ax: float(pixels.get(f"PhysicalSize{ax}")) for ax in "ZYX" if pixels.get(f"PhysicalSize{ax}")}
    out = {"pixel_size": sizes} if sizes else {}
    unit = pixels.get("PhysicalSizeXUnit") or ("µm" if sizes else None)  # OME's default unit is micrometre
    if unit:
        out["unit"] = unit
    return out


def _imagej_pixel_size(tif):
    page = tif.pages.first
    ij = tif.imagej_metadata or {}
    sizes = {}
    for ax, tag in (("X", "XResolution"), ("Y", "YResolution")):
        value = page.tags.get(tag)
        if value is not None:
            num, den = value.value
            if num and (num, den) != (1, 1):
                sizes[ax] = den / num  # the tag holds pixels per unit
    if ij.get("spacing"):
        sizes["Z"] = float(ij["spacing"])
    out = {"pixel_size": sizes} if sizes else {}
    if ij.get("unit") and sizes:
        out["unit"] = str(ij["unit"]).replace("\\u00B5", "µ")
    return out


# ----------------------------------------------------------------------------------------------- writing


def _spatial_sizes(meta: dict) -> dict:
    return {k: float(v) for k, v in (meta.get("pixel_size") or {}).items() if k in "ZYX"}


def _ome_metadata(axes: str, meta: dict) -> dict:
    ome = {"axes": axes}
    for ax, size in _spatial_sizes(meta).items():
        ome[f"PhysicalSize{ax}"] = size
        if meta.get("unit"):
            ome[f"PhysicalSize{ax}Unit"] = meta["unit"]
    return ome


def _shaped_metadata(axes, meta: dict):
    """tifffile's JSON description: axes, pixel sizes and unit (None when there is nothing to say)."""
    shaped = {"axes": axes} if axes else {}
    sizes = _spatial_sizes(meta)
    if sizes:
        shaped["pixel_size"] = sizes
        if meta.get("unit"):
            shaped["unit"] = meta["unit"]
    return shaped or None


def write_tiff(f, array: np.ndarray, meta: dict, bigtiff: bool) -> None:
    """Write ``array`` whole to the open file ``f``: GeoTIFF, OME-TIFF or plain TIFF, as the metadata allows."""
    import tifffile

    axes = meta.get("axes")
    if meta.get("geotiff") is not None and geotiff_layout(axes, array.shape):
        write_geotiff(f, array, axes, meta["geotiff"], photometric=meta.get("photometric"), bigtiff=bigtiff)
        return
    if axes:
        ome_axes, photometric = axes, "minisblack"
        if axes.endswith("YXC") and array.shape[-1] in (3, 4) and array.dtype in (np.uint8, np.uint16):
            ome_axes, photometric = axes[:-1] + "S", "rgb"
        start = f.tell()
        try:
            tifffile.imwrite(f, array, ome=True, photometric=photometric, metadata=_ome_metadata(ome_axes, meta),
                             bigtiff=bigtiff)
            return
        except ValueError:  # axes order OME cannot express (e.g. channels last but not RGB): plain TIFF below
            f.seek(start)
            f.truncate()
    tifffile.imwrite(f, array, metadata=_shaped_metadata(axes, meta), bigtiff=bigtiff)


class TiffOutput:
    """A BigTIFF (OME-TIFF metadata when the axes allow), allocated whole and written block by block.
    A georeferenced scene becomes a tiled GeoTIFF (``io.geotiff``, ``io.tiff_tiles``).

    ``meta``: ``axes`` (those of the data), ``axes_known`` (whether they are written), pixel sizes and unit,
    GeoTIFF tags."""

    def __init__(self, path: Path, shape, dtype, meta: dict):
        self.path, self.shape, self.dtype, self.meta = path, tuple(shape), np.dtype(dtype), meta
        self.offset = None
        self.tiles = None
        self.geo = meta.get("geotiff") is not None and geotiff_layout(meta["axes"], self.shape) is not None

    def create(self):
        import tifffile

        axes = self.meta["axes"]
        if self.geo:
            with open(self.path, "wb") as f:
                write_geotiff(f, None, axes, self.meta["geotiff"], photometric=self.meta.get("photometric"),
                              bigtiff=True, shape=self.shape, dtype=self.dtype, tiled=True)
            return
        kw = dict(data=None, shape=self.shape, dtype=self.dtype, bigtiff=True, returnoffset=True, photometric="minisblack")
        if axes.endswith("YXC") and self.shape[-1] in (3, 4) and self.dtype in (np.uint8, np.uint16):
            kw.update(photometric="rgb", extrasamples=["unassalpha"] if self.shape[-1] == 4 else None)
        known = self.meta.get("axes_known")
        if known and "C" not in axes[-1:]:
            kw.update(ome=True, metadata=_ome_metadata(axes, self.meta))
        else:
            kw.update(metadata=_shaped_metadata(axes if known else None, self.meta))
        result = tifffile.imwrite(str(self.path), **kw)
        if result is None:
            raise OutputError(f"cannot lay out {self.path} as one contiguous TIFF")

    def _offset(self):
        if self.offset is None:
            import tifffile

            with tifffile.TiffFile(str(self.path)) as tif:
                self.offset = int(tif.series[0].dataoffset)
        return self.offset

    def write(self, index, block):
        """Plain positioned writes, synced: a full disk is an error (a memory map would crash on it)."""
        if self.geo:
            if self.tiles is None:
                self.tiles = read_layout(self.path, self.dtype)
            write_region(self.path, self.tiles, self.meta["axes"], index, block)
            return
        block = np.ascontiguousarray(block, self.dtype)
        starts = [sl.start or 0 for sl in index]
        # axes after `k` are written whole, so each run along axis k (and everything after it) is contiguous
        k = len(self.shape) - 1
        while k > 0 and block.shape[k] == self.shape[k]:
            k -= 1
        strides = np.cumprod((1,) + self.shape[::-1])[::-1][1:]  # elements per step along each axis
        offset = self._offset()
        itemsize = self.dtype.itemsize
        fd = os.open(self.path, os.O_WRONLY)
        try:
            for lead in np.ndindex(*block.shape[:k]):
                run = block[lead].reshape(-1)
                pos = sum((starts[i] + lead[i]) * int(strides[i]) for i in range(k)) + starts[k] * int(strides[k])
                pwrite_all(fd, run, offset + pos * itemsize)
            os.fsync(fd)  # on disk before the block is marked done
        finally:
            os.close(fd)

    def finish(self):
        pass
