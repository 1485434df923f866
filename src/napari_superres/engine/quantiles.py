"""Exact percentiles of arrays too large for memory, equal to ``numpy.percentile`` bit for bit.

Percentile normalisation must see the whole stack once, not block by block, or every block of a lazy stack
would get its own contrast. ``numpy.percentile`` (method "linear") picks two order statistics of the sorted
values and interpolates between them; this module finds those order statistics without sorting or loading:

- 8- and 16-bit integers: one pass, a histogram per channel;
- everything else: a first pass for min, max and NaN/inf, then passes that narrow a value bracket around each
  wanted rank (a 1024-bin count per pass) until the bracket holds few enough values to gather and sort.

The interpolation then repeats numpy's own arithmetic (``_lerp``), so the result matches
``np.percentile(values, q, axis=0)`` exactly; ``tests/core/test_lazy.py`` checks that against numpy.

Blocks come from a dask array; each pass is one ``dask.compute`` of small per-block summaries summed in a
tree, so it runs on whatever scheduler is active (threads, or a ``dask.distributed`` cluster).
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ..errors import InputError

BINS = 1024  # bracket splits per pass
GATHER = 1 << 20  # a bracket with at most this many values is gathered and sorted
MAX_PASSES = 80  # float64 brackets shrink by ~1000x per pass: far more than any data needs
TREE_FAN_IN = 8


def _columns(block: np.ndarray, channel_axis: Optional[int]) -> np.ndarray:
    """A block as (values, channels)."""
    if channel_axis is None:
        return block.reshape(-1, 1)
    return np.moveaxis(block, channel_axis, -1).reshape(-1, block.shape[channel_axis])


def _tree_sum(parts):
    """Delayed sum of delayed parts, TREE_FAN_IN at a time (bounded memory on the scheduler)."""
    import dask

    add = dask.delayed(_add_all, pure=True)
    while len(parts) > 1:
        parts = [add(parts[i : i + TREE_FAN_IN]) for i in range(0, len(parts), TREE_FAN_IN)]
    return parts[0]


def _add_all(parts):
    out = parts[0]
    for p in parts[1:]:
        out = _merge(out, p)
    return out


def _merge(a, b):
    """Combine two per-block summaries (arrays add, tuples/lists merge element by element)."""
    if isinstance(a, tuple):
        return tuple(_merge(x, y) for x, y in zip(a, b))
    if isinstance(a, list):  # gathered values: concatenate
        return [np.concatenate([x, y]) for x, y in zip(a, b)]
    if isinstance(a, dict):  # min / max
        return {"min": np.minimum(a["min"], b["min"]), "max": np.maximum(a["max"], b["max"])}
    return a + b


def _reduce(data, func, *args):
    """``func(block_as_columns, *args)`` over every block of the dask array ``data``, summed."""
    import dask

    blocks = data.to_delayed().ravel()
    parts = [dask.delayed(func, pure=True)(b, *args) for b in blocks]
    return dask.compute(_tree_sum(parts))[0]


# ----------------------------------------------------------------------------------------------- summaries


def _histogram(block, channel_axis, offset, length):
    cols = _columns(np.asarray(block), channel_axis)
    out = np.zeros((cols.shape[1], length), np.int64)
    for c in range(cols.shape[1]):
        out[c] = np.bincount(cols[:, c].astype(np.int64) - offset, minlength=length)
    return out


def _range_and_finite(block, channel_axis):
    cols = _columns(np.asarray(block), channel_axis)
    bad = np.zeros(2, np.int64)
    if np.issubdtype(cols.dtype, np.floating):
        bad[:] = int(np.isnan(cols).sum()), int(np.isinf(cols).sum())
    with np.errstate(invalid="ignore"):
        return {"min": cols.min(axis=0).astype(np.float64), "max": cols.max(axis=0).astype(np.float64)}, bad


def _bracket_counts(block, channel_axis, brackets):
    """For each (channel, lo, hi) bracket: values below lo, and counts in BINS equal parts of [lo, hi)."""
    cols = _columns(np.asarray(block), channel_axis)
    below = np.zeros(len(brackets), np.int64)
    counts = np.zeros((len(brackets), BINS), np.int64)
    span = {"min": np.full(len(brackets), np.inf), "max": np.full(len(brackets), -np.inf)}
    for i, (c, lo, hi) in enumerate(brackets):
        v, lo, hi = cols[:, c], np.float64(lo), np.float64(hi)  # float64 scalars: compare exactly, not in float32
        below[i] = int(np.count_nonzero(v < lo))
        inside = v[(v >= lo) & (v < hi)]
        if inside.size:
            span["min"][i], span["max"][i] = inside.min(), inside.max()
        edges = np.linspace(lo, hi, BINS + 1)
        idx = np.clip(np.searchsorted(edges, inside, side="right") - 1, 0, BINS - 1)
        counts[i] = np.bincount(idx, minlength=BINS)
    return below, counts, span


def _gather(block, channel_axis, brackets):
    cols = _columns(np.asarray(block), channel_axis)
    out = []
    for c, lo, hi in brackets:
        v = cols[:, c]
        out.append(v[(v >= np.float64(lo)) & (v < np.float64(hi))])
    return out


# ----------------------------------------------------------------------------------------------- order stats


def order_statistics(data, ranks: Sequence[int], channel_axis: Optional[int] = None) -> np.ndarray:
    """Values at 0-based ``ranks`` of each channel's sorted values: array (len(ranks), channels) of data's dtype.

    ``data`` is a dask array (NumPy arrays are wrapped). Raises InputError for NaN or inf values.
    """
    import dask.array as da

    if not isinstance(data, da.Array):
        data = da.from_array(np.asarray(data), chunks=-1)
    if channel_axis is not None:
        data = data.rechunk({channel_axis: -1})  # per-block summaries hold every channel
    dtype = np.dtype(data.dtype)
    channels = 1 if channel_axis is None else int(data.shape[channel_axis])
    ranks = [int(r) for r in ranks]
    if np.issubdtype(dtype, np.integer) and dtype.itemsize <= 2:
        info = np.iinfo(dtype)
        hist = _reduce(data, _histogram, channel_axis, int(info.min), int(info.max) - int(info.min) + 1)
        cum = np.cumsum(hist, axis=1)
        out = np.empty((len(ranks), channels), dtype)
        for c in range(channels):
            out[:, c] = np.searchsorted(cum[c], ranks, side="right") + int(info.min)
        return out
    return _select(data, ranks, channel_axis, channels, dtype)


def _select(data, ranks, channel_axis, channels, dtype):
    """Order statistics by narrowing value brackets (any dtype)."""
    span, bad = _reduce(data, _range_and_finite, channel_axis)
    if bad.any():
        raise InputError(
            f"The image contains {int(bad[0])} NaN and {int(bad[1])} inf values (of {data.size}); "
            "replace them (e.g. numpy.nan_to_num) before upscaling."
        )
    # One bracket [lo, hi) per (rank, channel), with the number of values below lo. Brackets are float64:
    # exact for every value of 8/16/32-bit data and float32/float64 (64-bit integers beyond 2**53 are not).
    todo = {}
    for r in ranks:
        for c in range(channels):
            hi = np.nextafter(span["max"][c], np.inf)
            todo[(r, c)] = [float(span["min"][c]), float(hi), 0]
    result = {}
    for _ in range(MAX_PASSES):
        if not todo:
            break
        keys = list(todo)
        brackets = [(c, todo[k][0], todo[k][1]) for k in keys for c in [k[1]]]
        below, counts, inner = _reduce(data, _bracket_counts, channel_axis, brackets)
        gather = []
        for i, k in enumerate(keys):
            lo, hi, _ = todo[k]
            todo[k][2] = int(below[i])
            n_in = int(counts[i].sum())
            if n_in <= GATHER:
                gather.append(k)
                continue
            if inner["min"][i] == inner["max"][i]:  # many copies of one value: that is the answer
                result[k] = inner["min"][i]
                del todo[k]
                continue
            edges = np.linspace(lo, hi, BINS + 1)
            cum = np.cumsum(counts[i])
            j = int(np.searchsorted(cum, k[0] - below[i], side="right"))
            new_lo, new_hi = float(edges[j]), float(edges[j + 1]) if j + 1 < BINS else hi
            if (new_lo, new_hi) == (lo, hi):  # cannot split further: every value in it is the same
                result[k] = lo
                del todo[k]
            else:
                todo[k][:2] = [new_lo, new_hi]
        if gather:
            brackets = [(k[1], todo[k][0], todo[k][1]) for k in gather]
            values = _reduce(data, _gather, channel_axis, brackets)
            for k, v in zip(gather, values):
                result[k] = np.sort(v)[k[0] - todo[k][2]]
                del todo[k]
    if todo:  # not reached for finite data; kept so a pathological case fails loudly, not silently
        raise RuntimeError("percentile search did not converge")
    out = np.empty((len(ranks), channels), dtype)
    for (r, c), v in result.items():
        out[ranks.index(r), c] = v
    return out


# ----------------------------------------------------------------------------------------------- percentiles


def _ranks(n: int, q: np.ndarray):
    """numpy's 'linear' method: the two neighbouring ranks and the weight of each percentile."""
    virtual = (n - 1) * q
    prev = np.floor(virtual)
    nxt = prev + 1
    above = virtual >= n - 1
    prev[above] = -1
    nxt[above] = -1
    below = virtual < 0
    prev[below] = 0
    nxt[below] = 0
    gamma = np.asanyarray(virtual - prev, dtype=virtual.dtype)
    prev, nxt = prev.astype(np.intp), nxt.astype(np.intp)
    return np.where(prev < 0, n + prev, prev), np.where(nxt < 0, n + nxt, nxt), gamma


def _lerp(a, b, t):
    """numpy's ``_lerp`` (the same operations in the same order, so the same rounding)."""
    diff_b_a = b - a
    out = np.add(a, diff_b_a * t)
    np.subtract(b, diff_b_a * (1 - t), out=out, where=t >= 0.5, casting="unsafe", dtype=type(out.dtype))
    return out


def percentiles(data, q: Sequence[float], channel_axis: Optional[int] = None) -> np.ndarray:
    """``np.percentile(values, q, axis=0)`` per channel (values: the data as (-1, channels)), computed
    block by block. Returns float64 (len(q), channels)."""
    qa = np.true_divide(np.asanyarray(q, dtype=np.float64), 100)
    channels = 1 if channel_axis is None else int(data.shape[channel_axis])
    n = int(np.prod(data.shape, dtype=np.int64)) // channels
    prev, nxt, gamma = _ranks(n, qa)
    wanted = sorted(set(prev.tolist()) | set(nxt.tolist()))
    stats = order_statistics(data, wanted, channel_axis)
    a = stats[[wanted.index(i) for i in prev]]
    b = stats[[wanted.index(i) for i in nxt]]
    return np.asarray(_lerp(a, b, gamma.reshape(-1, 1)), np.float64)
