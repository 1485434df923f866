"""Shared fixtures for the core tests: tiny real Keras SR models (built in well under a second) and small
real images from scikit-image."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The tests pin float32: an automatic choice depends on the CPU and on a timed probe (tests/core/test_precision.py
# tests that choice itself).
os.environ.setdefault("NAPARI_SUPERRES_PRECISION", "float32")

import numpy as np
import pytest


def _keras():
    import keras

    return keras


def _to_srmodel(keras_model):
    """Through the project's loader (scale found by probing), as a user's own model would go."""
    from napari_superres.models.loading import load_model

    return load_model(keras_model)


def _residual_cnn(channels: int, scale: int = 2, seed: int = 0):
    """Nearest upsampling plus a small random conv correction: a real, nonlinear SR network with a
    receptive-field radius of about 3 low-resolution pixels and outputs near the input's range."""
    keras = _keras()
    L = keras.layers
    keras.utils.set_random_seed(seed)
    init = keras.initializers.RandomNormal(stddev=0.1, seed=seed)
    inp = keras.Input((None, None, channels))
    x = L.Conv2D(8, 3, padding="same", activation="relu", kernel_initializer=init)(inp)
    x = L.Conv2D(8, 3, padding="same", activation="relu", kernel_initializer=init)(x)
    x = L.UpSampling2D(scale)(x)
    x = L.Conv2D(channels, 3, padding="same", kernel_initializer=init)(x)
    base = L.UpSampling2D(scale)(inp)
    return keras.Model(inp, L.Add()([base, x]), name=f"residual_cnn_{channels}ch_x{scale}")


def _nearest(channels: int, scale: int = 2, gain: float = 1.0, offset: float = 0.0):
    """Nearest-neighbour upsampling, optionally times ``gain`` plus ``offset``: outputs known exactly."""
    keras = _keras()
    L = keras.layers
    inp = keras.Input((None, None, channels))
    x = L.UpSampling2D(scale, interpolation="nearest")(inp)
    if gain != 1.0 or offset != 0.0:
        x = L.Rescaling(gain, offset=offset)(x)
    return keras.Model(inp, x, name=f"nearest_{channels}ch_x{scale}")


def _d4_symmetric_cnn(channels: int, scale: int = 2, seed: int = 1):
    """Nearest upsampling then convolutions whose 3x3 kernels are invariant under flips and quarter turns:
    the whole network commutes with all eight flips/rotations (what self-ensemble averages over)."""
    keras = _keras()
    L = keras.layers
    rng = np.random.default_rng(seed)
    inp = keras.Input((None, None, channels))
    conv1 = L.Conv2D(6, 3, padding="same", activation="relu")
    conv2 = L.Conv2D(channels, 3, padding="same")
    x = conv2(conv1(L.UpSampling2D(scale)(inp)))
    model = keras.Model(inp, x, name=f"d4_cnn_{channels}ch_x{scale}")
    for conv in (conv1, conv2):
        k, b = conv.get_weights()
        centre, edge, corner = (rng.normal(0, 0.3, k.shape[2:]) for _ in range(3))
        sym = np.empty_like(k)
        sym[1, 1] = centre
        sym[0, 1] = sym[2, 1] = sym[1, 0] = sym[1, 2] = edge
        sym[0, 0] = sym[0, 2] = sym[2, 0] = sym[2, 2] = corner
        conv.set_weights([sym, rng.normal(0, 0.1, b.shape).astype(b.dtype)])
    return model


def assert_equal_to_float32_rounding(got, expected):
    """Two runs of one model that batch or tile the work differently (lazy and in-memory, block by block,
    on a cluster): the CPU's kernels (oneDNN on AVX2, AVX-512 or AMX) may round float32 differently by batch
    item and position, so bit-for-bit equality is only promised for the same computation. Floats agree to
    float32 precision; integers within one step (a value that sat on a rounding boundary)."""
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    if np.issubdtype(expected.dtype, np.integer):
        diff = np.abs(got.astype(np.int64) - expected.astype(np.int64))
        assert diff.max(initial=0) <= 1, f"{int(diff.max())} steps apart: more than float32 rounding"
    else:
        atol = 64 * np.finfo(np.float32).eps * float(np.abs(expected).max(initial=0))
        np.testing.assert_allclose(got, expected, rtol=0, atol=atol)


@pytest.fixture(scope="session")
def rgb_model():
    return _to_srmodel(_residual_cnn(3))


@pytest.fixture(scope="session")
def gray_model():
    return _to_srmodel(_residual_cnn(1))


@pytest.fixture(scope="session")
def nearest_rgb():
    return _to_srmodel(_nearest(3))


@pytest.fixture(scope="session")
def nearest_gray():
    return _to_srmodel(_nearest(1))


@pytest.fixture(scope="session")
def overshoot_gray():
    """x1.5 - 0.25 after nearest upsampling: pushes bright values above and dark ones below the range."""
    return _to_srmodel(_nearest(1, gain=1.5, offset=-0.25))


@pytest.fixture(scope="session")
def symmetric_rgb():
    return _to_srmodel(_d4_symmetric_cnn(3))


@pytest.fixture(scope="session")
def astronaut():
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="session")
def chelsea():
    from skimage import data

    return data.chelsea()


@pytest.fixture(scope="session")
def camera():
    from skimage import data

    return data.camera()
