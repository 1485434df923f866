"""The architectures by name, with what the engine needs to know about each.

``multiple``: the model's LR input height and width must be a multiple of this (the engine pads).
``overlap``: receptive-field radius in LR pixels, rounded up, over every supported scale: a tile with this
much context on each side gives the same output as the whole image. Both are for the builder's default
options; :func:`geometry` gives them for other options (e.g. a smaller EDSR). ``tests/core/test_models.py``
measures the radius of every architecture against these rules.

``finalize``: None, or ``finalize(model, options) -> (model, options)``, applied by ``loading.save_model`` to
every model it saves with this architecture (span: its training-time branches merged into 3x3 convolutions,
and ``deploy=True`` in the options so that the saved model rebuilds as it is).

rcan's channel attention averages over the whole input, so a tile's output also depends (weakly) on
everything in the tile: its overlap is the radius of its convolutions, and tiled results differ slightly
from whole-image ones. The other architectures are exact.

Importing this module does not import Keras (the napari process lists architectures); building does.
"""

import importlib
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
    finalize: Callable | None = None


# (multiple, overlap) from the builder's options. Each 3x3 convolution in LR adds 1 pixel of radius, a 5x5
# adds 2; the sub-pixel/deconvolution upsampler and the bicubic skip add at most 2 more.
def _unet_geometry(depth=2, **_):
    # In HR pixels the U-Net sees 8 * 2**depth - 6 around a pixel, i.e. 4 * 2**depth - 3 LR pixels at x2,
    # plus 2 for the bicubic pre-upsampling; rounded up to a multiple of 2**depth so tiles stay aligned.
    return 2**depth, 4 * 2**depth


_GEOMETRY = {
    "upsample_cnn": lambda **_: (1, 4),
    "unet_sr": _unet_geometry,
    "espcn": lambda **_: (1, 4),
    "fsrcnn": lambda m=4, **_: (1, m + 4),
    "edsr": lambda n_blocks=16, **_: (1, 2 * n_blocks + 4),
    "rcan": lambda n_groups=4, n_blocks=4, **_: (1, n_groups * (2 * n_blocks + 1) + 4),
    # every SPAN convolution is 3x3 in LR (1 pixel): head, 3 per block, after the body, the upsampler
    "span": lambda n_blocks=6, **_: (1, 3 * n_blocks + 3),
}

_SUMMARIES = {
    "upsample_cnn": "post-upsampling CNN: LR convolutions, UpSampling2D stages, convolutions",
    "unet_sr": "U-Net on a bicubic-upsampled input, residual output (VDSR family)",
    "espcn": "ESPCN: 3 LR convolutions and a sub-pixel shuffle; fast",
    "fsrcnn": "FSRCNN: shrink-map-expand convolutions and a 9x9 deconvolution; fast",
    "edsr": "EDSR-baseline: 16 residual blocks, 64 features, sub-pixel upsampler",
    "rcan": "light RCAN: 4 groups of 4 residual channel-attention blocks, 48 features",
    "span": "SPAN: parameter-free attention blocks of plain 3x3 convolutions (merged from wider training "
    "branches); 6 blocks of 48 features, fast on CPUs",
}

# Builder options of the two SPAN tiers at x2 with 3 channels, deployed: fast 100,972 parameters (at most
# 120k), quality (the builder's defaults) 410,700.
SPAN_FAST = {"n_feats": 32, "n_blocks": 3}
SPAN_QUALITY = {"n_feats": 48, "n_blocks": 6}

_MODULES = {"span": "span"}  # builders that live outside architectures.py
_FINALIZE = {"span": "finalize"}


def _lazy(name, module="architectures"):
    """The function ``name`` of ``module``, imported on first call."""

    def call(*args, **kw):
        return getattr(importlib.import_module(f".{module}", __package__), name)(*args, **kw)

    call.__name__ = name
    return call


ARCHITECTURES: dict = {
    name: ArchSpec(
        name, _lazy(name, _MODULES.get(name, "architectures")), SCALES, *_GEOMETRY[name](), summary,
        _lazy(_FINALIZE[name], _MODULES[name]) if name in _FINALIZE else None,
    )
    for name, summary in _SUMMARIES.items()
}


def get_arch(arch) -> ArchSpec:
    if arch not in ARCHITECTURES:
        raise ModelError(f"unknown architecture {arch!r}; choose one of: {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[arch]


def geometry(arch, **kw) -> tuple[int, int]:
    """(multiple, overlap) of ``arch`` built with options ``kw``."""
    get_arch(arch)
    return _GEOMETRY[arch](**kw)


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
