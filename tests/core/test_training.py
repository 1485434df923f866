"""Training runs end to end on real images: HR-only beats bicubic, paired, uint16 stacks, resume, cancel, GAN,
NaN loss. Budgets are small (seconds of CPU each) except the quality test, whose budget is the smallest that
beats bicubic by a margin it meets reliably."""

import json
import zipfile

import numpy as np
import pytest
import tifffile
from PIL import Image
from skimage import data

from napari_superres.models.description import read_description
from napari_superres.models.loading import load_model
from napari_superres.training import TrainConfig, evaluate, log_path, metrics, read_log, train
from napari_superres.training.trainer import TrainingError

TRAIN_PHOTOS = {
    "chelsea": data.chelsea,
    "rocket": data.rocket,
    "motorcycle": lambda: data.stereo_motorcycle()[0],
    "hubble": data.hubble_deep_field,
    "ihc": data.immunohistochemistry,
    "retina": data.retina,
}
HELD_OUT = {"astronaut": data.astronaut, "coffee": data.coffee}


@pytest.fixture(scope="module")
def photo_dirs(tmp_path_factory):
    """Real photographs bundled with scikit-image: six to train on, two held out."""
    root = tmp_path_factory.mktemp("photos")
    for folder, photos in (("train", TRAIN_PHOTOS), ("held", HELD_OUT)):
        (root / folder).mkdir()
        for name, load in photos.items():
            Image.fromarray(load()).save(root / folder / f"{name}.png")
    return root / "train", root / "held"


@pytest.fixture(scope="module")
def small_photos(tmp_path_factory):
    """Small crops of three photos, for the runs that test mechanics rather than quality."""
    root = tmp_path_factory.mktemp("small")
    for name, img in (("chelsea", data.chelsea()), ("coffee", data.coffee()), ("astronaut", data.astronaut())):
        Image.fromarray(img[:96, :128]).save(root / f"{name}.png")
    return root


def _tiny(data_dir, out, **kw):
    opts = dict(arch="espcn", scale=2, epochs=1, steps_per_epoch=3, patch=32, batch=4, val_fraction=0.34)
    opts.update(kw)
    return TrainConfig(data_dir=data_dir, out=out, **opts)


def _epochs(out):
    return [r for r in read_log(log_path(out)) if r["event"] == "epoch"]


def test_hr_only_espcn_beats_bicubic_on_held_out_photos(photo_dirs, tmp_path):
    train_dir, held_dir = photo_dirs
    out = tmp_path / "espcn_x2.keras"
    cfg = TrainConfig(data_dir=train_dir, out=out, arch="espcn", scale=2, epochs=2, steps_per_epoch=150,
                      patch=64, batch=16, val_dir=held_dir)
    assert train(cfg) == out

    result = evaluate(out, held_dir)
    gain = result["mean"]["psnr"] - result["mean"]["bicubic_psnr"]
    assert [r["name"] for r in result["images"]] == ["astronaut.png", "coffee.png"]
    assert gain > 0.2, result["mean"]
    assert all(r["psnr"] > r["bicubic_psnr"] for r in result["images"])
    assert result["mean"]["ssim"] > result["mean"]["bicubic_ssim"]

    # the same numbers by hand: bicubic downscale, the model through the engine, PSNR on Y with crop 2
    from napari_superres import upscale

    hr = data.astronaut()
    lr = metrics.bicubic_downscale(hr, 2)
    assert metrics.psnr(hr, upscale(lr, out), scale=2) == pytest.approx(result["images"][0]["psnr"], abs=1e-6)
    assert metrics.psnr(hr, metrics.bicubic_upscale(lr, 2), scale=2) == pytest.approx(
        result["images"][0]["bicubic_psnr"], abs=1e-6)

    desc = read_description(out)
    assert desc["architecture"] == "espcn" and desc["scale"] == 2 and desc["channels"] == 3
    assert desc["normalization"] == {"mode": "range"}
    assert desc["training"]["mode"] == "hr-only" and desc["training"]["degradation"]["kind"] == "bicubic"
    assert desc["training"]["status"] == "finished" and desc["training"]["epochs"] == 2
    assert desc["validation"]["psnr"] == pytest.approx(result["mean"]["psnr"], abs=1e-6)
    assert desc["validation"]["bicubic_psnr"] == pytest.approx(result["mean"]["bicubic_psnr"], abs=1e-6)
    with zipfile.ZipFile(out) as z:
        assert "config.json" in z.namelist()
    load_model(out)  # safe_mode=True

    records = read_log(log_path(out))
    assert [r["event"] for r in records] == ["start", "epoch", "epoch", "end"]
    for r in records[1:3]:
        assert {"epoch", "loss", "val_psnr", "val_ssim", "bicubic_psnr", "bicubic_ssim", "time"} <= set(r)
    assert records[-1]["status"] == "finished"


def test_paired_folders(tmp_path):
    root = tmp_path / "pairs"
    for name, img in (("cat", data.chelsea()[:96, :128]), ("coffee", data.coffee()[:96, :128]),
                      ("rocket", data.rocket()[:96, :128])):
        for sub, arr in (("hr", img), ("lr", metrics.bicubic_downscale(img, 2))):
            (root / sub).mkdir(parents=True, exist_ok=True)
            Image.fromarray(arr).save(root / sub / f"{name}.png")
    out = tmp_path / "paired.keras"
    events = []
    train(_tiny(root, out, epochs=2, tensorboard=True), on_event=events.append)
    desc = read_description(out)
    assert desc["training"]["mode"] == "paired" and desc["training"]["files"] == 2
    assert desc["validation"]["images"] == 1 and desc["validation"]["metric"] == "uint8"
    assert [e["event"] for e in events] == ["start", "epoch", "epoch", "end"]
    assert events == read_log(log_path(out))  # the callback sees exactly what the log holds
    m = load_model(out)
    assert m.scale == 2 and m.channels == 3
    # TensorBoard: one point per epoch of each scalar of the log
    import tensorflow as tf
    from tensorflow.core.util import event_pb2

    board = out.with_name("paired.train") / "tensorboard"
    points = {}
    for f in board.glob("events.out.tfevents*"):
        for raw in tf.data.TFRecordDataset(str(f)):
            event = event_pb2.Event.FromString(raw.numpy())
            for v in event.summary.value:
                points.setdefault(v.tag, []).append((event.step, tf.make_ndarray(v.tensor).item()))
    assert [step for step, _ in points["val_psnr"]] == [1, 2]
    assert [value for _, value in points["val_psnr"]] == pytest.approx([e["val_psnr"] for e in events[1:3]])
    assert {"loss", "val_ssim", "bicubic_psnr", "time"} <= set(points)


def test_uint16_tiff_stack_trains_a_gray_model_with_percentile_normalisation(tmp_path):
    # a microscopy-like 12-bit stack: each slice is a training image
    rng = np.random.default_rng(0)
    base = data.camera()[:96, :96].astype(np.float64)
    stack = np.stack([np.roll(base, 7 * i, axis=1) * 12 + 200 + rng.normal(0, 20, base.shape) for i in range(6)])
    stack = np.clip(stack, 0, 4095).astype(np.uint16)
    (tmp_path / "stack").mkdir()
    tifffile.imwrite(tmp_path / "stack" / "cells.tif", stack, imagej=True, metadata={"axes": "ZYX"})
    out = tmp_path / "stack.keras"
    # camera-like degradation: optical blur, pixel binning, read noise
    train(_tiny(tmp_path / "stack", out, val_fraction=0.34, degradation="area", blur=0.8, noise=0.02))
    desc = read_description(out)
    assert desc["training"]["degradation"] == {"kind": "area", "blur": 0.8, "noise": 0.02, "poisson": 0.0, "jpeg": 0}
    assert desc["channels"] == 1
    assert desc["normalization"] == {"mode": "percentile", "low": 2.0, "high": 99.8}
    assert desc["training"]["images"] == 4 and desc["validation"]["images"] == 2  # split by slices
    assert desc["validation"]["metric"] == "normalised"
    assert desc["training"]["dtypes"] == ["uint16"]

    from napari_superres import upscale

    up = upscale(stack[:2, :40, :40], out)
    assert up.dtype == np.uint16 and up.shape == (2, 80, 80)
    assert abs(float(up.mean()) - float(stack[:2, :40, :40].mean())) < 0.05 * float(stack.mean())

    result = evaluate(out, tmp_path / "stack")
    assert len(result["images"]) == 6 and result["images"][0]["name"] == "cells.tif[0]"
    assert "normalised" in result["metric"]
    assert all(np.isfinite(r["psnr"]) and 0 < r["ssim"] <= 1 for r in result["images"])


def test_gray_model_on_the_luminance_of_rgb_photos(small_photos, tmp_path):
    out = tmp_path / "gray.keras"
    train(_tiny(small_photos, out, channels=1, noise=0.01))
    desc = read_description(out)
    assert desc["channels"] == 1 and desc["normalization"] == {"mode": "range"}
    assert desc["validation"]["metric"] == "uint8" and np.isfinite(desc["validation"]["psnr"])
    from napari_superres import upscale

    rgb = data.astronaut()[:40, :48]
    up = upscale(rgb, out)  # a gray model takes each colour channel on its own
    assert up.shape == (80, 96, 3) and up.dtype == np.uint8


def test_resume_continues_from_the_checkpoint_epoch(small_photos, tmp_path):
    out = tmp_path / "resumed.keras"
    train(_tiny(small_photos, out, epochs=1))
    first = read_description(out)
    assert first["training"]["epochs"] == 1
    ckpt = np.load(out.with_name("resumed.train") / "checkpoint.npz")
    state = json.loads(bytes(ckpt["state"]).decode())
    assert state["epoch"] == 1 and int(ckpt["optimizer/00000"]) == 3  # Adam's step counter

    train(_tiny(small_photos, out, epochs=3, resume=True))
    records = read_log(log_path(out))
    starts = [r for r in records if r["event"] == "start"]
    assert [s["initial_epoch"] for s in starts] == [0, 1]
    assert [r["epoch"] for r in records if r["event"] == "epoch"] == [1, 2, 3]
    ckpt = np.load(out.with_name("resumed.train") / "checkpoint.npz")
    assert int(ckpt["optimizer/00000"]) == 9  # 3 epochs x 3 steps: the optimizer state was carried over
    assert json.loads(bytes(ckpt["state"]).decode())["epoch"] == 3

    with pytest.raises(Exception, match="already has 3 epochs"):
        train(_tiny(small_photos, out, epochs=3, resume=True))
    with pytest.raises(Exception, match="different arch"):
        train(_tiny(small_photos, out, epochs=5, resume=True, arch="fsrcnn"))


def test_cancel_leaves_a_loadable_model(small_photos, tmp_path):
    # cancelled in the first epoch: the weights so far are saved
    out = tmp_path / "cancelled.keras"
    done = []
    assert train(_tiny(small_photos, out, epochs=3, steps_per_epoch=5), progress=lambda d, t: done.append(d),
                 cancel=lambda: len(done) >= 2) == out
    assert done == [1, 2]  # asked after every step, stopped after the second
    m = load_model(out)
    assert m.scale == 2
    assert read_description(out)["training"]["status"] == "cancelled"
    end = read_log(log_path(out))[-1]
    assert end["event"] == "end" and end["status"] == "cancelled" and end["epochs"] == 0

    # cancelled in the second epoch: the model of epoch 1 stays
    out2 = tmp_path / "cancelled2.keras"
    steps = []
    train(_tiny(small_photos, out2, epochs=3, steps_per_epoch=3), progress=lambda d, t: steps.append((d, t)),
          cancel=lambda: len(steps) >= 4)
    assert steps[:4] == [(1, 9), (2, 9), (3, 9), (4, 9)]
    desc = read_description(out2)
    assert desc["training"]["epochs"] == 1 and desc["training"]["status"] == "cancelled"
    assert [r["epoch"] for r in _epochs(out2)] == [1]
    load_model(out2)


def test_gan_end_to_end_gives_a_loadable_model(small_photos, tmp_path):
    out = tmp_path / "gan.keras"
    train(_tiny(small_photos, out, epochs=2, steps_per_epoch=3, gan=True, gan_pretrain=2, jpeg=60))
    epochs = _epochs(out)
    assert len(epochs) == 2 and all(np.isfinite(e["d_loss"]) and np.isfinite(e["adv_loss"]) for e in epochs)
    desc = read_description(out)
    assert desc["training"]["gan"] == {"loss": "relativistic", "weight": 5e-3, "pretrain_steps": 2}
    assert desc["validation"]["selection"] == "last epoch (GAN)" and desc["training"]["epochs"] == 2
    m = load_model(out)
    y = m.predict(np.random.default_rng(0).random((1, 16, 16, 3), dtype=np.float32))
    assert y.shape == (1, 32, 32, 3) and np.isfinite(y).all()
    # the file is the generator alone: the discriminator stays in the checkpoint
    assert "discriminator/00000" in np.load(out.with_name("gan.train") / "checkpoint.npz").files
    assert all("d_conv" not in layer.name for layer in m.keras_model.layers)


def test_nan_loss_stops_and_keeps_the_last_good_model(small_photos, tmp_path):
    out = tmp_path / "nan.keras"
    train(_tiny(small_photos, out, epochs=1))
    m_good = load_model(out)
    with pytest.raises(TrainingError, match=r"NaN or infinite at epoch 2, step \d; .*kept the model of epoch 1"):
        train(_tiny(small_photos, out, epochs=3, resume=True, learning_rate=1e38))
    assert read_description(out)["training"]["status"] == "stopped: the loss became NaN"
    assert load_model(out).keras_model.get_weights()[0].tolist() == m_good.keras_model.get_weights()[0].tolist()
    records = read_log(log_path(out))
    assert records[-1]["event"] == "error" and "NaN" in records[-1]["message"]
    assert [r["epoch"] for r in records if r["event"] == "epoch"] == [1]
