"""Values: dtypes in and out, rounding and clipping, normalisation and its inverse, refused inputs."""

import numpy as np
import pytest

from napari_superres.engine.api import upscale
from napari_superres.engine.normalize import fit_normalizer
from napari_superres.errors import InputError


def _nearest_x2(a):
    return a.repeat(2, 0).repeat(2, 1)


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16", "float32", "float64"])
def test_dtype_round_trip(dtype, nearest_gray, camera):
    img = camera[:37, :29].astype(np.float64) / 255.0
    if np.issubdtype(np.dtype(dtype), np.integer):
        info = np.iinfo(dtype)
        img = np.rint(img * info.max).astype(dtype)
    else:
        img = img.astype(dtype)
    before = img.copy()
    img.flags.writeable = False  # as the worker hands it over: the engine must never write to its input
    out = upscale(img, nearest_gray)
    assert out.dtype == np.dtype(dtype) and out.shape == (74, 58)
    if np.issubdtype(np.dtype(dtype), np.integer):
        np.testing.assert_array_equal(out, _nearest_x2(img))
    else:
        np.testing.assert_allclose(out, _nearest_x2(img), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(img, before)  # the input is untouched


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16"])
def test_integers_clip_never_wrap(dtype, overshoot_gray):
    info = np.iinfo(dtype)
    img = np.array([[info.max, info.max - 1], [0, max(info.min, -5)]], dtype=dtype)
    out = upscale(img, overshoot_gray)  # x1.5 - 0.25 in model values
    assert out.dtype == np.dtype(dtype)
    assert (out[:2, :4] == info.max).all()  # bright values clip at the top instead of wrapping to dark
    if info.min == 0:
        assert (out[2:] == 0).all()  # 0 * 1.5 - 0.25 < 0 clips at 0
    else:
        assert (out[2:] < 0).all() and out.min() >= info.min


def test_float_output_not_clipped(overshoot_gray):
    img = np.array([[1.0, 0.0]], np.float64)
    out = upscale(img, overshoot_gray)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out[0], [1.25, 1.25, -0.25, -0.25])


def test_percentile_inverse_exact():
    rng = np.random.default_rng(0)
    stack = rng.integers(0, 4000, size=(4, 30, 40, 2)).astype(np.uint16)
    stack[..., 1] += 20000  # channels with different ranges get their own statistics
    norm = fit_normalizer(stack, {"mode": "percentile", "low": 2.0, "high": 99.8}, channel_axis=-1)
    values = norm.forward(stack)
    assert values.dtype == np.float32
    for c in range(2):
        lo, hi = np.percentile(stack[..., c], [2.0, 99.8])
        assert norm.offset[c] == pytest.approx(lo) and norm.offset[c] + norm.factor[c] == pytest.approx(hi)
        assert np.mean(values[..., c] < 0) == pytest.approx(0.02, abs=0.005)
    np.testing.assert_array_equal(norm.inverse(values), stack)

    floats = rng.normal(100.0, 30.0, size=(3, 20, 20)).astype(np.float32)
    norm = fit_normalizer(floats, "percentile", channel_axis=None)
    back = norm.inverse(norm.forward(floats))
    assert back.dtype == np.float32
    np.testing.assert_allclose(back, floats, rtol=1e-5)


def test_percentile_through_the_model(nearest_gray):
    rng = np.random.default_rng(1)
    stack = rng.integers(100, 3000, size=(3, 21, 17)).astype(np.uint16)
    out = upscale(stack, nearest_gray, normalization="percentile")
    assert out.dtype == np.uint16 and out.shape == (3, 42, 34)
    np.testing.assert_array_equal(out, stack.repeat(2, 1).repeat(2, 2))


def test_range_mode_divides_by_dtype_max():
    norm = fit_normalizer(np.zeros((2, 2), np.uint16), "range")
    np.testing.assert_allclose(norm.forward(np.array([65535, 0], np.uint16)), [1.0, 0.0])
    norm = fit_normalizer(np.zeros((2, 2), np.float32), "range")
    np.testing.assert_array_equal(norm.forward(np.array([3.5], np.float32)), [3.5])  # floats as they are


def _one_line(excinfo):
    msg = str(excinfo.value)
    assert "\n" not in msg
    return msg


def test_nan_and_inf_refused(nearest_gray):
    img = np.ones((10, 10), np.float32)
    img[1, 2] = img[3, 4] = np.nan
    img[5, 5] = np.inf
    before = img.copy()
    with pytest.raises(InputError) as e:
        upscale(img, nearest_gray)
    msg = _one_line(e)
    assert "2 NaN" in msg and "1 inf" in msg
    np.testing.assert_array_equal(img, before)


@pytest.mark.parametrize(
    "array, words",
    [
        (np.zeros((8, 8), bool), "bool"),
        (np.zeros((8, 8), np.complex64), "complex64"),
        (np.zeros((0, 8), np.uint8), "empty"),
        (np.zeros((8, 0, 3), np.float32), "empty"),
        (np.array([["a", "b"], ["c", "d"]]), "Unsupported dtype"),
    ],
)
def test_unsupported_input_refused(array, words, nearest_gray):
    with pytest.raises(InputError) as e:
        upscale(array, nearest_gray)
    assert words in _one_line(e)


def test_unknown_normalisation_refused(nearest_gray):
    with pytest.raises(InputError, match="Unknown normalisation"):
        upscale(np.zeros((4, 4), np.uint8), nearest_gray, normalization="zscore")


@pytest.mark.parametrize(
    "settings, words",
    [
        (dict(upscale_z=True), "upscale_path"),
        (dict(z_factor=2), "upscale_path"),
        (dict(bands="rgb"), "upscale_path"),
        (dict(tile="abc"), "tile must be a whole number"),
        (dict(batch_size=0), "batch_size must be >= 1"),
    ],
)
def test_options_an_array_upscale_cannot_honour_are_refused(settings, words, nearest_gray):
    """Z upscaling and scene bands need a file's geometry: an array upscale refuses them rather than ignore
    them; a malformed number gets the same one-line error as a negative one."""
    import dask.array as da

    stack = np.zeros((3, 8, 8), np.uint8)
    for data in (stack, da.from_array(stack, chunks=(1, 8, 8))):
        with pytest.raises(InputError, match=words):
            upscale(data, nearest_gray, axes="ZYX", **settings)
