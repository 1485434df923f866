"""Multiply-accumulates of a Keras model's forward pass, counted from its layers (the numerator of the bench's
efficiency figure)."""

from __future__ import annotations

import numpy as np


def count_macs(keras_model, height: int, width: int) -> int:
    """Multiply-accumulates of one forward pass on a ``height x width`` input (batch 1).

    Counted from the layers that do the arithmetic: Conv1D/2D/3D and DepthwiseConv2D (output pixels x kernel
    size), Conv*DTranspose (input pixels x kernel size), SeparableConv2D and Dense (per pixel); nested models
    are counted layer by layer. Element-wise layers, pixel shuffles and fixed resampling layers (e.g. the
    bicubic skip: 25 taps per output phase) are left out: they are memory-bound and well under 1% of the
    arithmetic of any shipped model. Every layer's real grid comes from a symbolic pass with this input size.
    """
    channels = keras_model.inputs[0].shape[-1]
    return _macs(keras_model, (1, height, width, channels))


def _macs(model, input_shape) -> int:
    from ..models.graph import node_shapes

    total = 0
    for op, inputs, out in node_shapes(model, input_shape,
                                       keep=lambda op: _is_model(op) or _layer_macs(op, None, None) is not None):
        total += _macs(op, inputs[0]) if _is_model(op) else _layer_macs(op, inputs[0], out)
    return total


def _is_model(op) -> bool:
    import keras

    return isinstance(op, keras.Model)


def _layer_macs(layer, inp, out):
    """MACs of one call of ``layer`` from its input and output shapes; None for a layer that is not counted
    (``inp`` None: only asks whether it is counted)."""
    import keras

    L = keras.layers
    if isinstance(layer, L.SeparableConv2D):
        kernel = int(np.prod(layer.depthwise_kernel.shape)) + int(np.prod(layer.pointwise_kernel.shape))
        grid = out
    elif isinstance(layer, (L.Conv1DTranspose, L.Conv2DTranspose, L.Conv3DTranspose)):
        kernel, grid = int(np.prod(layer.kernel.shape)), inp
    elif isinstance(layer, (L.Conv1D, L.Conv2D, L.Conv3D, L.DepthwiseConv2D, L.Dense)):
        kernel, grid = int(np.prod(layer.kernel.shape)), out
    else:
        return None
    return 0 if inp is None else int(np.prod(grid[1:-1])) * kernel
