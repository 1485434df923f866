"""Dask in, Dask out: lazy results equal the in-memory ones (to float32 rounding); statistics are global and exact."""

import warnings

import numpy as np
import pytest

da = pytest.importorskip("dask.array")

from napari_superres import upscale  # noqa: E402
from napari_superres.engine import quantiles  # noqa: E402
from napari_superres.engine.lazy import RechunkWarning  # noqa: E402
from napari_superres.errors import Cancelled, InputError  # noqa: E402
from conftest import assert_equal_to_float32_rounding  # noqa: E402


def _stack(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if np.issubdtype(dtype, np.floating):
        return rng.normal(0.4, 0.2, shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min // 2, info.max // 2, shape, endpoint=True).astype(dtype)


@pytest.mark.parametrize(
    "shape, dtype, axes, chunks, kw",
    [
        # tiled slices (many windows per plane), chunks smaller than a tile along Y/X
        ((3, 150, 170), np.uint16, None, (2, 40, 60), dict(tile=48)),
        # float data with percentile normalisation, chunk boundaries inside windows
        ((2, 130, 110), np.float32, "ZYX", (1, 70, 50), dict(tile=40, normalization="percentile")),
        # multichannel microscopy with its channel axis split across chunks
        ((2, 3, 64, 80), np.uint16, "CZYX", (1, 2, 32, 40), dict(tile=32, normalization="percentile")),
    ],
)
def test_dask_result_equals_in_memory(gray_model, shape, dtype, axes, chunks, kw):
    data = _stack(shape, dtype)
    expected = upscale(data, gray_model, axes=axes, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RechunkWarning)
        lazy = upscale(da.from_array(data, chunks=chunks), gray_model, axes=axes, **kw)
    assert isinstance(lazy, da.Array)
    assert lazy.shape == expected.shape and lazy.dtype == expected.dtype
    got = lazy.compute()
    assert_equal_to_float32_rounding(got, expected)


def test_rgb_chunked_along_channels_is_rechunked_with_a_warning(rgb_model, astronaut):
    img = astronaut[:200, :180]
    expected = upscale(img, rgb_model, tile=64)
    with pytest.warns(RechunkWarning, match="channel axis"):
        lazy = upscale(da.from_array(img, chunks=(100, 90, 1)), rgb_model, tile=64)
    assert_equal_to_float32_rounding(lazy.compute(), expected)


def test_rgba_gets_whole_planes_with_a_warning(rgb_model, astronaut):
    rgba = np.dstack([astronaut[:120, :100], np.linspace(0, 255, 120 * 100).reshape(120, 100).astype(np.uint8)])
    expected = upscale(rgba, rgb_model, tile=48)
    with pytest.warns(RechunkWarning, match="RGBA"):
        lazy = upscale(da.from_array(rgba, chunks=(60, 50, 4)), rgb_model, tile=48)
    assert_equal_to_float32_rounding(lazy.compute(), expected)


def test_nothing_is_computed_until_asked_and_percentiles_read_the_data_once(gray_model):
    data = _stack((4, 64, 64), np.uint16)
    reads = []

    def source(block, block_info=None):
        reads.append(block_info[0]["chunk-location"])
        return block

    lazy_in = da.from_array(data, chunks=(1, 64, 64)).map_blocks(source, dtype=data.dtype)
    out = upscale(lazy_in, gray_model)  # range normalisation: no statistics needed
    assert reads == [] and out.shape == (4, 128, 128)
    upscale(lazy_in, gray_model, normalization="percentile")
    assert sorted(reads) == [(z, 0, 0) for z in range(4)]  # one pass for the statistics, nothing else


def test_progress_counts_blocks_and_cancel_stops(gray_model):
    data = da.from_array(_stack((3, 40, 40), np.uint8), chunks=(1, 40, 40))
    seen = []
    upscale(data, gray_model, progress=lambda d, t: seen.append((d, t))).compute(scheduler="sync")
    assert seen == [(1, 3), (2, 3), (3, 3)]
    with pytest.raises(Cancelled):
        upscale(data, gray_model, cancel=lambda: True).compute(scheduler="sync")


def test_nan_in_lazy_float_data_is_refused(gray_model):
    data = _stack((2, 32, 32), np.float32)
    data[1, 5, 5] = np.nan
    lazy = da.from_array(data, chunks=(1, 32, 32))
    with pytest.raises(InputError, match="NaN"):
        upscale(lazy, gray_model, normalization="percentile")  # the statistics pass sees it
    with pytest.raises(InputError, match="NaN"):
        upscale(lazy, gray_model).compute()  # range: the block that holds it says so


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.int32, np.float32, np.float64])
def test_blockwise_percentiles_equal_numpy_exactly(dtype, monkeypatch):
    monkeypatch.setattr(quantiles, "GATHER", 500)  # force several bracket-narrowing passes
    rng = np.random.default_rng(3)
    data = _stack((3, 57, 41, 2), dtype)
    data[0, :10] = data[0, 0, 0]  # many ties
    if np.issubdtype(dtype, np.floating):
        data[1] *= rng.lognormal(0, 3, data[1].shape).astype(dtype)  # a wide dynamic range
    q = [0.0, 2.0, 50.0, 99.8, 100.0]
    expected = np.percentile(data.reshape(-1, 2), q, axis=0)
    got = quantiles.percentiles(da.from_array(data, chunks=(1, 20, 41, 1)), q, channel_axis=3)
    np.testing.assert_array_equal(got, expected)
