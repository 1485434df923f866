"""PSNR / SSIM by the super-resolution literature's convention, and the classic resamplers."""

import numpy as np
import pytest
from PIL import Image
from skimage import data
from skimage.metrics import structural_similarity

from napari_superres.training import metrics


def test_identical_images_have_infinite_psnr_and_ssim_one():
    img = data.astronaut()
    assert metrics.psnr(img, img, scale=2) == float("inf")
    assert metrics.ssim(img, img, scale=2) == pytest.approx(1.0)


def test_psnr_of_known_gaussian_noise():
    # mid-gray (no clipping), sigma 10 grey levels: PSNR = 20 log10(255 / 10) = 28.13 dB
    rng = np.random.default_rng(0)
    clean = np.full((300, 300), 128.0)
    noisy = clean + rng.normal(0, 10, clean.shape)
    assert metrics.psnr(clean, noisy, scale=0) == pytest.approx(20 * np.log10(255 / 10), abs=0.05)
    # the same on a [0, 1] range with data_range=1
    assert metrics.psnr(clean / 255, noisy / 255, data_range=1.0) == pytest.approx(28.13, abs=0.05)


def test_psnr_on_y_uses_bt601_weights():
    # a uniform error of +d on R only changes Y by 65.481/255 * d
    img = np.full((40, 40, 3), 100, np.uint8)
    off = img.copy()
    off[..., 0] += 20
    dy = 65.481 / 255 * 20
    assert metrics.psnr(img, off, scale=2) == pytest.approx(20 * np.log10(255 / dy), abs=1e-6)
    assert metrics.rgb_to_y(np.array([[[255, 255, 255]]], np.uint8))[0, 0] == pytest.approx(235.0, abs=1e-3)
    assert metrics.rgb_to_y(np.zeros((1, 1, 3), np.uint8))[0, 0] == pytest.approx(16.0)


def test_border_crop_ignores_errors_at_the_border():
    img = data.camera()[:100, :100]
    broken = img.copy()
    broken[:3] = 0
    assert metrics.psnr(img, broken, scale=3) == float("inf")
    assert metrics.psnr(img, broken, scale=2) < 40


@pytest.mark.parametrize("sigma", [3, 12])
def test_ssim_matches_scikit_image_on_y(sigma):
    img = data.astronaut()
    rng = np.random.default_rng(1)
    noisy = np.clip(img + rng.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)
    ya = metrics.rgb_to_y(img)[2:-2, 2:-2]
    yb = metrics.rgb_to_y(noisy)[2:-2, 2:-2]
    ref = structural_similarity(
        ya, yb, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
    )
    assert metrics.ssim(img, noisy, scale=2) == pytest.approx(ref, abs=1e-6)
    assert 0.3 < ref < 0.99


def test_ssim_of_gray_and_normalised_data():
    cam = data.camera().astype(np.float64)
    blurred = np.asarray(Image.fromarray(data.camera()).resize((256, 256)).resize((512, 512)), np.float64)
    ref = structural_similarity(
        cam[4:-4, 4:-4], blurred[4:-4, 4:-4], gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
        data_range=255,
    )
    assert metrics.ssim(cam, blurred, scale=4) == pytest.approx(ref, abs=1e-6)
    # microscopy convention: the same comparison on [0, 1] data with data_range=1 gives the same SSIM
    assert metrics.ssim(cam / 255, blurred / 255, scale=4, data_range=1.0) == pytest.approx(ref, abs=1e-6)


def test_normalise_like_maps_reference_percentiles_to_0_and_1():
    rng = np.random.default_rng(2)
    ref = rng.normal(1000, 100, (64, 64))
    other = ref + 50
    a, b = metrics.normalise_like(ref, other, low=2.0, high=99.8)
    assert np.percentile(a, 2) == pytest.approx(0.0, abs=1e-9)
    assert np.percentile(a, 99.8) == pytest.approx(1.0, abs=1e-9)
    assert np.allclose(b - a, 50 / (np.percentile(ref, 99.8) - np.percentile(ref, 2)))


def test_bicubic_downscale_is_pillows_antialiased_bicubic_and_keeps_dtype():
    img = data.astronaut()
    lr = metrics.bicubic_downscale(img, 2)
    assert lr.shape == (256, 256, 3) and lr.dtype == np.uint8
    assert np.array_equal(lr, np.asarray(Image.fromarray(img).resize((256, 256), Image.BICUBIC)))
    # odd sizes: the bottom/right remainder is dropped (mod-crop), so LR pixel i covers HR pixels 3i..3i+2
    odd = img[:100, :101]
    assert metrics.bicubic_downscale(odd, 3).shape == (33, 33, 3)
    # float path (matrix products with Pillow's coefficients) equals Pillow's float resize
    x = np.random.default_rng(3).random((90, 77)).astype(np.float32)
    ref = np.asarray(Image.fromarray(x[:88, :76]).resize((19, 22), Image.BICUBIC))
    assert np.allclose(metrics.bicubic_downscale(x, 4), ref, atol=1e-5)
    u16 = (img[..., 0].astype(np.uint16) * 257)
    out = metrics.bicubic_downscale(u16, 2)
    exact = np.clip(metrics.bicubic_downscale(img[..., 0].astype(np.float32), 2), 0, 255)
    assert out.dtype == np.uint16 and np.abs(out / 257 - exact).max() < 0.01
    # Pillow's 8-bit path rounds between its two passes: within 3 grey levels of the exact result
    assert np.abs(lr[..., 0] - exact).max() <= 3


def test_downscale_then_upscale_keeps_mean_colour_and_beats_nearest():
    img = data.chelsea()
    for s in (2, 3, 4):
        hr = metrics.modcrop(img, s)
        lr = metrics.bicubic_downscale(hr, s)
        up = metrics.bicubic_upscale(lr, s)
        la = metrics.lanczos_upscale(lr, s)
        assert up.shape == hr.shape and up.dtype == np.uint8
        assert np.abs(up.mean(axis=(0, 1)) - hr.mean(axis=(0, 1))).max() < 1.0
        nearest = np.repeat(np.repeat(lr, s, 0), s, 1)
        assert metrics.psnr(hr, up, scale=s) > metrics.psnr(hr, nearest, scale=s) + 0.5
        assert metrics.psnr(hr, la, scale=s) > metrics.psnr(hr, nearest, scale=s) + 0.5


def test_area_downscale_is_block_mean():
    x = np.arange(16, dtype=np.float32).reshape(4, 4)
    assert np.array_equal(metrics.area_downscale(x, 2), [[2.5, 4.5], [10.5, 12.5]])
    u = np.array([[0, 1], [1, 1]], np.uint8)
    assert metrics.area_downscale(u, 2).dtype == np.uint8 and metrics.area_downscale(u, 2)[0, 0] == 1


def test_upscalers_keep_integer_range():
    u16 = np.zeros((20, 20), np.uint16)
    u16[::2, ::2] = 65535  # a checkerboard makes bicubic overshoot: it must clip, not wrap
    up = metrics.bicubic_upscale(u16, 2)
    assert up.dtype == np.uint16 and up.max() == 65535 and up.min() == 0


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.psnr(np.zeros((10, 10)), np.zeros((10, 11)))


def test_noise_sigma_recovers_the_noise_of_a_smooth_image():
    from napari_superres.training.metrics import binning_ceiling_psnr, noise_sigma

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:256, 0:256]
    smooth = 100 + 50 * np.sin(x / 40.0) * np.cos(y / 55.0)
    for sigma in (0.5, 2.0, 8.0):
        noisy = smooth + rng.normal(0, sigma, smooth.shape)
        assert noise_sigma(noisy) == pytest.approx(sigma, rel=0.1)
    # the ceiling is the reference's range over the part of its noise that binning does not keep
    noisy = smooth + rng.normal(0, 2.0, smooth.shape)
    lo, hi = np.percentile(noisy, [2.0, 99.8])
    expected = 10 * np.log10((hi - lo) ** 2 / (noise_sigma(noisy) ** 2 * (1 - 1 / 4)))
    assert binning_ceiling_psnr(noisy, 2) == pytest.approx(expected)
    assert binning_ceiling_psnr(noisy, 4) < binning_ceiling_psnr(noisy, 2)


def test_a_linear_upscaler_fitted_on_an_image_is_never_worse_than_bicubic_there():
    from napari_superres.training.linear_upscaler import apply_linear_upscaler, fit_linear_upscaler

    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:192, 0:160]
    hr = 100 + 50 * np.sin(x / 7.0) * np.cos(y / 11.0) + rng.normal(0, 2.0, x.shape)
    for scale in (2, 4):
        lr = metrics.area_downscale(hr, scale)
        filters = fit_linear_upscaler([(hr, lr)], scale)
        out = apply_linear_upscaler(filters, lr, scale)
        assert out.shape == hr.shape
        inner = (slice(8 * scale, -8 * scale),) * 2  # away from the border, where padding differs
        mse = np.mean((out - hr)[inner] ** 2)
        bicubic_mse = np.mean((metrics.bicubic_upscale(lr, scale) - hr)[inner] ** 2)
        assert mse <= bicubic_mse
        # learned, not memorised: the same filters also beat bicubic on another image of the same kind
        other = 100 + 50 * np.sin(x / 7.0 + 1) * np.cos(y / 11.0 + 2) + rng.normal(0, 2.0, x.shape)
        lr2 = metrics.area_downscale(other, scale)
        assert (np.mean((apply_linear_upscaler(filters, lr2, scale) - other)[inner] ** 2)
                < np.mean((metrics.bicubic_upscale(lr2, scale) - other)[inner] ** 2))


def test_a_linear_upscaler_refuses_pairs_that_do_not_match_its_scale():
    from napari_superres.training.linear_upscaler import fit_linear_upscaler

    with pytest.raises(ValueError, match="is not x2"):
        fit_linear_upscaler([(np.zeros((30, 30)), np.zeros((16, 16)))], 2)
