"""The architectures by name, with what the engine needs to know about each.

``multiple``: the model's LR input height and width must be a multiple of this (the engine pads).
``overlap``: receptive-field radius in LR pixels, rounded up, for the default settings of the builder and
every supported scale: a tile with this much context on each side gives the same output as the whole
image. ``tests/core/test_models.py`` measures the radius of every architecture against it.
"""

from dataclasses import dataclass
from typing import Callable

from ..errors import ModelError

SCALES = (2, 3, 4)
CHANNELS = (1, 3)


@dataclass(frozen=True)
class ArchSpec:
    name: str
    build: Callable
    scales: tuple
    multiple: int
    overlap: int
    summary: str


def _lazy(name):
    """The builder, imported on first call: listing architectures must not import Keras (napari process)."""

    def build(scale, channels, **kw):
        from . import architectures

        return getattr(architectures, name)(scale, channels, **kw)

    build.__name__ = name
    return build


def _spec(name, multiple, overlap, summary):
    return ArchSpec(name, _lazy(name), SCALES, multiple, overlap, summary)


ARCHITECTURES: dict = {
    s.name: s
    for s in (
        _spec("upsample_cnn", 1, 5, "post-upsampling CNN: LR convolutions, UpSampling2D stages, convolutions"),
        _spec("unet_sr", 4, 16, "U-Net on a bicubic-upsampled input, residual output (VDSR family)"),
        _spec("espcn", 1, 5, "ESPCN: 3 LR convolutions and a sub-pixel shuffle; fast"),
        _spec("fsrcnn", 1, 9, "FSRCNN: shrink-map-expand convolutions and a 9x9 deconvolution; fast"),
        _spec("edsr", 1, 36, "EDSR-baseline: 16 residual blocks, 64 features, sub-pixel upsampler"),
        _spec("rcan", 1, 40, "light RCAN: 4x4 residual channel-attention blocks, 48 features"),
    )
}


def get_arch(arch) -> ArchSpec:
    if arch not in ARCHITECTURES:
        raise ModelError(f"unknown architecture {arch!r}; choose one of: {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[arch]


def build_model(arch, scale, channels, **kw):
    """Build an untrained ``arch`` model for ``scale`` and ``channels`` (1 or 3); ``kw`` go to the builder."""
    spec = get_arch(arch)
    if scale not in spec.scales:
        raise ModelError(f"{arch} supports scales {', '.join(map(str, spec.scales))}, not {scale!r}")
    if channels not in CHANNELS:
        raise ModelError(f"models have 1 (gray) or 3 (RGB) channels, not {channels!r}")
    try:
        return spec.build(int(scale), int(channels), **kw)
    except TypeError as e:
        raise ModelError(f"bad option for {arch}: {e}") from None
