"""Tiled, batched inference: any image size, memory bounded by the tile, no seams.

Every tile is read as a *window*: its core (the pixels it writes) plus ``overlap`` low-resolution pixels of
context on each side. All windows of a run have the same shape, so they batch together (across tiles and across
slices) and a traced model compiles once. Only the core of each prediction is written. When the overlap covers
the model's receptive-field radius, the result equals whole-image inference up to float rounding.

The function is pure: no state lives between calls, so concurrent runs cannot mix their tiles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import Cancelled, ModelError

Predict = Callable[[np.ndarray], np.ndarray]
FALLBACK_TILE = 256  # core side when windows of one call would be mostly context (a very wide overlap)
STRIP_BYTES = 1 << 20  # a prediction is mapped to its output in strips of about this size (they stay in cache)
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


def _split_axis(n_blocks: int, core: int, ov: int) -> Tuple[int, int]:
    """(window size, window count), in blocks, of an axis of ``n_blocks`` cut into balanced cores of at most
    ``core`` blocks with ``ov`` blocks of context on each side."""
    if n_blocks <= core + 2 * ov:
        return n_blocks, 1
    n = int(math.ceil((n_blocks - 2 * ov) / core))
    return int(math.ceil((n_blocks - 2 * ov) / n)) + 2 * ov, n


def cheapest_tile(height: int, width: int, window_pixels: int, overlap: int, multiple: int = 1) -> Tuple[int, int]:
    """The core tile (rows, columns) for an image of ``height`` x ``width`` whose windows each hold at most
    ``window_pixels`` pixels (context included) and together the fewest: the context around every core is
    computed twice, so a few large windows cost less than many small ones. The whole image when it fits.
    Cores of FALLBACK_TILE are taken instead (windows over the limit) when they compute fewer pixels: with an
    overlap so wide that windows of one call would be mostly context."""
    m = max(1, int(multiple))
    hb, wb = padded_length(height, m) // m, padded_length(width, m) // m
    ov, budget = int(math.ceil(overlap / m)), max(1, int(window_pixels) // (m * m))
    fallback = max(1, FALLBACK_TILE // m)
    (fh, fy), (fw, fx) = _split_axis(hb, fallback, ov), _split_axis(wb, fallback, ov)
    best = (fy * fh * fx * fw, fy * fx, fallback, fallback)  # (pixels computed, windows, core rows, core columns)
    # Windows taller than this leave no room for a core in width; when even the shortest are, nothing fits.
    tallest = budget // (2 * ov + 1)
    rows_to_try = range(1, hb + 1) if tallest > 2 * ov else ()
    for rows_wanted in rows_to_try:
        core_h = hb if rows_wanted == 1 else int(math.ceil(max(1, hb - 2 * ov) / rows_wanted))
        wh, rows = _split_axis(hb, core_h, ov)
        widest = budget // wh
        if wb <= widest:
            ww, cols, core_w = wb, 1, wb
        elif widest > 2 * ov:
            core_w = widest - 2 * ov
            ww, cols = _split_axis(wb, core_w, ov)
        else:
            continue  # windows this tall cannot be narrow enough: cut the rows finer
        candidate = (rows * wh * cols * ww, rows * cols, core_h, core_w)
        best = min(best, candidate, key=lambda c: c[:2])
        # One column of windows: more rows only add context. Far flatter windows than square never win.
        if cols == 1 or 4 * wh * wh < budget:
            break
    return best[2] * m, best[3] * m


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
        w, n = _split_axis(n_blocks, max(1, int(tile) // m), ov)
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


@dataclass(frozen=True)
class TilePlan:
    """The windows of a whole H x W image (padded to ``padded``), each read as ``window`` pixels: ``rows`` and
    ``cols`` hold ``(start, core begin, core end)`` per window row/column in padded pixels (``plan_axis``).
    A plain value (picklable), so the blocks of a Dask or out-of-core run carry the whole image's plan and
    cut exactly the windows an in-memory run cuts."""

    size: Tuple[int, int]
    padded: Tuple[int, int]
    window: Tuple[int, int]
    rows: Tuple[Tuple[int, int, int], ...]
    cols: Tuple[Tuple[int, int, int], ...]
    scale: int
    batch_size: int

    @property
    def used_rows(self):
        """Window rows whose core starts inside the image (the others lie in the padding: skipped)."""
        return [r for r in self.rows if r[1] < self.size[0]]

    @property
    def used_cols(self):
        return [c for c in self.cols if c[1] < self.size[1]]

    def rows_in(self, y0: int, y1: int):
        """Window rows whose cores meet image rows [y0, y1)."""
        return [r for r in self.rows if r[1] < min(y1, self.size[0]) and min(r[2], self.size[0]) > y0]

    def cols_in(self, x0: int, x1: int):
        return [c for c in self.cols if c[1] < min(x1, self.size[1]) and min(c[2], self.size[1]) > x0]

    def source_span(self, y0: int, y1: int, x0: int, x1: int) -> Tuple[int, int, int, int]:
        """Input rows [ya, yb) and columns [xa, xb) that the windows of core region [y0, y1) x [x0, x1) read."""
        iy, ix = reflect_index(self.size[0], self.padded[0]), reflect_index(self.size[1], self.padded[1])
        wh, ww = self.window
        rs = [iy[r[0] : r[0] + wh] for r in self.rows_in(y0, y1)]
        cs = [ix[c[0] : c[0] + ww] for c in self.cols_in(x0, x1)]
        return (
            int(min(r.min() for r in rs)),
            int(max(r.max() for r in rs)) + 1,
            int(min(c.min() for c in cs)),
            int(max(c.max() for c in cs)) + 1,
        )


def plan_tiles(
    height: int,
    width: int,
    *,
    scale: int,
    tile: Size2,
    overlap: Size2,
    multiple: int = 1,
    batch_size: int,
    window: Optional[Size2] = None,
) -> TilePlan:
    """The :class:`TilePlan` of an image of ``height`` x ``width``.

    - ``tile``: largest core (useful) tile in low-resolution pixels, int or (h, w). A tile at least as large
      as the image gives whole-image inference.
    - ``overlap``: context pixels read on each side of a core (clamped at the image border: border windows
      shift inward so all windows have one shape).
    - ``multiple``: H and W are reflect-padded (at the bottom/right) to a multiple of it, window starts and
      sizes are multiples of it, and the output is cropped back. Images smaller than one window are padded
      the same way, so a 1x1 image works.
    - ``window``: exact window size (h, w) for models with a fixed input size.
    - ``batch_size``: windows per ``predict`` call, drawn across tiles and slices.
    """
    multiple = max(1, int(multiple))
    th, tw = _pair(tile, "tile")
    oh, ow = _pair(overlap, "overlap")
    fixed = None if window is None else _pair(window, "window")
    hp = padded_length(height, multiple, fixed[0] if fixed else 1)
    wp = padded_length(width, multiple, fixed[1] if fixed else 1)
    wh, rows = plan_axis(hp, th, oh, multiple, fixed[0] if fixed else None)
    ww, cols = plan_axis(wp, tw, ow, multiple, fixed[1] if fixed else None)
    return TilePlan(
        (int(height), int(width)), (hp, wp), (wh, ww), tuple(rows), tuple(cols), int(scale), max(1, int(batch_size))
    )


def _window(image, iy, ix, y0, x0, h, w):
    """Rows iy[y0:y0+h] and columns ix[x0:x0+w] of ``image``: a slice where they are consecutive (a view)."""
    rows, cols = iy[y0 : y0 + h], ix[x0 : x0 + w]
    rs = slice(rows[0], rows[0] + h) if rows[-1] - rows[0] == h - 1 else rows
    cs = slice(cols[0], cols[0] + w) if cols[-1] - cols[0] == w - 1 else cols
    if isinstance(rs, slice):
        return image[rs, cs]
    return image[rs][:, cs]


def run_tiles(
    predict: Predict,
    images: np.ndarray,
    plan: TilePlan,
    *,
    core: Optional[Tuple[int, int, int, int]] = None,
    origin: Tuple[int, int] = (0, 0),
    image_ids: Optional[np.ndarray] = None,
    n_images: Optional[int] = None,
    progress: Optional[Callable[[int, int], None]] = None,
    cancel: Optional[Callable[[], bool]] = None,
    finish: Optional[Callable[[np.ndarray], np.ndarray]] = None,
) -> np.ndarray:
    """The one tiled predictor: run ``predict`` over the windows of ``plan`` whose cores meet ``core`` and
    place their cores; returns N x (y1-y0)*s x (x1-x0)*s x C_out float32, or of the dtype ``finish`` returns.

    ``finish`` (element-wise, any dtype out) maps each core, strip by strip, before it is placed: the
    caller's last step done while the values are in cache, and the output allocated in its final dtype (a
    quarter of the float32 buffer for 8-bit data).

    ``images`` (N x h x w x C float32) is the whole image (the defaults) or a region of it: its first pixel
    is image pixel ``origin``, it holds every pixel the windows of ``core`` read (``plan.source_span``), and
    its N images are images ``image_ids`` of the ``n_images`` of the whole run. Windows are batched as the
    whole run batches them: ``plan.batch_size`` in order, the run's last batch smaller; a region pads its
    batches to those sizes, since some kernels round differently for other batch sizes. So a region's
    result equals the same pixels of the whole run's. A window's result never depends on its batch-mates.

    ``progress(done, total)`` after each batch (in windows); ``cancel()`` before each (raises Cancelled).
    """
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"images must be N x H x W x C, got shape {images.shape}")
    if images.dtype != np.float32:
        images = images.astype(np.float32)
    H, W = plan.size
    y0, y1, x0, x1 = (0, H, 0, W) if core is None else core
    ids = np.arange(images.shape[0]) if image_ids is None else np.asarray(image_ids)
    n_total = images.shape[0] if n_images is None else int(n_images)
    s, (wh, ww), batch_size = plan.scale, plan.window, plan.batch_size
    iy = reflect_index(H, plan.padded[0]) - origin[0]
    ix = reflect_index(W, plan.padded[1]) - origin[1]
    all_rows, all_cols = plan.used_rows, plan.used_cols
    row_k = {r: k for k, r in enumerate(all_rows)}
    col_k = {c: k for k, c in enumerate(all_cols)}
    rows, cols = plan.rows_in(y0, y1), plan.cols_in(x0, x1)

    # Each window's place k in the whole run's order gives the size of the batch it runs in there.
    total = n_total * len(all_rows) * len(all_cols)
    last_start = ((total - 1) // batch_size) * batch_size
    groups: dict = {}
    for n in range(images.shape[0]):
        for r in rows:
            for c in cols:
                k = (int(ids[n]) * len(all_rows) + row_k[r]) * len(all_cols) + col_k[c]
                size = total - last_start if k >= last_start else batch_size
                groups.setdefault(size, []).append((n, r, c))
    count = sum(len(jobs) for jobs in groups.values())
    out = None
    done = 0
    for size, jobs in groups.items():
        for b0 in range(0, len(jobs), size):
            if cancel is not None and cancel():
                raise Cancelled("Cancelled by the user.")
            part = jobs[b0 : b0 + size]
            batch = [_window(images[n], iy, ix, r[0], c[0], wh, ww) for n, r, c in part]
            batch += [batch[-1]] * (size - len(part))  # padding, discarded
            batch = np.stack(batch)
            pred = np.asarray(predict(batch))
            expected = (len(batch), wh * s, ww * s)
            if pred.ndim != 4 or pred.shape[:3] != expected:
                raise ModelError(
                    f"The model returned shape {pred.shape} for input {batch.shape}; expected {expected + ('C',)} "
                    f"for scale {s}."
                )
            for k, (n, (ry, cy0, cy1), (rx, cx0, cx1)) in enumerate(part):
                cy0, cy1 = max(cy0, y0), min(cy1, y1, H)  # the part of the core in the region, padding cropped
                cx0, cx1 = max(cx0, x0), min(cx1, x1, W)
                values = pred[k, (cy0 - ry) * s : (cy1 - ry) * s, (cx0 - rx) * s : (cx1 - rx) * s]
                rows = max(1, STRIP_BYTES // max(1, values[0].nbytes))
                for r in range(0, values.shape[0], rows):  # strip by strip, each mapped while in cache
                    strip = values[r : r + rows] if finish is None else finish(values[r : r + rows])
                    if out is None:
                        out = np.empty((images.shape[0], (y1 - y0) * s, (x1 - x0) * s, pred.shape[3]), strip.dtype)
                    top = (cy0 - y0) * s + r
                    out[n, top : top + strip.shape[0], (cx0 - x0) * s : (cx1 - x0) * s] = strip
            done += len(part)
            if progress is not None:
                progress(done, count)
    if out is None:  # N == 0 cannot reach here through the API; keep the shape contract anyway
        out = np.empty((images.shape[0], (y1 - y0) * s, (x1 - x0) * s, images.shape[3]), np.float32)
    return out


def predict_tiled(
    predict: Predict,
    images: np.ndarray,
    *,
    progress: Optional[Callable[[int, int], None]] = None,
    cancel: Optional[Callable[[], bool]] = None,
    **tiling,
) -> np.ndarray:
    """Run ``predict`` over ``images`` (float32, N x H x W x C) tile by tile; return N x H*s x W*s x C_out.

    ``tiling``: what :func:`plan_tiles` takes (``scale``, ``tile``, ``overlap``, ``multiple``, ``batch_size``,
    ``window``). ``progress(done, total)`` is called after each batch (counted in windows); ``cancel()`` is
    checked before each batch and raises :class:`~napari_superres.errors.Cancelled` when it returns True.

    Memory: one batch of windows and its prediction, plus the output array.
    """
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"images must be N x H x W x C, got shape {images.shape}")
    plan = plan_tiles(images.shape[1], images.shape[2], **tiling)
    return run_tiles(predict, images, plan, progress=progress, cancel=cancel)
