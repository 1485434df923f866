"""Photo and microscopy models side by side on held-out real fluorescence (the table of docs/models.md).

    .venv/bin/python bench/microscopy_domains.py [-o bench/results/microscopy.json]

Each shipped model of scale 2 or 4 runs through the engine on the right half of mahotas' nuclear.png (never
used in training), LR made by binning alone and by a camera at 100 photons
(``napari_superres.training.validation.evaluate_microscopy``); PSNR/SSIM on the reference's percentile range.
Beside them, the ceiling of LR by binning: the PSNR a perfect upscaler would reach, limited by the reference's own
noise (``training.metrics.binning_ceiling_psnr``), and what a linear upscaler reaches: least-squares filters fitted
on the training half of nuclear.png, and fitted on the validation images themselves, the best any linear filter
can do there (``training.validation.linear_baseline_scores``).
Photo models see the gray image as three equal channels, as the engine feeds them.
"""

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("NAPARI_SUPERRES_PRECISION", "float32")

MODELS = ("espcn-x2", "span-fast-x2", "edsr-x2", "fluo-edsr-x2", "espcn-x4", "edsr-x4", "fluo-edsr-x4")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("-o", "--output", type=Path, default=REPO / "bench" / "results" / "microscopy.json")
    args = p.parse_args(argv)
    from napari_superres.models.catalog import list_models
    from napari_superres.training.validation import evaluate_microscopy

    shipped = {m.name for m in list_models() if m.source == "shipped"}
    rows = []
    for name in MODELS:
        if name not in shipped:
            continue
        scores = evaluate_microscopy(name)
        rows.append({"model": name, **{setting: result["mean"] for setting, result in scores.items()}})
        print(name, {k: round(v["psnr"] - v["bicubic_psnr"], 2) for k, v in rows[-1].items() if k != "model"},
              flush=True)
    from napari_superres.training.metrics import binning_ceiling_psnr
    from napari_superres.training.microscopy import NUCLEAR_SPLIT, nuclear_image, validation_images
    from napari_superres.training.linear_upscaler import DEFAULT_TAPS
    from napari_superres.training.validation import linear_baseline_scores

    ceiling = {f"x{s}": float(np.mean([binning_ceiling_psnr(img, s) for _, img in validation_images()]))
               for s in (2, 4)}
    print("ceiling (the reference's own noise):", {k: round(v, 2) for k, v in ceiling.items()}, flush=True)
    training_half = [nuclear_image()[:, :NUCLEAR_SPLIT]]
    linear = {f"x{s}": linear_baseline_scores(training_half, validation_images(), s) for s in (2, 4)}
    print("linear upscaler:", {k: {m: round(v, 2) for m, v in r.items()} for k, r in linear.items()}, flush=True)
    args.output.write_text(json.dumps({"images": "right half of mahotas' nuclear.png (2 crops)", "rows": rows,
                                       "binning_ceiling_psnr": ceiling, "linear_upscaler": linear,
                                       "linear_upscaler_taps": DEFAULT_TAPS}, indent=1))


if __name__ == "__main__":
    main()
