"""Axes: which dimensions are Y, X, channels and slices; reshaping N-D data to model batches and back.

Axes strings use napari order and the letters ``T Z C Y X S`` (each at most once):

- ``YX`` gray image; ``YXC`` (or ``YXS``) colour image: a channel axis after Y and X of size 3 is RGB, of size
  4 is RGBA.
- ``CYX``, ``ZCYX``, ``TCZYX``...: multichannel microscopy, a channel axis before Y and X.
- ``ZYX``, ``TZYX``, ...: stacks; every axis other than Y, X and the channel axis is carried slice by slice.

Only Y and X are upscaled. Internally the data is laid out as ``N x H x W x C``: all slice axes (in their
order) flattened into N, then Y, X, then the one channel axis (C = 1 when there is none).

Channel policy (``channel_mode="auto"``):

- RGB with a 3-channel model: the three channels go through the model together ("joint").
- RGBA: RGB as above (or channel by channel with a 1-channel model); alpha is *not* put through the model, it
  is upscaled on its own by bicubic interpolation and clipped to its input range.
- Gray (one channel) with a 3-channel model: replicated to three equal channels, the model's three outputs
  averaged back to one.
- Multichannel microscopy (a channel axis before Y, X, or a trailing one not of size 3/4), and RGB with a
  1-channel model: each channel through the model on its own (with a 3-channel model each channel is
  replicated as for gray).

``channel_mode="separate"`` puts every channel (alpha included) through the model on its own;
``channel_mode="joint"`` puts all channels through together (they must match the model's channels, or be
RGBA with a 3-channel model).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

from ..errors import InputError

LETTERS = "TZCYXS"
CHANNEL_LETTERS = "CS"
_DEFAULT_SLICE_LETTERS = {0: "", 1: "Z", 2: "TZ", 3: "TZC"}
CHANNEL_MODES = ("auto", "joint", "separate")


def infer_axes(shape: Sequence[int]) -> str:
    """Default axes for a shape: 2D -> YX; last dim 3 or 4 (ndim >= 3) -> ...YXC; else leading dims are slices."""
    shape = tuple(shape)
    ndim = len(shape)
    if ndim < 2:
        raise InputError(f"The data has shape {shape}; an image needs at least two dimensions (Y, X).")
    colour = ndim >= 3 and shape[-1] in (3, 4)
    n_slices = ndim - 2 - int(colour)
    if n_slices not in _DEFAULT_SLICE_LETTERS:
        raise InputError(f"Cannot guess the axes of data with shape {shape}; give them (e.g. axes='TZCYX').")
    return _DEFAULT_SLICE_LETTERS[n_slices] + "YX" + ("C" if colour else "")


def resolve_axes(axes: Optional[str], shape: Sequence[int]) -> str:
    """Validated upper-case axes for ``shape`` (inferred when ``axes`` is None); InputError if they do not fit."""
    shape = tuple(shape)
    if axes is None:
        return infer_axes(shape)
    ax = str(axes).strip().upper()
    problems = []
    if len(ax) != len(shape):
        problems.append(f"{len(ax)} letters for {len(shape)} dimensions")
    bad = sorted(set(ax) - set(LETTERS))
    if bad:
        problems.append(f"unknown letter(s) {''.join(bad)} (use {LETTERS})")
    dup = sorted({a for a in ax if ax.count(a) > 1})
    if dup:
        problems.append(f"repeated letter(s) {''.join(dup)}")
    if "Y" not in ax or "X" not in ax:
        problems.append("Y and X are required")
    if sum(ax.count(c) for c in CHANNEL_LETTERS) > 1:
        problems.append("at most one channel axis (C or S)")
    if problems:
        raise InputError(f"Axes {axes!r} do not fit data of shape {shape}: " + "; ".join(problems) + ".")
    return ax


@dataclass(frozen=True)
class Layout:
    """How N-D data maps to the engine's N x H x W x C batches (and back)."""

    axes: str
    shape: Tuple[int, ...]
    perm: Tuple[int, ...]  # data.transpose(perm) -> slices..., Y, X[, channel]
    slice_shape: Tuple[int, ...]
    channel_axis: Optional[int]  # index in the original data, or None
    colour: bool  # the channel axis is a colour axis (after Y and X, size 3 or 4)

    @property
    def channels(self) -> int:
        return 1 if self.channel_axis is None else self.shape[self.channel_axis]

    @property
    def height(self) -> int:
        return self.shape[self.axes.index("Y")]

    @property
    def width(self) -> int:
        return self.shape[self.axes.index("X")]

    @property
    def n_slices(self) -> int:
        return int(np.prod(self.slice_shape, dtype=np.int64))


def make_layout(shape: Sequence[int], axes: Optional[str] = None) -> Layout:
    shape = tuple(int(s) for s in shape)
    ax = resolve_axes(axes, shape)
    y, x = ax.index("Y"), ax.index("X")
    chan = next((i for i, a in enumerate(ax) if a in CHANNEL_LETTERS), None)
    slices = tuple(i for i in range(len(ax)) if i not in (y, x, chan))
    perm = slices + (y, x) + (() if chan is None else (chan,))
    colour = chan is not None and chan > max(y, x) and shape[chan] in (3, 4)
    return Layout(ax, shape, perm, tuple(shape[i] for i in slices), chan, colour)


def to_batches(data: np.ndarray, layout: Layout) -> np.ndarray:
    """``data`` (any axes) -> N x H x W x C."""
    arr = np.asarray(data).transpose(layout.perm)
    return arr.reshape(layout.n_slices, layout.height, layout.width, layout.channels)


def from_batches(batches: np.ndarray, layout: Layout, scale: int) -> np.ndarray:
    """N x H*s x W*s x C -> the original axes, with Y and X multiplied by ``scale``."""
    n, h, w, c = batches.shape
    moved = batches.reshape(layout.slice_shape + (h, w) + ((c,) if layout.channel_axis is not None else ()))
    return moved.transpose(np.argsort(layout.perm))


def output_shape(shape: Sequence[int], scale: int, axes: Optional[str] = None) -> Tuple[int, ...]:
    """Shape of the upscaled data: Y and X multiplied by ``scale``, every other axis unchanged."""
    ax = resolve_axes(axes, tuple(shape))
    return tuple(int(s) * int(scale) if a in "YX" else int(s) for a, s in zip(ax, shape))


@dataclass(frozen=True)
class ChannelPlan:
    """How the data's channels meet the model's (see the module docstring)."""

    model_channels: int
    separate: bool  # each data channel through the model on its own (folded into the batch axis)
    replicate: bool  # one channel fed as three equal channels, the three outputs averaged
    alpha: bool  # the last data channel is alpha: bicubic, not through the model
    description: str


def plan_channels(layout: Layout, model_channels: int, mode: str = "auto") -> ChannelPlan:
    if mode not in CHANNEL_MODES:
        raise InputError(f"Unknown channel_mode {mode!r}; use one of {', '.join(CHANNEL_MODES)}.")
    c, m = layout.channels, int(model_channels)
    rgba = layout.colour and c == 4 and mode != "separate"
    fed = c - 1 if rgba else c  # channels that go through the model
    if mode == "joint" or (mode == "auto" and layout.colour and fed == m):
        if fed != m:
            raise InputError(
                f"channel_mode='joint' needs the data's {c} channels to match the model's {m} (data shape "
                f"{layout.shape}, axes {layout.axes})."
            )
        what = "RGB through the model" if m == 3 else f"{m} channels through the model together"
        return ChannelPlan(m, False, False, rgba, what + ("; alpha by bicubic" if rgba else ""))
    if fed == m == 1:
        return ChannelPlan(m, False, False, rgba, "one channel through the model" + ("; alpha by bicubic" if rgba else ""))
    if m not in (1, 3):
        raise InputError(
            f"A {m}-channel model cannot take data with {c} channel(s) (shape {layout.shape}, axes {layout.axes})."
        )
    replicate = m == 3
    what = "each channel through the model on its own" if fed > 1 else "one channel through the model"
    if replicate:
        what += ", replicated to the model's 3 channels and averaged back"
    return ChannelPlan(m, fed > 1, replicate, rgba, what + ("; alpha by bicubic" if rgba else ""))


def fold_channels(x: np.ndarray, plan: ChannelPlan) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """N x H x W x C -> (model input N' x H x W x C', alpha N x H x W x 1 or None)."""
    alpha = x[..., -1:] if plan.alpha else None
    fed = x[..., :-1] if plan.alpha else x
    if plan.separate:
        n, h, w, c = fed.shape
        fed = fed.transpose(0, 3, 1, 2).reshape(n * c, h, w, 1)
    return fed, alpha


def unfold_channels(y: np.ndarray, plan: ChannelPlan, n: int, alpha_up: Optional[np.ndarray]) -> np.ndarray:
    """Inverse of :func:`fold_channels` on the model's output (``alpha_up`` already upscaled)."""
    if plan.separate:
        nc, h, w, _ = y.shape
        y = y.reshape(n, nc // n, h, w).transpose(0, 2, 3, 1)
    if alpha_up is not None:
        y = np.concatenate([y, alpha_up.astype(y.dtype, copy=False)], axis=-1)
    return y


def luminance(x: np.ndarray) -> np.ndarray:
    """BT.601 luma of an (..., 3) array, as (..., 1), in the input's value range (float32)."""
    return (np.asarray(x, np.float32) @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
