"""Architectures side by side at an equal training budget: quality against multiply-accumulates.

    .venv/bin/python bench/equal_budget.py [--steps 600] [--only span-fast,espcn] [-o bench/results/equal-budget.json]

Every candidate starts from scratch and trains the same number of steps on the same batches (the main photo
corpus of ``../shared/data/make_corpus.py``, ``--corpus``; x2, bicubic degradation, batch 16 of 48x48 LR patches, L1, Adam 2e-4), then is
scored on the held-out photos exactly as the shipped models are (PSNR-Y over Lanczos, whole images). Beside each
score: parameters and multiply-accumulates per output pixel of the form that runs at inference (SPAN's merged
convolutions), and the training minutes on this machine. The shipped models train much longer; this table
answers a narrower question: which architecture buys more quality per multiply-add for the same data.
Results go to ``--output`` and into docs/models.md (``bench/make_cards.py``).
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO / "scripts")]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from train_zoo import (BATCH, DEFAULT_CORPUS, EDSR_CPU, LR_PATCH, build, cpu_machine, train_for_budget,  # noqa: E402
                       training_policy, validate)
from zoo_data import PatchPairs, load_corpus  # noqa: E402

from napari_superres.models.registry import SPAN_FAST, SPAN_QUALITY  # noqa: E402

SCALE = 2
CANDIDATES = {  # label: (architecture, builder options)
    "espcn": ("espcn", {}),
    "span-fast": ("span", SPAN_FAST),
    "span-quality": ("span", SPAN_QUALITY),
    "edsr-8x64": ("edsr", EDSR_CPU),
}
MACS_SIDE = 64  # LR side of the input the multiply-accumulates are counted on


def inference_form(model, arch, options):
    """The model as it is saved and run (SPAN: branches merged), for counting its arithmetic."""
    from napari_superres.models.loading import finalized

    return finalized(model, {"architecture": arch, "options": dict(options)})[0]


def train_candidate(label, arch, options, steps, train_imgs, val, seed):
    import keras

    from napari_superres.benchmark import count_macs

    model = build(arch, SCALE, options, training_policy())
    model.compile(optimizer=keras.optimizers.Adam(2e-4), loss="mae", jit_compile=False)
    data, rng = PatchPairs(train_imgs), np.random.default_rng(seed)  # the same batches for every candidate
    state = {"steps": 0, "seconds": 0.0}
    with tempfile.TemporaryDirectory() as runs:  # every candidate starts over: its checkpoints are not kept
        runs = Path(runs)
        train_for_budget(label, model, state, float("inf"), lambda: data.batch(SCALE, BATCH, LR_PATCH, rng),
                         lambda fraction: 2e-4, runs / f"{label}.weights.h5", runs / f"{label}.json", max_steps=steps)
    final = build(arch, SCALE, options, "float32")
    final.set_weights(model.get_weights())
    scores = validate(final, SCALE, val)
    deployed = inference_form(final, arch, options)
    out_pixels = (MACS_SIDE * SCALE) ** 2
    return {"label": label, "architecture": arch, "options": options, "steps": state["steps"],
            "minutes": round(state["seconds"] / 60, 1), "parameters": int(deployed.count_params()),
            "macs_per_output_px": count_macs(deployed, MACS_SIDE, MACS_SIDE) / out_pixels,
            "psnr": scores["model"][0], "ssim": scores["model"][1], "lanczos_psnr": scores["lanczos"][0],
            "bicubic_psnr": scores["bicubic"][0], "gain_over_lanczos": scores["model"][0] - scores["lanczos"][0]}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=600, help="training steps of every candidate")
    p.add_argument("--only", help="comma-separated candidates (default: all): " + ", ".join(CANDIDATES))
    p.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output", type=Path, default=REPO / "bench" / "results" / "equal-budget.json")
    args = p.parse_args(argv)
    wanted = args.only.split(",") if args.only else list(CANDIDATES)
    train_imgs, val = load_corpus(args.corpus)
    t0, rows = time.perf_counter(), []
    for label in wanted:
        arch, options = CANDIDATES[label]
        rows.append(train_candidate(label, arch, options, args.steps, train_imgs, val, args.seed))
        r = rows[-1]
        print(f"{label}: {r['steps']} steps in {r['minutes']} min; {r['parameters']:,} parameters, "
              f"{r['macs_per_output_px'] / 1e3:.1f}k MAC per output pixel; PSNR-Y {r['psnr']:.2f} dB, "
              f"{r['gain_over_lanczos']:+.2f} over Lanczos", flush=True)
    result = {"scale": SCALE, "steps": args.steps, "batch": BATCH, "lr_patch": LR_PATCH, "machine": cpu_machine(),
              "precision": training_policy(), "images": f"{len(val)} held-out photos, whole images",
              "minutes": round((time.perf_counter() - t0) / 60, 1), "rows": rows}
    args.output.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
