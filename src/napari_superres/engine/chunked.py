"""Out-of-core file jobs: a big TIFF or Zarr/OME-Zarr in, Zarr/OME-Zarr or BigTIFF out, block by block.

Memory is bounded by the block and tile sizes, not by the data: the input is read region by region
(``io.source``), each block runs the model on exactly the windows the in-memory path would use
(:class:`~napari_superres.engine.lazy.BlockJob`), and its result goes straight to the output
(``io.zarr_store``, ``io.tiff_store``).

The output is built in a hidden folder next to it and renamed to its name only when every block is written
(``engine.resume``). Running the same command again resumes from the blocks already written; a different job
(other model, options or input) starts over. A full disk stops the job with what is complete kept.

With a ``dask.distributed`` scheduler the blocks run on its workers (they read the input themselves, so it
must be on a filesystem they share, and load the model once per worker); this process writes the results.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

import numpy as np

from ..errors import Cancelled, OutputError
from ..io.atomic import replace_path
from ..io.source import Source, output_kind
from ..io.tiff_store import TiffOutput
from ..io.zarr_store import OUT_CHUNK, ZarrOutput
from .axes import make_layout
from .file_source import input_dask, open_source
from .lazy import BlockJob, fit_normalizer_lazy, make_job, plan_chunks, slice_axes
from .options import UpscaleOptions, as_options
from .predictor import as_srmodel
from .resume import NO_SPACE, Ledger, guard_space, load_state, partial_dir, write_json

DEFAULT_CHUNK = 1024  # block size in input pixels along Y and X


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

    region = source.read(tuple(index))
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
        "windows": [*job.tiles.window, len(job.tiles.rows), len(job.tiles.cols)],  # what "tile": None resolved to
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
    state = load_state(work, fingerprint)
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
                norm = fit_normalizer_lazy(input_dask(source, _stat_chunks(source, job)), job, spec)
            state = {"job": fingerprint, "normalizer": [norm.mode, norm.dtype.str, list(norm.offset), list(norm.factor)]}
            write_json(work / "job.json", state)
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
            guard_space(lambda: writer.create(), dst, work, 0, 1)
        blocks = plan_blocks(job, chunk)
        ledger = Ledger(work / "done.txt")
        todo = [b for b in blocks if b.index not in ledger.done]
        if ledger.done and not quiet:
            print(f"{src}: resuming, {len(ledger.done)} of {len(blocks)} blocks already written", file=sys.stderr)
        bar = _bar(src.name, len(blocks), len(blocks) - len(todo), quiet)
        try:
            results = _results_local(source, job, todo) if client is None else _results_distributed(client, source, job, todo)
            for block, out in results:
                guard_space(lambda: writer.write(out_index(job, block), out), dst, work, len(ledger.done), len(blocks))
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
        guard_space(writer.finish, dst, work, len(blocks), len(blocks))
        replace_path(data_path, dst)
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
            input_dask(source, _stat_chunks(source, None, axes)), handle, axes=axes, factor=factor, method=method,
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
    from .files import file_axes  # both paths give a file the same axes

    out = {"axes": file_axes(meta["axes"]), "axes_known": meta.get("axes_known", False)}
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


def _bar(label, total, initial, quiet):
    if quiet:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=label, unit="block", file=sys.stderr, dynamic_ncols=True)
