"""SPAN: the deploy form (merged 3x3 convolutions) computes what the training form computes, is what every saved
SPAN model holds (train_zoo, the trainer, save_model), and runs in the engine and in mixed bfloat16."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

import napari_superres  # noqa: E402
from napari_superres.benchmark import count_macs, with_options  # noqa: E402
from napari_superres.models.description import read_description  # noqa: E402
from napari_superres.models.loading import load_model, save_model  # noqa: E402
from napari_superres.models.registry import SPAN_FAST, SPAN_QUALITY, build_model, geometry  # noqa: E402
from napari_superres.models.span import reparameterize  # noqa: E402
from napari_superres.training import TrainConfig, log_path, read_log, train  # noqa: E402

SMALL = {"n_feats": 8, "n_blocks": 2}


def _randomize(model, seed=0):
    """Random weights of the size a trained network has (the residual output starts at zero, which would hide
    everything): kernels with variance 1/fan-in, biases around 0.1."""
    rng = np.random.default_rng(seed)
    for v in model.weights:
        shape = tuple(v.shape)
        std = 1 / np.sqrt(np.prod(shape[:-1])) if len(shape) > 1 else 0.1
        v.assign(rng.normal(0, std, shape).astype("float32"))
    return model


def _like_trained(model, seed=0):
    """Keras' random initial kernels, small random biases, and an upsampler (zero at first) that gives a
    residual of about a tenth of the range: outputs in an image's range, as after training."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kernel, bias = layer.get_weights()
            if layer.name == "upsampler":
                kernel = rng.normal(0, 0.25 / np.sqrt(np.prod(kernel.shape[:-1])), kernel.shape)
            layer.set_weights([kernel.astype("float32"), rng.normal(0, 0.01, bias.shape).astype("float32")])
    return model


def _images(shape, seed=1):
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def _conv_names(model):
    return sorted(layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D))


@pytest.mark.parametrize("scale, channels", [(2, 3), (3, 1), (4, 3)])
def test_deploy_form_computes_what_the_training_form_computes(scale, channels):
    trained = _randomize(build_model("span", scale, channels, **SMALL), seed=scale)
    deployed = reparameterize(trained)
    x = _images((2, 13, 10, channels))  # odd sizes: the merge must also hold at every border
    bicubic = np.asarray(trained.get_layer("bicubic")(x))
    want = np.asarray(trained(x)) - bicubic
    got = np.asarray(deployed(x)) - bicubic
    assert np.abs(want).max() > 0.1  # the network is far from its zero start
    # float32: the merged and the separate convolutions sum in different orders; through a dozen layers that
    # stays within a few hundred ulps of the output's magnitude (measured: 2e-6 to 5e-6 of it)
    np.testing.assert_allclose(got, want, rtol=0, atol=256 * np.finfo(np.float32).eps * np.abs(want).max())

    assert _conv_names(deployed) == sorted(
        ["head", "body_end", "fuse", "upsampler"] + [f"block{b}_conv{i}" for b in range(2) for i in range(3)]
    )
    assert all(layer.kernel.shape[:2] == (3, 3) for layer in deployed.layers
               if isinstance(layer, keras.layers.Conv2D) and layer.name != "fuse")
    assert deployed.count_params() < trained.count_params() / 2
    assert count_macs(deployed, 32, 32) < count_macs(trained, 32, 32) / 2
    assert reparameterize(deployed) is deployed


def test_tiers_fit_their_budgets():
    counts = {tier: reparameterize(build_model("span", 2, 3, **kw)).count_params()
              for tier, kw in (("fast", SPAN_FAST), ("quality", SPAN_QUALITY))}
    assert counts == {"fast": 100_972, "quality": 410_700}  # fast tier: at most 120k parameters
    assert build_model("span", 2, 3).count_params() == build_model("span", 2, 3, **SPAN_QUALITY).count_params()


def test_saved_model_is_the_deploy_form_and_runs_in_the_engine(tmp_path):
    trained = _like_trained(build_model("span", 2, 3, **SMALL))
    path = save_model(trained, tmp_path / "span.keras", {"architecture": "span", "scale": 2, "options": SMALL})
    desc = read_description(path)
    assert desc["options"] == {**SMALL, "expand": 2, "deploy": True}
    assert (desc["multiple"], desc["overlap"]) == geometry("span", **SMALL) == (1, 9)

    sr = load_model(path)  # safe_mode=True: registered layers only
    assert not [n for n in _conv_names(sr.keras_model) if n.endswith(("_expand", "_conv", "_reduce", "_skip"))]
    assert desc["parameters"] == sr.keras_model.count_params() < trained.count_params()

    image = _images((40, 52, 3), seed=2)
    out = napari_superres.upscale(image, sr, tile=16)  # tiles with the registry's context
    want = np.asarray(trained(image[None]))[0]
    assert out.shape == (80, 104, 3) and out.dtype == np.float32
    residual = want - np.asarray(trained.get_layer("bicubic")(image[None]))[0]
    assert 0.02 < np.abs(residual).max() < 1
    np.testing.assert_allclose(out, want, rtol=0, atol=1e-5)  # a 400th of a grey level

    # the description rebuilds the saved form: the benchmark's mixed bfloat16 path uses it
    rebuilt = build_model("span", 2, 3, **desc["options"])
    rebuilt.set_weights(sr.keras_model.get_weights())
    half = with_options(sr, "bfloat16")
    assert half.keras_model.get_layer("head").compute_dtype == "bfloat16"
    assert half.keras_model.get_layer("hr").compute_dtype == "float32"
    x = image[None]
    np.testing.assert_array_equal(np.asarray(rebuilt(x)), np.asarray(sr.keras_model(x)))
    # bfloat16 keeps 8 significant bits: with these random weights its error is about a tenth of the residual
    assert np.abs(half.predict(x) - want[None]).max() < 0.25 * np.abs(residual).max()


def test_mixed_precision_training_model_deploys_in_its_policy():
    """train_zoo trains under mixed_bfloat16: the merge keeps that policy and is no less accurate in it."""
    reference = _like_trained(build_model("span", 2, 1, **SMALL))
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        trained = build_model("span", 2, 1, **SMALL)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    trained.set_weights(reference.get_weights())
    deployed = reparameterize(trained)
    assert deployed.get_layer("block1_conv2").compute_dtype == "bfloat16"
    assert deployed.get_layer("block1_conv2").kernel.dtype == "float32"
    assert deployed.get_layer("hr").compute_dtype == "float32"
    x = _images((1, 24, 24, 1))
    want = np.asarray(reference(x))
    train_error = np.abs(np.asarray(trained(x)) - want).max()
    assert 0 < np.abs(np.asarray(deployed(x)) - want).max() < 2 * train_error


def test_trainer_saves_the_deploy_form_and_resumes_from_the_training_form(tmp_path):
    from PIL import Image
    from skimage import data

    folder = tmp_path / "photos"
    folder.mkdir()
    for name, img in (("chelsea", data.chelsea()), ("coffee", data.coffee()), ("astronaut", data.astronaut())):
        Image.fromarray(img[:96, :128]).save(folder / f"{name}.png")
    out = tmp_path / "my-span.keras"
    cfg = dict(data_dir=folder, out=out, arch="span", arch_options=SMALL, scale=2, steps_per_epoch=3, patch=32,
               batch=4, val_fraction=0.34)
    train(TrainConfig(epochs=1, **cfg))
    train(TrainConfig(epochs=2, resume=True, **cfg))  # the checkpoint holds the training form
    assert [r["epoch"] for r in read_log(log_path(out)) if r["event"] == "epoch"] == [1, 2]
    desc = read_description(out)  # the best epoch's model
    assert desc["options"] == {**SMALL, "expand": 2, "deploy": True}
    sr = load_model(out)
    assert "block0_conv0" in _conv_names(sr.keras_model) and "block0_conv0_expand" not in _conv_names(sr.keras_model)
    assert desc["parameters"] == sr.keras_model.count_params()
    assert napari_superres.upscale(data.astronaut()[:40, :48], sr).shape == (80, 96, 3)


def test_span_fast_learns_detail_that_bicubic_misses():
    """A hundred Adam steps of the fast tier on patches of four real photos: on a photo it never saw, its
    PSNR beats bicubic's (measured: +0.72 dB; ESPCN, the same steps at its own rate 3e-3, +0.36 dB)."""
    from skimage import data

    from napari_superres.training.metrics import bicubic_downscale, bicubic_upscale, modcrop, psnr

    hr = [modcrop(im, 2) for im in (data.chelsea(), data.rocket(), data.immunohistochemistry(), data.coffee())]
    lr = [bicubic_downscale(im, 2) for im in hr]
    rng = np.random.default_rng(0)

    def batch(n=16, p=24):
        picks = [(i, rng.integers(lr[i].shape[0] - p), rng.integers(lr[i].shape[1] - p))
                 for i in rng.integers(len(lr), size=n)]
        x = np.stack([lr[i][y:y + p, x:x + p] for i, y, x in picks])
        y = np.stack([hr[i][2 * y:2 * (y + p), 2 * x:2 * (x + p)] for i, y, x in picks])
        return x.astype(np.float32) / 255, y.astype(np.float32) / 255

    keras.utils.set_random_seed(0)
    model = build_model("span", 2, 3, **SPAN_FAST)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mean_absolute_error")
    for _ in range(100):
        model.train_on_batch(*batch())
    held_out = data.astronaut()[:256, :256]
    small = bicubic_downscale(held_out, 2)
    gain = psnr(held_out, napari_superres.upscale(small, load_model(model)), scale=2) - psnr(
        held_out, bicubic_upscale(small, 2), scale=2)
    assert gain > 0.3, gain
