"""Out-of-core file jobs: a big TIFF or Zarr/OME-Zarr in, Zarr/OME-Zarr or BigTIFF out, block by block.

Memory is bounded by the block and tile sizes, not by the data: the input is read region by region (a
memory map opened and closed per block for contiguous TIFF, page/tile reads for compressed TIFF, chunk reads
for Zarr), each block runs the model on exactly the windows the in-memory path would use
(:class:`~napari_superres.engine.lazy.BlockJob`), and its result goes straight to the output.

The output is built in a hidden folder next to it, ``.NAME.partial``, and renamed to ``NAME`` only when
every block is written (the rename is the completion marker: a partial output never has the final name).
That folder also holds ``job.json`` (what is being computed, with the fitted normalisation) and ``done.txt``
(the blocks written, one per line, appended after each block's data is on disk). Running the same command
again resumes from the blocks already written; a different job (other model, options or input) starts over.
A full disk stops the job with what is complete kept, ready to resume.

With a ``dask.distributed`` scheduler the blocks run on its workers (they read the input themselves, so it
must be on a filesystem they share, and load the model once per worker); this process writes the results.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

import numpy as np

from ..errors import Cancelled, InputError, OutputError, SuperResError, one_line
from ..io.tiff_tiles import pwrite_all
from .axes import make_layout, resolve_axes
from .lazy import BlockJob, fit_normalizer_lazy, make_job, plan_chunks, slice_axes
from .options import UpscaleOptions, as_options
from .predictor import as_srmodel

ZARR_SUFFIXES = (".zarr",)
TIFF_SUFFIXES = (".tif", ".tiff")
DEFAULT_CHUNK = 1024  # block size in input pixels along Y and X
OUT_CHUNK = 1024  # Zarr output chunks along Y and X (output pixels)
NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
NGFF_VERSION = "0.5"
_META_KEY = "napari_superres"  # our metadata in a plain Zarr array's attributes (as io.images writes it)


# ----------------------------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class Source:
    """A readable input array, reopened by whichever process reads it (picklable: a path, not a handle).

    ``kind``: "zarr" (``key`` is the array inside a group, "" for an array), "tiff-mmap" (contiguous,
    uncompressed: ``offset`` of the data) or "tiff" (compressed or tiled: read through tifffile's Zarr store).
    ``nodata`` (a GeoTIFF's): reads fill nodata pixels from their valid neighbours (``engine.scene``), within
    the region read; ``yx`` are the Y and X axes.
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

    def read(self, index, fill: bool = True) -> np.ndarray:
        if fill and self.nodata is not None:
            from .scene import fill_nodata, nodata_mask

            region = self.read(index, fill=False)
            mask = nodata_mask(region, self.nodata)
            return region if mask is None else fill_nodata(region, mask, *self.yx)
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


def open_source(path, axes: Optional[str] = None) -> Tuple[Source, dict]:
    """Open a TIFF or Zarr/OME-Zarr input without reading its pixels. Returns ``(source, meta)`` with meta's
    ``axes`` resolved (``axes_known``: the file or the user stated them), ``pixel_size`` and ``unit`` when the
    file has them. A Zarr without axes metadata needs ``axes`` (except a plain 2D image)."""
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
    file_axes = meta.get("axes")
    if file_axes is not None and (len(file_axes) != len(src.shape) or not set(file_axes) <= set("TZCYX")):
        file_axes = None
    if axes is None and file_axes is None and suffix in ZARR_SUFFIXES and len(src.shape) > 2:
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
        from dataclasses import replace

        src = replace(src, nodata=nodata, yx=(meta["axes"].index("Y"), meta["axes"].index("X")))
    return src, meta


def _open_zarr(path):
    import zarr

    from ..io.images import _NGFF_UNITS

    node = zarr.open(store=str(path), mode="r")
    meta = {}
    if isinstance(node, zarr.Array):
        ours = node.attrs.get(_META_KEY)
        if isinstance(ours, dict):
            meta.update({k: ours[k] for k in ("axes", "pixel_size", "unit") if k in ours})
        return Source(str(path), "zarr", tuple(node.shape), np.dtype(node.dtype).str), meta
    attrs = dict(node.attrs)
    multiscales = attrs.get("ome", {}).get("multiscales") or attrs.get("multiscales")
    if multiscales:
        ms = multiscales[0]
        level0 = ms["datasets"][0]
        array = node[level0["path"]]
        names = [a["name"] if isinstance(a, dict) else a for a in ms.get("axes", [])]
        if names:
            meta["axes"] = "".join(n.upper() for n in names)
        scale = next((t["scale"] for t in level0.get("coordinateTransformations", []) if t.get("type") == "scale"), None)
        if scale and names and len(scale) == len(names):
            meta["pixel_size"] = {n.upper(): float(s) for n, s in zip(names, scale) if n.upper() in "ZYX"}
            units = {a.get("unit") for a in ms.get("axes", []) if isinstance(a, dict) and a.get("unit")}
            if len(units) == 1:
                unit = units.pop()
                meta["unit"] = {v: k for k, v in _NGFF_UNITS.items()}.get(unit, unit)
        return Source(str(path), "zarr", tuple(array.shape), np.dtype(array.dtype).str, key=level0["path"]), meta
    keys = list(node.array_keys())
    if len(keys) != 1:
        raise InputError(f"Zarr group {path} is not OME-Zarr and holds {len(keys)} arrays; point to the array inside it")
    array = node[keys[0]]
    return Source(str(path), "zarr", tuple(array.shape), np.dtype(array.dtype).str, key=keys[0]), meta


def _open_tiff(path):
    import tifffile

    from ..io import images
    from ..io.geotiff import tiff_placement

    with tifffile.TiffFile(path) as tif:
        if not tif.series or not tif.pages:
            raise InputError(f"cannot read {path}: no image data (corrupt or truncated TIFF)")
        series = tif.series[0]
        meta = {}
        axes = series.axes.replace("S", "C") if "C" not in series.axes else series.axes
        shaped = tif.shaped_metadata[0] if tif.is_shaped and tif.shaped_metadata else {}
        if tif.is_ome or tif.is_imagej or "axes" in shaped or set(axes) <= set(images.KNOWN_AXES):
            meta["axes"] = axes
        if tif.is_ome:
            meta.update(images._ome_tiff_pixel_size(tif.ome_metadata))
        elif tif.is_imagej:
            meta.update(images._imagej_pixel_size(tif))
        elif isinstance(shaped.get("pixel_size"), dict):
            meta["pixel_size"] = {k: float(v) for k, v in shaped["pixel_size"].items()}
            if shaped.get("unit"):
                meta["unit"] = str(shaped["unit"])
        meta.update(tiff_placement(tif))
        shape, dtype = tuple(int(n) for n in series.shape), np.dtype(series.dtype)
        offset = series.dataoffset
        native = dtype.byteorder in ("=", "|") or dtype.byteorder == {"little": "<", "big": ">"}[sys.byteorder]
        complete = offset is not None and offset + int(np.prod(shape)) * dtype.itemsize <= os.path.getsize(path)
        if offset is not None and native and complete:  # a truncated file is read through tifffile (errors, no crash)
            return Source(str(path), "tiff-mmap", shape, dtype.newbyteorder("=").str, offset=int(offset)), meta
        return Source(str(path), "tiff", shape, dtype.str), meta


# ----------------------------------------------------------------------------------------------- outputs


def output_kind(path) -> str:
    """"zarr" or "tiff" for an output path this module can write; OutputError for anything else."""
    suffix = Path(path).suffix.lower()
    if suffix in ZARR_SUFFIXES:
        return "zarr"
    if suffix in TIFF_SUFFIXES:
        return "tiff"
    raise OutputError(f"out-of-core outputs are Zarr (.zarr, .ome.zarr) or TIFF (.tif), not {Path(path).name}")


def _ngff_ok(axes: str) -> bool:
    order = ["TCZYX".index(a) for a in axes]
    return order == sorted(order) and sum(a in "ZYX" for a in axes) <= 3


class ZarrOutput:
    """An OME-Zarr group (axes in NGFF order) or a plain Zarr array, chunked per slice and 1024 px in Y/X."""

    def __init__(self, path: Path, shape, dtype, meta: dict, pyramid: int = 0):
        self.path, self.shape, self.dtype, self.meta, self.pyramid = path, tuple(shape), np.dtype(dtype), meta, pyramid
        axes = meta["axes"]
        self.ome = bool(meta.get("axes_known")) and _ngff_ok(axes)
        self.chunks = tuple(
            min(n, OUT_CHUNK) if a in "YX" else (n if a in "CS" else 1) for a, n in zip(axes, self.shape)
        )
        self._array = None

    def create(self):
        import zarr

        if self.ome:
            group = zarr.open_group(str(self.path), mode="w")
            group.create_array("0", shape=self.shape, dtype=self.dtype, chunks=self.chunks, fill_value=0)
        else:
            arr = zarr.create_array(str(self.path), shape=self.shape, dtype=self.dtype, chunks=self.chunks, fill_value=0)
            ours = {k: self.meta[k] for k in ("axes", "pixel_size", "unit") if self.meta.get(k)}
            if not self.meta.get("axes_known"):
                ours.pop("axes", None)
            if ours:
                arr.attrs[_META_KEY] = json.loads(json.dumps(ours))

    def array(self):
        import zarr

        if self._array is None:
            node = zarr.open(store=str(self.path), mode="r+")
            self._array = node["0"] if self.ome else node
        return self._array

    def write(self, index, block):
        self.array()[index] = block

    def finish(self):
        """Pyramid levels (if asked) and the OME-NGFF metadata, written last."""
        if not self.ome:
            return
        import zarr

        group = zarr.open_group(str(self.path), mode="r+")
        axes = self.meta["axes"]
        sizes = self.meta.get("pixel_size") or {}
        datasets = []
        for level in range(self.pyramid + 1):
            if level:
                _downsample_level(group, str(level - 1), str(level), axes)
            f = 2**level
            scale = [float(sizes.get(a, 1.0)) * (f if a in "YX" else 1) for a in axes]
            transforms = [{"type": "scale", "scale": scale}]
            if level:  # a level pixel is the mean of f x f level-0 pixels: its centre is shifted by (f - 1) / 2
                shift = [float(sizes.get(a, 1.0)) * (f - 1) / 2 if a in "YX" else 0.0 for a in axes]
                transforms.append({"type": "translation", "translation": shift})
            datasets.append({"path": str(level), "coordinateTransformations": transforms})
        from ..io.images import ngff_unit

        ngff_axes = []
        for a in axes:
            entry = {"name": a.lower(), "type": {"T": "time", "C": "channel"}.get(a, "space")}
            if a in "ZYX" and self.meta.get("unit"):
                entry["unit"] = ngff_unit(self.meta["unit"])
            ngff_axes.append(entry)
        group.attrs["ome"] = {"version": NGFF_VERSION, "multiscales": [{"axes": ngff_axes, "datasets": datasets}]}


def _downsample_level(group, src_key, dst_key, axes):
    """Next pyramid level: 2x2 mean in Y/X (rounded for integers), written chunk by chunk with dask."""
    import dask.array as da

    src = da.from_zarr(group[src_key])
    y, x = axes.index("Y"), axes.index("X")
    if src.shape[y] < 2 or src.shape[x] < 2:
        raise OutputError("image too small for another pyramid level")
    trimmed = src[tuple(slice(0, n - n % 2) if i in (y, x) else slice(None) for i, n in enumerate(src.shape))]
    small = da.coarsen(np.mean, trimmed.astype(np.float64), {y: 2, x: 2})
    if np.issubdtype(src.dtype, np.integer):
        small = da.round(small)
    small = small.astype(src.dtype)
    chunks = tuple(min(n, OUT_CHUNK) if i in (y, x) else c[0] for i, (n, c) in enumerate(zip(small.shape, src.chunks)))
    arr = group.create_array(dst_key, shape=small.shape, dtype=src.dtype, chunks=chunks, fill_value=0)
    da.store(small.rechunk(chunks), arr, lock=False)


class TiffOutput:
    """A BigTIFF (OME-TIFF metadata when the axes allow), allocated whole and written block by block.
    A georeferenced scene becomes a tiled GeoTIFF (``io.geotiff``, ``io.tiff_tiles``)."""

    def __init__(self, path: Path, shape, dtype, meta: dict):
        self.path, self.shape, self.dtype, self.meta = path, tuple(shape), np.dtype(dtype), meta
        self.offset = None
        self.tiles = None
        from ..io.geotiff import geotiff_layout

        self.geo = meta.get("geotiff") is not None and geotiff_layout(meta["axes"], self.shape) is not None

    def create(self):
        import tifffile

        axes = self.meta["axes"]
        if self.geo:
            from ..io.geotiff import write_geotiff

            with open(self.path, "wb") as f:
                write_geotiff(f, None, axes, self.meta["geotiff"], photometric=self.meta.get("photometric"),
                              bigtiff=True, shape=self.shape, dtype=self.dtype, tiled=True)
            return
        kw = dict(data=None, shape=self.shape, dtype=self.dtype, bigtiff=True, returnoffset=True, photometric="minisblack")
        if axes.endswith("YXC") and self.shape[-1] in (3, 4) and self.dtype in (np.uint8, np.uint16):
            kw.update(photometric="rgb", extrasamples=["unassalpha"] if self.shape[-1] == 4 else None)
        if self.meta.get("axes_known") and "C" not in axes[-1:]:
            ome = {"axes": axes}
            for a, size in (self.meta.get("pixel_size") or {}).items():
                if a in "ZYX":
                    ome[f"PhysicalSize{a}"] = float(size)
                    if self.meta.get("unit"):
                        ome[f"PhysicalSize{a}Unit"] = self.meta["unit"]
            kw.update(ome=True, metadata=ome)
        else:
            shaped = {"axes": axes} if self.meta.get("axes_known") else {}
            if self.meta.get("pixel_size"):
                shaped["pixel_size"] = self.meta["pixel_size"]
                if self.meta.get("unit"):
                    shaped["unit"] = self.meta["unit"]
            kw.update(metadata=shaped or None)
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
            from ..io.tiff_tiles import read_layout, write_region

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


# ----------------------------------------------------------------------------------------------- blocks


@dataclass(frozen=True)
class Block:
    """One unit of work: ``slices`` (a slice per axis, input pixels) and the Y/X core it writes."""

    index: int
    slices: Tuple[slice, ...]
    core: Tuple[int, int, int, int]


def plan_blocks(job: BlockJob, chunk: int):
    """The blocks of a job: Y/X aligned to window cores, about ``chunk`` pixels each; slices grouped along the
    innermost slice axis so a block holds about chunk x chunk input pixels."""
    if job.channels.alpha:  # alpha is resized by bicubic interpolation of whole planes
        yb, xb = [0, job.height], [0, job.width]
    else:
        yb, xb, _, _ = plan_chunks(job, tuple((chunk,) if a in "YX" else (n,) for a, n in zip(job.axes, job.shape)))
    layout = make_layout(job.shape, job.axes)
    slice_axes = [i for i, a in enumerate(job.axes) if i not in (job.y_axis, job.x_axis, layout.channel_axis)]
    per = max(1, (chunk * chunk) // max(1, max(np.diff(yb)) * max(np.diff(xb))))
    ranges = []
    for i in slice_axes:
        n = job.shape[i]
        step = min(per, n) if i == (slice_axes[-1] if slice_axes else None) else 1
        ranges.append([(s, min(s + step, n)) for s in range(0, n, step)])
    blocks = []
    for combo in np.ndindex(*[len(r) for r in ranges]) if ranges else [()]:
        lead = {ax: ranges[k][combo[k]] for k, ax in enumerate(slice_axes)}
        for y0, y1 in zip(yb[:-1], yb[1:]):
            for x0, x1 in zip(xb[:-1], xb[1:]):
                sl = []
                for i in range(len(job.shape)):
                    if i in lead:
                        sl.append(slice(*lead[i]))
                    elif i == job.y_axis:
                        sl.append(slice(y0, y1))
                    elif i == job.x_axis:
                        sl.append(slice(x0, x1))
                    else:
                        sl.append(slice(None))
                blocks.append(Block(len(blocks), tuple(sl), (y0, y1, x0, x1)))
    return blocks


def run_block(source: Source, job: BlockJob, block: Block) -> np.ndarray:
    """Read the block's input region (core plus the context its windows need) and upscale it."""
    y0, y1, x0, x1 = block.core
    ya, yb, xa, xb = job.source_span(y0, y1, x0, x1)
    index = list(block.slices)
    index[job.y_axis] = slice(ya, yb)
    index[job.x_axis] = slice(xa, xb)
    lead = tuple(block.slices[ax].start or 0 for ax in slice_axes(job))
    if source.nodata is None:
        return job.run(source.read(tuple(index)), (ya, xa), block.core, lead)
    from .scene import fill_nodata, nodata_mask, upscaled_mask

    region = source.read(tuple(index), fill=False)
    mask = nodata_mask(region, source.nodata)
    if mask is None:
        return job.run(region, (ya, xa), block.core, lead)
    out = job.run(fill_nodata(region, mask, job.y_axis, job.x_axis), (ya, xa), block.core, lead)
    core = [slice(None)] * mask.ndim
    core[job.y_axis], core[job.x_axis] = slice(y0 - ya, y1 - ya), slice(x0 - xa, x1 - xa)
    factors = [job.scale if i in (job.y_axis, job.x_axis) else 1 for i in range(mask.ndim)]
    out[upscaled_mask(mask[tuple(core)], factors)] = np.asarray(source.nodata).astype(out.dtype)
    return out


def out_index(job: BlockJob, block: Block):
    s = job.scale
    return tuple(
        slice(sl.start * s, sl.stop * s) if i in (job.y_axis, job.x_axis) else sl for i, sl in enumerate(block.slices)
    )


# ----------------------------------------------------------------------------------------------- the job


class Ledger:
    """``done.txt``: indices of the blocks on disk, appended (and synced) after each block is written."""

    def __init__(self, path: Path):
        self.path = path
        self.done = set()
        if path.exists():
            for line in path.read_text().splitlines():
                if line.strip().isdigit():  # a torn last line (crash mid-append) is ignored
                    self.done.add(int(line))
        self._f = None

    def add(self, index: int):
        if self._f is None:
            self._f = open(self.path, "a")
        self._f.write(f"{index}\n")
        self._f.flush()
        os.fsync(self._f.fileno())
        self.done.add(index)

    def close(self):
        if self._f is not None:
            self._f.close()
            self._f = None


def partial_dir(dst: Path) -> Path:
    return dst.parent / f".{dst.name}.partial"


def upscale_file(
    src,
    dst,
    model,
    options: Optional[UpscaleOptions] = None,
    *,
    chunk: Optional[int] = None,
    scheduler: Optional[str] = None,
    overwrite: bool = False,
    pyramid: int = 0,
    quiet: bool = False,
    on_block=None,
    **settings,
) -> Path:
    """Upscale the TIFF or Zarr ``src`` into ``dst`` (``.zarr``/``.ome.zarr`` or ``.tif``) block by block.

    ``options`` (an ``UpscaleOptions``, or its fields as keywords in ``settings``): how to upscale; Z is
    upscaled first when they say so (``engine.anisotropic``), streamed through dask into a Zarr inside the
    partial folder; ``bands`` applies to GeoTIFFs, or to any input when not "auto" (``engine.scene``).
    Resumes a previous interrupted run of the same job. ``scheduler``: a ``dask.distributed`` address (or
    ``$DASK_SCHEDULER_ADDRESS``) to run the blocks on. ``on_block(done, total)`` is called after each block
    is written. Returns ``dst``.
    """
    from .distributed import ModelHandle, connect, scheduler_address

    options = as_options(options, settings)
    src, dst = Path(src), Path(dst)
    kind = output_kind(dst)
    if (dst.exists() or dst.is_symlink()) and not overwrite:
        raise OutputError(f"output exists: {dst} (use --overwrite to replace it)")
    source, meta = open_source(src, options.axes)
    from .normalize import check_array

    check_array(np.zeros((1,) * len(source.shape), source.dtype))
    handle = model if isinstance(model, ModelHandle) else ModelHandle(as_srmodel(model))
    chunk = int(chunk or DEFAULT_CHUNK)
    z_factor = options.z_factor_for(handle.scale) if options.z_upscaled else None
    z_method = options.z_method
    shape = source.shape
    if z_factor:
        from .anisotropic import check_z_request

        check_z_request(np.zeros((1,) * len(shape), source.dtype), meta["axes"], handle, z_factor, z_method)
        shape = tuple(n * z_factor if a == "Z" else n for a, n in zip(meta["axes"], shape))
    channel_mode = options.channel_mode
    if options.bands != "auto" or meta.get("geotiff") is not None:
        from .scene import channel_mode_for

        channel_mode = channel_mode_for(shape, meta["axes"], options.bands, handle.channels, meta.get("photometric"))
    job = make_job(shape, source.dtype, handle, options.replace(axes=meta["axes"], channel_mode=channel_mode))
    out_meta = _output_meta(meta, job.scale, z_factor or 1)
    out_shape = job.out_shape()

    work = partial_dir(dst)
    spec = handle.normalization if options.normalization is None else options.normalization
    fingerprint = {
        "input": source.identity(),
        "model": handle.key,
        "axes": job.axes,
        "tile": options.tile,
        "overlap": options.overlap,
        "tta": bool(options.tta),
        "batch_size": options.batch_size,
        "normalization": spec,
        "chunk": chunk,
        "output": kind,
        "pyramid": int(pyramid),
        "z": [z_factor, z_method] if z_factor else None,
        "channel_mode": channel_mode,
    }
    state = _load_state(work, fingerprint)
    address = scheduler_address(scheduler)
    client = connect(address) if address else None
    try:
        if state is None:
            if work.exists():
                shutil.rmtree(work)
            work.mkdir()
        if z_factor:
            source = _z_stage(
                source, work, handle, meta["axes"], z_factor, z_method, options.normalization, options.tile,
                options.batch_size, quiet, client,
            )
        if state is None:
            with client.as_current() if client is not None else contextlib.nullcontext():  # statistics there too
                norm = fit_normalizer_lazy(source.to_dask(_stat_chunks(source, job)), job, spec)
            state = {"job": fingerprint, "normalizer": [norm.mode, norm.dtype.str, list(norm.offset), list(norm.factor)]}
            _write_json(work / "job.json", state)
        from dataclasses import replace

        from .normalize import Normalizer

        mode, ndt, offset, factor = state["normalizer"]
        job = replace(job, norm=Normalizer(mode, np.dtype(ndt), tuple(offset), tuple(factor)))
        data_path = work / ("data.zarr" if kind == "zarr" else "data.tif")
        writer = (
            ZarrOutput(data_path, out_shape, source.dtype, out_meta, pyramid)
            if kind == "zarr"
            else TiffOutput(data_path, out_shape, source.dtype, out_meta)
        )
        if not data_path.exists():
            (work / "done.txt").unlink(missing_ok=True)  # no data, nothing done
            _guard_space(lambda: writer.create(), dst, work, 0, 1)
        blocks = plan_blocks(job, chunk)
        ledger = Ledger(work / "done.txt")
        todo = [b for b in blocks if b.index not in ledger.done]
        if ledger.done and not quiet:
            print(f"{src}: resuming, {len(ledger.done)} of {len(blocks)} blocks already written", file=sys.stderr)
        bar = _bar(src.name, len(blocks), len(blocks) - len(todo), quiet)
        try:
            results = _results_local(source, job, todo) if client is None else _results_distributed(client, source, job, todo)
            for block, out in results:
                _guard_space(lambda: writer.write(out_index(job, block), out), dst, work, len(ledger.done), len(blocks))
                ledger.add(block.index)
                if bar is not None:
                    bar.update(1)
                if on_block is not None:
                    on_block(len(ledger.done), len(blocks))
        except KeyboardInterrupt:
            raise Cancelled(
                f"interrupted: {len(ledger.done)} of {len(blocks)} blocks of {dst.name} are kept in {work}; "
                "run the same command again to resume"
            ) from None
        finally:
            ledger.close()
            if bar is not None:
                bar.close()
        _guard_space(writer.finish, dst, work, len(blocks), len(blocks))
        _install(data_path, dst)
        shutil.rmtree(work, ignore_errors=True)
    finally:
        if client is not None:
            client.close()
    return dst


def _stat_chunks(source: Source, job: Optional[BlockJob], axes: Optional[str] = None):
    """Chunks for reading the whole input: one slice and up to 2048x2048 pixels, channels whole."""
    axes = job.axes if job is not None else axes
    return tuple(min(n, 2048) if a in "YX" else (n if a in "CS" else 1) for a, n in zip(axes, source.shape))


def _z_stage(source, work, handle, axes, factor, method, normalization, tile, batch_size, quiet, client=None) -> Source:
    """Upscale Z into ``work/z.zarr`` (skipped when an earlier run finished it); the XY step reads that."""
    import dask.array as da

    from .anisotropic import upscale_z

    target = work / "z.zarr"
    done = work / "z.done"
    if not done.exists():
        if target.exists():
            shutil.rmtree(target)
        if not quiet:
            print(f"{Path(source.path).name}: upscaling Z x{factor} ({method})", file=sys.stderr)
        lazy = upscale_z(
            source.to_dask(_stat_chunks(source, None, axes)), handle, axes=axes, factor=factor, method=method,
            normalization=normalization, tile=tile, batch_size=batch_size,
        )
        planes = tuple(min(n, OUT_CHUNK) if a in "YX" else (n if a in "CS" else 1) for a, n in zip(axes, lazy.shape))
        store = da.to_zarr(lazy.rechunk(planes), str(target), compute=False)
        try:
            if client is not None:
                client.compute(store).result()
            else:
                from dask.diagnostics import ProgressBar

                with ProgressBar(out=sys.stderr) if not quiet else contextlib.nullcontext():
                    store.compute()
        except OSError as exc:
            if exc.errno in NO_SPACE:
                raise OutputError(f"no space left for the Z step in {work}; free some space and run again") from None
            raise
        done.write_text("")
    import zarr

    arr = zarr.open_array(str(target), mode="r")
    return Source(str(target), "zarr", tuple(arr.shape), np.dtype(arr.dtype).str)


def _output_meta(meta: dict, scale: int, z_factor: int = 1) -> dict:
    from ..io.placement import upscaled_meta

    out = {"axes": meta["axes"], "axes_known": meta.get("axes_known", False)}
    out.update(upscaled_meta(meta, {"Y": scale, "X": scale, "Z": z_factor}))
    if not meta.get("pixel_size"):
        out.pop("unit", None)
    return out


def _results_local(source, job, blocks):
    for block in blocks:
        yield block, run_block(source, job, block)


def _results_distributed(client, source, job, blocks, in_flight: Optional[int] = None):
    """Blocks on the cluster, a few per worker in flight at a time; results in completion order."""
    from distributed import as_completed

    if not blocks:
        return
    job_f = client.scatter(job, broadcast=True, hash=False)
    source_f = client.scatter(source, broadcast=True, hash=False)
    workers = max(1, len(client.scheduler_info().get("workers", {})))
    limit = in_flight or 2 * workers
    pending = iter(blocks)
    by_key = {}

    def submit():
        block = next(pending, None)
        if block is None:
            return None
        fut = client.submit(run_block, source_f, job_f, block, pure=False, key=f"napari-superres-block-{block.index}-{time.time_ns()}")
        by_key[fut.key] = block
        return fut

    first = [f for f in (submit() for _ in range(limit)) if f is not None]
    queue = as_completed(first, with_results=True)
    for fut, result in queue:
        block = by_key.pop(fut.key)
        nxt = submit()
        if nxt is not None:
            queue.add(nxt)
        yield block, result
        fut.release()


def _guard_space(action, dst, work, done, total):
    try:
        return action()
    except OSError as exc:
        if exc.errno in NO_SPACE:
            raise OutputError(
                f"no space left writing {dst.name}: {done} of {total} blocks are complete and kept in {work}; "
                "free some space and run the same command again to resume"
            ) from None
        raise OutputError(f"cannot write {dst}: {one_line(exc)}") from None


def _install(data_path: Path, dst: Path):
    """Rename the finished output to its final name (replacing an old one when overwriting)."""
    if dst.exists() or dst.is_symlink():
        old = dst.parent / f".{dst.name}.old"
        if old.exists():
            shutil.rmtree(old) if old.is_dir() else old.unlink()
        os.replace(dst, old)
        os.replace(data_path, dst)
        shutil.rmtree(old) if old.is_dir() else old.unlink()
    else:
        os.replace(data_path, dst)


def _load_state(work: Path, fingerprint: dict):
    """The saved state of an earlier run of the same job, or None."""
    try:
        state = json.loads((work / "job.json").read_text())
    except (OSError, ValueError):
        return None
    return state if state.get("job") == json.loads(json.dumps(fingerprint)) else None


def _write_json(path: Path, obj):
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


def _bar(label, total, initial, quiet):
    if quiet:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=label, unit="block", file=sys.stderr, dynamic_ncols=True)
