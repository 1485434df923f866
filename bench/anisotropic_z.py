"""Z upscaling of an anisotropic stack, measured against a truth: the 2D model on XZ/YZ planes vs linear
interpolation in Z.

A synthetic isotropic volume (spheres and filaments, blurred by an isotropic PSF; 8-bit, noise-free) is the
truth. Its Z is reduced by 2, as an anisotropic acquisition would sample it, in two ways: antialiased bicubic
(the degradation the models are trained on) and the mean of slice pairs (thick optical sections). Each reduced
stack is brought back to the full Z by

- linear interpolation in Z (``engine.anisotropic``, method "linear");
- cubic interpolation: the same plane pipeline with a fixed bicubic "model" (no learning), which isolates the
  plane reduction and averaging from what a learned model adds;
- a 1-channel x2 ESPCN trained here on XY slices of another volume of the same kind (as CARE's isotropic
  reconstruction trains on lateral slices), applied to XZ and YZ planes (method "model");
- the shipped photo model ``espcn-x2`` (if present), the same way.

PSNR (peak 255) over the whole volume except two output slices at each Z end (where interpolation has only one
neighbour). Run: ``python bench/anisotropic_z.py --out runs/anisotropic_z`` (about 5 minutes on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def make_volume(seed: int, shape=(96, 128, 128)) -> np.ndarray:
    """Isotropic 8-bit volume: spheres of radius 2-7 and thin filaments, Gaussian PSF (sigma 0.7 voxel)."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    z, y, x = np.indices(shape, dtype=np.float32)
    vol = np.zeros(shape, np.float32)
    for _ in range(150):
        c = rng.uniform(0, shape)
        r = rng.uniform(2, 7)
        d2 = (z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2
        vol += rng.uniform(0.3, 1.0) * (d2 < r * r)
    for _ in range(80):  # straight filaments through the volume, about 1 voxel thick
        p, v = rng.uniform(0, shape), rng.normal(size=3)
        v /= np.linalg.norm(v)
        for t in np.arange(-200, 200, 0.5):
            q = np.round(p + t * v).astype(int)
            if all(0 <= q[i] < shape[i] for i in range(3)):
                vol[tuple(q)] = max(vol[tuple(q)], rng.uniform(0.5, 1.0))
    vol = gaussian_filter(vol, 0.7)
    vol = vol / np.percentile(vol, 99.9) * 0.9 + 0.05
    return np.clip(np.rint(vol * 255), 0, 255).astype(np.uint8)


def reduce_z(vol: np.ndarray, how: str) -> np.ndarray:
    """Z reduced by 2: antialiased bicubic (Pillow, per XZ plane) or the mean of slice pairs."""
    if how == "box":
        v = vol[: vol.shape[0] // 2 * 2].astype(np.float32)
        return np.rint((v[0::2] + v[1::2]) / 2).astype(vol.dtype)
    from PIL import Image

    out = np.empty((vol.shape[0] // 2,) + vol.shape[1:], np.float32)
    for yy in range(vol.shape[1]):
        img = Image.fromarray(vol[:, yy, :].astype(np.float32))
        out[:, yy, :] = np.asarray(img.resize((vol.shape[2], vol.shape[0] // 2), Image.BICUBIC))
    return np.clip(np.rint(out), 0, 255).astype(vol.dtype)


def psnr(a, b, crop=2) -> float:
    d = a[crop:-crop].astype(np.float64) - b[crop:-crop].astype(np.float64)
    return float(10 * np.log10(255.0**2 / np.mean(d * d)))


def bicubic_model():
    import keras

    from napari_superres.models.layers import BicubicUpsample
    from napari_superres.models.loading import load_model

    inp = keras.Input((None, None, 1))
    return load_model(keras.Model(inp, BicubicUpsample(2)(inp), name="bicubic_x2"))


def train_lateral_model(out: Path, steps: int) -> Path:
    """ESPCN x2 trained on the XY slices of a separate volume (seed 1)."""
    from PIL import Image

    from napari_superres.training.config import TrainConfig
    from napari_superres.training.trainer import train

    model_path = out / "espcn_lateral_x2.keras"
    if model_path.exists():
        return model_path
    with tempfile.TemporaryDirectory() as tmp:
        train_vol = make_volume(1, (128, 128, 128))
        for i, sl in enumerate(train_vol):
            Image.fromarray(sl).save(Path(tmp) / f"xy_{i:03d}.png")
        config = TrainConfig(
            data_dir=tmp, out=model_path, arch="espcn", scale=2, epochs=max(1, steps // 100), steps_per_epoch=100,
            patch=64, batch=16, hr_only=True, degradation="bicubic", channels=1, normalization="range",
        )
        train(config)
    return model_path


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="runs/anisotropic_z", help="folder for the trained model and results.json")
    ap.add_argument("--steps", type=int, default=800, help="training steps of the lateral model")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    from napari_superres.engine.anisotropic import upscale_z
    from napari_superres.models.catalog import list_models
    from napari_superres.models.loading import load_model

    t0 = time.time()
    lateral = load_model(train_lateral_model(out, args.steps))
    train_s = time.time() - t0
    methods = {"linear": None, "cubic (bicubic plane model)": bicubic_model(), "model: ESPCN trained on XY slices": lateral}
    shipped = [m for m in list_models() if m.name == "espcn-x2"]
    if shipped:
        methods["model: shipped espcn-x2 (photos)"] = load_model(shipped[0].path)

    truth = make_volume(0)
    results = {"volume": list(truth.shape), "train_seconds": round(train_s, 1), "psnr": {}}
    for how in ("bicubic", "box"):
        low = reduce_z(truth, how)
        row = {}
        for name, model in methods.items():
            t = time.time()
            method = "linear" if model is None else "model"
            up = upscale_z(low, model, axes="ZYX", factor=2, method=method)
            row[name] = {"psnr": round(psnr(up, truth), 2), "seconds": round(time.time() - t, 1)}
            print(f"{how:8s} {name:38s} PSNR {row[name]['psnr']:6.2f} dB  ({row[name]['seconds']} s)", flush=True)
        results["psnr"][how] = row
    (out / "results.json").write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
