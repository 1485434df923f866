"""``napari-superres bench``: quality, speed, efficiency, tiling, memory and options of the installed models.

Prints one report (tables) or, with ``--json``, the figures as JSON on stdout; progress goes to stderr.
See :mod:`napari_superres.benchmark` for what each section measures.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..benchmark import SECTIONS  # NumPy only: Keras loads when the bench runs
from ..errors import InputError, OutputError


def _ints(text):
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"expected comma-separated integers, got {text!r}") from None
    return values


def add_parser(subparsers):
    p = subparsers.add_parser(
        "bench",
        help="benchmark the models: quality, speed, efficiency, tiling, memory, options",
        description="Measure each model in one run: PSNR/SSIM next to bicubic and Lanczos on HR photos (LR by "
        "bicubic downscale), output megapixels/s and efficiency (model MAC/s over the machine's own matmul "
        "rate), tiled against whole-image time and memory, and the effect of XLA, bfloat16 and oneDNN.",
    )
    p.add_argument("--quality", metavar="HR_DIR", type=Path,
                   help="folder of 8-bit HR images, or 'skimage' for scikit-image's photos (default: the photos "
                   "of the corpus that training held out if present, else scikit-image's)")
    p.add_argument("--models", metavar="A,B", help="model names or .keras paths (default: every shipped model)")
    p.add_argument("--scales", metavar="2,4", help="only models of these scales")
    p.add_argument("--size", type=int, help="side of the speed input in LR pixels (default 256; quick 64)")
    p.add_argument("--end-to-end", type=int, dest="e2e_size", metavar="SIZE",
                   help="side of the photo the speed section also upscales through napari_superres.upscale "
                        "(default 768; quick 96; 0: skip)")
    p.add_argument("--large", type=int, help="side of the tiling/memory input in LR pixels (default 1024)")
    p.add_argument("--tile", type=int, help="tile of the tiling section, LR pixels (default: the engine's windows)")
    p.add_argument("--precision", choices=("float32", "bfloat16"), default="float32",
                   help="arithmetic of the speed section (bfloat16: Keras mixed_bfloat16)")
    p.add_argument("--jit", action="store_true", help="XLA jit_compile in the speed section")
    p.add_argument("--repeats", type=int, help="timed calls per figure, median reported (default 5)")
    p.add_argument("--sections", metavar="A,B", default=",".join(SECTIONS),
                   help=f"which tables to measure, of {','.join(SECTIONS)} (default: all)")
    p.add_argument("--quick", action="store_true", help="small inputs and few repeats: seconds, not minutes")
    p.add_argument("--json", action="store_true", help="print the figures as JSON instead of tables")
    p.add_argument("-o", "--output", type=Path, help="also write the figures as JSON to this file")
    return p


def run(args):
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from ._common import quiet_native_stderr

    with quiet_native_stderr():  # TensorFlow's start-up lines
        import keras

        from .. import benchmark

        keras.ops.zeros((1,))
        if keras.backend.backend() == "tensorflow":  # a retracing note per new image size is expected here
            import tensorflow as tf

            tf.get_logger().setLevel("ERROR")

    options = dict(
        models=[m.strip() for m in args.models.split(",") if m.strip()] if args.models else None,
        scales=_ints(args.scales) if args.scales else None,
        quality_dir=args.quality, size=args.size, e2e_size=args.e2e_size, large=args.large, tile=args.tile, precision=args.precision,
        jit=args.jit, repeats=args.repeats,
        sections=tuple(v.strip() for v in args.sections.split(",") if v.strip()),
    )
    if args.repeats is not None and args.repeats < 1:
        raise InputError("--repeats must be at least 1")
    if args.output and not args.output.parent.resolve().is_dir():
        raise OutputError(f"folder does not exist: {args.output.parent}")
    if args.quick:
        config = benchmark.BenchConfig.quick_config(**options)
    else:
        config = benchmark.BenchConfig(**{k: v for k, v in options.items() if v is not None})
    result = benchmark.run_bench(config)
    if args.output:
        _write_atomic(args.output, json.dumps(result, indent=2) + "\n")
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(benchmark.format_report(result))
    return 0


def _write_atomic(path: Path, text: str) -> None:
    import os
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.resolve().parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
