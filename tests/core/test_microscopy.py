"""Microscopy training data: the fluorescence simulator (structures, PSF, camera), the microscope degradation,
the percentile map shared by LR and HR (undone by the engine's inverse), microscopy validation, and the CLI."""

import json

import numpy as np
import pytest
import tifffile

from napari_superres.cli import main
from napari_superres.engine.normalize import fit_normalizer
from napari_superres.training import fluorescence as fl
from napari_superres.training import metrics
from napari_superres.training.degrade import Degradation, degrade, margin
from napari_superres.training.microscopy import (camera_pair, microscopy_pairs, photo_luminance,
                                                 relative_intensity)


# ----------------------------------------------------------------------------------------------- simulator


@pytest.mark.parametrize("kind", fl.KINDS)
def test_each_structure_is_clean_float32_light_with_its_brightest_parts_near_one(kind):
    x = fl.simulate_hr((96, 80), np.random.default_rng(3), kind)
    assert x.shape == (96, 80) and x.dtype == np.float32
    assert x.min() >= 0 and 0.9 < np.percentile(x, 99.9) < 1.6
    assert np.percentile(x, 99.9) > 3 * np.percentile(x, 20)  # structure on a dim background, not a flat field


def test_simulation_is_reproducible_with_a_seed_and_differs_between_seeds():
    a = fl.simulate_hr((64, 64), np.random.default_rng(7))
    b = fl.simulate_hr((64, 64), np.random.default_rng(7))
    c = fl.simulate_hr((64, 64), np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    lr1, p1 = fl.microscope_lr(a, 2, np.random.default_rng(1))
    lr2, p2 = fl.microscope_lr(a, 2, np.random.default_rng(1))
    np.testing.assert_array_equal(lr1, lr2)
    assert p1 == p2


def test_unknown_structure_or_psf_is_refused():
    with pytest.raises(ValueError, match="unknown structure 'cells'"):
        fl.simulate_hr((32, 32), np.random.default_rng(0), "cells")
    with pytest.raises(ValueError, match="unknown PSF kind"):
        fl.psf_kernel(1.0, "square")


def test_psf_kernels_sum_to_one_and_the_airy_pattern_has_rings():
    g, a = fl.psf_kernel(1.5, "gaussian"), fl.psf_kernel(1.5, "airy")
    assert abs(g.sum() - 1) < 1e-5 and abs(a.sum() - 1) < 1e-5
    profile = a[a.shape[0] // 2, a.shape[1] // 2 :]
    assert np.all(np.diff(g[g.shape[0] // 2, g.shape[1] // 2 :]) <= 0)  # Gaussian: falls all the way
    assert np.any(np.diff(profile) > 0)  # Airy: a dark ring, then a bright one


def test_binning_sums_the_hr_pixels_a_camera_pixel_covers():
    x = np.arange(6 * 8, dtype=np.float32).reshape(6, 8)
    out = fl.bin_pixels(x, 2)
    assert out.shape == (3, 4)
    assert out[0, 0] == x[0, 0] + x[0, 1] + x[1, 0] + x[1, 1]
    assert out.sum() == x.sum()
    assert fl.bin_pixels(np.ones((7, 9)), 3).shape == (2, 3)  # remainder rows and columns dropped


def test_shot_noise_variance_equals_the_mean_and_read_noise_adds_its_variance():
    rng = np.random.default_rng(0)
    hr = np.full((400, 400), 0.5, np.float32)
    counts, p = fl.microscope_lr(hr, 2, rng, photons=80.0, read_noise=0.0, offset=100)
    assert counts.dtype == np.uint16 and counts.shape == (200, 200) and p == 80.0
    signal = counts.astype(np.float64) - 100
    assert abs(signal.mean() - 40.0) < 0.2  # mean of the block (0.5) x 80 photons
    assert abs(signal.var() / signal.mean() - 1) < 0.05  # Poisson: variance = mean
    counts, _ = fl.microscope_lr(hr, 2, rng, photons=80.0, read_noise=3.0, offset=100)
    assert abs(counts.astype(np.float64).var() - (40 + 9)) < 0.06 * 49


def test_camera_counts_are_integers_with_an_offset_and_clip_instead_of_wrapping():
    dark, _ = fl.microscope_lr(np.zeros((64, 64), np.float32), 2, np.random.default_rng(0), photons=100.0,
                               read_noise=1.0, offset=100)
    assert 95 <= dark.mean() <= 105 and dark.min() > 0
    bright, _ = fl.microscope_lr(np.ones((8, 8), np.float32), 2, np.random.default_rng(0), photons=1e6,
                                 read_noise=1.0, offset=100)
    assert bright.dtype == np.uint16 and np.all(bright == 65535)


def test_camera_gain_leaves_the_asked_grey_levels_and_keeps_the_expectation():
    # A bright, clean scene read with a gain that leaves 40 levels above the offset (an 8-bit-like image).
    hr = np.tile(np.linspace(0, 1, 400, dtype=np.float32), (400, 1))
    counts, k = fl.microscope_lr(hr, 2, np.random.default_rng(0), photons=1e5, read_noise=0.0, offset=100,
                                 levels=40.0)
    assert counts.max() - 100 == 40 and len(np.unique(counts)) <= 41
    expected = fl.expected_counts(fl.bin_pixels(hr, 2) / 4, 1, k)  # the LR's expectation from the returned k
    assert np.abs(counts - expected).max() <= 0.5 + 4 * np.sqrt(1e5) / (1e5 / 40)  # rounding and shot noise


def test_saturated_scenes_give_flat_tops_in_both_the_input_and_the_target():
    nuclei = fl.simulate_hr((400, 400), np.random.default_rng(3), "nuclei")
    lr, hr = microscopy_pairs(4, 32, 2, np.random.default_rng(4), real=[("nuclei", nuclei)], real_fraction=1.0,
                              saturated_fraction=1.0, clean_fraction=1.0, context=1)
    for a, b in zip(lr, hr):
        top = b.max()
        assert (b >= top - 1e-6).sum() >= 4  # clipped: several target pixels share the maximum
        assert a.max() <= top + 0.05  # the camera saw the same clipped scene


# ----------------------------------------------------------------------------------------------- pairs


def test_pairs_have_the_shapes_and_dtype_a_model_trains_on_and_are_reproducible():
    lr, hr = microscopy_pairs(4, 16, 2, np.random.default_rng(5))
    assert lr.shape == (4, 16, 16, 1) and hr.shape == (4, 32, 32, 1)
    assert lr.dtype == np.float32 and hr.dtype == np.float32
    lr2, hr2 = microscopy_pairs(4, 16, 2, np.random.default_rng(5))
    np.testing.assert_array_equal(lr, lr2)
    np.testing.assert_array_equal(hr, hr2)


def test_the_pair_is_mapped_as_the_engine_maps_the_lr_and_its_inverse_gives_counts_back():
    rng = np.random.default_rng(2)
    field = fl.simulate_hr((128, 128), rng, "nuclei")
    counts, p = fl.microscope_lr(field, 2, np.random.default_rng(9))
    lr, hr = camera_pair(field, 2, np.random.default_rng(9))
    engine = fit_normalizer(counts, "percentile")  # what the engine fits on a uint16 microscopy input
    np.testing.assert_allclose(lr, engine.forward(counts), atol=1e-6)
    back = engine.inverse(hr, np.float32)  # the engine's inverse of the model's target: counts again
    np.testing.assert_allclose(back, fl.expected_counts(field, 2, p), rtol=1e-5, atol=1e-3)
    # the target keeps the mean of each camera pixel: binning it gives the camera's expectation
    np.testing.assert_allclose(fl.bin_pixels(back, 2) / 4, 100 + p * fl.bin_pixels(field, 2) / 4, rtol=1e-5)


def test_real_images_become_relative_intensity_from_their_background():
    img = np.full((50, 60), 19, np.uint8)
    img[20:30, 20:40] = 200
    rel = relative_intensity(img)
    assert rel.dtype == np.float32 and rel.min() == 0 and abs(rel.max() - 1) < 1e-6


def test_pairs_can_mix_real_images():
    real = [("spots", relative_intensity(fl.simulate_hr((200, 200), np.random.default_rng(0), "puncta")))]
    lr, hr = microscopy_pairs(3, 16, 4, np.random.default_rng(1), real=real, real_fraction=1.0)
    assert lr.shape == (3, 16, 16, 1) and hr.shape == (3, 64, 64, 1)


def test_pairs_can_draw_on_photographs_and_a_bright_field_never_saturates_the_camera():
    # A bright photograph (most of it at relative intensity 1, as a sky) at the clean photon level: a
    # saturated camera would leave the LR flat and the target unrecoverable (values far outside 0-1).
    sky = np.ones((400, 400, 3), np.uint8) * 250
    sky[::7] = 10
    photos = photo_luminance([("sky", sky)])
    assert photos[0][1].dtype == np.float32 and photos[0][1].ndim == 2
    lr, hr = microscopy_pairs(6, 16, 4, np.random.default_rng(2), photos=photos, photo_fraction=1.0,
                              clean_fraction=1.0)
    assert lr.shape == (6, 16, 16, 1) and hr.shape == (6, 64, 64, 1)
    assert 0.5 < lr.max() < 1.5 and hr.max() < 3  # the percentile map of an unsaturated LR
    counts, _ = fl.microscope_lr(photos[0][1], 4, np.random.default_rng(0), photons=1e6, avoid_saturation=True)
    assert counts.max() < 65535


# ----------------------------------------------------------------------------------------------- degradation


def test_microscope_degradation_bins_adds_noise_and_keeps_the_units():
    deg = Degradation(2, "microscope")
    assert not deg.plain and margin(deg) == 0 and margin(Degradation(2, "microscope", blur=1.0)) == 4
    hr = np.full((64, 64, 1), 0.5, np.float32)
    lr = degrade(hr, Degradation(2, "microscope", poisson=400.0), np.random.default_rng(0))
    assert lr.shape == (32, 32, 1) and lr.dtype == np.float32
    assert abs(lr.mean() - 0.5) < 0.01 and 0.01 < lr.std() < 0.06  # shot noise of 200 photons: ~0.035
    info = Degradation(2, "microscope").to_dict()
    assert info["kind"] == "microscope" and info["binning"] == "sum" and info["photons"] == list(fl.PHOTONS)


def test_patches_of_the_microscope_degradation_share_the_lr_percentile_map(tmp_path):
    from napari_superres.training.folders import PERCENTILES, load_folder
    from napari_superres.training.patches import ImageCache, PatchSampler

    stack = (fl.simulate_hr((2, 96, 96)[1:], np.random.default_rng(0), "filaments") * 3000 + 100).astype(np.uint16)
    tifffile.imwrite(tmp_path / "fluo.tif", stack)
    ds = load_folder(tmp_path, scale=2)
    sampler = PatchSampler(ds.items, ImageCache(PERCENTILES, 1), scale=2, hr_patch=64,
                           degradation=Degradation(2, "microscope"), paired=False, augment=False)
    lr, hr = sampler.sample(np.random.default_rng(4))
    lo, hi = np.percentile(lr, [2, 99.8])
    assert abs(lo) < 1e-5 and abs(hi - 1) < 1e-5  # the LR is what the engine would feed the model
    assert hr.shape == (64, 64, 1)
    assert abs(metrics.area_downscale(hr, 2).mean() - lr.mean()) < 0.05  # same map, same units


# ----------------------------------------------------------------------------------------------- validation


def test_microscopy_scores_compare_with_bicubic_on_images_and_background(nearest_gray):
    from napari_superres.training.validation import background_crops, microscopy_scores

    field = fl.simulate_hr((256, 256), np.random.default_rng(1), "nuclei")
    field[:, :128] = field[:, :128].min()  # a left half of background
    noisy = np.random.default_rng(2).poisson(field * 200 + 19)  # a real image's own noise
    img = np.clip(noisy, 0, 255).astype(np.uint8)
    assert len(background_crops(img, 48)) >= 1
    result = microscopy_scores(nearest_gray, [("sim", img)], photons=None)
    row = result["images"][0]
    lr = metrics.area_downscale(img, 2)
    from napari_superres.training.validation import score

    assert row["bicubic_psnr"] == pytest.approx(score(img, metrics.bicubic_upscale(lr, 2), 2, "normalised")[0])
    assert row["psnr"] == pytest.approx(score(img, np.repeat(np.repeat(lr, 2, 0), 2, 1), 2, "normalised")[0])
    assert row["background_crops"] >= 1 and np.isfinite(row["background_psnr"])
    noisy = microscopy_scores(nearest_gray, [("sim", img)], photons=50.0)["images"][0]
    assert noisy["bicubic_psnr"] < row["bicubic_psnr"]  # 50 photons: noisier than binning alone


# ----------------------------------------------------------------------------------------------- CLI


def _fluo_folder(root):
    root.mkdir()
    for i in range(3):
        x = fl.simulate_hr((80, 80), np.random.default_rng(i), "puncta")
        tifffile.imwrite(root / f"cell{i}.tif", (x * 2000 + 100).astype(np.uint16))
    return root


def test_cli_trains_with_the_microscope_degradation(tmp_path, capsys):
    data_dir, out = _fluo_folder(tmp_path / "fluo"), tmp_path / "fluo.keras"
    code = main(["train", str(data_dir), "--arch", "espcn", "--scale", "2", "-o", str(out), "--epochs", "1",
                 "--steps", "2", "--patch", "32", "--batch", "2", "-q", "--degradation", "microscope"])
    assert code == 0, capsys.readouterr().err
    from napari_superres.models.description import read_description

    desc = read_description(out)
    assert desc["domain"] == "microscopy"
    assert desc["normalization"] == {"mode": "percentile", "low": 2.0, "high": 99.8}
    assert desc["training"]["degradation"]["kind"] == "microscope"
    capsys.readouterr()
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert all(r["domain"] in ("photo", "microscopy") for r in rows)
    assert {r["domain"] for r in rows if r["source"] == "shipped"} <= {"photo", "microscopy"}


def test_cli_refuses_the_microscope_degradation_with_range_normalisation(tmp_path, capsys):
    data_dir, out = _fluo_folder(tmp_path / "fluo"), tmp_path / "fluo.keras"
    code = main(["train", str(data_dir), "-o", str(out), "--degradation", "microscope", "--normalization", "range"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "percentile" in err
    assert not out.exists()


@pytest.mark.parametrize("arch, scale, options",
                         [("edsr", 2, {"n_blocks": 1, "n_feats": 8}), ("espcn", 4, {"n_feats": 8})])
def test_a_photo_model_folded_to_one_channel_computes_what_it_computes_on_grey(arch, scale, options):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
    from train_microscopy import fold_photo_model

    from napari_superres.models.registry import build_model

    rng = np.random.default_rng(0)
    photo, grey = build_model(arch, scale, 3, **options), build_model(arch, scale, 1, **options)
    photo.set_weights([rng.normal(0, 0.2, w.shape).astype(np.float32) for w in photo.get_weights()])
    assert fold_photo_model(grey, photo) >= 2
    image = rng.random((1, 20, 24, 1), np.float32)
    expected = photo.predict_on_batch(np.repeat(image, 3, axis=-1)).mean(axis=-1, keepdims=True)
    np.testing.assert_allclose(grey.predict_on_batch(image), expected, atol=1e-5)
