"""Images smaller than a model's context (1x1, one row, one column, 2x2): upscaled, not a traceback, the same
through the Python API and the CLI. The shipped models' bicubic skip pads symmetrically at any size."""

import numpy as np
import pytest

from napari_superres import upscale
from napari_superres.cli import main
from napari_superres.io import read_image
from napari_superres.training.metrics import bicubic_upscale

keras = pytest.importorskip("keras")

from napari_superres.models.layers import BicubicUpsample, bicubic_phase_weights  # noqa: E402

# High-contrast values so a wrong padding or a skipped pixel shows.
_VALUES = np.array([[20, 230, 90, 160, 5, 250, 120, 70, 200], [180, 60, 240, 10, 140, 30, 220, 100, 45]], np.uint8)
SHAPES = {"1x1": (1, 1), "1x9": (1, 9), "9x1": (9, 1), "2x2": (2, 2)}


def _image(shape, rgb):
    h, w = shape
    gray = _VALUES.T[:h, :1] if w == 1 else _VALUES[:h, :w]
    return np.dstack([gray, 255 - gray, gray // 2 + 60]) if rgb else np.ascontiguousarray(gray)


def _numpy_bicubic(x, scale):
    """The layer's definition in NumPy: symmetric padding (numpy repeats it for tiny axes), 5 taps per phase."""
    w = bicubic_phase_weights(scale).astype(np.float64)
    p = np.pad(x.astype(np.float64), ((2, 2), (2, 2), (0, 0)), mode="symmetric")
    h, wd = x.shape[:2]
    out = np.zeros((h * scale, wd * scale, x.shape[2]))
    for i in range(h):
        for j in range(wd):
            block = p[i : i + 5, j : j + 5]
            out[i * scale : (i + 1) * scale, j * scale : (j + 1) * scale] = np.einsum("py,qx,yxc->pqc", w, w, block)
    return out


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (6, 1), (2, 2), (5, 3)])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_layer_at_any_size(shape, scale):
    x = np.random.default_rng(0).random((*shape, 3)).astype(np.float32)
    got = np.asarray(BicubicUpsample(scale)(x[None]))[0]
    np.testing.assert_allclose(got, _numpy_bicubic(x, scale), atol=1e-5)


@pytest.mark.parametrize("rgb", [False, True], ids=["gray", "rgb"])
@pytest.mark.parametrize("size", list(SHAPES))
@pytest.mark.parametrize("model", ["espcn-x2", "edsr-x3"])
def test_api_upscales_tiny_images(model, size, rgb):
    img = _image(SHAPES[size], rgb)
    scale = int(model[-1])
    out = upscale(img, model)
    h, w = SHAPES[size]
    assert out.shape == (h * scale, w * scale) + img.shape[2:] and out.dtype == np.uint8
    if size == "1x1":  # one pixel is a flat picture: every output pixel keeps its value, within what the
        # model does at any image's border (the border pixels of a flat 16x16 image move by up to 5 levels)
        assert np.abs(out.astype(int) - img.reshape(1, 1, -1).squeeze()).max() <= 3
    # the picture as a plain bicubic upscaling sees it, with its mean colour
    assert np.abs(out.astype(float) - bicubic_upscale(img, scale)).mean() < 8
    assert np.abs(out.mean(axis=(0, 1)) - img.mean(axis=(0, 1))).max() < 3


@pytest.mark.parametrize("rgb", [False, True], ids=["gray", "rgb"])
@pytest.mark.parametrize("size", list(SHAPES))
def test_cli_upscales_tiny_images(tmp_path, capsys, size, rgb):
    img = _image(SHAPES[size], rgb)
    src, dst = tmp_path / "tiny.npy", tmp_path / "tiny_x2.npy"
    np.save(src, img)
    assert main(["upscale", str(src), "-m", "espcn-x2", "-o", str(dst)]) == 0, capsys.readouterr().err
    got = read_image(dst)[0]
    np.testing.assert_array_equal(got, upscale(img, "espcn-x2"))  # the same engine, the same computation
