"""The prepared device run (scripts/device/), proven on the CPU with Keras on JAX and a tiny budget: the same
command a GPU session starts, on data packed the same way, then its weights imported as shipped models are."""

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from napari_superres.benchmark import HELD_OUT

REPO = Path(__file__).resolve().parents[2]
pytest.importorskip("jax", reason="the device run uses Keras on JAX: install the testing extra")


def _photos():
    return [getattr(skdata, n)() for n in ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry")]


@pytest.fixture(scope="module")
def device_run(tmp_path_factory):
    """Pack a small data folder as scripts/device/pack.py does, run scripts/device/run.sh on it."""
    tmp = tmp_path_factory.mktemp("device")
    data, corpus = tmp / "data", tmp / "corpus"
    for d in (data / "photos", data / "val", data / "microscopy", corpus):
        d.mkdir(parents=True)
    photos = _photos()
    for i, img in enumerate(photos[:3]):
        Image.fromarray(img).save(data / "photos" / f"photo{i:03d}.webp", lossless=True)
        Image.fromarray(img).save(corpus / f"train{i}.png")
    for name, img in zip(HELD_OUT, photos[1:]):  # the corpus layout import_weights.py validates on
        Image.fromarray(img).save(corpus / name)
        Image.fromarray(img[:96, :96]).save(data / "val" / f"{Path(name).stem}.webp", lossless=True)
    # the real fluorescence image pack.py copies from mahotas; here a simulated one stands in
    from napari_superres.training.fluorescence import simulate_hr

    field = np.tile(simulate_hr((256, 256), np.random.default_rng(0)), (2, 6))[:, :1344]  # nuclear.png's size
    Image.fromarray(np.clip(field / field.max() * 255, 0, 255).astype(np.uint8)).save(data / "microscopy" / "nuclear.png")
    env = {**os.environ, "PYTHON": sys.executable, "OUT": str(tmp / "out"), "DATA": str(data), "DEADLINE": "600",
           "BENCH_SECONDS": "300", "BENCH_ARGS": "--size 32 --repeats 1 --matmul 256 --models edsr-x2,espcn-x2"}
    run = subprocess.run(["bash", "scripts/device/run.sh", "--only", "espcn-x2,edsr-x4,fluo-espcn-x2,span-fast-x2",
                          "--seconds-scale", "0.4", "--micro-pool", "64"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    return run, tmp


def test_device_run_trains_checkpoints_and_benches(device_run):
    run, tmp = device_run
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    out = tmp / "out"
    history = json.loads((out / "history.json").read_text())
    assert set(history) == {"espcn-x2", "edsr-x4", "fluo-espcn-x2", "span-fast-x2"}
    for name, group in (("espcn-x2", "fast.tar"), ("edsr-x4", "photo.tar"), ("fluo-espcn-x2", "microscopy.tar"),
                        ("span-fast-x2", "span.tar")):
        entry = history[name]
        if name in ("espcn-x2", "edsr-x4"):
            assert entry["warm_start"] == name and entry["steps_before"] > 0  # resumed from the shipped model
        else:
            assert entry["warm_start"] is None and entry["steps_before"] == 0
        assert entry["steps"] > entry["steps_before"]
        assert len(entry["curve"]) >= 2 and all(np.isfinite(psnr) for _, psnr in entry["curve"])
        with tarfile.open(out / group) as t:
            assert f"{name}.npz" in t.getnames()
    bench = json.loads((out / "bench.json").read_text())
    assert set(bench["matmul"]) == {"float32", "bfloat16"}
    rows = {(r["model"], r["precision"], r["mode"]) for r in bench["models"]}
    assert {("edsr-x2", "float32", "whole"), ("edsr-x2", "float32", "tiled"), ("espcn-x2", "bfloat16", "whole")} <= rows
    assert all(r["output_mp_s"] > 0 and r["efficiency"] > 0 for r in bench["models"])


def test_imported_weights_become_loadable_described_models(device_run):
    run, tmp = device_run
    assert run.returncode == 0
    weights = tmp / "weights"
    weights.mkdir()
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    imp = subprocess.run([sys.executable, "scripts/device/import_weights.py", str(tmp / "out"), "--only", "espcn-x2",
                          "--corpus", str(tmp / "corpus"), "--weights-dir", str(weights)],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert imp.returncode == 0, imp.stdout[-3000:] + imp.stderr[-3000:]
    from napari_superres.models.description import read_description
    from napari_superres.models.loading import load_model

    history = json.loads((tmp / "out" / "history.json").read_text())["espcn-x2"]
    desc = read_description(weights / "espcn-x2.keras")
    training = desc["training"]
    assert training["steps"] == history["steps"]
    assert training["runs"][-1]["machine"].startswith("NVIDIA")
    assert training["runs"][-1]["curve"] == history["curve"]
    assert desc["validation"]["psnr"] > 0 and desc["validation"]["bicubic_psnr"] > 0
    sr = load_model(weights / "espcn-x2.keras")  # safe_mode=True
    out = sr.predict(np.zeros((1, 8, 8, 3), np.float32))
    assert out.shape == (1, 16, 16, 3)
