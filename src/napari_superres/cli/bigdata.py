"""The big-data side of ``napari-superres upscale``: its options, and when a file goes out of core.

A file is upscaled out of core (``engine.chunked``: block by block, resumable, bounded memory) when its output
is Zarr or TIFF and the input is a Zarr, or a TIFF too large to upscale in memory, or when an option asks for
it (``--chunk``, ``--scheduler``/``$DASK_SCHEDULER_ADDRESS``, ``--z-factor``, ``--pyramid``). Everything else
takes the in-memory path of ``upscale_cmd``.

Imports no Keras and no dask at import time.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from ..errors import InputError, OutputError, SuperResError

OOC_ENV = "NAPARI_SUPERRES_OOC_BYTES"  # float32 result size above which a TIFF goes out of core
OOC_DEFAULT_BYTES = 2 * 1024**3


def add_arguments(p):
    g = p.add_argument_group("big data (Zarr/TIFF outputs, out of core)")
    g.add_argument(
        "--chunk",
        type=int,
        metavar="N",
        help="work out of core in blocks of about N x N input pixels (default 1024 when out of core); the "
        "output is built in a hidden .NAME.partial folder and an interrupted run resumes from it",
    )
    g.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run the blocks on a dask.distributed cluster, e.g. tcp://10.0.0.5:8786 (default: "
        "$DASK_SCHEDULER_ADDRESS if set); the input must be on a filesystem the workers share",
    )
    g.add_argument("--z-factor", type=int, metavar="N", help="also upscale Z by N (anisotropic stacks; N = the model's scale)")
    g.add_argument(
        "--z-method",
        choices=("model", "linear"),
        default="model",
        help="Z upscaling: the 2D model on XZ and YZ planes (default) or linear interpolation",
    )
    g.add_argument("--pyramid", type=int, default=0, metavar="N", help="OME-Zarr output: add N half-size levels")


def _forced(args) -> list:
    from ..engine.distributed import scheduler_address

    flags = []
    if getattr(args, "chunk", None):
        flags.append("--chunk")
    if scheduler_address(getattr(args, "scheduler", None)):
        flags.append("--scheduler")
    if (getattr(args, "z_factor", None) or 1) > 1:
        flags.append("--z-factor")
    if getattr(args, "pyramid", 0):
        flags.append("--pyramid")
    return flags


def wants(src, dst, args) -> bool:
    """Whether ``src`` -> ``dst`` goes out of core. Checks the input (and a scheduler's reachability) now,
    before any model loads; raises a SuperResError for what cannot work."""
    src, dst = Path(src), Path(dst)
    forced = _forced(args)
    if _medical(src):  # read whole; --z-factor runs in memory (engine.files)
        other = [flag for flag in forced if flag != "--z-factor"]
        if other:
            raise InputError(f"{', '.join(other)}: NIfTI and DICOM inputs are upscaled in memory, not out of core")
        return False
    out_ok = dst.suffix.lower() in (".zarr", ".tif", ".tiff")
    if forced and not out_ok:
        raise OutputError(f"{', '.join(forced)}: the output must be Zarr (.zarr, .ome.zarr) or TIFF (.tif), not {dst.name}")
    if not out_ok:
        return False
    suffix = src.suffix.lower()
    if suffix not in (".zarr", ".tif", ".tiff"):
        if forced:
            raise InputError(f"{', '.join(forced)}: out-of-core upscaling reads TIFF or Zarr, not {src.name}")
        return False
    from ..engine.file_source import open_source

    if not forced and suffix != ".zarr":
        if not _too_big(src):
            return False
    if getattr(args, "chunk", None) is not None and args.chunk < 16:
        raise InputError(f"--chunk must be at least 16 pixels, got {args.chunk}")
    if getattr(args, "pyramid", 0) < 0:
        raise InputError("--pyramid must be >= 0")
    open_source(src, args.axes)  # bad file or missing axes: said now
    _probe_scheduler(args)
    return True


def _medical(src: Path) -> bool:
    from ..io import is_dicom_folder, is_nifti

    return is_nifti(src) or is_dicom_folder(src)


def _too_big(src: Path) -> bool:
    """A TIFF whose float32 result would not fit comfortably in memory."""
    import numpy as np
    import tifffile

    try:
        with tifffile.TiffFile(src) as tif:
            shape = tif.series[0].shape
    except Exception:
        return False  # the in-memory path reports the broken file
    result_bytes = int(np.prod(shape, dtype=np.int64)) * 4 * 4  # float32 at x2 (x3, x4 models: larger still)
    limit = int(os.environ.get(OOC_ENV, OOC_DEFAULT_BYTES))
    try:
        import psutil

        limit = min(limit, psutil.virtual_memory().available // 4)
    except Exception:
        pass
    return result_bytes > limit


_PROBED: set = set()


def _probe_scheduler(args, timeout: float = 5.0):
    """A quick TCP check of the scheduler address, so a typo fails in seconds, before TensorFlow loads."""
    from ..engine.distributed import scheduler_address

    address = scheduler_address(getattr(args, "scheduler", None))
    if not address or address in _PROBED:
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise SuperResError(f"not a Dask scheduler address: {address!r} (expected tcp://HOST:PORT)")
    start = time.monotonic()
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise SuperResError(
            f"cannot reach the Dask scheduler at {address} ({exc.strerror or exc}, after "
            f"{time.monotonic() - start:.1f} s); check the address and that the scheduler is running"
        ) from None
    _PROBED.add(address)


def run_one(src, dst, model, options, args) -> Path:
    """Upscale one file out of core as ``options`` say (``args``: where and how to run the blocks); prints
    the usual one line per file. Returns the path written."""
    from ..engine.chunked import upscale_file
    from ..models.precision import with_precision

    # Out of core the blocks compute in float32: cluster workers reload the model file, and a resumed job must
    # not mix blocks of two precisions.
    if getattr(model, "precision", "float32") != "float32":
        model = with_precision(model, "float32")
        if not args.quiet:
            print(f"{src}: out of core, computed in float32")
    start = time.perf_counter()
    Path(dst).parent.mkdir(exist_ok=True)
    out = upscale_file(
        src, dst, model, options, chunk=args.chunk, scheduler=args.scheduler, overwrite=args.overwrite,
        pyramid=args.pyramid, quiet=args.quiet,
    )
    if not args.quiet:
        print(f"{src} -> {out}  (out of core, {time.perf_counter() - start:.1f} s)")
    return out
