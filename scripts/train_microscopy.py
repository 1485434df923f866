"""Train the microscopy models (single channel, fluorescence) on simulated and real fluorescence.

    .venv/bin/pip install mahotas                       # ships the real nuclei image (train: left, validate: right)
    .venv/bin/python scripts/train_microscopy.py [--only fluo-espcn-x2] [--time-scale 1.0] [--stellarium DIR]

Every model: 1 channel, percentile normalisation (2 / 99.8) of the LR with the same map on the HR target (what
the engine does at inference, so its exact inverse returns counts in the input's dtype), LR made as a camera
makes it (:mod:`napari_superres.training.fluorescence`: PSF, area binning, Poisson shot noise over a range of
photon levels, read noise, offset, uint16 counts, exposed below saturation), batches from
:func:`napari_superres.training.microscopy.microscopy_pairs` mixed as ``MIX`` says: crops of real fluorescence
(the left half of mahotas' nuclear.png; with ``--stellarium`` also Debian stellarium-data's nebula photographs,
extracted with ``apt-get download stellarium-data`` and ``dpkg -x``), the luminance of the photo corpus (detail
of every size below the binned pixel, which smooth nuclei lack), and simulated structures (filaments, puncta,
nuclei, membranes); a share of the pairs through an almost noise-free camera. L1 loss, Adam with a cosine
decay, random flips and quarter turns, mixed bfloat16 where the CPU has bfloat16 instructions (as
``train_zoo.py``). The quality models start from the photo model of the same scale folded to one channel
(:func:`fold_photo_model`: exactly the photo model on a grey image), so they keep what it learned of real
detail and learn the camera's noise on top. Budgets are wall-clock minutes on the machine that runs the
script; the steps taken go into the description. Validation
(:func:`napari_superres.training.validation.evaluate_microscopy`): the held-out right half of nuclear.png, LR by
2x2 / 4x4 binning alone and with camera noise; also background-only crops.
"""

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402
from train_zoo import (DEFAULT_CORPUS, EDSR_CPU, build, cpu_machine, resume_from_shipped,  # noqa: E402
                       total_steps_curve, train_for_budget, training_policy, training_record, warm_start)
from zoo_data import CURVE_IMAGES, add_extra_corpus_option, load_corpus, microscopy_validator  # noqa: E402

from napari_superres.training.microscopy import MIX  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO / "src" / "napari_superres" / "models" / "weights"
RUNS = REPO / "runs" / "microscopy"

# name, architecture, scale, builder options, minutes, warm start from (fast: espcn; quality: a small EDSR)
ZOO = [
    ("fluo-espcn-x2", "espcn", 2, {}, 10, "espcn-x2"),
    ("fluo-edsr-x2", "edsr", 2, EDSR_CPU, 15, "edsr-x2"),
    ("fluo-espcn-x4", "espcn", 4, {}, 10, "espcn-x4"),
    ("fluo-edsr-x4", "edsr", 4, EDSR_CPU, 90, "edsr-x4"),
]
LR_PATCH, BATCH, POOL = 48, 16, 150  # POOL simulated fields, cropped at random
PHOTO_START_LR = 0.25  # a model folded from a photo model is refined, not retrained: a gentler learning rate


def fold_photo_model(model, photo):
    """Give the one-channel ``model`` the weights of the RGB ``photo`` model of the same architecture, folded so
    that it computes exactly what the photo model does on a grey image fed as three equal channels with its
    three outputs averaged: a kernel that reads the three input channels is summed over them, one that writes
    them (3 outputs, or 3 per sub-pixel position ahead of a pixel shuffle, colour fastest) is averaged over
    them; the bicubic skip is the same for equal channels. Returns the number of layers copied."""
    copied = 0
    for layer in model.layers:
        try:
            weights = photo.get_layer(layer.name).get_weights()
        except ValueError:
            continue
        if not weights:
            continue
        kernel, bias = weights[0], weights[1:]
        shape = tuple(layer.get_weights()[0].shape)
        if kernel.ndim == 4 and kernel.shape[2] == 3 * shape[2]:  # reads the image's channels
            kernel = kernel.sum(axis=2, keepdims=True)
        if kernel.ndim == 4 and kernel.shape[3] == 3 * shape[3]:  # writes them
            kernel = kernel.reshape(*kernel.shape[:3], shape[3], 3).mean(axis=4)
            bias = [b.reshape(shape[3], 3).mean(axis=1) for b in bias]
        layer.set_weights([kernel, *bias])
        copied += 1
    # The rule goes by kernel shapes; a layer whose channels are a multiple of the image's for another reason
    # (a training-time expansion) would fold wrongly, so the fold is checked on a grey image.
    grey = np.random.default_rng(0).random((1, 24, 24, 1), np.float32)
    expected = np.asarray(photo.predict_on_batch(np.repeat(grey, 3, axis=-1)), np.float32).mean(axis=-1, keepdims=True)
    error = float(np.abs(np.asarray(model.predict_on_batch(grey), np.float32) - expected).max())
    if error > 0.02:  # float32 agrees to 1e-5; mixed bfloat16 to about 1e-2
        raise ValueError(f"the one-channel model differs from the photo model on grey by {error:.3g}: not a fold")
    return copied


def real_sources(stellarium, photo_files):
    """The real fluorescence and the photographs' luminance: the same for every scale."""
    from napari_superres.training.microscopy import photo_luminance, training_images

    real = training_images(stellarium)
    photos = photo_luminance([(f"photo {i}", img) for i, img in enumerate(photo_files)])
    print(f"real: {', '.join(n for n, _ in real[:3])}{' ...' if len(real) > 3 else ''} ({len(real)}); "
          f"photographs: {len(photos)}", flush=True)
    return real, photos


def simulated_pool(scale, seed):
    """The pool of simulated fields, sized for this scale's patches."""
    from napari_superres.training.microscopy import CONTEXT, simulated_fields

    t0 = time.perf_counter()
    fields = simulated_fields(POOL, 3 * LR_PATCH * scale * CONTEXT // 2, seed)
    print(f"data: {len(fields)} simulated fields in {time.perf_counter() - t0:.0f} s", flush=True)
    return fields


def data_text(real, photos) -> str:
    return ("simulated fluorescence (filaments, puncta, nuclei, membranes; Gaussian/Airy PSF), real fluorescence "
            f"({', '.join(n for n, _ in real[:4])}{', ...' if len(real) > 4 else ''}: {len(real)})"
            + (f" and the luminance of {len(photos)} photographs (the photo models' training corpus)" if photos else
               ""))


def degradation_text() -> str:
    from napari_superres.training.fluorescence import OFFSET, PHOTONS, READ_NOISE
    from napari_superres.training.microscopy import CLEAN_LEVELS, CLEAN_PHOTONS, SATURATED

    return (f"camera: area binning, Poisson shot noise ({PHOTONS[0]:g}-{PHOTONS[1]:g} photons; clean pairs "
            f"{CLEAN_PHOTONS:g}, their gain leaving {CLEAN_LEVELS[0]:g}-{CLEAN_LEVELS[1]:g} grey levels), read noise "
            f"(sigma {READ_NOISE[0]:g}-{READ_NOISE[1]:g}), offset {OFFSET}, uint16 counts exposed below "
            f"saturation; saturated scenes clipped at their {SATURATED[0]:g}-{SATURATED[1]:g}th percentile")


def describe(name, arch, scale, options, training):
    from napari_superres.models.registry import geometry

    multiple, overlap = geometry(arch, **options)
    return {
        "name": name, "architecture": arch, "options": options, "multiple": multiple, "overlap": overlap,
        "scale": scale, "channels": 1, "domain": "microscopy",
        "normalization": {"mode": "percentile", "low": 2.0, "high": 99.8},
        "training": {"degradation": degradation_text(), **training},
    }


def validation_entry(scale, scores):
    head = scores["binning"]["mean"]
    return {
        "images": "held-out real fluorescence: right half of mahotas' nuclear.png (2 crops)",
        "metric": scores["binning"]["metric"], "lr": f"{scale}x{scale} binning of the real image",
        "psnr": head["psnr"], "ssim": head["ssim"], "bicubic_psnr": head["bicubic_psnr"],
        "bicubic_ssim": head["bicubic_ssim"], "background_psnr": head.get("background_psnr"),
        "background_bicubic_psnr": head.get("background_bicubic_psnr"),
        "per_setting": {k: v["mean"] for k, v in scores.items()},
    }


def train_one(name, arch, scale, options, minutes, init, data, out_dir, seed=0, resume=True, mix=None):
    import keras

    from napari_superres.models.loading import load_model
    from napari_superres.training.config import DEFAULT_LEARNING_RATE, FALLBACK_LEARNING_RATE
    from napari_superres.training.microscopy import microscopy_pairs

    RUNS.mkdir(parents=True, exist_ok=True)
    ckpt, state_file = RUNS / f"{name}.weights.h5", RUNS / f"{name}.json"
    policy = training_policy()
    model = build(arch, scale, options, policy, channels=1)
    state = {"steps": 0, "seconds": 0.0, "init": init, "before": None}
    lr = DEFAULT_LEARNING_RATE.get(arch, FALLBACK_LEARNING_RATE)
    if ckpt.exists() and state_file.exists():
        model.load_weights(ckpt)
        state = json.loads(state_file.read_text())
        print(f"{name}: resuming at step {state['steps']}", flush=True)
    elif resume and (before := resume_from_shipped(model, name, arch, options, out_dir)) is not None:
        state.update(before=before, init=name)
        lr = (before.get("runs") or [before])[-1].get("learning_rate", lr)  # the schedule it was trained with
        print(f"{name}: going on from the shipped model ({before.get('steps', 0)} steps)", flush=True)
    elif init:
        source = load_model(WEIGHTS / f"{init}.keras")
        if source.channels == 3:  # a photo model: its behaviour on clean images is kept, and refined
            copied, lr = fold_photo_model(model, source.keras_model), lr * PHOTO_START_LR
        else:
            copied = warm_start(model, source.keras_model)
        print(f"{name}: {copied} layers warm-started from {init}", flush=True)
    lr = state.setdefault("learning_rate", lr)  # a resumed run keeps its schedule
    fields, real, photos = data
    rng = np.random.default_rng([seed, state["steps"]])
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="mae", jit_compile=False)
    mix = {**MIX, **(mix or {})}
    if not photos:
        mix["photo_fraction"] = 0.0
    train_for_budget(name, model, state, minutes * 60.0,
                     lambda: microscopy_pairs(BATCH, LR_PATCH, scale, rng, fields=fields, real=real, photos=photos,
                                              **mix),
                     lambda fraction: lr * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * fraction))), ckpt, state_file,
                     validate=microscopy_validator(scale))
    run = {"machine": cpu_machine(), "steps": state["steps"], "batch": BATCH, "lr_patch": LR_PATCH, "loss": "L1",
           "learning_rate": lr, "minutes": round(state["seconds"] / 60, 1), "precision": policy,
           "warm_start": state.get("init"), **mix,
           "curve": total_steps_curve(state), "curve_images": CURVE_IMAGES["microscopy"]}
    training = {**training_record(state.get("before"), run, data_text(real, photos)),
                "script": "scripts/train_microscopy.py"}
    return finish_model(name, arch, scale, options, model.get_weights(), training, out_dir)


def finish_model(name, arch, scale, options, weights, training, out_dir):
    """Save a trained microscopy model: float32, its inference form, described, validated on the held-out real
    fluorescence through the engine (with the model's own normalisation)."""
    from napari_superres.models.description import read_description, write_description
    from napari_superres.models.loading import load_model, save_model
    from napari_superres.training.validation import evaluate_microscopy

    model = build(arch, scale, options, "float32", channels=1)  # float32 for inference everywhere
    model.set_weights(weights)
    description = describe(name, arch, scale, options, training)
    path = save_model(model, Path(out_dir) / f"{name}.keras", description)
    scores = evaluate_microscopy(path)
    description["validation"] = validation_entry(scale, scores)
    write_description(path, read_description(path) | {"validation": description["validation"]})
    for setting, result in scores.items():
        for row in result["images"]:
            print(f"{name} [{setting}] {row['name']}: PSNR {row['psnr']:.2f} vs bicubic {row['bicubic_psnr']:.2f} "
                  f"({row['psnr'] - row['bicubic_psnr']:+.2f} dB); background {row.get('background_psnr', 0):.2f} vs "
                  f"{row.get('background_bicubic_psnr', 0):.2f} ({row['background_crops']} crops)", flush=True)
    load_model(path)  # loads with safe_mode=True
    return description


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", help="comma-separated model names (default: all)")
    p.add_argument("--time-scale", type=float, default=1.0, help="multiply every budget by this")
    p.add_argument("--stellarium", type=Path, help="extracted usr/share/stellarium/nebulae/default (optional)")
    p.add_argument("--fresh", action="store_true",
                   help="start from scratch (default: go on from the model of the same name in --out)")
    p.add_argument("--clean-fraction", type=float,
                   help=f"share of pairs through an almost noise-free camera (default {MIX['clean_fraction']})")
    p.add_argument("--real-fraction", type=float,
                   help=f"share of pairs from real fluorescence (default {MIX['real_fraction']})")
    p.add_argument("--photo-fraction", type=float,
                   help=f"share of pairs from photographs (default {MIX['photo_fraction']}; 0 without a corpus)")
    p.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS,
                   help="the photo corpus (../shared/data/make_corpus.py); 'none': no photographs")
    add_extra_corpus_option(p)
    p.add_argument("--out", type=Path, default=WEIGHTS, help="folder of the .keras files (default: shipped weights)")
    args = p.parse_args(argv)
    wanted = set(args.only.split(",")) if args.only else None
    args.out.mkdir(parents=True, exist_ok=True)
    photo_files = load_corpus(args.corpus, args.extra_corpus)[0] if args.corpus.is_dir() else []
    real, photos = real_sources(args.stellarium, photo_files)
    mix = {k: v for k, v in (("clean_fraction", args.clean_fraction), ("real_fraction", args.real_fraction),
                             ("photo_fraction", args.photo_fraction)) if v is not None}
    data = {}
    for name, arch, scale, options, minutes, init in ZOO:
        if wanted is None or name in wanted:
            if scale not in data:
                data[scale] = (simulated_pool(scale, seed=0), real, photos)
            train_one(name, arch, scale, options, minutes * args.time_scale, init, data[scale], args.out,
                      resume=not args.fresh, mix=mix)


if __name__ == "__main__":
    main()
