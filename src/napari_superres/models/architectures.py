"""Super-resolution architectures, one short function each.

Every function returns a ``keras.Model`` with input ``(None, None, channels)`` (float32, about [0, 1]) and
output ``(None, None, channels)`` at ``scale`` times the input size. Except for ``unet_sr`` (whose U-Net works on
a bicubic-upsampled input), the network learns the difference to a bicubic upsampling of the input, added
by a global skip: an untrained model starts near bicubic and training only has to learn the detail.
"""

import keras
from keras import layers

from .layers import BicubicUpsample, ChannelAttention, PixelShuffle


def conv(filters, size=3, activation=None, name=None, **kw):
    """A "same"-padded 2-D convolution (every architecture's building block)."""
    return layers.Conv2D(filters, size, padding="same", activation=activation, name=name, **kw)


def last_conv(filters, size=3, name=None):
    """The convolution that outputs the residual: zero at first, so an untrained model is exactly bicubic
    (or its pre-upsampled input) and training starts from there."""
    return conv(filters, size, name=name, kernel_initializer="zeros")


def lr_input(channels):
    """The low-resolution input of any size."""
    return keras.Input((None, None, channels), name="lr")


def with_bicubic_skip(inp, residual, scale, name):
    """The model: ``residual`` added to the bicubic upscaling of ``inp``."""
    # float32 even under a mixed-precision policy: bfloat16 cannot hold 8-bit grey levels exactly, and the
    # skip carries the whole image (only the residual is computed in low precision).
    bicubic = BicubicUpsample(scale, name="bicubic", dtype="float32")(inp)
    out = layers.Add(name="hr", dtype="float32")([bicubic, residual])
    return keras.Model(inp, out, name=name)


def _factors(scale):
    """x4 is two x2 stages, as in EDSR and RCAN; x2 and x3 are one stage."""
    return [2, 2] if scale == 4 else [scale]


def _subpixel_upsampler(x, scale, n_feats):
    for i, f in enumerate(_factors(scale)):
        x = conv(n_feats * f * f, name=f"up{i}_conv")(x)
        x = PixelShuffle(f, name=f"up{i}_shuffle")(x)
    return x


def upsample_cnn(scale, channels, n_feats=64):
    """Post-upsampling CNN: feature convolutions in LR, then per x2/x3 stage a nearest ``UpSampling2D``
    followed by a convolution in the larger grid, then a reconstruction convolution."""
    inp = lr_input(channels)
    x = conv(n_feats, 5, "relu", name="feat0")(inp)
    x = conv(n_feats, 3, "relu", name="feat1")(x)
    for i, f in enumerate(_factors(scale)):
        x = layers.UpSampling2D(f, name=f"up{i}")(x)
        x = conv(n_feats, 3, "relu", name=f"up{i}_conv")(x)
    x = last_conv(channels, 3, name="recon")(x)
    return with_bicubic_skip(inp, x, scale, f"upsample_cnn_x{scale}")


def unet_sr(scale, channels, base=32, depth=2):
    """Bicubic pre-upsampling, then a U-Net (two 3x3 convolutions per level, max-pool down, nearest up,
    skip connections by concatenation) that predicts the residual added to the upsampled input (VDSR-style).
    The HR grid is halved ``depth`` times, so the LR input must be a multiple of ``2**depth``."""
    inp = lr_input(channels)
    up = BicubicUpsample(scale, name="bicubic")(inp)

    def block(x, filters, name):
        x = conv(filters, 3, "relu", name=f"{name}_a")(x)
        return conv(filters, 3, "relu", name=f"{name}_b")(x)

    x, skips = up, []
    for level in range(depth):
        x = block(x, base * 2**level, f"down{level}")
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"pool{level}")(x)
    x = block(x, base * 2**depth, "bottom")
    for level in reversed(range(depth)):
        x = layers.UpSampling2D(2, name=f"unpool{level}")(x)
        x = layers.Concatenate(name=f"skip{level}")([x, skips[level]])
        x = block(x, base * 2**level, f"up{level}")
    x = last_conv(channels, 1, name="residual")(x)
    return keras.Model(inp, layers.Add(name="hr")([up, x]), name=f"unet_sr_x{scale}")


def espcn(scale, channels, n_feats=64):
    """ESPCN (Shi et al. 2016): three convolutions in LR (5x5, 3x3, 3x3, tanh) and a sub-pixel shuffle."""
    inp = lr_input(channels)
    x = conv(n_feats, 5, "tanh", name="feat0")(inp)
    x = conv(n_feats // 2, 3, "tanh", name="feat1")(x)
    x = last_conv(channels * scale * scale, 3, name="subpixel_conv")(x)
    x = PixelShuffle(scale, name="shuffle")(x)
    return with_bicubic_skip(inp, x, scale, f"espcn_x{scale}")


def fsrcnn(scale, channels, d=56, s=12, m=4):
    """FSRCNN (Dong et al. 2016): feature extraction, shrinking to ``s`` channels, ``m`` 3x3 mapping layers,
    expanding back to ``d``, and a 9x9 transposed convolution (deconvolution) with stride ``scale``.
    As in the paper, convolutions are He-initialised and PReLU slopes start at 0.25 (with Keras' defaults,
    Glorot and slope 0, the signal fades twentyfold through the narrow layers and training stays at
    bicubic), and the deconvolution learns ten times slower than the rest: here its output is scaled by 0.1,
    which under Adam amounts to the same. It starts at zero, as the other models' residual output."""
    inp = lr_input(channels)

    def conv_prelu(x, filters, size, name):
        x = conv(filters, size, name=name, kernel_initializer="he_normal")(x)
        slope = keras.initializers.Constant(0.25)
        return layers.PReLU(slope, shared_axes=[1, 2], name=f"{name}_prelu")(x)

    x = conv_prelu(inp, d, 5, "feature")
    x = conv_prelu(x, s, 1, "shrink")
    for i in range(m):
        x = conv_prelu(x, s, 3, f"map{i}")
    x = conv_prelu(x, d, 1, "expand")
    x = layers.Conv2DTranspose(channels, 9, strides=scale, padding="same", kernel_initializer="zeros", name="deconv")(x)
    x = layers.Rescaling(0.1, name="deconv_scale")(x)
    return with_bicubic_skip(inp, x, scale, f"fsrcnn_x{scale}")


def edsr(scale, channels, n_blocks=16, n_feats=64, res_scale=1.0):
    """EDSR (Lim et al. 2017); the defaults are EDSR-baseline: 16 residual blocks (conv-ReLU-conv, no batch
    norm) of 64 features, a long skip over the body, and a sub-pixel upsampler. ``res_scale=0.1`` steadies
    training of wide variants; fewer blocks/features give a model that trains on a CPU."""
    inp = lr_input(channels)
    head = conv(n_feats, name="head")(inp)
    x = head
    for i in range(n_blocks):
        r = conv(n_feats, activation="relu", name=f"block{i}_conv0")(x)
        r = conv(n_feats, name=f"block{i}_conv1")(r)
        if res_scale != 1.0:
            r = layers.Rescaling(res_scale, name=f"block{i}_scale")(r)
        x = layers.Add(name=f"block{i}_add")([x, r])
    return _residual_sr_tail(inp, head, x, scale, channels, n_feats, "edsr")


def _residual_sr_tail(inp, head, body, scale, channels, n_feats, label):
    """What EDSR and RCAN share after their body: a closing convolution, the long skip from the head, the
    sub-pixel upsampler, the output convolution and the global bicubic skip."""
    x = conv(n_feats, name="body_end")(body)
    x = layers.Add(name="long_skip")([head, x])
    x = _subpixel_upsampler(x, scale, n_feats)
    x = last_conv(channels, name="tail")(x)
    return with_bicubic_skip(inp, x, scale, f"{label}_x{scale}")


def rcan(scale, channels, n_groups=4, n_blocks=4, n_feats=48, reduction=8):
    """A light RCAN (Zhang et al. 2018): residual-in-residual groups of residual channel-attention blocks
    (conv-ReLU-conv, then channel attention), a long skip and a sub-pixel upsampler. The original has 10
    groups of 20 blocks with 64 features (15.6 M parameters); these defaults have 864,867 parameters at x2
    with 3 channels (x3: 968,787; x4: 948,003), fewer than EDSR-baseline's 1,369,859.
    Channel attention averages each feature over the whole input, so a tiled result differs slightly from
    the whole-image one."""
    inp = lr_input(channels)
    head = conv(n_feats, name="head")(inp)
    x = head
    for g in range(n_groups):
        group_in = x
        for b in range(n_blocks):
            name = f"group{g}_block{b}"
            r = conv(n_feats, activation="relu", name=f"{name}_conv0")(x)
            r = conv(n_feats, name=f"{name}_conv1")(r)
            r = ChannelAttention(reduction, name=f"{name}_attention")(r)
            x = layers.Add(name=f"{name}_add")([x, r])
        x = conv(n_feats, name=f"group{g}_end")(x)
        x = layers.Add(name=f"group{g}_add")([group_in, x])
    return _residual_sr_tail(inp, head, x, scale, channels, n_feats, "rcan")
