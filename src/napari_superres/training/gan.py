"""Adversarial training (SRGAN / ESRGAN style, without a perceptual network).

The generator is any SR model of the registry. A small fully convolutional patch discriminator scores each
region of an HR image as real or generated. The generator minimises ``pixel loss + weight * adversarial
loss``, where the adversarial term is switched on only after ``pretrain_steps`` optimizer steps: before that
the generator learns on the pixel loss alone (ESRGAN starts from a PSNR-trained model) while the
discriminator already learns to tell its outputs from real patches.

``keras.Model.fit`` with a custom ``train_step`` is backend-specific; this one is written for TensorFlow, the
default backend, and :func:`require_tensorflow` says so clearly on the others.
"""

import keras
from keras import layers, ops

from ..errors import InputError
from .losses import discriminator_loss, generator_adversarial_loss


def require_tensorflow() -> None:
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise InputError(
            f"GAN training runs on the TensorFlow backend; this process uses {backend!r} "
            "(set KERAS_BACKEND=tensorflow, or train without --gan)"
        )


def patch_discriminator(channels: int, n_feats: int = 32) -> keras.Model:
    """Five 3x3/4x4 convolutions with LeakyReLU, two of them strided: one logit per 4x4 HR block, each
    seeing about 30x30 pixels. Fully convolutional, so it takes any patch size."""
    inp = keras.Input((None, None, channels), name="hr")
    x = inp
    for i, (filters, size, stride) in enumerate(
        [(n_feats, 3, 1), (n_feats, 4, 2), (2 * n_feats, 3, 1), (2 * n_feats, 4, 2), (4 * n_feats, 3, 1)]
    ):
        x = layers.Conv2D(filters, size, strides=stride, padding="same", name=f"d_conv{i}")(x)
        x = layers.LeakyReLU(0.2, name=f"d_act{i}")(x)
    out = layers.Conv2D(1, 3, padding="same", name="d_logits")(x)
    return keras.Model(inp, out, name="patch_discriminator")


class GANTrainer(keras.Model):
    """Trains ``generator`` and ``discriminator`` together; ``fit`` reports loss, pixel_loss, adv_loss, d_loss."""

    def __init__(self, generator, discriminator, pixel_loss, *, weight=5e-3, pretrain_steps=0,
                 relativistic=True, **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.pixel_loss = pixel_loss
        self.weight = float(weight)
        self.pretrain_steps = int(pretrain_steps)
        self.relativistic = bool(relativistic)
        self.trackers = [keras.metrics.Mean(name=n) for n in ("loss", "pixel_loss", "adv_loss", "d_loss")]
        self.d_optimizer = None

    @property
    def metrics(self):
        return self.trackers

    def call(self, x, training=False):
        return self.generator(x, training=training)

    def compile(self, g_optimizer, d_optimizer):
        super().compile(optimizer=g_optimizer)
        self.d_optimizer = d_optimizer
        # Built now, outside the traced step, so their variables exist before the first step (and can be
        # restored from a checkpoint).
        g_optimizer.build(self.generator.trainable_variables)
        d_optimizer.build(self.discriminator.trainable_variables)

    def train_step(self, data):
        import tensorflow as tf

        lr, hr = data
        adversarial_on = ops.cast(self.optimizer.iterations >= self.pretrain_steps, "float32")
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            sr = self.generator(lr, training=True)
            real = self.discriminator(hr, training=True)
            fake = self.discriminator(sr, training=True)
            pixel = self.pixel_loss(hr, sr)
            adv = generator_adversarial_loss(real, fake, self.relativistic)
            d_loss = discriminator_loss(real, fake, self.relativistic)
            g_loss = pixel + adversarial_on * self.weight * adv
        g_vars = self.generator.trainable_variables
        d_vars = self.discriminator.trainable_variables
        self.optimizer.apply(g_tape.gradient(g_loss, g_vars), g_vars)
        self.d_optimizer.apply(d_tape.gradient(d_loss, d_vars), d_vars)
        for tracker, value in zip(self.trackers, (g_loss, pixel, adv, d_loss)):
            tracker.update_state(value)
        return {t.name: t.result() for t in self.trackers}
