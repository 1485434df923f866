"""GeoTIFF georeferencing: read the tags that place a raster on the map, and update them for an upscaled output.

The tags are kept as the file holds them (the GeoKey directory and its double and ASCII parameters, GDAL's
nodata value and metadata) and written back unchanged, except for the raster-to-model mapping
(ModelPixelScale with ModelTiepoint, or ModelTransformation), which :meth:`GeoTags.upscaled` rewrites so that
the output's ``f x f`` pixels cover exactly the ground of the input pixel they came from.

Raster space follows GeoTIFF: with PixelIsArea (the default) raster point ``(0, 0)`` is the outer corner of the
first pixel; with PixelIsPoint it is that pixel's centre. A raster point ``p`` of the input is the output point
``f * (p + c) - c`` with ``c`` = 0 (area) or 1/2 (point).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace
from typing import Optional, Tuple

import numpy as np

PIXEL_SCALE, TIEPOINT, TRANSFORMATION = 33550, 33922, 34264
GEOKEYS, GEO_DOUBLES, GEO_ASCII = 34735, 34736, 34737
GDAL_METADATA, GDAL_NODATA = 42112, 42113
RASTER_TYPE_KEY = 1025  # GTRasterTypeGeoKey: 1 PixelIsArea, 2 PixelIsPoint
PIXEL_IS_POINT = 2
TILE = 256  # tile side of GeoTIFF outputs (GDAL's default block size)
TILED_ABOVE = 512  # outputs larger than this in Y or X are written tiled (GIS readers fetch tiles, not strips)


@dataclass(frozen=True)
class GeoTags:
    """The georeferencing tags of a GeoTIFF, as stored (tuples of numbers, strings)."""

    pixel_scale: Optional[Tuple[float, ...]] = None
    tiepoints: Optional[Tuple[float, ...]] = None  # (I, J, K, X, Y, Z) per tiepoint
    transformation: Optional[Tuple[float, ...]] = None  # 4x4, row by row
    geokeys: Optional[Tuple[int, ...]] = None
    geo_doubles: Optional[Tuple[float, ...]] = None
    geo_ascii: Optional[str] = None
    gdal_metadata: Optional[str] = None
    gdal_nodata: Optional[str] = None

    @property
    def pixel_is_point(self) -> bool:
        return _geokey(self.geokeys, RASTER_TYPE_KEY) == PIXEL_IS_POINT

    @property
    def nodata(self) -> Optional[float]:
        """GDAL's nodata value as a number (NaN allowed), or None."""
        if self.gdal_nodata is None:
            return None
        try:
            return float(self.gdal_nodata.strip().strip("\x00"))
        except ValueError:
            return None

    def upscaled(self, fy: int, fx: int) -> "GeoTags":
        """The tags of the output upscaled by ``fy`` in Y (rows) and ``fx`` in X (columns)."""
        c = 0.5 if self.pixel_is_point else 0.0
        out = replace(self, gdal_metadata=_without_statistics(self.gdal_metadata))
        if self.pixel_scale is not None:
            sx, sy, *rest = self.pixel_scale
            out = replace(out, pixel_scale=(sx / fx, sy / fy, *rest))
        if self.tiepoints is not None:
            t = np.array(self.tiepoints, dtype=float).reshape(-1, 6)
            t[:, 0] = fx * (t[:, 0] + c) - c
            t[:, 1] = fy * (t[:, 1] + c) - c
            out = replace(out, tiepoints=tuple(t.ravel().tolist()))
        if self.transformation is not None:
            m = np.array(self.transformation, dtype=float).reshape(4, 4)
            # output raster point q is the input point (q + c) / f - c
            a = np.diag([1.0 / fx, 1.0 / fy, 1.0, 1.0])
            a[0, 3], a[1, 3] = c * (1.0 / fx - 1.0), c * (1.0 / fy - 1.0)
            out = replace(out, transformation=tuple((m @ a).ravel().tolist()))
        return out

    def extratags(self) -> list:
        """The tags as tifffile's ``extratags`` entries."""
        tags = []
        for code, dtype, value in (
            (PIXEL_SCALE, "d", self.pixel_scale),
            (TIEPOINT, "d", self.tiepoints),
            (TRANSFORMATION, "d", self.transformation),
            (GEOKEYS, "H", self.geokeys),
            (GEO_DOUBLES, "d", self.geo_doubles),
        ):
            if value is not None:
                tags.append((code, dtype, len(value), tuple(value), True))
        for code, value in ((GEO_ASCII, self.geo_ascii), (GDAL_METADATA, self.gdal_metadata), (GDAL_NODATA, self.gdal_nodata)):
            if value is not None:
                tags.append((code, "s", 0, value, True))
        return tags


def read_geotags(page) -> Optional[GeoTags]:
    """The GeoTIFF tags of a tifffile page, or None when it has no georeferencing."""
    tags = page.tags

    def value(code):
        tag = tags.get(code)
        return None if tag is None else tag.value

    def numbers(code, kind=float):
        v = value(code)
        if v is None:
            return None
        return tuple(kind(x) for x in (v if isinstance(v, (tuple, list, np.ndarray)) else (v,)))

    def text(code):
        v = value(code)
        if v is None:
            return None
        return v.decode("latin-1") if isinstance(v, bytes) else str(v)

    geo = GeoTags(
        pixel_scale=numbers(PIXEL_SCALE),
        tiepoints=numbers(TIEPOINT),
        transformation=numbers(TRANSFORMATION),
        geokeys=numbers(GEOKEYS, int),
        geo_doubles=numbers(GEO_DOUBLES),
        geo_ascii=text(GEO_ASCII),
        gdal_metadata=text(GDAL_METADATA),
        gdal_nodata=text(GDAL_NODATA),
    )
    if geo == GeoTags():
        return None
    if geo.tiepoints is not None and len(geo.tiepoints) % 6:
        geo = replace(geo, tiepoints=None)  # not a tiepoint list: cannot be mapped, not written back wrong
    if geo.transformation is not None and len(geo.transformation) != 16:
        geo = replace(geo, transformation=None)
    return geo


def tiff_placement(tif) -> dict:
    """GeoTIFF tags (``"geotiff"``) and RGB photometry (``"photometric"``) of an open TIFF, when it has them."""
    page = tif.pages.first
    out = {}
    geo = read_geotags(page)
    if geo is not None:
        out["geotiff"] = geo
    if page.photometric == 2:  # RGB: the bands are colours
        out["photometric"] = "rgb"
    return out


def tile_shape(height: int, width: int) -> Optional[Tuple[int, int]]:
    """Tiles for a GeoTIFF output of this size, or None for a small one (strips)."""
    return (TILE, TILE) if max(height, width) > TILED_ABOVE else None


def raster_to_model(geo: GeoTags, rows, cols) -> np.ndarray:
    """Model (map) coordinates ``(x, y)`` of raster points, in area convention (``(0, 0)``: the outer corner
    of the first pixel), whatever the file's raster type. Needs a transformation or a pixel scale and tiepoint."""
    rows, cols = np.asarray(rows, float), np.asarray(cols, float)
    c = 0.5 if geo.pixel_is_point else 0.0
    i, j = cols - c, rows - c  # the file's raster coordinates
    if geo.transformation is not None:
        m = np.array(geo.transformation, float).reshape(4, 4)
        return np.stack([m[0, 0] * i + m[0, 1] * j + m[0, 3], m[1, 0] * i + m[1, 1] * j + m[1, 3]], axis=-1)
    if geo.pixel_scale is None or not geo.tiepoints:
        raise ValueError("no raster-to-model mapping (needs a transformation, or a pixel scale and a tiepoint)")
    ti, tj, _, tx, ty, _ = geo.tiepoints[:6]
    sx, sy = geo.pixel_scale[:2]
    return np.stack([tx + (i - ti) * sx, ty - (j - tj) * sy], axis=-1)


def _geokey(directory, key):
    """The value of a GeoKey stored directly in the directory (SHORT values), or None."""
    if not directory or len(directory) < 4:
        return None
    n = directory[3]
    for k in range(n):
        entry = directory[4 + 4 * k : 8 + 4 * k]
        if len(entry) == 4 and entry[0] == key and entry[1] == 0:
            return entry[3]
    return None


def _without_statistics(xml: Optional[str]) -> Optional[str]:
    """GDAL metadata without its STATISTICS_* items: they describe the input's pixels, not the output's."""
    if not xml or "STATISTICS_" not in xml:
        return xml
    try:
        root = ET.fromstring(xml.strip("\x00"))
    except ET.ParseError:
        return xml
    for item in list(root):
        if str(item.get("name", "")).startswith("STATISTICS_"):
            root.remove(item)
    return ET.tostring(root, encoding="unicode") if len(root) else None


def geotiff_layout(axes: Optional[str], shape) -> Optional[str]:
    """``"gray"``, ``"separate"`` (bands first) or ``"contig"`` (bands last) when data of these axes can be one
    GeoTIFF raster (a single image, with or without bands), else None."""
    if axes == "YX" or (axes is None and len(shape) == 2):
        return "gray"
    if axes in ("CYX", "SYX"):
        return "separate"
    if axes in ("YXC", "YXS"):
        return "contig"
    return None


def write_geotiff(f, array, axes, geo: GeoTags, *, photometric=None, bigtiff=False, shape=None, dtype=None, tiled=False):
    """Write ``array`` as one GeoTIFF raster (bands kept in their layout, tiled when large) to an open file.
    With ``array`` None, an empty raster of ``shape``/``dtype`` is allocated (``tiled``: always in tiles),
    to be filled by ``io.tiff_tiles.write_region``."""
    import tifffile

    shape = tuple(array.shape) if array is not None else tuple(shape)
    dtype = np.dtype(array.dtype if array is not None else dtype)
    layout = geotiff_layout(axes, shape)
    height, width = (shape[-3], shape[-2]) if layout == "contig" else shape[-2:]
    kw = dict(
        photometric=photometric_for(layout, shape, dtype, photometric),
        tile=(TILE, TILE) if tiled else tile_shape(height, width),
        extratags=geo.extratags(),
        bigtiff=bigtiff,
        metadata=None,
    )
    if layout != "gray":
        kw["planarconfig"] = layout
    if array is None:
        tifffile.imwrite(f, shape=shape, dtype=dtype, **kw)
    else:
        tifffile.imwrite(f, array, **kw)


def photometric_for(layout, shape, dtype, photometric=None) -> str:
    """RGB when the input said so and the bands can be RGB (3 or 4, 8/16-bit), else minisblack."""
    bands = 1 if layout == "gray" else (shape[0] if layout == "separate" else shape[-1])
    if photometric == "rgb" and bands in (3, 4) and np.dtype(dtype) in (np.uint8, np.uint16):
        return "rgb"
    return "minisblack"
