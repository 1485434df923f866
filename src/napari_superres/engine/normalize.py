"""Values in and out of the model: validation, normalisation to float and back to the input's dtype.

Modes (a model states its own in its description; the user may override):

- ``{"mode": "range"}`` (photographs): integers are divided by their dtype's maximum (uint8 by 255, uint16 by
  65535, int16 by 32767); floats are taken as they are (expected in [0, 1]).
- ``{"mode": "percentile", "low": 2.0, "high": 99.8}`` (microscopy, CARE): per channel, over the whole stack,
  ``(x - p_low) / (p_high - p_low)``; the inverse maps back exactly.

Back to the input dtype: integers are rounded and clipped to the dtype's range (never wrapped), floats stay
the same float dtype and are not clipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..errors import InputError

DEFAULT_PERCENTILES = (2.0, 99.8)


def check_array(data) -> None:
    """Raise InputError for arrays the engine refuses: empty, bool, complex, non-numeric, NaN or inf."""
    shape, dtype = tuple(data.shape), np.dtype(data.dtype)
    if 0 in shape or len(shape) == 0:
        raise InputError(f"The image is empty (shape {shape}); nothing to upscale.")
    if dtype == np.bool_:
        raise InputError("Unsupported dtype bool: convert the mask or labels to uint8 before upscaling.")
    if np.issubdtype(dtype, np.complexfloating):
        raise InputError(f"Unsupported dtype {dtype}: take the magnitude or the real part before upscaling.")
    if not (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)):
        raise InputError(f"Unsupported dtype {dtype}: use an integer or float image.")
    if np.issubdtype(dtype, np.floating) and isinstance(data, np.ndarray):
        check_finite(data)


def check_finite(data: np.ndarray) -> None:
    """InputError stating how many NaN and inf values a float array holds (if any)."""
    if np.isfinite(data).all():
        return
    n_nan = int(np.isnan(data).sum())
    n_inf = int(np.isinf(data).sum())
    raise InputError(
        f"The image contains {n_nan} NaN and {n_inf} inf values (of {data.size}); "
        "replace them (e.g. numpy.nan_to_num) before upscaling."
    )


def parse_spec(spec) -> dict:
    """A normalisation spec as a dict: accepts None (range), a mode name or a dict."""
    if spec is None:
        return {"mode": "range"}
    if isinstance(spec, str):
        spec = {"mode": spec}
    spec = dict(spec)
    mode = spec.get("mode")
    if mode == "range":
        return {"mode": "range"}
    if mode == "percentile":
        low = float(spec.get("low", DEFAULT_PERCENTILES[0]))
        high = float(spec.get("high", DEFAULT_PERCENTILES[1]))
        if not 0.0 <= low < high <= 100.0:
            raise InputError(f"Percentile normalisation needs 0 <= low < high <= 100, got low={low}, high={high}.")
        return {"mode": "percentile", "low": low, "high": high}
    raise InputError(f"Unknown normalisation {spec!r}; use 'range' or 'percentile'.")


@dataclass(frozen=True)
class Normalizer:
    """A fitted normalisation: ``forward`` to float32 model values, ``inverse`` back to ``dtype``.

    ``offset`` and ``factor`` hold one value per channel (the last axis of the arrays they apply to) or a
    single value: ``model = (x - offset) / factor``. Plain numbers, so a fitted Normalizer can be shared by
    all the blocks of a lazy stack.
    """

    mode: str
    dtype: np.dtype
    offset: tuple
    factor: tuple

    def forward(self, data: np.ndarray) -> np.ndarray:
        x = np.asarray(data)
        if self.mode == "range" and np.issubdtype(x.dtype, np.floating):
            return x.astype(np.float32, copy=False)
        if self.mode == "range" and x.dtype.itemsize <= 2:
            # 8/16-bit integers and their maximum are exact in float32, and a float32 quotient equals the
            # float64 one rounded to float32 (53 >= 2 * 24 + 2 bits): one pass, no float64 temporary.
            return np.divide(x, np.float32(self.factor[0]), dtype=np.float32)
        offset = np.asarray(self.offset, np.float64)
        factor = np.asarray(self.factor, np.float64)
        if self.mode == "range":  # integers / dtype max: float64 keeps uint32/int64 exact enough
            return (x / factor[0]).astype(np.float32)
        return ((x - offset) / factor).astype(np.float32)

    def inverse(self, values: np.ndarray, dtype=None, *, overwrite: bool = False) -> np.ndarray:
        """``values`` back to ``dtype``; ``overwrite``: ``values`` may serve as the working buffer (the
        engine's own prediction, read once: it saves a pass over the largest array of a run)."""
        dtype = np.dtype(self.dtype if dtype is None else dtype)
        y = np.asarray(values)
        if self.mode == "range" and np.issubdtype(dtype, np.floating):
            return y.astype(dtype, copy=False)
        # float32 is exact enough for 8/16-bit integers and float32 output; wider types need float64.
        work = np.float32 if dtype.itemsize <= 2 or dtype == np.float32 else np.float64
        if overwrite and y.dtype == work:
            y *= np.asarray(self.factor, work)
        else:  # the working copy is the product itself: one pass, then in place (outputs can be large)
            y = np.multiply(y, np.asarray(self.factor, work), dtype=work)
        if any(self.offset):
            y += np.asarray(self.offset, work)
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            np.rint(y, out=y)
            np.clip(y, info.min, info.max, out=y)
        return y.astype(dtype, copy=False)


def fit_normalizer(data, spec=None, channel_axis: Optional[int] = None) -> Normalizer:
    """Fit ``spec`` (see :func:`parse_spec`) on ``data``; percentiles per channel over the whole stack.

    ``channel_axis`` is the axis holding channels (None: one channel). The returned Normalizer applies to
    arrays whose *last* axis is that channel axis (the engine's N x H x W x C layout).
    """
    if isinstance(spec, Normalizer):
        return spec
    spec = parse_spec(spec)
    dtype = np.dtype(data.dtype)
    if spec["mode"] == "range":
        if np.issubdtype(dtype, np.integer):
            return Normalizer("range", dtype, (0.0,), (float(np.iinfo(dtype).max),))
        return Normalizer("range", dtype, (0.0,), (1.0,))
    x = np.asarray(data)
    if channel_axis is None:
        x = x.reshape(-1, 1)
    else:
        x = np.moveaxis(x, channel_axis, -1).reshape(-1, x.shape[channel_axis])
    lo, hi = np.percentile(x, [spec["low"], spec["high"]], axis=0)
    lo, hi = lo.astype(np.float64), hi.astype(np.float64)
    factor = np.where(hi > lo, hi - lo, 1.0)  # a flat channel keeps its values (no division by ~0)
    return Normalizer("percentile", dtype, tuple(lo.tolist()), tuple(factor.tolist()))

