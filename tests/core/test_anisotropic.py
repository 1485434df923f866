"""Upscaling Z of anisotropic stacks: geometry, the plane method against linear interpolation on a volume whose
truth is known, NumPy/Dask equality, the CLI's --z-factor with pixel sizes."""

import numpy as np
import pytest

da = pytest.importorskip("dask.array")

from napari_superres import upscale  # noqa: E402
from napari_superres.cli import main  # noqa: E402
from napari_superres.engine.anisotropic import linear_z, upscale_z, z_positions  # noqa: E402
from napari_superres.errors import InputError  # noqa: E402
from napari_superres.io import read_image, write_image  # noqa: E402
from conftest import assert_equal_to_float32_rounding  # noqa: E402


@pytest.fixture(scope="module")
def bicubic_x2():
    """A fixed bicubic x2 'model' (the project's BicubicUpsample layer): a known, smooth interpolator."""
    import keras

    from napari_superres.models.layers import BicubicUpsample
    from napari_superres.models.loading import load_model

    inp = keras.Input((None, None, 1))
    return load_model(keras.Model(inp, BicubicUpsample(2)(inp), name="bicubic_x2"))


def _smooth_volume(shape=(24, 40, 48)):
    """A band-limited volume (sums of low-frequency cosines), values in 20..230."""
    z, y, x = np.indices(shape, dtype=np.float64)
    v = np.cos(z / 2.1) * np.cos(y / 5.0 + 0.3) + 0.6 * np.sin(x / 4.0 + z / 3.3) + 0.4 * np.cos((y + x) / 6.5)
    return (125 + 50 * v).astype(np.float32)


def test_output_slices_sit_at_pixel_centres():
    # two output slices per input slice, a quarter of an input slice on each side of its centre
    np.testing.assert_allclose(z_positions(3, 2), [0, 0.25, 0.75, 1.25, 1.75, 2])
    ramp = np.arange(5, dtype=np.float32)[:, None, None] * np.ones((1, 2, 2), np.float32)
    np.testing.assert_allclose(linear_z(ramp, 2)[1:-1, 0, 0], z_positions(5, 2)[1:-1])


def test_plane_method_beats_linear_on_a_known_volume(bicubic_x2):
    truth = _smooth_volume()
    low = (truth[0::2] + truth[1::2]) / 2  # each acquired slice integrates two true ones
    lin = upscale_z(low, None, factor=2, method="linear")
    planes = upscale_z(low, bicubic_x2, factor=2, method="model")
    assert planes.shape == lin.shape == truth.shape and planes.dtype == np.float32

    def psnr(a):
        return 10 * np.log10(255**2 / np.mean((a[2:-2] - truth[2:-2]) ** 2))

    # cubic along Z (through the XZ/YZ planes) is closer to a smooth truth than linear; a misplaced slice
    # (half a slice off) would make it far worse than linear
    assert psnr(planes) > psnr(lin) + 1.0, (psnr(planes), psnr(lin))


@pytest.mark.parametrize("method", ["model", "linear"])
def test_dask_equals_numpy(gray_model, method):
    rng = np.random.default_rng(4)
    data = rng.integers(0, 4000, (2, 6, 30, 34)).astype(np.uint16)
    expected = upscale_z(data, gray_model, axes="CZYX", method=method, normalization="percentile")
    lazy = upscale_z(da.from_array(data, chunks=(1, 3, 16, 16)), gray_model, axes="CZYX", method=method, normalization="percentile")
    assert isinstance(lazy, da.Array)
    got = lazy.compute()
    assert got.shape == (2, 12, 30, 34) and got.dtype == np.uint16
    assert_equal_to_float32_rounding(got, expected)


def test_refusals(gray_model):
    vol = np.zeros((4, 20, 20), np.uint8)
    with pytest.raises(InputError, match="upscales by 2"):
        upscale_z(vol, gray_model, factor=3)
    with pytest.raises(InputError, match="Z axis"):
        upscale_z(vol, gray_model, axes="TYX")
    assert upscale_z(vol, None, factor=3, method="linear").shape == (12, 20, 20)


def test_cli_z_factor_upscales_z_then_xy_with_pixel_sizes(tmp_path, gray_model):
    from napari_superres.models.loading import save_model

    model_file = save_model(gray_model.keras_model, tmp_path / "gray.keras")
    rng = np.random.default_rng(5)
    stack = rng.integers(0, 255, (4, 40, 44)).astype(np.uint8)
    src = tmp_path / "in.zarr"
    write_image(src, stack, meta={"axes": "ZYX", "pixel_size": {"Z": 2.0, "Y": 0.5, "X": 0.5}, "unit": "µm"})
    dst = tmp_path / "out.ome.zarr"
    assert main(["upscale", str(src), "-m", str(model_file), "-o", str(dst), "--z-factor", "2", "-q"]) == 0
    got, meta = read_image(dst)
    assert got.shape == (8, 80, 88)
    assert meta["pixel_size"] == {"Z": 1.0, "Y": 0.25, "X": 0.25}
    assert_equal_to_float32_rounding(got, upscale(upscale_z(stack, gray_model), gray_model))
