"""Axes and channels: colour images, alpha, gray with an RGB model, multichannel microscopy, stacks."""

import numpy as np
import pytest
from PIL import Image

from napari_superres.engine.api import output_nbytes, output_shape, upscale
from napari_superres.engine.axes import infer_axes, make_layout, plan_channels, resolve_axes
from napari_superres.errors import InputError
from conftest import assert_equal_to_float32_rounding


@pytest.mark.parametrize(
    "shape, axes",
    [
        ((20, 30), "YX"),
        ((20, 30, 3), "YXC"),
        ((20, 30, 4), "YXC"),
        ((5, 20, 30), "ZYX"),
        ((2, 5, 20, 30), "TZYX"),
        ((5, 20, 30, 3), "ZYXC"),
    ],
)
def test_infer_axes(shape, axes):
    assert infer_axes(shape) == axes


@pytest.mark.parametrize(
    "axes, shape, words",
    [
        ("YX", (5, 20, 30), "3 dimensions"),
        ("ZYY", (5, 20, 30), "repeated"),
        ("ZTC", (5, 20, 30), "Y and X"),
        ("QYX", (5, 20, 30), "unknown letter"),
        ("CYXS", (2, 20, 30, 3), "one channel axis"),
    ],
)
def test_bad_axes_refused(axes, shape, words, nearest_gray):
    with pytest.raises(InputError) as e:
        resolve_axes(axes, shape)
    msg = str(e.value)
    assert words in msg and str(shape) in msg and "\n" not in msg
    with pytest.raises(InputError):
        upscale(np.zeros(shape, np.uint8), nearest_gray, axes=axes)


def test_output_shape_and_bytes():
    assert output_shape((5, 200, 300), 2) == (5, 400, 600)
    assert output_shape((3, 200, 300), 4, axes="CYX") == (3, 800, 1200)
    assert output_shape((777, 1000, 3), 4) == (3108, 4000, 3)
    assert output_nbytes((5, 200, 300), np.uint16, 2) == 5 * 400 * 600 * 2


def test_rgb_through_the_model(rgb_model, astronaut):
    img = astronaut[200:260, 180:230]
    out = upscale(img, rgb_model)
    expected = rgb_model.predict((img / 255.0).astype(np.float32)[None])[0]
    expected = np.clip(np.rint(expected * 255), 0, 255).astype(np.uint8)
    assert out.dtype == np.uint8 and out.shape == (120, 100, 3)
    assert np.abs(out.astype(int) - expected).max() <= 1
    assert "RGB through the model" in plan_channels(make_layout(img.shape), 3).description


def _bicubic(a2d, scale):
    h, w = a2d.shape
    im = Image.fromarray(a2d.astype(np.float32))
    return np.asarray(im.resize((w * scale, h * scale), Image.BICUBIC))


def test_rgba_alpha_upscaled_separately(overshoot_gray, rgb_model, astronaut):
    rgba = np.dstack([astronaut[:40, :50], np.linspace(0, 255, 50 * 40).reshape(40, 50).astype(np.uint8)])
    # 1-channel model: R, G, B each through the model (x1.5 - 0.25), alpha by bicubic only.
    out = upscale(rgba, overshoot_gray)
    assert out.shape == (80, 100, 4) and out.dtype == np.uint8
    rgb_expected = np.clip(np.rint((rgba[..., :3].astype(np.float32) / 255 * 1.5 - 0.25) * 255), 0, 255)
    np.testing.assert_array_equal(out[..., :3], rgb_expected.repeat(2, 0).repeat(2, 1))
    alpha = np.clip(np.rint(np.clip(_bicubic(rgba[..., 3] / 255.0, 2), 0, 1) * 255), 0, 255)
    assert np.abs(out[..., 3].astype(int) - alpha).max() <= 1
    # 3-channel model: RGB through the model together, same alpha.
    out3 = upscale(rgba, rgb_model)
    rgb_only = upscale(rgba[..., :3], rgb_model)
    assert_equal_to_float32_rounding(out3[..., :3], rgb_only)
    assert_equal_to_float32_rounding(out3[..., 3], out[..., 3])


def test_gray_with_rgb_model(rgb_model, camera):
    img = camera[100:150, 200:240]
    out = upscale(img, rgb_model)
    assert out.shape == (100, 80) and out.dtype == np.uint8
    x = np.repeat((img / 255.0).astype(np.float32)[None, ..., None], 3, axis=-1)
    expected = rgb_model.predict(x)[0].mean(axis=-1)
    assert np.abs(out.astype(int) - np.rint(np.clip(expected, 0, 1) * 255)).max() <= 1


def test_multichannel_microscopy_each_channel(gray_model):
    rng = np.random.default_rng(0)
    cyx = rng.integers(0, 65535, size=(3, 24, 30)).astype(np.uint16)
    out = upscale(cyx, gray_model, axes="CYX")
    assert out.shape == (3, 48, 60) and out.dtype == np.uint16
    for c in range(3):
        alone = upscale(cyx[c], gray_model)
        assert np.abs(out[c].astype(int) - alone).max() <= 1
    # The same data with channels last (and 2 channels: not a colour image) gives the same answer.
    yxc = np.moveaxis(cyx[:2], 0, -1)
    out2 = upscale(yxc, gray_model, axes="YXC")
    assert np.abs(np.moveaxis(out2, -1, 0).astype(int) - out[:2]).max() <= 1


def test_rgb_with_gray_model_channel_by_channel(gray_model, astronaut):
    img = astronaut[300:330, 200:240]
    out = upscale(img, gray_model)
    assert out.shape == (60, 80, 3)
    for c in range(3):
        assert np.abs(out[..., c].astype(int) - upscale(img[..., c], gray_model)).max() <= 1


@pytest.mark.parametrize("shape, axes", [((4, 30, 26), "ZYX"), ((2, 3, 22, 18), "TZYX"), ((2, 3, 20, 16), "ZCYX")])
def test_stacks_slice_by_slice(shape, axes, gray_model):
    rng = np.random.default_rng(2)
    stack = rng.integers(0, 60000, size=shape).astype(np.uint16)
    out = upscale(stack, gray_model, axes=axes, tile=12, overlap=8)
    assert out.dtype == np.uint16 and out.shape == shape[:-2] + (shape[-2] * 2, shape[-1] * 2)
    flat_in = stack.reshape(-1, *shape[-2:])
    flat_out = out.reshape(-1, *out.shape[-2:])
    for k in range(flat_in.shape[0]):
        assert np.abs(flat_out[k].astype(int) - upscale(flat_in[k], gray_model)).max() <= 1


def test_channel_modes(rgb_model, gray_model, astronaut):
    img = astronaut[:20, :24]
    with pytest.raises(InputError, match="joint"):
        upscale(img, gray_model, channel_mode="joint")
    with pytest.raises(InputError, match="channel_mode"):
        upscale(img, gray_model, channel_mode="sideways")
    # 'separate' with an RGB model: each channel alone, replicated to three and averaged back.
    sep = upscale(img, rgb_model, channel_mode="separate")
    for c in range(3):
        assert_equal_to_float32_rounding(sep[..., c], upscale(img[..., c], rgb_model))
    # 'joint' puts planar RGB (CYX) through the RGB model together.
    planar = np.moveaxis(img, -1, 0)
    joint = upscale(planar, rgb_model, axes="CYX", channel_mode="joint")
    assert_equal_to_float32_rounding(np.moveaxis(joint, 0, -1), upscale(img, rgb_model))


def describe_channels(shape, model_channels, axes=None, mode="auto"):
    return plan_channels(make_layout(shape, axes), model_channels, mode).description


def test_describe_channels():
    assert describe_channels((20, 30, 3), 3) == "RGB through the model"
    assert "alpha by bicubic" in describe_channels((20, 30, 4), 3)
    assert "each channel through the model on its own" in describe_channels((3, 20, 30), 1, axes="CYX")
    assert "replicated" in describe_channels((20, 30), 3)
