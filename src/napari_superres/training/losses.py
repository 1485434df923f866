"""Pixel losses (``keras.ops`` only: every backend) and the adversarial losses of the GAN mode.

No loss needs pretrained weights (there is no VGG here): the machines that train have no internet.
"""

import keras
from keras import ops

_register = keras.saving.register_keras_serializable(package="napari_superres")


@_register
def l1(y_true, y_pred):
    """Mean absolute error: the usual SR loss (EDSR); sharper than MSE."""
    return ops.mean(ops.abs(y_true - y_pred))


@_register
def mse(y_true, y_pred):
    """Mean squared error: what PSNR measures."""
    return ops.mean(ops.square(y_true - y_pred))


@_register
def charbonnier(y_true, y_pred):
    """sqrt(d^2 + eps^2), eps = 1e-3 (LapSRN): L1 that stays smooth near zero."""
    return ops.mean(ops.sqrt(ops.square(y_true - y_pred) + 1e-6))


PIXEL_LOSSES = {"l1": l1, "mse": mse, "charbonnier": charbonnier}


def _bce_logits(target, logits):
    """Binary cross-entropy on logits, numerically stable: max(x, 0) - x * t + log(1 + exp(-|x|))."""
    return ops.mean(ops.relu(logits) - logits * target + ops.log1p(ops.exp(-ops.abs(logits))))


def discriminator_loss(real, fake, relativistic: bool):
    """Real patches towards 1, generated towards 0 (relativistic average: each relative to the other's mean)."""
    if relativistic:
        return 0.5 * (_bce_logits(1.0, real - ops.mean(fake)) + _bce_logits(0.0, fake - ops.mean(real)))
    return 0.5 * (_bce_logits(1.0, real) + _bce_logits(0.0, fake))


def generator_adversarial_loss(real, fake, relativistic: bool):
    """The generator's side: its patches should look real (ESRGAN: symmetric relativistic form)."""
    if relativistic:
        return 0.5 * (_bce_logits(0.0, real - ops.mean(fake)) + _bce_logits(1.0, fake - ops.mean(real)))
    return _bce_logits(1.0, fake)
