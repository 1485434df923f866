"""``napari-superres evaluate -m MODEL HR_DIR``: PSNR/SSIM of a model next to bicubic and Lanczos.

The LR inputs are made from the HR images by the benchmark degradation (antialiased bicubic, as MATLAB's
``imresize``), or taken from ``HR_DIR/lr`` when the folder holds lr/hr pairs. Photos (8-bit) are scored on the
Y channel with a border crop of the scale, as the literature does; other data on the percentile-normalised
range.
"""

from __future__ import annotations

import json
import sys

from ._common import Progress, prepare_device, quiet_native_stderr


def add_parser(subparsers):
    from ..training.config import DEGRADATIONS

    p = subparsers.add_parser(
        "evaluate",
        help="PSNR/SSIM of a model against bicubic on high-resolution images",
        description="Downscale each image of HR_DIR, upscale it with the model and with bicubic and Lanczos "
        "interpolation, and print PSNR/SSIM per image and their means.",
    )
    p.add_argument("hr_dir", metavar="HR_DIR", help="folder of high-resolution images (or with lr/ and hr/)")
    p.add_argument("-m", "--model", required=True, help="model name or path to a .keras file")
    p.add_argument("--scale", type=int, help="check that the model upscales by this factor")
    p.add_argument("--degradation", choices=DEGRADATIONS, default="bicubic", help="how LR is made (default: bicubic)")
    p.add_argument("--tile", type=int,
                   help="tile size in LR pixels (default: whole image when it fits one model call, else windows "
                        "of one call each)")
    p.add_argument("--limit", type=int, help="evaluate at most this many images (stack slices count)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto", help="cpu hides all GPUs")
    p.add_argument("--allow-unsafe", action="store_true", help="load a model that needs unsafe code")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return p


def format_table(result: dict) -> str:
    rows = result["images"]
    width = max(12, *(len(r["name"]) for r in rows))
    head = (f"{'image':<{width}} {'size':>10}  {'PSNR':>7} {'SSIM':>7}  {'bicubic':>7} {'SSIM':>7}  "
            f"{'Lanczos':>7} {'SSIM':>7}  {'gain':>6}")
    lines = [
        f"model {result['model']} (x{result['scale']}) on {result['data']}, {result['mode']}",
        f"metric: {result['metric']}",
        head,
        "-" * len(head),
    ]

    def line(name, size, r):
        return (f"{name:<{width}} {size:>10}  {r['psnr']:7.2f} {r['ssim']:7.4f}  {r['bicubic_psnr']:7.2f} "
                f"{r['bicubic_ssim']:7.4f}  {r['lanczos_psnr']:7.2f} {r['lanczos_ssim']:7.4f}  "
                f"{r['psnr'] - r['bicubic_psnr']:+6.2f}")

    lines += [line(r["name"], r["size"], r) for r in rows]
    lines.append("-" * len(head))
    lines.append(line(f"mean of {len(rows)}", "", result["mean"]))
    return "\n".join(lines)


def run(args):
    prepare_device(args.device)
    from ..training.folders import check_folder
    from ..training.validation import evaluate

    check_folder(args.hr_dir)  # a wrong folder fails before TensorFlow loads
    with quiet_native_stderr():  # TensorFlow's start-up messages (loading, device probing) are held back
        import keras

        keras.ops.zeros((1,))

    bar = Progress("evaluate", enabled=not args.quiet and not args.json)
    try:
        result = evaluate(args.model, args.hr_dir, args.scale, degradation=args.degradation, tile=args.tile,
                          limit=args.limit, progress=bar, allow_unsafe=args.allow_unsafe)
    finally:
        bar.close()
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
    else:
        print(format_table(result))
    return 0
