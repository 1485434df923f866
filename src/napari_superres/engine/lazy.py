"""Dask in, Dask out: ``upscale`` on a lazy array, block by block, equal to the in-memory result up to float32 rounding.

How the blocks stay identical to the in-memory path:

- Same windows, same code. The in-memory path cuts each slice into the windows of one ``tiling.TilePlan``
  (``predictor.tile_plan``); a block carries that same whole-image plan, its Y and X chunks are aligned to
  the boundaries of the windows' cores, and it runs exactly the windows whose cores it holds, in batches of
  the sizes the in-memory run gives them, through the same ``predictor.upscale_batches``. A block reads its
  chunk plus ``depth`` pixels of its neighbours (``dask.array.map_overlap``, Y and X only), the context those
  windows need. The model thus sees the same pixels in the same window shapes as in memory.
- Same numbers. Percentile normalisation is fitted once on the whole array, before any block runs
  (``quantiles.percentiles``: exact, equal to ``numpy.percentile``); every block applies that one fit.

Chunking is adapted where it must be, with a :class:`RechunkWarning`: a channel axis split across chunks is
joined (channels go through the model together or are normalised per channel), Y/X chunks smaller than a
tile are merged, and RGBA data gets whole planes (its alpha is resized by bicubic interpolation of the plane).
Axes other than Y, X and the channel keep their chunks: a block of 4 slices runs 4 slices.

The model travels in the graph as a :class:`~napari_superres.engine.distributed.ModelHandle`, so the same
array computes with threads, processes or on a ``dask.distributed`` cluster, loading the model once per
worker process.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from .axes import ChannelPlan, from_batches, make_layout, plan_channels, to_batches
from .distributed import ModelHandle
from .normalize import Normalizer, check_array, check_finite, fit_normalizer, parse_spec
from .options import NO_CONTROL, RunControl, UpscaleOptions, as_options
from .predictor import as_srmodel, tile_plan, upscale_batches
from .quantiles import percentiles
from .tiling import TilePlan

__all__ = ["upscale_dask", "BlockJob", "make_job", "fit_normalizer_lazy", "RechunkWarning"]


class RechunkWarning(UserWarning):
    """The input's chunks did not fit the model's tiling and were changed (the message says how)."""


# ----------------------------------------------------------------------------------------------- the job


@dataclass(frozen=True)
class BlockJob:
    """Everything one block needs, picklable: the whole image's window plan, the channel plan, the fitted
    normalisation, the model. Blocks run ``predictor.upscale_batches``, as the in-memory path does."""

    axes: str
    shape: Tuple[int, ...]
    dtype: str
    model: ModelHandle
    norm: Optional[Normalizer]
    channels: ChannelPlan
    tiles: TilePlan
    tta: bool

    @property
    def scale(self) -> int:
        return self.tiles.scale

    @property
    def y_axis(self) -> int:
        return self.axes.index("Y")

    @property
    def x_axis(self) -> int:
        return self.axes.index("X")

    @property
    def height(self) -> int:
        return self.shape[self.y_axis]

    @property
    def width(self) -> int:
        return self.shape[self.x_axis]

    def out_shape(self, shape=None) -> Tuple[int, ...]:
        shape = self.shape if shape is None else shape
        return tuple(n * self.scale if a in "YX" else n for a, n in zip(self.axes, shape))

    def source_span(self, y0: int, y1: int, x0: int, x1: int) -> Tuple[int, int, int, int]:
        """Input rows [ya, yb) and columns [xa, xb) that the windows of core region [y0, y1) x [x0, x1) read."""
        return self.tiles.source_span(y0, y1, x0, x1)

    def run(self, region: np.ndarray, origin: Tuple[int, int], core: Tuple[int, int, int, int], lead=()) -> np.ndarray:
        """Upscale the core ``[y0, y1) x [x0, x1)`` (image pixels) of ``region``, an input block in the data's
        axes whose Y/X start at ``origin`` and that holds ``source_span(core)``. ``lead``: where the block
        starts along the slice axes (every axis but Y, X and the channel), in the data's order. Returns the
        output block."""
        region = np.asarray(region)
        layout = make_layout(region.shape, self.axes)
        x = to_batches(region, layout)
        if np.issubdtype(x.dtype, np.floating):
            check_finite(x)
        if self.channels.alpha and (region.shape[self.y_axis] != self.height or region.shape[self.x_axis] != self.width):
            raise ValueError("RGBA blocks must hold whole planes")  # alpha is resized from the whole plane
        full = make_layout(self.shape, self.axes)
        y = upscale_batches(
            x, self.model.get(), self.channels, self.norm, self.tiles, tta=self.tta, dtype=np.dtype(self.dtype),
            core=core, origin=origin, image_ids=self._image_ids(layout, full, tuple(lead)),
            n_images=full.n_slices * self._per_slice(full),
        )
        return from_batches(y, layout, self.scale)

    def _per_slice(self, layout) -> int:
        """Model images per slice: one, or one per channel when they go through the model separately."""
        return layout.channels - (1 if self.channels.alpha else 0) if self.channels.separate else 1

    def _image_ids(self, layout, full, lead) -> np.ndarray:
        """Index, in the whole array's model images, of each model image of this block."""
        if not layout.slice_shape:
            flat = np.zeros(1, np.int64)
        else:
            local = np.indices(layout.slice_shape).reshape(len(layout.slice_shape), -1)
            lead = lead or (0,) * len(layout.slice_shape)
            flat = np.ravel_multi_index(tuple(local + np.reshape(lead, (-1, 1))), full.slice_shape)
        c = self._per_slice(full)  # fold_channels puts channel c of slice n at n * C + c
        return (flat[:, None] * c + np.arange(c)).reshape(-1)

    def __dask_tokenize__(self):
        return ("BlockJob", self.axes, self.shape, self.dtype, self.model.key, self.norm, self.channels, self.tiles, self.tta)


def make_job(shape, dtype, model, options: Optional[UpscaleOptions] = None, norm: Optional[Normalizer] = None) -> BlockJob:
    """The block job for data of ``shape``/``dtype``: the same windows, batch size and channel plan as
    ``upscale_numpy`` uses on the whole array."""
    options = options or UpscaleOptions()
    layout = make_layout(shape, options.axes)
    handle = model if isinstance(model, ModelHandle) else ModelHandle(as_srmodel(model))
    channels = plan_channels(layout, handle.channels, options.channel_mode)
    tiles = tile_plan(layout.height, layout.width, handle, options)
    return BlockJob(
        layout.axes, tuple(int(n) for n in shape), np.dtype(dtype).str, handle, norm, channels, tiles, bool(options.tta)
    )


# ----------------------------------------------------------------------------------------------- chunks


def core_bounds(windows, length: int, target: int, minimum: int = 1):
    """Chunk boundaries along one axis that fall on window-core boundaries, each chunk about ``target``
    pixels (at least one core, at least ``minimum``; a short last chunk joins the one before)."""
    ends = [min(w[2], length) for w in windows if w[1] < length]
    size = max(int(target), int(minimum), 1)
    bounds = [0]
    for e in ends:
        if e - bounds[-1] >= size or e == length:
            bounds.append(e)
    if len(bounds) > 2 and bounds[-1] - bounds[-2] < max(minimum, 1):
        del bounds[-2]
    return bounds


def _depth(job: BlockJob, bounds, axis: str) -> int:
    """Pixels of neighbouring chunks the windows of each chunk read, at most (0 for a single chunk)."""
    if len(bounds) == 2:
        return 0
    depth = 0
    for b0, b1 in zip(bounds[:-1], bounds[1:]):
        if axis == "Y":
            lo, hi, _, _ = job.source_span(b0, b1, 0, job.width)
        else:
            _, _, lo, hi = job.source_span(0, job.height, b0, b1)
        depth = max(depth, b0 - lo, hi - b1)
    return depth


def plan_chunks(job: BlockJob, chunks) -> Tuple[list, list, int, int]:
    """Y and X chunk boundaries aligned to window cores, near the given ``chunks``' sizes, each at least as
    large as the context (depth) a block reads from its neighbours. Returns (ybounds, xbounds, dy, dx)."""
    ty = max(chunks[job.y_axis]) if chunks else job.height
    tx = max(chunks[job.x_axis]) if chunks else job.width
    result = []
    for axis, windows, length, target in (("Y", job.tiles.rows, job.height, ty), ("X", job.tiles.cols, job.width, tx)):
        minimum = 1
        for _ in range(4):  # the depth depends on the grouping; a larger minimum never raises it
            bounds = core_bounds(windows, length, target, minimum)
            depth = _depth(job, bounds, axis)
            if len(bounds) == 2 or min(np.diff(bounds)) >= depth:
                break
            minimum = depth
        result.append((bounds, depth))
    (yb, dy), (xb, dx) = result
    return yb, xb, dy, dx


def fit_chunks(data, job: BlockJob):
    """``(data rechunked for job, ybounds, xbounds, (dy, dx))``: channel axis whole, Y/X chunks aligned to
    window cores (whole planes for RGBA), ``dy``/``dx`` the context a block reads from its neighbours. Warns
    (RechunkWarning) when the user's chunking is changed in substance."""
    notes = []
    new = {}
    layout = make_layout(data.shape, job.axes)
    if layout.channel_axis is not None and len(data.chunks[layout.channel_axis]) > 1:
        new[layout.channel_axis] = -1
        notes.append(f"the channel axis ({job.axes[layout.channel_axis]}) is split across chunks; joined")
    if job.channels.alpha:
        yb, xb, dy, dx = [0, job.height], [0, job.width], 0, 0
        if len(data.chunks[job.y_axis]) > 1 or len(data.chunks[job.x_axis]) > 1:
            notes.append("RGBA needs whole Y/X planes (alpha is resized by bicubic interpolation of the plane)")
    else:
        yb, xb, dy, dx = plan_chunks(job, data.chunks)
        for a, windows in (("Y", job.tiles.rows), ("X", job.tiles.cols)):
            i = job.axes.index(a)
            core = max(min(w[2], job.shape[i]) - w[1] for w in windows)
            if max(data.chunks[i]) < core:
                notes.append(f"{a} chunks ({max(data.chunks[i])} px) are smaller than a tile ({core} px); merged")
    new[job.y_axis] = tuple(np.diff(yb).tolist())
    new[job.x_axis] = tuple(np.diff(xb).tolist())
    if notes:
        warnings.warn("Re-chunking the input: " + "; ".join(notes) + ".", RechunkWarning, stacklevel=3)
    return data.rechunk(new), yb, xb, (dy, dx)


# ----------------------------------------------------------------------------------------------- normalisation


def fit_normalizer_lazy(data, job_or_axes, spec=None) -> Normalizer:
    """``normalize.fit_normalizer`` for a dask array: percentiles over the whole array (exact, block by
    block), per channel; the same numbers as the in-memory path."""
    if isinstance(spec, Normalizer):
        return spec
    spec = parse_spec(spec)
    if spec["mode"] == "range":
        return fit_normalizer(data, spec)
    axes = job_or_axes.axes if isinstance(job_or_axes, BlockJob) else job_or_axes
    layout = make_layout(data.shape, axes)
    lo, hi = percentiles(data, [spec["low"], spec["high"]], layout.channel_axis)
    factor = np.where(hi > lo, hi - lo, 1.0)
    return Normalizer("percentile", np.dtype(data.dtype), tuple(lo.tolist()), tuple(factor.tolist()))


# ----------------------------------------------------------------------------------------------- dask


class _Tracker:
    """Progress and cancel across blocks in this process; dropped when a block is sent elsewhere."""

    def __init__(self, total: int, control: RunControl):
        self.total, self.control = total, control
        self.done = 0
        self.lock = threading.Lock()

    def before(self):
        self.control.check()

    def after(self):
        if self.control.progress is not None:
            with self.lock:
                self.done += 1
                done = self.done
            self.control.report(done, self.total)

    def __getstate__(self):
        return {"total": self.total, "control": NO_CONTROL, "done": 0}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.lock = threading.Lock()


def _run_block(region, job: BlockJob, ybounds, xbounds, halo, starts, tracker=None, block_id=None):
    """map_overlap's function: the block's place from its id, its halo from the depth (none at the edges).
    ``starts``: per slice axis, where each chunk begins."""
    if tracker is not None:
        tracker.before()
    i, j = block_id[job.y_axis], block_id[job.x_axis]
    y0, y1, x0, x1 = ybounds[i], ybounds[i + 1], xbounds[j], xbounds[j + 1]
    ya, xa = max(0, y0 - halo[0]), max(0, x0 - halo[1])
    lead = tuple(starts[ax][block_id[ax]] for ax in sorted(starts))
    out = job.run(region, (ya, xa), (y0, y1, x0, x1), lead)
    if tracker is not None:
        tracker.after()
    return out


def upscale_dask(data, model, options: Optional[UpscaleOptions] = None, control: RunControl = NO_CONTROL, **settings):
    """:func:`~napari_superres.engine.api.upscale` for a dask array: returns a dask array of the input's dtype,
    Y and X times the model's scale, computed block by block when asked. Percentile statistics (if the
    model normalises by percentiles) are computed now, in one pass over the data.

    ``control``'s progress counts blocks; progress and cancel work with the local schedulers (threads, the
    default) and are left out when blocks run on other processes.
    """
    import dask.array as da

    check_array(data)
    options = as_options(options, settings).xy_only()
    job = make_job(data.shape, data.dtype, model, options)
    data, yb, xb, halo = fit_chunks(data, job)
    spec = job.model.normalization if options.normalization is None else options.normalization
    job = _with_norm(job, fit_normalizer_lazy(data, job, spec))
    out_chunks = tuple(
        tuple(c * job.scale for c in ch) if a in "YX" else ch for a, ch in zip(job.axes, data.chunks)
    )
    tracker = _Tracker(int(np.prod(data.numblocks)), control) if control.active else None
    return da.map_overlap(
        _run_block,
        data,
        depth={job.y_axis: halo[0], job.x_axis: halo[1]},
        boundary="none",
        trim=False,
        chunks=out_chunks,
        dtype=np.dtype(job.dtype),
        meta=np.empty((0,) * data.ndim, np.dtype(job.dtype)),
        job=job,
        ybounds=tuple(yb),
        xbounds=tuple(xb),
        halo=halo,
        starts=_slice_starts(job, data.chunks),
        tracker=tracker,
    )


def slice_axes(job: BlockJob):
    """The data's axes that are carried slice by slice (not Y, X or the channel axis)."""
    chan = make_layout(job.shape, job.axes).channel_axis
    return [i for i in range(len(job.shape)) if i not in (job.y_axis, job.x_axis, chan)]


def _slice_starts(job: BlockJob, chunks) -> dict:
    return {ax: tuple(np.cumsum((0,) + chunks[ax][:-1]).tolist()) for ax in slice_axes(job)}


def _with_norm(job: BlockJob, norm: Normalizer) -> BlockJob:
    from dataclasses import replace

    return replace(job, norm=norm)
