"""World coordinates of an upscaled layer, so that it overlays its input exactly in napari.

Pixel ``i`` of an axis with ``scale`` s and ``translate`` t is centred at ``t + i*s`` and covers
``[t + (i - 1/2) s, t + (i + 1/2) s]``. Upscaling by f turns it into f pixels of size ``s/f`` covering the same
interval, so ``scale' = s / f`` and ``translate' = t - s (1 - 1/f) / 2`` (the first new pixel's centre sits
``s/(2f)`` inside the old pixel's left edge).
"""

from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np


def upscaled_scale_translate(scale, translate, factors) -> Tuple[Tuple[float, ...], Tuple[float, ...]]:
    """``(scale', translate')`` for upscaling by ``factors`` (one per axis; 1 leaves an axis unchanged)."""
    s = np.asarray(scale, dtype=float)
    t = np.asarray(translate, dtype=float)
    f = np.asarray(factors, dtype=float)
    if not (s.shape == t.shape == f.shape) or s.ndim != 1:
        raise ValueError(f"scale, translate and factors need one value per axis, got {s.shape}, {t.shape}, {f.shape}")
    if np.any(f <= 0):
        raise ValueError(f"factors must be > 0, got {tuple(f)}")
    return tuple((s / f).tolist()), tuple((t - s * (1.0 - 1.0 / f) / 2.0).tolist())


def extent(scale: Sequence[float], translate: Sequence[float], shape: Sequence[int]):
    """World extent (low edge, high edge) of each axis of a layer: what must not change when upscaling."""
    s, t, n = (np.asarray(v, dtype=float) for v in (scale, translate, shape))
    return tuple((t - s / 2).tolist()), tuple((t + (n - 0.5) * s).tolist())
