"""Tiled, batched inference: any image size, memory bounded by the tile, no seams.

Every tile is read as a *window*: its core (the pixels it writes) plus ``overlap`` low-resolution pixels of
context on each side. All windows of a run have the same shape, so they batch together (across tiles and across
slices) and a traced model compiles once. Only the core of each prediction is written. When the overlap covers
the model's receptive-field radius, the result equals whole-image inference up to float rounding.

The function is pure: no state lives between calls, so concurrent runs cannot mix their tiles.
"""

from __future__ import annotations

import math
from typing import Callable, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import Cancelled, ModelError

Predict = Callable[[np.ndarray], np.ndarray]
Size2 = Union[int, Sequence[int]]


def _pair(value: Size2, name: str) -> Tuple[int, int]:
    if np.isscalar(value):
        value = (value, value)
    h, w = (int(v) for v in value)
    if h < 0 or w < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return h, w


def padded_length(length: int, multiple: int = 1, minimum: int = 1) -> int:
    """Smallest length >= ``length`` and >= ``minimum`` that is a multiple of ``multiple``."""
    target = max(length, minimum, 1)
    return int(math.ceil(target / multiple) * multiple)


def plan_axis(length: int, tile: int, overlap: int, multiple: int = 1, window: Optional[int] = None):
    """Windows along one axis of (already padded) ``length``.

    Returns ``(window_size, [(start, core_begin, core_end), ...])`` in pixels. Every window has
    ``window_size`` pixels starting at ``start``; its core ``[core_begin, core_end)`` keeps at least
    ``overlap`` pixels of context from the window's edges, except at the image border. Cores tile
    ``[0, length)`` without gaps. Sizes and starts are multiples of ``multiple``.

    ``tile`` is the largest core wanted; cores are balanced (1000 px in tiles of 128 gives 8 windows of
    123 + 2*overlap, not 7 full ones and a sliver). ``window`` forces the window size (models with a fixed
    input size); ``length`` must then be >= ``window``.
    """
    m = int(multiple)
    if length % m:
        raise ValueError(f"length {length} is not a multiple of {m}")
    # Work in blocks of `multiple` pixels so every start and size is aligned.
    n_blocks = length // m
    ov = int(math.ceil(overlap / m))
    if window is not None:
        w = int(window) // m
        if w * m != window or w > n_blocks:
            raise ValueError(f"window {window} must be a multiple of {m} and <= length {length}")
        ov = min(ov, (w - 1) // 2)  # keep a core of at least one block
        n = 1 if w == n_blocks else int(math.ceil((n_blocks - 2 * ov) / (w - 2 * ov)))
    else:
        core = max(1, int(tile) // m)
        if n_blocks <= core + 2 * ov:
            w, n = n_blocks, 1
        else:
            n = int(math.ceil((n_blocks - 2 * ov) / core))
            w = int(math.ceil((n_blocks - 2 * ov) / n)) + 2 * ov
    if n == 1:
        return length, [(0, 0, length)]  # one window covers the axis
    starts = [(i * (n_blocks - w)) // (n - 1) for i in range(n)]
    # Each boundary sits in the middle of the overlap of two neighbouring windows; the overlap is at
    # least 2*ov blocks wide (n was chosen so), so both sides keep `ov` blocks of context.
    bounds = [0] + [(starts[i - 1] + w + starts[i]) // 2 for i in range(1, n)] + [n_blocks]
    plan = [(starts[i] * m, bounds[i] * m, bounds[i + 1] * m) for i in range(n)]
    return w * m, plan


def reflect_index(length: int, padded: int) -> np.ndarray:
    """Source index of each padded position: reflect padding at the end (works for length 1 too)."""
    return np.pad(np.arange(length), (0, padded - length), mode="reflect")


def _read(image: np.ndarray, iy: np.ndarray, ix: np.ndarray, y0: int, x0: int, h: int, w: int) -> np.ndarray:
    """Window ``[y0:y0+h, x0:x0+w]`` of the reflect-padded image without padding the whole image."""
    H, W = image.shape[:2]
    rows = slice(y0, y0 + h) if y0 + h <= H else iy[y0 : y0 + h]
    cols = slice(x0, x0 + w) if x0 + w <= W else ix[x0 : x0 + w]
    if isinstance(rows, slice):
        return image[rows, cols]
    return image[rows][:, cols]


def predict_tiled(
    predict: Predict,
    images: np.ndarray,
    *,
    scale: int,
    tile: Size2,
    overlap: Size2,
    multiple: int = 1,
    batch_size: int,
    window: Optional[Size2] = None,
    progress: Optional[Callable[[int, int], None]] = None,
    cancel: Optional[Callable[[], bool]] = None,
) -> np.ndarray:
    """Run ``predict`` over ``images`` (float32, N x H x W x C) tile by tile; return N x H*s x W*s x C_out.

    - ``tile``: largest core (useful) tile in low-resolution pixels, int or (h, w). A tile at least as large
      as the image gives whole-image inference.
    - ``overlap``: context pixels read on each side of a core (clamped at the image border: border windows
      shift inward so all windows have one shape).
    - ``multiple``: H and W are reflect-padded (at the bottom/right) to a multiple of it, window starts and
      sizes are multiples of it, and the output is cropped back. Images smaller than one window are padded
      the same way, so a 1x1 image works.
    - ``window``: exact window size (h, w) for models with a fixed input size.
    - ``batch_size``: windows per ``predict`` call, drawn across tiles and slices.
    - ``progress(done, total)`` is called after each batch (counted in windows); ``cancel()`` is checked
      before each batch and raises :class:`~napari_superres.errors.Cancelled` when it returns True.

    Memory: one batch of windows and its prediction, plus the output array.
    """
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"images must be N x H x W x C, got shape {images.shape}")
    if images.dtype != np.float32:
        images = images.astype(np.float32)
    scale = int(scale)
    multiple = max(1, int(multiple))
    batch_size = max(1, int(batch_size))
    N, H, W, _ = images.shape
    th, tw = _pair(tile, "tile")
    oh, ow = _pair(overlap, "overlap")
    fixed = None if window is None else _pair(window, "window")

    Hp = padded_length(H, multiple, fixed[0] if fixed else 1)
    Wp = padded_length(W, multiple, fixed[1] if fixed else 1)
    wh, rows = plan_axis(Hp, th, oh, multiple, fixed[0] if fixed else None)
    ww, cols = plan_axis(Wp, tw, ow, multiple, fixed[1] if fixed else None)
    iy, ix = reflect_index(H, Hp), reflect_index(W, Wp)

    # Windows whose core lies entirely in the padding write nothing: skip them.
    jobs = [
        (n, r, c)
        for n in range(N)
        for r in rows
        if r[1] < H
        for c in cols
        if c[1] < W
    ]
    total = len(jobs)
    out = None
    done = 0
    for b0 in range(0, total, batch_size):
        if cancel is not None and cancel():
            raise Cancelled("Cancelled by the user.")
        batch_jobs = jobs[b0 : b0 + batch_size]
        batch = np.stack([_read(images[n], iy, ix, r[0], c[0], wh, ww) for n, r, c in batch_jobs])
        pred = np.asarray(predict(batch))
        expected = (len(batch_jobs), wh * scale, ww * scale)
        if pred.ndim != 4 or pred.shape[:3] != expected:
            raise ModelError(
                f"The model returned shape {pred.shape} for input {batch.shape}; expected {expected + ('C',)} "
                f"for scale {scale}."
            )
        if out is None:
            out = np.empty((N, H * scale, W * scale, pred.shape[3]), np.float32)
        for k, (n, (ry, cy0, cy1), (rx, cx0, cx1)) in enumerate(batch_jobs):
            cy1, cx1 = min(cy1, H), min(cx1, W)  # crop the padding
            out[n, cy0 * scale : cy1 * scale, cx0 * scale : cx1 * scale] = pred[
                k,
                (cy0 - ry) * scale : (cy1 - ry) * scale,
                (cx0 - rx) * scale : (cx1 - rx) * scale,
            ]
        done += len(batch_jobs)
        if progress is not None:
            progress(done, total)
    if out is None:  # N == 0 cannot reach here through the API; keep the shape contract anyway
        out = np.empty((N, H * scale, W * scale, images.shape[3]), np.float32)
    return out
