"""Registered Keras layers the architectures need.

Written with ``keras.ops`` only, so they run on TensorFlow, JAX and PyTorch, and registered so that models
using them save and load with ``safe_mode=True`` (no Lambda layers).
"""

import keras
import numpy as np
from keras import ops

_register = keras.saving.register_keras_serializable(package="napari_superres")


def _times(dim, factor):
    return None if dim is None else dim * factor


@_register
class PixelShuffle(keras.layers.Layer):
    """Sub-pixel convolution output stage (Shi et al. 2016): (N, H, W, C*r*r) -> (N, H*r, W*r, C).

    Channel order as TensorFlow's ``depth_to_space``: input channel ``(i*r + j)*C + c`` becomes output
    pixel offset (i, j), channel c.
    """

    def __init__(self, scale, **kwargs):
        super().__init__(**kwargs)
        self.scale = int(scale)

    def call(self, x):
        r = self.scale
        shape = ops.shape(x)
        h, w, c = shape[1], shape[2], x.shape[-1] // (r * r)
        x = ops.reshape(x, (-1, h, w, r, r, c))
        x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
        return ops.reshape(x, (-1, h * r, w * r, c))

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        r = self.scale
        return (n, _times(h, r), _times(w, r), c // (r * r))

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


def _keys_cubic(t, a=-0.5):
    """Keys' cubic convolution kernel, the one of MATLAB ``imresize`` and ``tf.image.resize``."""
    t = np.abs(t)
    return np.where(
        t <= 1,
        (a + 2) * t**3 - (a + 3) * t**2 + 1,
        np.where(t < 2, a * t**3 - 5 * a * t**2 + 8 * a * t - 4 * a, 0.0),
    )


def bicubic_phase_weights(scale):
    """(scale, 5) weights: HR pixel ``i*scale + p`` = sum_k w[p, k] * LR[i + k - 2] (half-pixel centres)."""
    offsets = (np.arange(scale) + 0.5) / scale - 0.5  # LR position of each output phase, relative to i
    taps = np.arange(-2, 3)
    w = _keys_cubic(taps[None, :] - offsets[:, None])
    return (w / w.sum(axis=1, keepdims=True)).astype("float32")


def _symmetric_pad2(x, axis):
    """2 pixels of symmetric (half-sample) padding on both sides of ``axis`` (1 or 2), for any size, as
    ``numpy.pad(..., "symmetric")``, from slices and concatenations only: the same on every backend and in
    ONNX (MirrorPad refuses pads larger than the axis, Keras's torch backend pads "symmetric" as "edge", and
    a gather exports to an operator ONNX lacks; a flip along H costs more than the convolution).

    The first ring repeats the edge pixels, [x0, x0 .. xn-1, xn-1]; the second takes the third pixel from
    each end of that, which is x1 and xn-2, or x0 when n is 1: symmetric padding for every n."""

    def part(t, start, stop):
        return t[:, start:stop] if axis == 1 else t[:, :, start:stop]

    y = ops.concatenate([part(x, 0, 1), x, part(x, -1, None)], axis=axis)
    return ops.concatenate([part(y, 2, 3), y, part(y, -3, -2)], axis=axis)


@_register
class BicubicUpsample(keras.layers.Layer):
    """Bicubic upsampling by an integer factor, identical on every Keras backend.

    ``UpSampling2D(interpolation="bicubic")`` follows each backend's own resize (PyTorch uses a different
    cubic kernel), so a model trained on one backend would shift slightly on another. This layer is a fixed
    5x5 depthwise convolution per output phase followed by a pixel shuffle, with symmetric edge padding as
    MATLAB's ``imresize`` (any input size, 1x1 included). It has no weights; its output at a pixel depends on the 2 LR pixels around it.
    """

    def __init__(self, scale, **kwargs):
        super().__init__(**kwargs)
        self.scale = int(scale)
        w = bicubic_phase_weights(self.scale)
        # kernel[ky, kx, p*r + q] = w[p, ky] * w[q, kx]
        self._kernel2d = np.einsum("py,qx->yxpq", w, w).reshape(5, 5, self.scale**2)

    def build(self, input_shape):
        c = input_shape[-1]
        kernel = np.repeat(self._kernel2d[:, :, None, :], c, axis=2)  # (5, 5, C, r*r)
        self._kernel = ops.convert_to_tensor(kernel, dtype=self.compute_dtype)

    def call(self, x):
        r = self.scale
        c = x.shape[-1]
        x = _symmetric_pad2(_symmetric_pad2(x, axis=1), axis=2)
        y = ops.depthwise_conv(x, self._kernel, strides=1, padding="valid")  # channels c*r*r + phase
        shape = ops.shape(y)
        h, w = shape[1], shape[2]
        y = ops.reshape(y, (-1, h, w, c, r, r))
        y = ops.transpose(y, (0, 1, 4, 2, 5, 3))
        return ops.reshape(y, (-1, h * r, w * r, c))

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        return (n, _times(h, self.scale), _times(w, self.scale), c)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


@_register
class ChannelAttention(keras.layers.Layer):
    """Squeeze-and-excitation channel attention of RCAN (Zhang et al. 2018): global average, a 1x1 bottleneck
    with ``reduction``, a sigmoid gate that rescales every channel."""

    def __init__(self, reduction=16, **kwargs):
        super().__init__(**kwargs)
        self.reduction = int(reduction)

    def build(self, input_shape):
        c = input_shape[-1]
        hidden, policy = max(1, c // self.reduction), self.dtype_policy  # sublayers compute like this layer
        self.squeeze = keras.layers.Dense(hidden, activation="relu", name="squeeze", dtype=policy)
        self.excite = keras.layers.Dense(c, activation="sigmoid", name="excite", dtype=policy)
        self.squeeze.build((None, c))
        self.excite.build((None, hidden))

    def call(self, x):
        gate = self.excite(self.squeeze(ops.mean(x, axis=(1, 2))))
        return x * gate[:, None, None, :]

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "reduction": self.reduction}


@_register
class ParameterFreeAttention(keras.layers.Layer):
    """SPAN's attention (Wan et al. 2024): called on ``[features, block_input]``, returns
    ``(features + block_input) * (sigmoid(features) - 0.5)``. The gate has no weights of its own; being odd
    around zero, it keeps the sign of strong features and damps weak ones."""

    def call(self, inputs):
        features, block_input = inputs
        return (features + block_input) * (ops.sigmoid(features) - 0.5)

    def compute_output_shape(self, input_shape):
        return input_shape[0]
