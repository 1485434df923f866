"""``napari-superres upscale INPUT... -m MODEL -o OUT``: upscale image files, stacks and folders.

One input file: OUT is the output file (or an existing folder to write into). Several inputs or a folder: OUT is
a folder; each output keeps its input's name and format (TIFF when the format cannot hold the result).

Everything that can be checked before the model runs is checked first (inputs exist, outputs do not, the output
folder is writable), so a mistake costs a second, not a run. Outputs are written atomically. In a batch a bad
file is reported and the others are still processed; the exit code is then 1.

This module imports no Keras at import time: ``--device`` must set the environment before TensorFlow loads.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from ..errors import InputError, OutputError, SuperResError
from . import bigdata
from ._common import Progress, at_least, check_gpu, prepare_device, quiet_native_stderr, upscale_options

BATCH_FAILED = 1  # some files of a batch failed (user errors of a single run exit 2, see cli.main)


_positive_int = at_least(1)


def _bands(text):
    from ..engine.scene import parse_bands

    try:
        return parse_bands(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
_non_negative_int = at_least(0)


def add_parser(subparsers):
    p = subparsers.add_parser(
        "upscale",
        help="upscale images, stacks or folders with a model",
        description="Upscale image files (TIFF and GeoTIFF, PNG, JPEG, NPY, Zarr, NIfTI .nii/.nii.gz) or DICOM "
        "series (a folder holding one series) or folders of images with a super-resolution model. MODEL is a "
        "shipped or user model's name (see `napari-superres models`) or a .keras file. Outputs keep their "
        "place: pixel sizes, GeoTIFF georeferencing and NIfTI affines are updated so the output lies exactly "
        "over the input.",
        epilog="One input: OUT is the output file, or a folder to write into. Several inputs or a folder: OUT is a "
        "folder (made if missing); outputs keep their input's name and format (a DICOM series becomes "
        "NAME.nii.gz: DICOM is read, never written; write .nii, .nii.gz or .tif). NIfTI and DICOM need the "
        "'medical' extra. Exit codes: 0 done, 1 some files of a batch failed (the others were written), 2 nothing "
        "was done (the error says why).",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders of images")
    p.add_argument("-m", "--model", required=True, help="model name or path to a .keras file")
    p.add_argument(
        "-o", "--output", required=True, metavar="OUT", help="output file (one input) or folder (several inputs)"
    )
    p.add_argument(
        "--tile",
        type=_non_negative_int,
        metavar="N",
        help="tile size in input pixels; 0: the whole image at once (default: the whole image when it fits "
        "one model call: 512x512 for edsr-x2, more for lighter models; else the fewest-pixel windows of one call "
        "each)",
    )
    p.add_argument(
        "--overlap", type=_non_negative_int, metavar="N", help="context pixels per tile side (default: the model's)"
    )
    p.add_argument("--axes", help="axes of the input in napari order, e.g. YX, YXC, ZYX, TZYX, CYX")
    p.add_argument("--tta", action="store_true", help="self-ensemble: average 8 flips/rotations (8x slower)")
    p.add_argument(
        "--bands",
        type=_bands,
        default="auto",
        metavar="{auto,each,rgb,R,G,B}",
        help="multiband scenes: 'each' band through the model on its own; 'rgb' (bands 1,2,3) or R,G,B band "
        "numbers (e.g. 4,3,2) through a colour model together, the others each on its own. Default auto: "
        "together only when the file marks its bands RGB, since satellite bands are rarely a photo's colours",
    )
    p.add_argument(
        "--device",
        choices=("auto", "cpu", "gpu"),
        default="auto",
        help="cpu hides all GPUs; gpu fails if none is visible (default: auto)",
    )
    p.add_argument("--precision", choices=("auto", "float32", "bfloat16", "float16"),
                   help="auto (default): the fastest arithmetic within one grey level of float32 on this machine; "
                   "out-of-core and cluster jobs compute in float32")
    p.add_argument("--batch-size", type=_positive_int, metavar="N", help="tiles or slices per model call")
    p.add_argument(
        "--normalization",
        choices=("range", "percentile"),
        help="value normalisation (default: the model's own): range for photos, percentile 2/99.8 for microscopy",
    )
    existing = p.add_mutually_exclusive_group()
    existing.add_argument("--overwrite", action="store_true", help="replace outputs that already exist")
    existing.add_argument("--skip-existing", action="store_true", help="leave outputs that already exist alone")
    p.add_argument(
        "--allow-unsafe",
        action="store_true",
        help="load a model that needs custom Python code (runs code from the model file: trusted files only)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no per-file lines")
    bigdata.add_arguments(p)
    return p


# ----------------------------------------------------------------------------------------------- planning


def collect_inputs(inputs):
    """The image files named on the command line, folders expanded; and whether this is a batch."""
    from ..io import is_dicom_folder, list_images

    files, batch = [], len(inputs) > 1
    for text in inputs:
        path = Path(text)
        if not path.exists():
            raise InputError(f"input not found: {path}")
        if path.is_dir() and path.suffix.lower() != ".zarr" and not is_dicom_folder(path):
            found = list_images(path)
            if not found:
                raise InputError(
                    f"no images in folder {path} (looking for .tif, .png, .jpg, .npy, .zarr, .nii, .nii.gz, DICOM)"
                )
            files += found
            batch = True
        else:
            files.append(path)
    return files, batch


def plan_outputs(files, batch, output):
    """``([(input, output)], is_folder)``; ``is_folder``: OUT is a folder (made if missing), not a file.
    Raises for an OUT that cannot be what the inputs need, or name collisions."""
    out = Path(output)
    # an existing folder, or a new name without a suffix, is a folder (a .zarr folder is an image)
    is_folder = out.is_dir() and out.suffix.lower() != ".zarr" if out.exists() else not out.suffix
    if batch and not is_folder:
        raise OutputError(
            f"several inputs need a folder as OUT, not {out} (an existing folder, or a new name without suffix)"
        )
    if is_folder:
        pairs = [(f, out / _output_name(f)) for f in files]
    else:
        pairs = [(files[0], out)]
    seen = {}
    for src, dst in pairs:
        if _same_file(src, dst):
            raise OutputError(f"the output would replace the input {src}; choose another OUT")
        if dst in seen:
            raise InputError(f"{seen[dst]} and {src} would both be written to {dst}; upscale them separately")
        seen[dst] = src
    return pairs, is_folder


def _output_name(src):
    """An output's name in an output folder: the input's, except a DICOM series folder becomes NIfTI."""
    from ..io import is_dicom_folder

    return src.name + ".nii.gz" if is_dicom_folder(src) else src.name


def _same_file(a, b):
    try:
        return b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_outputs(pairs, *, overwrite, skip_existing, may_create_folder):
    """Refuse existing outputs (unless told otherwise) and missing or unwritable folders. Returns the pairs to
    run and the number skipped. ``may_create_folder``: the output folder is OUT itself, made when missing."""
    from ..io import check_folder_writable

    folder = pairs[0][1].parent
    if folder.exists() or not may_create_folder:
        check_folder_writable(folder)
    else:
        check_folder_writable(folder.parent)  # OUT will be made there

    existing = [dst for _, dst in pairs if dst.exists() or dst.is_symlink()]
    if existing and not (overwrite or skip_existing):
        if len(existing) == 1:
            raise OutputError(f"output exists: {existing[0]} (use --overwrite to replace it)")
        raise OutputError(
            f"{len(existing)} outputs already exist (e.g. {existing[0]}); "
            "use --overwrite to replace them or --skip-existing to skip them"
        )
    if skip_existing:
        pairs = [(src, dst) for src, dst in pairs if dst not in existing]
    return pairs, len(existing) if skip_existing else 0


# ----------------------------------------------------------------------------------------------- running


def read_checked(src, axes_arg):
    """Read an input and refuse what the engine cannot take, before the model is even loaded."""
    from ..engine.files import check_loaded
    from ..io import read_image

    data, meta = read_image(src)
    try:
        axes = check_loaded(data, meta, axes_arg)
    except InputError as exc:
        raise InputError(f"{src}: {exc}") from None
    return data, meta, axes


def upscale_one(src, dst, model, options, args, *, named_after_input, data=None):
    """Upscale one file to ``dst`` as ``options`` say. When ``dst`` is named after the input (OUT is a folder)
    and its format cannot hold the result, it becomes a .tif. Returns the path written."""
    from ..engine.files import file_axes, upscale_loaded
    from ..io import can_hold, check_format, check_writable, write_image

    if data is None and bigdata.wants(src, dst, args):  # Zarr, big TIFF: block by block, out of core
        return bigdata.run_one(src, dst, model, options, args)
    if data is None:
        data = read_checked(src, args.axes)
    array, meta, axes = data
    scale = int(model.scale)
    out_shape = options.upscaled_shape(array.shape, axes, scale)
    out_axes = file_axes(axes)
    if named_after_input and not can_hold(dst, out_shape, array.dtype, out_axes):
        dst = dst.with_suffix(".tif")
    if dst.parent.exists():
        check_writable(dst, out_shape, array.dtype, overwrite=args.overwrite, axes=out_axes)
    else:  # a new output folder, made once there is something to put in it (its parent was checked)
        check_format(dst, out_shape, array.dtype, out_axes)

    bar = Progress(src.name, enabled=not args.quiet)
    start = time.perf_counter()
    try:
        result, out_meta = upscale_loaded(
            array, meta, model, options.replace(axes=axes), axes_known=bool(args.axes or meta.get("axes")), progress=bar
        )
    finally:
        bar.close()
    dst.parent.mkdir(exist_ok=True)
    write_image(dst, result, overwrite=args.overwrite, meta=out_meta)
    if not args.quiet:
        shape_in = "x".join(map(str, array.shape))
        shape_out = "x".join(map(str, result.shape))
        print(f"{src} -> {dst}  ({shape_in} -> {shape_out} {result.dtype}, {time.perf_counter() - start:.1f} s)")
    return dst


def run(args):
    prepare_device(args.device)
    files, batch = collect_inputs(args.inputs)
    pairs, folder_is_out = plan_outputs(files, batch, args.output)
    pairs, skipped = check_outputs(
        pairs, overwrite=args.overwrite, skip_existing=args.skip_existing, may_create_folder=folder_is_out
    )
    if not pairs:
        print(f"nothing to do: all {skipped} outputs exist (--skip-existing)")
        return 0

    # one input: read it first, so a bad image is refused before the model (and TensorFlow) loads
    first = None if batch or bigdata.wants(*pairs[0], args) else read_checked(pairs[0][0], args.axes)
    if first is not None and not folder_is_out:  # an output that cannot hold these axes (NIfTI: no channels)
        from ..engine.files import file_axes
        from ..io import check_output_axes

        check_output_axes(pairs[0][1], file_axes(first[2]))

    with quiet_native_stderr():
        if args.device == "gpu":
            check_gpu()
        from ..engine.precision import resolve as resolve_precision
        from ..models.loading import load_model

        model = load_model(args.model, allow_unsafe=args.allow_unsafe)
        model, choice = resolve_precision(model, args.precision)
    if not args.quiet:
        print(f"{model.name}: {choice}")

    options = upscale_options(args)
    if not batch:
        upscale_one(pairs[0][0], pairs[0][1], model, options, args, named_after_input=folder_is_out, data=first)
        return 0

    written, failed = 0, []
    for src, dst in pairs:
        try:
            upscale_one(src, dst, model, options, args, named_after_input=True)
            written += 1
        except SuperResError as exc:
            failed.append(src)
            where = "" if str(src) in str(exc) else f"{src}: "
            print(f"napari-superres: failed: {where}{exc}", file=sys.stderr)
    parts = [f"{written} written"]
    if skipped:
        parts.append(f"{skipped} skipped (output exists)")
    if failed:
        parts.append(f"{len(failed)} failed: " + ", ".join(map(str, failed)))
    print("napari-superres upscale: " + "; ".join(parts), file=sys.stderr if failed else sys.stdout)
    return BATCH_FAILED if failed else 0
