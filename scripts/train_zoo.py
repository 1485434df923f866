"""Train the shipped models (``src/napari_superres/models/weights/``) from the photo corpus.

    python3 ../shared/data/make_corpus.py                 # 26 real 2K photographs, ~/.cache/napari-superres-corpus
    .venv/bin/python scripts/make_corpus_extra.py         # 30 more, ~/.cache/napari-superres-corpus-extra (optional)
    .venv/bin/python scripts/train_zoo.py [--only edsr-x2,espcn-x2] [--time-scale 1.0]

Every model: RGB, bicubic degradation (MATLAB ``imresize`` convention, applied to whole images before cropping),
L1 loss, Adam (2e-4, then 5e-5 for the last quarter of the budget), random 48x48 LR patches with flips and
rotations, batch 16, mixed bfloat16 compute where the CPU has bfloat16 instructions (float32 elsewhere), float32
weights (saved as a float32 model). Each model goes on from the shipped model of the same name (its steps add up,
each run is listed in the description; ``--fresh`` starts over); new x3 and x4 quality models start from the x2
model's body, as EDSR does. Budgets are wall-clock minutes on the machine that runs
the script; the steps actually taken are written into each model's description and card.

The photos named in ``napari_superres.benchmark.HELD_OUT`` never enter training; the model's PSNR/SSIM on them, next to bicubic and
Lanczos, go into the model's description and its card (``<name>.md``). Checkpoints go to ``runs/zoo/`` so an
interrupted run resumes where it stopped.
"""

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402
from zoo_data import CURVE_IMAGES, PatchPairs, add_extra_corpus_option, load_corpus, validation_crops  # noqa: E402

from napari_superres.models.registry import SPAN_FAST  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO / "src" / "napari_superres" / "models" / "weights"
RUNS = REPO / "runs" / "zoo"
DEFAULT_CORPUS = Path.home() / ".cache" / "napari-superres-corpus"

# name, architecture, scale, builder options, minutes, warm start from
# The quality models are EDSR with 8 residual blocks of 64 features (half of EDSR-baseline's depth): on a CPU
# budget, more steps of a smaller EDSR beat fewer steps of the full one.
EDSR_CPU = {"n_blocks": 8, "n_feats": 64}
ZOO = [
    ("espcn-x2", "espcn", 2, {}, 6, None),
    ("edsr-x2", "edsr", 2, EDSR_CPU, 50, None),
    ("espcn-x4", "espcn", 4, {}, 10, None),
    ("edsr-x4", "edsr", 4, EDSR_CPU, 15, "edsr-x2"),
    ("espcn-x3", "espcn", 3, {}, 6, None),
    ("edsr-x3", "edsr", 3, EDSR_CPU, 12, "edsr-x2"),
    ("span-fast-x2", "span", 2, SPAN_FAST, 80, None),
]
LR_PATCH, BATCH = 48, 16


def build(arch, scale, options, policy, channels=3):
    import keras

    from napari_superres.models.registry import build_model

    keras.mixed_precision.set_global_policy(policy)
    try:
        return build_model(arch, scale, channels, **options)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def training_policy() -> str:
    """mixed_bfloat16 on CPUs with bfloat16 instructions (AMX, AVX512-BF16), where it is several times faster;
    float32 elsewhere (AVX2 emulates bfloat16 and gains nothing)."""
    from napari_superres.engine.precision import candidates, cpu_info

    return "mixed_bfloat16" if candidates(cpu_info()[1], None)[0] else "float32"


def resume_from_shipped(model, name, arch, options, shipped=WEIGHTS):
    """Give ``model`` the weights of the shipped model ``name`` if it has the same architecture and options, so
    that training goes on where earlier runs stopped. Returns that model's ``training`` record (with its steps),
    or None when there is nothing to resume from."""
    import keras

    from napari_superres.models.description import read_description

    path = Path(shipped) / f"{name}.keras"
    desc = read_description(path) if path.exists() else None
    if not desc or desc.get("architecture") != arch:
        return None
    if (desc.get("options") or {}).get("deploy"):  # merged for inference (span): its training branches are gone
        print(f"{name}: the shipped model is in its merged inference form; training starts over", flush=True)
        return None
    if (desc.get("options") or {}) != options:
        return None
    warm_start(model, keras.saving.load_model(path, compile=False))
    return dict(desc.get("training") or {})


def training_record(before, run: dict, data: str) -> dict:
    """A description's ``training``: totals over every run (``before``: the resumed model's record, if any) and
    the runs themselves, each with its machine, steps, batch, minutes, precision and validation curve."""
    before = dict(before or {})
    runs = before.pop("runs", None) or ([before] if before else [])
    runs = runs + [run]
    return {"data": data, "loss": run.get("loss", "L1"), "steps": sum(r.get("steps", 0) for r in runs),
            "patches": sum(r.get("steps", 0) * r.get("batch", 0) for r in runs),
            "minutes": round(sum(r.get("minutes", 0) for r in runs), 1), "batch": run["batch"],
            "lr_patch": run["lr_patch"], "precision": run["precision"], "machine": run["machine"],
            "warm_start": run.get("warm_start"), "runs": runs}


def warm_start(model, source):
    """Copy every layer of ``source`` whose name and weight shapes match (EDSR's x2 -> x3/x4 trick: the body is
    shared, the upsampler is new)."""
    copied = 0
    for layer in model.layers:
        try:
            other = source.get_layer(layer.name)
        except ValueError:
            continue
        w, v = layer.get_weights(), other.get_weights()
        if w and len(w) == len(v) and all(a.shape == b.shape for a, b in zip(w, v)):
            layer.set_weights(v)
            copied += 1
    return copied


def validate(model, scale, val):
    """Mean PSNR-Y/SSIM-Y (border = scale) of the model, bicubic and Lanczos on the held-out photos."""
    from napari_superres.engine.api import upscale
    from napari_superres.models.loading import load_model
    from napari_superres.training.metrics import (bicubic_downscale, bicubic_upscale, lanczos_upscale, modcrop,
                                                  psnr, ssim)

    sr = load_model(model)
    rows = {"model": [], "bicubic": [], "lanczos": []}
    for _, hr in val:
        hr = modcrop(hr, scale)
        lr = bicubic_downscale(hr, scale)
        for key, out in (("model", upscale(lr, sr)), ("bicubic", bicubic_upscale(lr, scale)),
                         ("lanczos", lanczos_upscale(lr, scale))):
            rows[key].append((psnr(hr, out, scale=scale), ssim(hr, out, scale=scale)))
    return {k: [round(float(np.mean([r[i] for r in v])), 4) for i in (0, 1)] for k, v in rows.items()}


def context_for_one_grey_level(model, scale, val, receptive_radius):
    """Tile context (LR pixels) this trained model needs so that a tiled result stays within half a grey level of
    the whole-image one (so within 1 after rounding): the smallest of 4, 8, 12, ... that does, on a crop of each
    validation photo. Far pixels of a deep model's receptive field weigh almost nothing, so this is often much
    smaller than the receptive-field radius, and tiles cost that much less."""
    from napari_superres.engine.tiling import predict_tiled
    from napari_superres.models.loading import load_model

    sr = load_model(model)
    crops = np.stack([hr[:256, :256] for _, hr in val]).astype(np.float32) / 255.0
    kw = dict(scale=scale, multiple=sr.multiple, batch_size=16)
    whole = predict_tiled(sr.predict, crops, tile=256, overlap=0, **kw)
    for overlap in range(4, receptive_radius, 4):
        tiled = predict_tiled(sr.predict, crops, tile=48, overlap=overlap, **kw)
        if np.abs(tiled - whole).max() * 255 < 0.5:
            return overlap
    return receptive_radius


def cpu_machine() -> str:
    from napari_superres.engine.precision import cpu_info

    return f"{cpu_info()[0] or 'CPU'}, {os.cpu_count()} cores"


def train_for_budget(name, model, state, budget, next_batch, learning_rate, ckpt, state_file, max_steps=None,
                     validate=None):
    """Train the compiled ``model`` on ``next_batch()`` until ``state["seconds"]`` of training reach ``budget`` (or
    ``state["steps"]`` reach ``max_steps``), at ``learning_rate(fraction of the budget)``; a line every 50 steps, a
    checkpoint (weights and ``state``, so an interrupted run resumes) every 2 minutes and at the end, each with
    ``validate(model)`` added to ``state["curve"]`` as ``[steps, score]`` when given (time outside training)."""
    losses, last_save = [], time.perf_counter()

    def checkpoint():
        if validate is not None and (not state.get("curve") or state["curve"][-1][0] != state["steps"]):
            state.setdefault("curve", []).append([state["steps"], validate(model)])
            print(f"{name}: step {state['steps']} validation {state['curve'][-1][1]:.2f}", flush=True)
        model.save_weights(ckpt)
        state_file.write_text(json.dumps(state))

    if validate is not None and not state.get("curve"):
        checkpoint()  # where this run starts
    while state["seconds"] < budget and (max_steps is None or state["steps"] < max_steps):
        model.optimizer.learning_rate.assign(learning_rate(state["seconds"] / budget))
        t0 = time.perf_counter()
        losses.append(float(model.train_on_batch(*next_batch())))
        state["seconds"] += time.perf_counter() - t0
        state["steps"] += 1
        if state["steps"] % 50 == 0:
            print(f"{name}: step {state['steps']} loss {np.mean(losses[-50:]):.4f} "
                  f"{state['seconds'] / 60:.1f}/{budget / 60:g} min", flush=True)
        if time.perf_counter() - last_save > 120:
            checkpoint()
            last_save = time.perf_counter()
    checkpoint()


def total_steps_curve(state) -> list:
    """The run's validation curve (``state["curve"]``) against the model's total steps, earlier runs included."""
    before = int((state.get("before") or {}).get("steps", 0))
    return [[steps + before, score] for steps, score in state.get("curve", [])]


def train_one(name, arch, scale, options, minutes, init, train_imgs, val, seed=0, resume=True, weights_dir=WEIGHTS):
    import keras

    from napari_superres.models.loading import load_model

    RUNS.mkdir(parents=True, exist_ok=True)
    ckpt, state_file = RUNS / f"{name}.weights.h5", RUNS / f"{name}.json"
    policy = training_policy()
    model = build(arch, scale, options, policy)
    state = {"steps": 0, "seconds": 0.0, "before": None}
    if ckpt.exists() and state_file.exists():
        model.load_weights(ckpt)
        state = json.loads(state_file.read_text())
        print(f"{name}: resuming at step {state['steps']} ({state['seconds'] / 60:.1f} min done)", flush=True)
    elif resume:
        state["before"] = resume_from_shipped(model, name, arch, options)
        if state["before"] is not None:
            print(f"{name}: going on from the shipped model ({state['before'].get('steps', 0)} steps)", flush=True)
    if init and not state["steps"] and state.get("before") is None:
        copied = warm_start(model, load_model(WEIGHTS / f"{init}.keras").keras_model)
        print(f"{name}: {copied} layers warm-started from {init}", flush=True)

    model.compile(optimizer=keras.optimizers.Adam(2e-4), loss="mae", jit_compile=False)
    data, rng = PatchPairs(train_imgs, validation_crops(val)), np.random.default_rng(seed + state["steps"])
    train_for_budget(name, model, state, minutes * 60.0, lambda: data.batch(scale, BATCH, LR_PATCH, rng),
                     lambda fraction: 2e-4 if fraction <= 0.75 else 5e-5, ckpt, state_file,
                     validate=data.validator(scale))
    run = {"machine": cpu_machine(), "steps": state["steps"], "batch": BATCH,
           "lr_patch": LR_PATCH, "loss": "L1", "minutes": round(state["seconds"] / 60, 1), "precision": policy,
           "warm_start": init if state.get("before") is None else name,
           "curve": total_steps_curve(state), "curve_images": CURVE_IMAGES["photo"]}
    data = (f"{len(train_imgs)} real photographs, long side 2040 px (../shared/data/make_corpus.py, "
            f"scripts/make_corpus_extra.py), bicubic x{scale} degradation")
    training = training_record(state.get("before"), run, data)
    return finish_model(name, arch, scale, options, model.get_weights(), training, val, weights_dir=weights_dir)


def finish_model(name, arch, scale, options, weights, training, val, channels=3, weights_dir=WEIGHTS):
    """Save a trained model as a shipped one: float32 (bfloat16 is an inference option), in its inference form,
    validated on the held-out photos, with its measured tile context and its description."""
    from napari_superres.models.loading import load_model, save_model
    from napari_superres.models.registry import geometry

    final = build(arch, scale, options, "float32", channels)  # float32 for inference everywhere
    final.set_weights(weights)
    scores = validate(final, scale, val)
    (m_psnr, m_ssim), (b_psnr, b_ssim), (l_psnr, l_ssim) = scores["model"], scores["bicubic"], scores["lanczos"]
    multiple, overlap = geometry(arch, **options)
    description = {
        "name": name,
        "architecture": arch,
        "options": options,
        "multiple": multiple,
        "overlap": overlap,
        "scale": scale,
        "channels": channels,
        "domain": "photo",
        "normalization": {"mode": "range"},
        "training": training,
        "validation": {
            "images": f"{len(val)} held-out photos, whole images",
            "metric": "PSNR/SSIM on Y (BT.601), border = scale",
            "psnr": m_psnr, "ssim": m_ssim, "bicubic_psnr": b_psnr, "bicubic_ssim": b_ssim,
            "lanczos_psnr": l_psnr, "lanczos_ssim": l_ssim,
        },
    }
    description["overlap"] = context_for_one_grey_level(final, scale, val, overlap)
    description["receptive_radius"] = overlap
    path = save_model(final, Path(weights_dir) / f"{name}.keras", description)
    print(f"{name}: saved {path.name} ({path.stat().st_size / 1e6:.1f} MB); PSNR {m_psnr:.2f} dB vs bicubic "
          f"{b_psnr:.2f}, Lanczos {l_psnr:.2f}; SSIM {m_ssim:.4f} vs {b_ssim:.4f}, {l_ssim:.4f}", flush=True)
    load_model(path)  # loads with safe_mode=True
    return description


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    add_extra_corpus_option(p)
    p.add_argument("--only", help="comma-separated model names (default: all)")
    p.add_argument("--time-scale", type=float, default=1.0, help="multiply every budget by this")
    p.add_argument("--out", type=Path, default=WEIGHTS, help="folder of the .keras files (default: shipped weights)")
    p.add_argument("--fresh", action="store_true",
                   help="start from scratch (default: go on from the shipped model of the same name and options)")
    p.add_argument("--refresh-overlap", metavar="NAMES",
                   help="only re-measure the tile context of these saved models and update their description")
    args = p.parse_args(argv)
    train_imgs, val = load_corpus(args.corpus, args.extra_corpus)
    if args.refresh_overlap:
        from napari_superres.models.description import read_description, write_description

        for name in args.refresh_overlap.split(","):
            path = WEIGHTS / f"{name}.keras"
            desc = read_description(path)
            radius = desc.get("receptive_radius", desc["overlap"])
            desc.update(overlap=context_for_one_grey_level(path, desc["scale"], val, radius), receptive_radius=radius)
            write_description(path, desc)
            print(f"{name}: tile context {desc['overlap']} (receptive radius {radius})")
        return
    wanted = set(args.only.split(",")) if args.only else None
    args.out.mkdir(parents=True, exist_ok=True)
    for name, arch, scale, options, minutes, init in ZOO:
        if wanted is None or name in wanted:
            train_one(name, arch, scale, options, minutes * args.time_scale, init, train_imgs, val,
                      resume=not args.fresh, weights_dir=args.out)


if __name__ == "__main__":
    main()
