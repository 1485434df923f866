"""SPAN, the Swift Parameter-free Attention Network (Wan et al., CVPR 2024 workshops; NTIRE 2024 efficient SR),
and its re-parameterisation into plain 3x3 convolutions for inference.

Every convolution of the body is a *re-parameterisable* 3x3 convolution: while training it is two branches
summed, a 1x1 expansion to ``expand`` times the channels -> a 3x3 convolution -> a 1x1 reduction, and a 1x1
skip; all linear, so :func:`reparameterize` merges them exactly into one 3x3 convolution. The wide training
form learns better; the deploy form costs what a plain 3x3 convolution costs.

A block (SPAB) is three such convolutions with SiLU between them and SPAN's parameter-free attention
``(features + block_input) * (sigmoid(features) - 0.5)`` (:class:`~.layers.ParameterFreeAttention`). The network:
a head convolution, ``n_blocks`` blocks, a convolution after the last block, the concatenation of the head's
features, that convolution's output, the first block's output and the last block's first convolution, a 1x1
convolution, and a 3x3 convolution with a pixel shuffle by ``scale`` (one stage also at x4, as SPAN).

Two choices of this project's own:

- SPAN's upsampler outputs the image. Here it outputs a residual added to a float32 bicubic upsampling, and
  starts at zero, as every other architecture of the project (``with_bicubic_skip``): an untrained model is
  exactly bicubic. The upsampler is one linear convolution and a shuffle, so this changes only what it has to
  learn (the detail bicubic misses), not the network.
- SPAN feeds its network ``(image - mean) * 255``. The attention gate needs that range: for small features
  ``sigmoid(f) - 0.5`` is about ``f / 4``, and a block would square and shrink its signal. The input here is
  about [0, 1] (8-bit photos and percentile-normalised microscopy alike), so it is centred on 0.5 (one mean for
  gray and RGB) and scaled by 255 before the head, and the residual is scaled back by 1/255 after the
  upsampler. The whole network works in grey levels: the upsampler, which starts at zero, then sees features
  of the size it outputs, and its first Adam steps (a fixed size per weight) stay small; fed 255-scale
  features for a [0, 1] output, they overshoot and a short training run ends below bicubic.

Receptive-field radius in LR pixels: ``3 * n_blocks + 3`` (every layer runs in LR).
"""

import keras
import numpy as np
from keras import layers

from .architectures import conv, last_conv, lr_input, with_bicubic_skip
from .layers import ParameterFreeAttention, PixelShuffle

FEATURE_RANGE = 255.0  # SPAN's pixel range, where its attention gate works (see the module's docstring)
INPUT_CENTRE = 0.5


def _rep_conv(x, filters, expand, deploy, name):
    """A 3x3 convolution named ``name``; in training form its branches are ``name_expand``, ``name_conv``,
    ``name_reduce`` and ``name_skip``."""
    if deploy:
        return conv(filters, 3, name=name)(x)
    # Zero-pad the input, not the expanded features: at the border the 3x3 convolution then sees the 1x1
    # expansion's bias, as the merged convolution's bias assumes, and the merge is exact there too.
    y = layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
    y = conv(x.shape[-1] * expand, 1, name=f"{name}_expand")(y)
    y = layers.Conv2D(filters * expand, 3, padding="valid", name=f"{name}_conv")(y)
    y = conv(filters, 1, name=f"{name}_reduce")(y)
    skip = conv(filters, 1, name=f"{name}_skip")(x)
    return layers.Add(name=f"{name}_sum")([y, skip])


def _block(x, n_feats, expand, deploy, name):
    """SPAB: three re-parameterisable convolutions, SiLU between them, parameter-free attention.
    Returns the block's output and its first convolution's output (SPAN concatenates the last block's)."""
    first = _rep_conv(x, n_feats, expand, deploy, f"{name}_conv0")
    y = layers.Activation("silu", name=f"{name}_act0")(first)
    y = _rep_conv(y, n_feats, expand, deploy, f"{name}_conv1")
    y = layers.Activation("silu", name=f"{name}_act1")(y)
    y = _rep_conv(y, n_feats, expand, deploy, f"{name}_conv2")
    return ParameterFreeAttention(name=f"{name}_attention")([y, x]), first


def span(scale, channels, n_feats=48, n_blocks=6, expand=2, deploy=False):
    """SPAN; the defaults are the paper's (48 features, 6 blocks, branches twice as wide: 0.41 M parameters
    deployed at x2 with 3 channels), the quality tier. ``n_feats=32, n_blocks=3`` is the fast tier (about
    0.1 M). ``deploy=True`` builds the inference form (plain 3x3 convolutions), the form a saved model has;
    :func:`reparameterize` turns a trained training-form model into it. ``expand`` changes only the cost of
    training, not the saved model: ``expand=1`` trains at under a third of the arithmetic (quality tier at x2:
    0.55 M instead of 1.82 M multiply-adds per LR pixel) and, in a short CPU run (fast tier, 400 steps of 16
    patches), gained more over bicubic on a held-out photo (+1.47 dB against +1.17 dB)."""
    if n_blocks < 1 or n_feats < 1 or expand < 1:
        raise TypeError("n_feats, n_blocks and expand must be at least 1")
    inp = lr_input(channels)
    x = layers.Rescaling(FEATURE_RANGE, offset=-FEATURE_RANGE * INPUT_CENTRE, name="to_pixel_range")(inp)
    head = _rep_conv(x, n_feats, expand, deploy, "head")
    x, outputs, firsts = head, [], []
    for i in range(n_blocks):
        x, first = _block(x, n_feats, expand, deploy, f"block{i}")
        outputs.append(x)
        firsts.append(first)
    body = _rep_conv(x, n_feats, expand, deploy, "body_end")
    x = layers.Concatenate(name="features")([head, body, outputs[0], firsts[-1]])
    x = conv(n_feats, 1, name="fuse")(x)
    x = last_conv(channels * scale * scale, 3, name="upsampler")(x)
    x = PixelShuffle(scale, name="upsampler_shuffle")(x)
    x = layers.Rescaling(1 / FEATURE_RANGE, name="to_input_range")(x)
    return with_bicubic_skip(inp, x, scale, f"span_x{scale}")


def _merged(model, name):
    """[kernel, bias] of the one 3x3 convolution that equals re-parameterisable convolution ``name``."""
    (w1, b1), (w2, b2), (w3, b3), (ws, bs) = (
        [np.asarray(a, np.float64) for a in model.get_layer(f"{name}_{part}").get_weights()]
        for part in ("expand", "conv", "reduce", "skip")
    )
    kernel = np.einsum("im,yxmn,no->yxio", w1[0, 0], w2, w3[0, 0])
    kernel[1, 1] += ws[0, 0]
    bias = (b1 @ w2.sum(axis=(0, 1)) + b2) @ w3[0, 0] + b3 + bs
    return [kernel.astype(np.float32), bias.astype(np.float32)]


def training_options(model) -> dict | None:
    """The builder options of a training-form SPAN model; None if ``model`` is deployed already."""
    names = {layer.name for layer in model.layers}
    if "head_expand" not in names:
        return None
    return {
        "n_feats": model.get_layer("head_skip").filters,
        "n_blocks": sum(name.endswith("_attention") for name in names),
        "expand": model.get_layer("head_expand").filters // model.inputs[0].shape[-1],
    }


def reparameterize(model) -> keras.Model:
    """The deploy form of a training-form SPAN ``model``: the same function (up to float rounding) with each
    re-parameterisable convolution merged into one 3x3 convolution, in ``model``'s dtype policy. A deployed
    model is returned as it is."""
    options = training_options(model)
    if options is None:
        return model
    scale, channels = model.get_layer("upsampler_shuffle").scale, model.inputs[0].shape[-1]
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(model.get_layer("head_skip").dtype_policy.name)
    try:
        deployed = span(scale, channels, **options, deploy=True)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    trained = {layer.name for layer in model.layers}
    for layer in deployed.layers:
        if layer.weights:
            source = model.get_layer(layer.name).get_weights() if layer.name in trained else _merged(model, layer.name)
            layer.set_weights(source)
    return deployed


def finalize(model, options: dict) -> tuple:
    """The registry's hook before a model is saved: (deploy model, its builder options)."""
    found = training_options(model)
    if found is None:
        return model, {**options, "deploy": True}
    return reparameterize(model), {**options, **found, "deploy": True}
