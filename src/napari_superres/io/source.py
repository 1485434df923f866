"""Big TIFF and Zarr/OME-Zarr inputs read region by region (their block-by-block writers: tiff_store, zarr_store).

Memory is bounded by the region read, not by the file: a memory map opened and closed per read for
contiguous, uncompressed TIFF, page/tile reads for compressed or tiled TIFF (tifffile's Zarr store), chunk reads
for Zarr. A :class:`Source` is a path, not a handle, so whichever process reads it (a ``dask.distributed``
worker too) reopens the file itself.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

import numpy as np

from ..errors import InputError, OutputError, SuperResError, one_line
from .tiff_store import tiff_meta
from .zarr_store import image_array

ZARR_SUFFIXES = (".zarr",)
TIFF_SUFFIXES = (".tif", ".tiff")


@dataclass(frozen=True)
class Source:
    """A readable input array, reopened by whichever process reads it (picklable).

    ``kind``: "zarr" (``key`` is the array inside a group, "" for an array), "tiff-mmap" (contiguous,
    uncompressed: ``offset`` of the data) or "tiff" (compressed or tiled: read through tifffile's Zarr store).
    ``nodata`` (a GeoTIFF's): the value of pixels that are not data; ``yx`` are the Y and X axes. Reads return
    the pixels as stored (nodata included).
    """

    path: str
    kind: str
    shape: Tuple[int, ...]
    dtype: str
    key: str = ""
    offset: int = 0
    nodata: Optional[float] = None
    yx: Tuple[int, int] = (-2, -1)

    @property
    def ndim(self):
        return len(self.shape)

    def read(self, index) -> np.ndarray:
        if self.kind == "tiff-mmap":
            # a fresh map per read: the pages it touched leave this process's memory when it is closed
            mm = np.memmap(self.path, np.dtype(self.dtype), "r", offset=self.offset, shape=self.shape)
            try:
                return np.array(mm[index])
            finally:
                del mm
        return np.asarray(_opened(self)[index])

    def __getitem__(self, index):  # lets dask.array.from_array read it
        return self.read(index)

    def to_dask(self, chunks):
        import dask.array as da

        return da.from_array(self, chunks=chunks, asarray=False, lock=False, meta=np.empty((0,) * self.ndim, self.dtype))

    def identity(self) -> dict:
        """What tells this input from another, or from itself after a change: path, shape, dtype, times, sizes."""
        p = Path(self.path)
        files = [p] if p.is_file() else [p / n for n in ("zarr.json", ".zarray", ".zattrs", ".zgroup") if (p / n).exists()]
        return {
            "path": str(p.resolve()),
            "shape": list(self.shape),
            "dtype": self.dtype,
            "mtime_ns": max((f.stat().st_mtime_ns for f in files), default=0),
            "size": sum(f.stat().st_size for f in files),
        }


_OPEN: dict = {}
_OPEN_LOCK = threading.Lock()


def _opened(src: Source):
    """The source's array object, opened once per process."""
    with _OPEN_LOCK:
        key = (src.path, src.kind, src.key)
        if key not in _OPEN:
            import zarr

            if src.kind == "zarr":
                node = zarr.open(store=src.path, mode="r")
                _OPEN[key] = node[src.key] if src.key else node
            else:
                import tifffile

                tif = tifffile.TiffFile(src.path)
                _OPEN[key] = zarr.open(tif.series[0].aszarr(), mode="r")
        return _OPEN[key]


def open_file(path) -> Tuple[Source, dict]:
    """Open a TIFF or Zarr/OME-Zarr without reading its pixels: ``(source, meta)``, meta as the file states it
    (axes only when it names them). InputError (one line) for a missing, unreadable or empty input."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"input not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix in ZARR_SUFFIXES:
            src, meta = _open_zarr(path)
        elif suffix in TIFF_SUFFIXES:
            src, meta = _open_tiff(path)
        else:
            raise InputError(f"out-of-core upscaling reads TIFF and Zarr, not {path.suffix or path.name}: {path}")
    except SuperResError:
        raise
    except Exception as exc:
        raise InputError(f"cannot read {path}: {one_line(exc)}") from None
    if 0 in src.shape or len(src.shape) < 2:
        raise InputError(f"{path}: the image is empty or not an image (shape {src.shape})")
    return src, meta


def _open_zarr(path):
    import zarr

    array, key, meta = image_array(zarr.open(store=str(path), mode="r"), path)
    return Source(str(path), "zarr", tuple(array.shape), np.dtype(array.dtype).str, key=key), meta


def _open_tiff(path):
    import tifffile

    with tifffile.TiffFile(path) as tif:
        meta = tiff_meta(tif, path)
        series = tif.series[0]
        shape, dtype = tuple(int(n) for n in series.shape), np.dtype(series.dtype)
        offset = series.dataoffset
        native = dtype.byteorder in ("=", "|") or dtype.byteorder == {"little": "<", "big": ">"}[sys.byteorder]
        complete = offset is not None and offset + int(np.prod(shape)) * dtype.itemsize <= os.path.getsize(path)
        if offset is not None and native and complete:  # a truncated file is read through tifffile (errors, no crash)
            return Source(str(path), "tiff-mmap", shape, dtype.newbyteorder("=").str, offset=int(offset)), meta
        return Source(str(path), "tiff", shape, dtype.str), meta


def output_kind(path) -> str:
    """"zarr" or "tiff" for an output path written block by block; OutputError for anything else."""
    suffix = Path(path).suffix.lower()
    if suffix in ZARR_SUFFIXES:
        return "zarr"
    if suffix in TIFF_SUFFIXES:
        return "tiff"
    raise OutputError(f"out-of-core outputs are Zarr (.zarr, .ome.zarr) or TIFF (.tif), not {Path(path).name}")
