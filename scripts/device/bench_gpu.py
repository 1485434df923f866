"""GPU figures of the device run: output megapixels/s, efficiency against the GPU's own matrix-product rate,
tiled against whole-image, float32 and bfloat16 (Keras on JAX).

    KERAS_BACKEND=jax python3 scripts/device/bench_gpu.py [-o bench.json] [--size 1024]

Efficiency = the model's multiply-accumulates per second (counted as the CPU bench counts them) over those of
an 8192 x 8192 matrix product (``--matmul``) in the same precision, both timed wall-clock with the result read back (the
model's input and output cross the host link, as in real use). Medians of ``--repeats`` calls after warm-up.
Mode ``resident`` times the same model as one jitted function on an input already on the device, without the
host link or Keras' predict: what the convolutions themselves cost, so that ``whole`` minus ``resident`` is the
overhead around them.
Speed does not depend on the weights, so models whose shipped weights are missing are measured untrained.
"""

import argparse
import json
import os
import sys
import time
import traceback

os.environ.setdefault("KERAS_BACKEND", "jax")
import numpy as np  # noqa: E402

START = time.monotonic()

# name, architecture, builder options (for models not shipped), precisions, measure tiled too
MODELS = [
    ("edsr-x2", "edsr", {"n_blocks": 8, "n_feats": 64}, ("float32", "bfloat16"), True),
    ("span-x2", "span", {"n_feats": 48, "n_blocks": 6, "deploy": True}, ("bfloat16",), False),
    ("span-fast-x2", "span", {"n_feats": 32, "n_blocks": 3, "deploy": True}, ("bfloat16",), False),
    ("espcn-x2", "espcn", {}, ("bfloat16",), False),
    ("edsr-x4", "edsr", {"n_blocks": 8, "n_feats": 64}, ("bfloat16",), False),
]


def log(msg):
    print(f"[{time.monotonic() - START:6.1f}s] {msg}", file=sys.stderr, flush=True)


def load(name, arch, options):
    """The shipped model of that name, else the architecture built with random weights."""
    from napari_superres.models.loading import SRModel, load_model
    from napari_superres.models.registry import ARCHITECTURES, build_model, geometry

    try:
        return load_model(name)
    except Exception:  # not shipped (yet): speed alone needs no trained weights
        if arch not in ARCHITECTURES:
            return None
        model = build_model(arch, int(name[-1]), 3, **options)
        multiple, overlap = geometry(arch, **options)
        return SRModel(name=name, path=None, keras_model=model, scale=int(name[-1]), channels=3, multiple=multiple, overlap=overlap,
                       description={"name": name, "architecture": arch, "options": options})


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("-o", "--output")
    p.add_argument("--size", type=int, default=1024, help="side of the LR input")
    p.add_argument("--tile", type=int, default=256)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--models", help="comma-separated names of MODELS (default: all)")
    p.add_argument("--matmul", type=int, default=8192, help="side of the reference matrix product")
    args = p.parse_args(argv)

    import jax
    import keras

    from napari_superres.benchmark import Matmul, machine, time_calls

    report = {"machine": {**machine(), "devices": [str(d) for d in jax.devices()]}, "size": args.size,
              "tile": args.tile, "matmul": {}, "models": []}
    for precision in ("float32", "bfloat16"):
        mm = Matmul(args.matmul, precision)
        t = time_calls({"mm": mm}, warmup=2, repeats=args.repeats)["mm"]
        report["matmul"][precision] = {"seconds": t.wall, "tflops": 2 * mm.macs / t.wall / 1e12}
        log(f"matmul {args.matmul} {precision}: {report['matmul'][precision]['tflops']:.1f} TFLOP/s")
    img = np.random.default_rng(0).random((1, args.size, args.size, 3), dtype=np.float32)
    for name, arch, options, precisions, tiled in MODELS:
        if args.models and name not in args.models.split(","):
            continue
        try:
            measure(report, name, arch, options, precisions, tiled, img, args)
        except Exception:  # one model's failure must not cost the others their figures
            log(f"{name}: FAILED\n{traceback.format_exc()}")
        keras.backend.clear_session()
        write(report, args.output)  # after each model: a run stopped at its time limit keeps what it measured
    print(json.dumps(report, indent=1))


def write(report, path):
    if path:
        with open(path + ".tmp", "w") as f:
            f.write(json.dumps(report, indent=1))
        os.replace(path + ".tmp", path)


def resident_call(model, img):
    """A call of ``model`` as one jitted JAX function on a device-resident input, waiting for the result on the
    device (nothing read back)."""
    import jax

    x = jax.device_put(img)
    run = jax.jit(lambda t, f, x: model.stateless_call(t, f, x, training=False)[0])
    # the variables' current arrays each call: Keras' own calls may replace (donate) them
    return lambda: run([v.value for v in model.trainable_variables],
                       [v.value for v in model.non_trainable_variables], x).block_until_ready()


def measure(report, name, arch, options, precisions, tiled, img, args):
    from napari_superres.benchmark import count_macs, time_calls, with_options
    from napari_superres.engine.tiling import predict_tiled

    base = load(name, arch, options)
    if base is not None:
        macs = count_macs(base.keras_model, args.size, args.size)
        for precision in precisions:
            srm = with_options(base, precision)
            fns = {"whole": lambda: srm.keras_model.predict_on_batch(img),
                   "resident": resident_call(srm.keras_model, img)}
            if tiled:
                fns["tiled"] = lambda: predict_tiled(srm.keras_model.predict_on_batch, img, tile=args.tile,
                                                     overlap=srm.overlap, scale=srm.scale, multiple=srm.multiple,
                                                     batch_size=16)
            times = time_calls(fns, warmup=2, repeats=args.repeats)
            for mode, t in times.items():
                mp = (args.size * srm.scale) ** 2 / t.wall / 1e6
                eff = macs / t.wall / (report["matmul"][precision]["tflops"] * 1e12 / 2)
                row = {"model": name, "precision": precision, "mode": mode, "seconds": round(t.wall, 5),
                       "output_mp_s": round(mp, 1), "gmacs": round(macs / 1e9, 1), "efficiency": round(eff, 3)}
                report["models"].append(row)
                log(f"{name} {precision} {mode}: {mp:.1f} MP/s, efficiency {eff:.2f}")


if __name__ == "__main__":
    main()
