"""Tiled inference equals whole-image inference, any image size works, batches, progress and cancel."""

import itertools

import numpy as np
import pytest

from napari_superres.engine.api import upscale
from napari_superres.engine.tiling import plan_axis, predict_tiled
from napari_superres.errors import Cancelled

from conftest import _to_srmodel


def _photo(img, h=203, w=157):
    """An odd-sized crop from the middle of a real photograph."""
    y0, x0 = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
    return np.ascontiguousarray(img[y0 : y0 + h, x0 : x0 + w])


def test_tiled_equals_whole_image_float(rgb_model, astronaut):
    x = (_photo(astronaut) / 255.0).astype(np.float32)[None]
    whole = predict_tiled(rgb_model.predict, x, scale=2, tile=10_000, overlap=0, batch_size=1)
    tiled = predict_tiled(rgb_model.predict, x, scale=2, tile=64, overlap=4, batch_size=5)
    assert whole.shape == tiled.shape == (1, 406, 314, 3)
    assert np.abs(whole - tiled).max() < 1e-5
    # Too little context for the model's receptive field shows seams: the overlap is what makes it exact.
    seams = predict_tiled(rgb_model.predict, x, scale=2, tile=64, overlap=1, batch_size=5)
    assert np.abs(whole - seams).max() > 1e-3


def test_tiled_equals_whole_image_uint8(rgb_model, chelsea):
    img = _photo(chelsea)
    whole = upscale(img, rgb_model, tile=10_000)
    tiled = upscale(img, rgb_model, tile=64)  # the model's own overlap
    assert tiled.dtype == np.uint8 and tiled.shape == (406, 314, 3)
    assert np.abs(whole.astype(int) - tiled).max() <= 1
    # The model really changes the image (it is not a plain nearest upsampling).
    nearest = img.repeat(2, 0).repeat(2, 1)
    assert np.abs(whole.astype(int) - nearest).mean() > 1


def _pooling_model():
    """x2 model that only runs on sizes that are multiples of 4 (two poolings), like a U-Net."""
    import keras

    L = keras.layers
    keras.utils.set_random_seed(3)
    inp = keras.Input((None, None, 1))
    low = L.AveragePooling2D(2)(L.AveragePooling2D(2)(inp))
    low = L.Conv2D(4, 3, padding="same", activation="relu")(low)
    up = L.Conv2D(1, 3, padding="same")(L.UpSampling2D(8)(low))
    return keras.Model(inp, L.Add()([L.UpSampling2D(2)(inp), up]))


def test_multiple_padding_and_tiles(camera):
    model = _to_srmodel(_pooling_model())
    assert model.multiple == 4 and model.scale == 2
    img = camera[50:253, 60:217]  # 203 x 157: neither is a multiple of 4
    whole = upscale(img, model, tile=10_000)
    tiled = upscale(img, model, tile=48, overlap=16)
    assert whole.shape == tiled.shape == (406, 314)
    assert np.abs(whole.astype(int) - tiled).max() <= 1
    for size in [(1, 1), (3, 5), (2, 9)]:
        out = upscale(camera[: size[0], : size[1]], model)
        assert out.shape == (2 * size[0], 2 * size[1]) and out.dtype == np.uint8


@pytest.mark.parametrize("size", [(1, 1), (3, 5)])
def test_tiny_images(size, gray_model, rgb_model, astronaut):
    img = astronaut[: size[0], : size[1]]
    out = upscale(img, rgb_model)
    assert out.shape == (2 * size[0], 2 * size[1], 3) and out.dtype == np.uint8
    out = upscale(img[..., 0], gray_model, tile=2, overlap=1)
    assert out.shape == (2 * size[0], 2 * size[1])


def test_plan_axis_cores_cover_with_context():
    for length, tile, overlap, m in itertools.product(range(1, 70), [1, 5, 16], [0, 1, 3, 8], [1, 2, 4]):
        if length % m:
            continue
        w, plan = plan_axis(length, tile, overlap, m)
        assert plan[0][1] == 0 and plan[-1][2] == length
        for i, (start, a, b) in enumerate(plan):
            assert 0 <= start <= a < b <= start + w <= length
            assert start % m == a % m == w % m == 0
            assert a == 0 or a - start >= overlap  # left context, except at the border
            assert b == length or start + w - b >= overlap  # right context
            assert i == 0 or plan[i - 1][2] == a  # no gaps, no double writes
    # Balanced cores: 1000 px in tiles of 128 with 8 px overlap is 8 windows of 139, not 1024+ px of work.
    w, plan = plan_axis(1000, 128, 8)
    assert len(plan) == 8 and w == 139


def test_batches_span_tiles_and_slices(gray_model):
    rng = np.random.default_rng(0)
    stack = rng.random((3, 40, 50), dtype=np.float32)[..., None]
    shapes = []

    def counting(batch):
        shapes.append(batch.shape)
        return gray_model.predict(batch)

    out = predict_tiled(counting, stack, scale=2, tile=20, overlap=4, batch_size=7)
    # 2 x 3 windows per slice, 3 slices = 18 windows of one shape, in batches of 7.
    assert [s[0] for s in shapes] == [7, 7, 4]
    assert len({s[1:] for s in shapes}) == 1
    whole = predict_tiled(gray_model.predict, stack, scale=2, tile=100, overlap=0, batch_size=3)
    assert np.abs(out - whole).max() < 1e-5


def test_progress_reaches_total_and_cancel(gray_model, camera):
    img = camera[:100, :120]
    calls = []
    out = upscale(img, gray_model, tile=32, overlap=4, batch_size=2, progress=lambda d, t: calls.append((d, t)))
    assert out.shape == (200, 240)
    total = calls[-1][1]
    assert calls[-1][0] == total == 12 and all(t == total for _, t in calls)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)

    seen = []
    with pytest.raises(Cancelled):
        upscale(img, gray_model, tile=32, overlap=4, batch_size=2,
                progress=lambda d, t: seen.append(d), cancel=lambda: len(seen) >= 2)
    assert seen == [2, 4]  # stopped between batches, right after the request


def _numpy_sr(batch):
    """A pure NumPy x2 'model' with a 3x3 receptive field: nearest upsampling of a box-blurred input."""
    p = np.pad(batch, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="constant")
    blur = sum(p[:, i : i + batch.shape[1], j : j + batch.shape[2]] for i in range(3) for j in range(3)) / 9
    return blur.repeat(2, 1).repeat(2, 2).astype(np.float32)


def test_memory_bounded_by_tiles_not_image():
    import tracemalloc

    image = np.random.default_rng(0).random((1, 512, 512, 1), dtype=np.float32)  # 1 MiB in, 4 MiB out
    out_bytes = image.nbytes * 4
    tracemalloc.start()
    try:
        tiled = predict_tiled(_numpy_sr, image, scale=2, tile=32, overlap=2, batch_size=4)
        _, peak_tiled = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        whole = predict_tiled(_numpy_sr, image, scale=2, tile=512, overlap=0, batch_size=1)
        _, peak_whole = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    np.testing.assert_allclose(tiled, whole, atol=1e-6)
    assert peak_tiled < out_bytes + 2**20  # the output plus a few batches of small windows
    assert peak_whole > 2 * out_bytes  # whole-image inference needs image-sized temporaries


def test_concurrent_runs_do_not_mix():
    """Two runs at once (threads) give exactly what each gives alone: no state is shared between calls."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(5)
    images = [rng.random((2, 70, 50, 1), dtype=np.float32) for _ in range(4)]
    alone = [predict_tiled(_numpy_sr, im, scale=2, tile=16, overlap=2, batch_size=3) for im in images]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda im: predict_tiled(_numpy_sr, im, scale=2, tile=16, overlap=2, batch_size=3), images))
    for a, b in zip(alone, together):
        np.testing.assert_array_equal(a, b)


def test_uint16_zyx_stack_shape(gray_model):
    stack = np.random.default_rng(4).integers(0, 65535, size=(5, 200, 300)).astype(np.uint16)
    out = upscale(stack, gray_model)
    assert out.dtype == np.uint16 and out.shape == (5, 400, 600)
    assert np.abs(out[3].astype(int) - upscale(stack[3], gray_model)).max() <= 1


def test_a_models_working_memory_is_its_widest_layer_per_pixel(gray_model):
    # conv 1->8, conv 8->8, upsampling x2 of 8 channels (8 in + 32 out per input pixel), conv 32->4,
    # the skip's upsampling (1 + 4) and the add (4 + 4 + 4): the upsampling of the features is the widest.
    assert gray_model.working_floats == 40


class _Footprint:
    """What tile_plan reads of a model: scale, context, input multiple and working memory per pixel."""

    def __init__(self, working_floats, scale=2, overlap=4):
        self.working_floats, self.scale, self.overlap, self.multiple = working_floats, scale, overlap, 1


def test_a_light_model_takes_a_photo_whole_where_a_heavy_one_is_tiled_in_the_same_memory():
    from napari_superres.engine.options import UpscaleOptions
    from napari_superres.engine.predictor import CALL_PIXELS, REFERENCE_FLOATS, tile_plan

    budget = CALL_PIXELS * REFERENCE_FLOATS  # values held per call by the reference model's calls
    light, heavy, unknown = _Footprint(96.0), _Footprint(float(REFERENCE_FLOATS)), _Footprint(None)
    plans = {k: tile_plan(768, 768, m, UpscaleOptions()) for k, m in
             (("light", light), ("heavy", heavy), ("unknown", unknown))}
    assert plans["light"].window == (768, 768) and len(plans["light"].rows) * len(plans["light"].cols) == 1
    assert plans["heavy"].window[0] < 768 and len(plans["heavy"].rows) > 1
    assert plans["unknown"] == plans["heavy"]  # a model whose footprint is unknown keeps the reference's calls
    for key, model in (("light", light), ("heavy", heavy)):
        plan = plans[key]
        assert plan.batch_size * plan.window[0] * plan.window[1] * model.working_floats <= budget
    # A 2048x2048 slice is tiled for both; the light model's windows are larger, so it needs fewer of them.
    big = {k: tile_plan(2048, 2048, m, UpscaleOptions()) for k, m in (("light", light), ("heavy", heavy))}
    windows = {k: len(plan.rows) * len(plan.cols) for k, plan in big.items()}
    assert 1 < windows["light"] < windows["heavy"]
    for key, model in (("light", light), ("heavy", heavy)):
        plan = big[key]
        assert plan.batch_size * plan.window[0] * plan.window[1] * model.working_floats <= budget


def _computed_pixels(plan):
    return len(plan.rows) * len(plan.cols) * plan.window[0] * plan.window[1]


def test_the_default_windows_fit_one_call_and_compute_less_than_fixed_tiles():
    from napari_superres.engine.options import UpscaleOptions
    from napari_superres.engine.predictor import pixels_per_call, tile_plan

    model = _Footprint(float(512), overlap=8)
    model.multiple = 4
    for height, width in ((600, 600), (768, 768), (1000, 3000), (2048, 2048), (37, 5000)):
        plan = tile_plan(height, width, model, UpscaleOptions())
        fixed = tile_plan(height, width, model, UpscaleOptions(tile=256))
        assert plan.window[0] * plan.window[1] <= pixels_per_call(model)
        assert plan.window[0] % 4 == 0 and plan.window[1] % 4 == 0
        assert _computed_pixels(plan) < _computed_pixels(fixed), (height, width)
        # The cores cover the padded image without gaps.
        assert plan.rows[0][1] == 0 and plan.rows[-1][2] == plan.padded[0]
        assert plan.cols[0][1] == 0 and plan.cols[-1][2] == plan.padded[1]
    # An overlap so wide that windows of one call would be mostly context: never more work than fixed tiles.
    for overlap in (200, 256, 400):
        options = UpscaleOptions(overlap=overlap)
        plan, fixed = tile_plan(2000, 2000, model, options), tile_plan(2000, 2000, model, options.replace(tile=256))
        assert _computed_pixels(plan) <= _computed_pixels(fixed)


def test_dask_and_out_of_core_blocks_plan_the_windows_the_in_memory_run_plans(gray_model):
    from napari_superres.engine.distributed import ModelHandle
    from napari_superres.engine.options import UpscaleOptions
    from napari_superres.engine.predictor import tile_plan

    handle = ModelHandle(gray_model)  # what Dask workers and the out-of-core path carry
    assert handle.working_floats == gray_model.working_floats
    for side in (300, 768, 2000):
        assert tile_plan(side, side, handle, UpscaleOptions()) == tile_plan(side, side, gray_model, UpscaleOptions())


def test_a_nested_models_footprint_is_unknown_rather_than_its_outer_layers(rgb_model):
    import keras

    from napari_superres.models.graph import working_floats_per_pixel

    inp = keras.Input((None, None, 3))
    outer = keras.Model(inp, rgb_model.keras_model(keras.layers.Rescaling(1.0)(inp)))
    assert working_floats_per_pixel(rgb_model.keras_model) > 0
    assert working_floats_per_pixel(outer) is None  # its inner layers are not walked: no guess
