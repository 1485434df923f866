"""``upscale_layer``: a napari Image layer in, the ``LayerDataTuple`` of its upscaled copy out.

Runs in napari's process and sends the pixels to the model worker, never importing TensorFlow here. The layer
is only duck-typed (``data``, ``rgb``, ``scale``, ``translate``, ``metadata``, ``name``, ``colormap``,
``contrast_limits``, ...), so anything shaped like an Image layer works.

Stacks go to the worker a few slices at a time (every slice, not only the one shown), so a Dask-backed layer is
read chunk by chunk and only the output has to fit in memory. The output overlays the input in world
coordinates (``engine/geometry.py``): ``scale' = scale / f`` and ``translate' = translate - scale (1 - 1/f) / 2``
on each upscaled axis.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ..engine.axes import resolve_axes
from ..engine.geometry import upscaled_scale_translate
from ..engine.normalize import fit_normalizer, parse_spec
from ..engine.options import RunControl, UpscaleOptions, as_options
from ..errors import InputError

# Work per worker call: about this many output bytes (at least one slice). Small enough to keep memory flat,
# big enough that the per-call overhead (a few milliseconds) does not matter.
CALL_OUTPUT_BYTES = 64 << 20
# Memory that must stay free besides the output (the worker's buffers for one call, napari itself).
MEMORY_RESERVE = 512 << 20
# Percentile statistics of a stack read lazily are taken from at most this many slices.
NORMALIZER_SAMPLE_SLICES = 16
_LEADING = {0: "", 1: "Z", 2: "TZ", 3: "TZC"}
_NOT_IMAGES = {"labels", "shapes", "points", "vectors", "tracks", "surface"}


def upscale_layer(
    layer,
    model,
    options: UpscaleOptions | None = None,
    *,
    device: str = "auto",
    progress: Callable[[int, int], None] | None = None,
    cancel=None,
    client=None,
    **settings,
):
    """Upscale an Image layer with ``model`` (a shipped/user model name or a ``.keras`` path) in the worker,
    as ``options`` (an ``UpscaleOptions``, or its fields as keywords: ``tile``, ``tta``, ``precision``,
    ``upscale_z``...) say.

    Returns ``(data, kwargs, "image")``: a NumPy array of the layer's dtype, upscaled in Y and X (and Z when
    ``upscale_z``), with the layer's name ``"name (x2 model)"``, world geometry, colormap, contrast limits,
    blending and metadata (plus ``metadata["napari_superres"]``). ``progress(done, total)`` counts tiles for
    one image and slices for a stack; ``cancel`` (Event or callable) stops with :class:`Cancelled`.
    """
    from ..worker.client import get_client

    options = as_options(options, settings)
    data, rgb, name = _image_data(layer)
    ax = _layer_axes(data, rgb, options.axes)
    if options.z_upscaled and "Z" not in ax:
        raise InputError(f"{name!r} has no Z axis (axes {ax}); upscaling Z needs a stack")
    client = client or get_client()
    info = client.model_info(model)
    scale = int(info["scale"])
    out_shape = options.upscaled_shape(data.shape, ax, scale)
    _check_memory(name, out_shape, data.dtype)

    options = options.replace(normalization=_shared_normalizer(data, ax, info, options.normalization))
    run = _Runner(client, info.get("path") or model, options, device, options.z_factor_for(scale),
                  RunControl(progress, cancel))
    out = np.empty(out_shape, dtype=data.dtype)
    if options.z_upscaled:
        _upscale_volumes(run, data, ax, out)
    else:
        _upscale_slices(run, data, ax, out)

    layer_ndim = data.ndim - (1 if rgb else 0)
    factors = options.axis_factors(ax[:layer_ndim], scale)
    up = "ZYX" if options.z_upscaled else "YX"
    return out, _layer_kwargs(layer, name, info, factors, up, options), "image"


# ---------------------------------------------------------------------------------------------- the layer

def _image_data(layer):
    """``(array, rgb, name)`` of an Image layer; InputError for anything else."""
    name = str(getattr(layer, "name", "layer"))
    kind = getattr(layer, "_type_string", None) or type(layer).__name__.lower()
    if kind in _NOT_IMAGES:
        raise InputError(f"{name!r} is a {kind} layer; only image layers can be upscaled")
    data = getattr(layer, "data", None)
    if getattr(layer, "multiscale", False):
        data = data[0]  # the full-resolution level
    if not (hasattr(data, "shape") and hasattr(data, "dtype") and hasattr(data, "__getitem__")):
        raise InputError(f"{name!r} holds no image array; only image layers can be upscaled")
    rgb = bool(getattr(layer, "rgb", False))
    shape = tuple(int(s) for s in data.shape)
    if 0 in shape:
        raise InputError(f"{name!r} is empty (shape {shape}); there is nothing to upscale")
    if len(shape) < (3 if rgb else 2):  # any size of Y and X is fine, 1 x 1 included (as in the API and CLI)
        raise InputError(f"{name!r} has no Y and X axes to upscale (shape {shape})")
    kind = np.dtype(data.dtype).kind
    if kind not in "iuf":
        raise InputError(f"{name!r} has data of type {data.dtype}; only integer and float images can be upscaled")
    return data, rgb, name


def _layer_axes(data, rgb: bool, axes: str | None) -> str:
    if axes is not None:
        return resolve_axes(axes, data.shape)
    lead = data.ndim - 2 - (1 if rgb else 0)
    if lead not in _LEADING:
        raise InputError(f"cannot guess the axes of a {data.ndim}-D layer; give them (e.g. axes='TZCYX')")
    return _LEADING[lead] + "YX" + ("C" if rgb else "")


def _check_memory(name: str, shape, dtype) -> None:
    """Refuse (before any work) an output that cannot fit in the memory available now (the worker's buffers
    for one call come out of MEMORY_RESERVE)."""
    import psutil

    need = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    free = psutil.virtual_memory().available
    if need + MEMORY_RESERVE > free:
        raise InputError(
            f"upscaling {name!r} would need {_human(need)} of memory for the result (shape "
            f"{'x'.join(map(str, shape))}, {np.dtype(dtype)}) but only {_human(free)} is available; "
            "crop the layer or upscale fewer slices"
        )


def _human(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024


def _layer_kwargs(layer, name, info, factors, up, options: UpscaleOptions) -> dict:
    ndim = len(factors)
    scale = _per_axis(getattr(layer, "scale", None), 1.0, ndim)
    translate = _per_axis(getattr(layer, "translate", None), 0.0, ndim)
    new_scale, new_translate = upscaled_scale_translate(scale, translate, factors)
    new_translate = _rotated_translate(layer, scale, translate, new_translate, factors)
    model_name = info.get("name") or "model"
    meta = dict(getattr(layer, "metadata", None) or {})
    meta["napari_superres"] = {
        "model": model_name,
        "model_path": info.get("path"),
        "scale": int(max(factors)),
        "upscaled_axes": up,
        "tile": options.tile,
        "tta": bool(options.tta),
        "precision": options.precision or "auto",  # as asked; auto resolves per machine and model in the worker
        "source_layer": name,
    }
    kwargs = {
        "name": f"{name} (x{int(max(factors))} {model_name})",
        "scale": new_scale,
        "translate": new_translate,
        "metadata": meta,
        "rgb": bool(getattr(layer, "rgb", False)),
    }
    for attr in ("contrast_limits", "blending", "opacity", "gamma", "axis_labels", "units", "rotate", "shear"):
        value = getattr(layer, attr, None)
        if value is not None:
            kwargs[attr] = list(value) if attr == "contrast_limits" else value
    affine = getattr(layer, "affine", None)
    if affine is not None:
        kwargs["affine"] = getattr(affine, "affine_matrix", affine)
    if not kwargs["rgb"] and getattr(layer, "colormap", None) is not None:
        kwargs["colormap"] = layer.colormap
    return kwargs


def _per_axis(values, default: float, ndim: int) -> tuple:
    return (default,) * ndim if values is None else tuple(float(v) for v in values)


def _rotated_translate(layer, scale, translate, new_translate, factors):
    """With a rotation or shear, the half-pixel shift turns with the data (napari: world = R Sh S x + t)."""
    rotate, shear = getattr(layer, "rotate", None), getattr(layer, "shear", None)
    if rotate is None and shear is None:
        return new_translate
    from napari.utils.transforms import Affine  # only real napari layers carry rotate/shear

    ndim = len(factors)
    linear = Affine(rotate=rotate, shear=shear, ndim=ndim).linear_matrix
    if np.allclose(linear, np.eye(ndim)):
        return new_translate
    s, f = np.asarray(scale, float), np.asarray(factors, float)
    return tuple((np.asarray(translate, float) - linear @ (s * (1.0 - 1.0 / f) / 2.0)).tolist())


# ---------------------------------------------------------------------------------------------- normalisation

def _shared_normalizer(data, ax: str, info: dict, normalization):
    """One fitted normalisation for the whole layer, so slices sent in separate calls match each other.

    Percentiles come from the whole layer (NumPy) or from evenly spaced slices (lazy arrays)."""
    spec = normalization if normalization is not None else (info.get("description") or {}).get("normalization")
    if parse_spec(spec)["mode"] == "range":
        return spec
    chan = next((i for i, a in enumerate(ax) if a in "CS"), None)
    lead = [i for i, a in enumerate(ax) if a not in "YXCS"]
    sample = data
    if not isinstance(data, np.ndarray) and lead:
        axis = max(lead, key=lambda i: data.shape[i])
        picks = np.unique(np.linspace(0, data.shape[axis] - 1, NORMALIZER_SAMPLE_SLICES).round().astype(int))
        before = (slice(None),) * axis
        sample = np.stack([_read(data, before + (int(i),)) for i in picks], axis=axis)
    return fit_normalizer(np.asarray(sample), spec, channel_axis=chan)


# ---------------------------------------------------------------------------------------------- the calls

def _upscale_slices(run: "_Runner", data, ax: str, out: np.ndarray) -> None:
    """Y and X only: the leading T/Z axes are carried outside the worker, a few slices per call."""
    outer = 0
    while outer < len(ax) and ax[outer] in "TZ":
        outer += 1
    run.plan(_images(data.shape, ax))
    if outer == 0:
        out[...] = run(_read(data, ()), ax)
        return
    for index in np.ndindex(*data.shape[: outer - 1]):
        _run_stack(run, data, index, ax[outer - 1 :], out[index])


def _upscale_volumes(run: "_Runner", data, ax: str, out: np.ndarray) -> None:
    """Z, Y and X: one call per volume (leading T axes carried outside the worker); the worker upscales Z
    first with the engine's anisotropic method (the model on the XZ and YZ planes), then Y and X."""
    outer = 0
    while ax[outer] == "T":
        outer += 1
    run.plan(math.prod(data.shape[:outer]) * data.shape[ax.index("Z")] * run.z_factor)
    for index in np.ndindex(*data.shape[:outer]):
        out[index] = run(_read(data, index), ax[outer:])


def _run_stack(run: "_Runner", data, prefix: tuple, ax: str, dst: np.ndarray) -> None:
    """``data[prefix]`` (axes ``ax``, slices first) through the worker in calls of about CALL_OUTPUT_BYTES of
    output, into ``dst``; Dask chunks along the slice axis are never split (each is computed once)."""
    n = dst.shape[0]
    per_slice = int(np.prod(dst.shape[1:], dtype=np.int64)) * dst.dtype.itemsize
    step = max(1, CALL_OUTPUT_BYTES // max(per_slice, 1))
    edges = [0, n]
    chunks = getattr(data, "chunks", None)
    if isinstance(chunks, tuple) and len(chunks) == data.ndim:
        along = chunks[len(prefix)]
        if isinstance(along, tuple):  # Dask: the chunk sizes
            edges = [int(e) for e in np.cumsum((0,) + along)]
        elif isinstance(along, int) and along > 0:  # Zarr: one chunk size
            edges = list(range(0, n, along)) + [n]
    for a, b in zip(edges[:-1], edges[1:]):
        chunk = _read(data, prefix + (slice(a, b),))
        for lo in range(0, b - a, step):
            part = chunk[lo : lo + step]
            result = run(np.ascontiguousarray(part), ax)
            dst[a + lo : a + lo + len(part)] = result


def _images(shape, ax: str) -> int:
    """2D images in an array: the progress unit for stacks."""
    return max(1, math.prod(s for s, a in zip(shape, ax) if a not in "YXCS"))


def _read(data, index: tuple) -> np.ndarray:
    """Read part of a layer as an in-memory array (a NumPy view is not copied; Dask/Zarr are computed)."""
    part = data[index] if index else data
    compute = getattr(part, "compute", None)
    return np.asarray(compute() if callable(compute) else part)


class _Runner:
    """Worker calls for one layer, with progress summed over the calls and cancel checked between them."""

    def __init__(self, client, model, options: UpscaleOptions, device: str, z_factor: int, control: RunControl):
        self.client, self.model, self.options, self.device = client, model, options, device
        self.z_factor, self.control = z_factor, control
        self.total = 0
        self.done = 0

    def plan(self, images: int) -> None:
        self.total += images

    def __call__(self, array: np.ndarray, axes: str) -> np.ndarray:
        self.control.check("upscaling cancelled")
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise InputError(
                "the layer contains NaN or infinite values; replace them (e.g. numpy.nan_to_num) before upscaling"
            )
        images = _images(array.shape, axes) * self.z_factor

        def relay(done, total):
            if self.control.progress is None:
                return
            if self.total <= 1:  # one image: report its tiles
                self.control.report(done, total)
            else:  # a stack: report slices
                self.control.report(min(self.done + images * done // max(total, 1), self.total), self.total)

        out = self.client.upscale(
            array, self.model, self.options.replace(axes=axes), device=self.device, progress=relay,
            cancel=self.control.cancelled,
        )
        self.done += images
        return out
