"""A tiled, uncompressed TIFF raster allocated empty, then filled region by region with positioned writes.

What an out-of-core GeoTIFF output needs: the blocks of a large scene arrive in any order (and again after a
resume), each written straight into the tiles it covers, synced before the block counts as done. The tile
offsets are read back from the file tifffile wrote, so nothing assumes how it laid them out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Tuple

import numpy as np

from .geotiff import geotiff_layout


@dataclass(frozen=True)
class TileLayout:
    offsets: Tuple[int, ...]  # byte offset of each tile: plane by plane, then row by row of tiles
    tile: Tuple[int, int]
    height: int
    width: int
    planes: int  # separate sample planes (bands first); 1 for gray and bands-last data
    samples: int  # samples stored inside each tile pixel (bands last), else 1
    dtype: str


def read_layout(path, dtype) -> TileLayout:
    import tifffile

    with tifffile.TiffFile(str(path)) as tif:
        page = tif.pages.first
        if not page.is_tiled or page.compression != 1:
            raise ValueError(f"{path} is not an uncompressed tiled TIFF")
        separate = page.planarconfig == 2
        samples = int(page.samplesperpixel)
        return TileLayout(
            tuple(int(o) for o in page.dataoffsets),
            (int(page.tilelength), int(page.tilewidth)),
            int(page.imagelength),
            int(page.imagewidth),
            samples if separate else 1,
            1 if separate else samples,
            np.dtype(dtype).newbyteorder("=").str,
        )


def write_region(path, layout: TileLayout, axes: str, index, block: np.ndarray) -> None:
    """Write ``block`` (axes ``YX``, ``CYX`` or ``YXC``, all bands) at ``index`` (a slice per axis) and sync."""
    kind = geotiff_layout(axes, block.shape)
    block = np.ascontiguousarray(block, np.dtype(layout.dtype))
    if kind == "gray":
        planes = block[np.newaxis, ..., np.newaxis]
    elif kind == "separate":
        planes = block[..., np.newaxis]
    else:
        planes = block[np.newaxis]
    y_axis = axes.index("Y")
    y0, x0 = index[y_axis].start or 0, index[y_axis + 1].start or 0
    th, tw = layout.tile
    y1, x1 = y0 + planes.shape[1], x0 + planes.shape[2]
    across = -(-layout.width // tw)
    per_plane = across * -(-layout.height // th)
    pixel = layout.samples * planes.itemsize
    fd = os.open(str(path), os.O_WRONLY)
    try:
        for p in range(planes.shape[0]):
            for ty in range(y0 // th, (y1 - 1) // th + 1):
                for tx in range(x0 // tw, (x1 - 1) // tw + 1):
                    start = layout.offsets[p * per_plane + ty * across + tx]
                    r0, r1 = max(y0, ty * th), min(y1, (ty + 1) * th)
                    c0, c1 = max(x0, tx * tw), min(x1, (tx + 1) * tw)
                    part = planes[p, r0 - y0 : r1 - y0, c0 - x0 : c1 - x0]
                    if part.shape[:2] == (th, tw):  # the whole tile at once
                        pwrite_all(fd, np.ascontiguousarray(part), start)
                        continue
                    for r in range(r0, r1):
                        at = start + ((r - ty * th) * tw + (c0 - tx * tw)) * pixel
                        pwrite_all(fd, np.ascontiguousarray(part[r - r0]), at)
        os.fsync(fd)
    finally:
        os.close(fd)


def pwrite_all(fd, array: np.ndarray, at: int) -> None:
    """Write all of a C-contiguous ``array`` at byte ``at`` of the open file ``fd`` (pwrite may write less)."""
    view = memoryview(array).cast("B")
    while view:
        n = os.pwrite(fd, view, at)
        view, at = view[n:], at + n
