"""Zarr and OME-Zarr (NGFF): the image array and metadata of a store, written whole or block by block.

Axes that OME-Zarr can name (time, then channel, then space; Y and X present) are written as an OME-Zarr
group: the image as array ``0``, pyramid levels (if asked) as ``1``, ``2``, ... and the NGFF ``multiscales``
metadata with pixel sizes and unit. Other axes go into a plain Zarr array, with axes, pixel sizes and unit under
:data:`~napari_superres.io.meta.META_KEY` in its attributes. Reading understands both, and OME-Zarr written by
other tools (level 0 of a pyramid, NGFF 0.4 or 0.5).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError, OutputError, one_line
from .meta import META_KEY, drop_bad_axes, own_metadata

NGFF_VERSION = "0.5"
NGFF_ORDER = "TCZYX"  # time, channel, space
NGFF_UNITS = {"µm": "micrometer", "nm": "nanometer", "mm": "millimeter", "cm": "centimeter", "m": "meter"}
OUT_CHUNK = 1024  # chunk side along Y and X of the Zarr outputs written block by block


# ----------------------------------------------------------------------------------------------- metadata


def ngff_axes_ok(axes) -> bool:
    """Whether OME-Zarr can name these axes: letters of T, C, Z, Y, X, each once, in that order, Y and X there."""
    if not axes or not set(axes) <= set(NGFF_ORDER) or len(set(axes)) != len(axes) or not {"Y", "X"} <= set(axes):
        return False
    order = [NGFF_ORDER.index(a) for a in axes]
    return order == sorted(order)


def ngff_unit(unit):
    """The OME-Zarr (NGFF) name of a pixel-size unit (``um`` -> ``micrometer``)."""
    return NGFF_UNITS.get("µm" if unit in ("um", "micron") else unit, unit)


def ngff_metadata(axes: str, meta: dict, levels: int = 1) -> dict:
    """The group's ``ome`` attribute: ``levels`` datasets ``0``, ``1``, ... each halving Y and X."""
    sizes = meta.get("pixel_size") or {}
    datasets = []
    for level in range(levels):
        f = 2**level
        scale = [float(sizes.get(a, 1.0)) * (f if a in "YX" else 1) for a in axes]
        transforms = [{"type": "scale", "scale": scale}]
        if level:  # a level pixel is the mean of f x f level-0 pixels: its centre is shifted by (f - 1) / 2
            shift = [float(sizes.get(a, 1.0)) * (f - 1) / 2 if a in "YX" else 0.0 for a in axes]
            transforms.append({"type": "translation", "translation": shift})
        datasets.append({"path": str(level), "coordinateTransformations": transforms})
    ngff_axes = []
    for a in axes:
        entry = {"name": a.lower(), "type": {"T": "time", "C": "channel"}.get(a, "space")}
        if a in "ZYX" and meta.get("unit"):
            entry["unit"] = ngff_unit(meta["unit"])
        ngff_axes.append(entry)
    return {"version": NGFF_VERSION, "multiscales": [{"axes": ngff_axes, "datasets": datasets}]}


def _set_plain_metadata(array, meta: dict) -> None:
    ours = own_metadata(meta)
    if ours:
        array.attrs[META_KEY] = ours


# ----------------------------------------------------------------------------------------------- reading


def image_array(node, path) -> tuple:
    """``(array, key, meta)`` of an opened Zarr store: the image array (level 0 of an OME-Zarr pyramid, the one
    array of a plain group), its key in the store ("" for a bare array) and the axes, pixel sizes and unit the
    metadata states."""
    import zarr

    meta = {}
    if isinstance(node, zarr.Array):
        ours = node.attrs.get(META_KEY)
        if isinstance(ours, dict):
            meta.update({k: ours[k] for k in ("axes", "pixel_size", "unit") if k in ours})
        return node, "", meta
    attrs = dict(node.attrs)
    multiscales = attrs.get("ome", {}).get("multiscales") or attrs.get("multiscales")
    if multiscales:
        ms = multiscales[0]
        level0 = ms["datasets"][0]
        names = [a["name"] if isinstance(a, dict) else a for a in ms.get("axes", [])]
        if names:
            meta["axes"] = "".join(n.upper() for n in names)
        scale = next((t["scale"] for t in level0.get("coordinateTransformations", []) if t.get("type") == "scale"), None)
        if scale and names and len(scale) == len(names):
            meta["pixel_size"] = {n.upper(): float(s) for n, s in zip(names, scale) if n.upper() in "ZYX"}
            units = {a.get("unit") for a in ms.get("axes", []) if isinstance(a, dict) and a.get("unit")}
            if len(units) == 1:
                unit = units.pop()
                meta["unit"] = {v: k for k, v in NGFF_UNITS.items()}.get(unit, unit)
        return node[level0["path"]], level0["path"], meta
    keys = list(node.array_keys())
    if len(keys) != 1:
        raise InputError(f"Zarr group {path} is not OME-Zarr and holds {len(keys)} arrays; point to the array inside it")
    return node[keys[0]], keys[0], meta


def read_zarr(path) -> tuple:
    """``(array in memory, meta)`` of the Zarr/OME-Zarr at ``path``."""
    import zarr

    try:
        node = zarr.open(store=str(path), mode="r")
    except Exception as exc:
        raise InputError(f"cannot open Zarr {path}: {one_line(exc)}") from None
    array, _, meta = image_array(node, path)
    return np.asarray(array[...]), meta


# ----------------------------------------------------------------------------------------------- writing


def write_zarr(target, array: np.ndarray, meta: dict) -> None:
    """Write ``array`` whole to a new store at ``target``: OME-Zarr when its axes allow, else a plain array."""
    import zarr

    axes = meta.get("axes")
    chunks = tuple(min(n, OUT_CHUNK) if i >= array.ndim - 3 else 1 for i, n in enumerate(array.shape))
    if ngff_axes_ok(axes):
        group = zarr.open_group(str(target), mode="w")
        group.create_array("0", shape=array.shape, dtype=array.dtype, chunks=chunks)[...] = array
        group.attrs["ome"] = ngff_metadata(axes, meta)
    else:
        arr = zarr.create_array(str(target), shape=array.shape, dtype=array.dtype, chunks=chunks)
        arr[...] = array
        _set_plain_metadata(arr, meta)


class ZarrOutput:
    """A Zarr output written block by block: OME-Zarr when the axes are known and OME-Zarr can name them, else a
    plain array (the same choice as :func:`write_zarr`); chunked per slice and :data:`OUT_CHUNK` px in Y/X.

    ``meta``: ``axes`` (those of the data), ``axes_known`` (whether they are written), pixel sizes and unit."""

    def __init__(self, path: Path, shape, dtype, meta: dict, pyramid: int = 0):
        self.path, self.shape, self.dtype, self.pyramid = path, tuple(shape), np.dtype(dtype), pyramid
        axes = meta["axes"]
        self.meta = {k: v for k, v in meta.items() if k != "axes" or meta.get("axes_known")}
        drop_bad_axes(self.meta, len(self.shape))
        self.ome = ngff_axes_ok(self.meta.get("axes"))
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
            _set_plain_metadata(arr, self.meta)

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
        for level in range(1, self.pyramid + 1):
            _downsample_level(group, str(level - 1), str(level), axes)
        group.attrs["ome"] = ngff_metadata(axes, self.meta, self.pyramid + 1)


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
