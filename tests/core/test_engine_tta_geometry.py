"""Self-ensemble (x8 flips and quarter turns) and the world coordinates of the upscaled layer."""

import numpy as np
import pytest

from napari_superres.engine.api import upscale
from napari_superres.engine.geometry import extent, upscaled_scale_translate
from napari_superres.engine.tta import DIHEDRAL, tta_predict


def test_tta_of_symmetric_model_equals_plain(symmetric_rgb, astronaut):
    img = (astronaut[:45, :38] / 255.0).astype(np.float32)  # not square: quarter turns swap H and W
    plain = upscale(img, symmetric_rgb)
    ens = upscale(img, symmetric_rgb, tta=True)
    assert ens.shape == plain.shape == (90, 76, 3) and ens.dtype == np.float32
    assert np.abs(ens - plain).max() < 1e-5


def test_tta_averages_eight_transforms(rgb_model, astronaut):
    img = (astronaut[100:140, 150:182] / 255.0).astype(np.float32)
    ens = upscale(img, rgb_model, tta=True, tile=16, overlap=8)
    plain = upscale(img, rgb_model)
    assert ens.shape == plain.shape == (80, 64, 3)
    assert np.abs(ens - plain).max() > 1e-3  # a model that is not symmetric: the ensemble differs
    outs = []
    for k, flip in DIHEDRAL:
        t = np.rot90(img, k)
        t = t[:, ::-1] if flip else t
        y = upscale(np.ascontiguousarray(t), rgb_model)
        y = y[:, ::-1] if flip else y
        outs.append(np.rot90(y, -k))
    np.testing.assert_allclose(ens, np.mean(outs, axis=0), atol=1e-5)


def test_tta_counts_eight_calls():
    calls = []

    def model(batch):
        calls.append(batch.shape)
        return batch.repeat(2, 1).repeat(2, 2)

    out = tta_predict(model)(np.ones((2, 4, 6, 1), np.float32))
    assert out.shape == (2, 8, 12, 1) and len(calls) == 8
    assert sorted(set(calls)) == [(2, 4, 6, 1), (2, 6, 4, 1)]


def test_tta_uint8_keeps_dtype(rgb_model, astronaut):
    out = upscale(astronaut[:30, :20], rgb_model, tta=True)
    assert out.dtype == np.uint8 and out.shape == (60, 40, 3)


def test_geometry_formula():
    s, t = upscaled_scale_translate((2.0, 0.5, 0.5), (10.0, 3.0, -1.0), (1, 2, 4))
    assert s == pytest.approx((2.0, 0.25, 0.125))
    assert t == pytest.approx((10.0, 3.0 - 0.5 * 0.5 / 2, -1.0 - 0.5 * 0.75 / 2))


@pytest.mark.parametrize("f", [2, 3, 4])
def test_output_covers_the_input_extent(f):
    scale, translate, shape = (1.5, 0.4, 0.7), (2.0, -3.0, 5.0), (4, 30, 20)
    factors = (1, f, f)  # ZYX upscaled in Y and X
    new_s, new_t = upscaled_scale_translate(scale, translate, factors)
    new_shape = tuple(n * k for n, k in zip(shape, factors))
    np.testing.assert_allclose(extent(new_s, new_t, new_shape), extent(scale, translate, shape))
    # The f output pixels of input pixel i are centred symmetrically around the input pixel's centre.
    centres = new_t[1] + np.arange(f) * new_s[1]
    assert centres.mean() == pytest.approx(translate[1])
