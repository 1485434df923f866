"""A learned linear upscaler: the least-squares baseline that tells how much a dataset leaves to learn.

For each of the ``scale x scale`` output phases, one linear filter over a ``taps x taps`` LR neighbourhood (plus
a constant), fitted by least squares on (HR, LR) pairs. Bicubic interpolation is one such filter, so on the
pairs it was fitted on the result is never worse than bicubic (up to the image border); fitted on the
validation images themselves, it is the best any linear method can do there. A CNN that gains little more
than this baseline is limited by the data (noise, band limit), not by its training.

NumPy only: no Keras import.
"""

from __future__ import annotations

import numpy as np

DEFAULT_TAPS = 8


def _neighbourhoods(lr: np.ndarray, taps: int) -> np.ndarray:
    """``(H*W, taps*taps + 1)``: each LR pixel's neighbourhood (reflect-padded) and a constant 1."""
    lr = np.asarray(lr, dtype=np.float64)
    h, w = lr.shape
    r = taps // 2
    padded = np.pad(lr, ((r, taps - 1 - r), (r, taps - 1 - r)), mode="reflect")
    columns = [padded[dy : dy + h, dx : dx + w].ravel() for dy in range(taps) for dx in range(taps)]
    return np.stack(columns + [np.ones(h * w)], axis=1)


def _phases(hr: np.ndarray, scale: int) -> np.ndarray:
    """``(H*W, scale*scale)``: the HR pixels of each LR pixel, one column per output phase."""
    hr = np.asarray(hr, dtype=np.float64)
    return np.stack([hr[i::scale, j::scale].ravel() for i in range(scale) for j in range(scale)], axis=1)


def fit_linear_upscaler(pairs, scale: int, taps: int = DEFAULT_TAPS) -> np.ndarray:
    """Least-squares filters ``(taps*taps + 1, scale*scale)`` from ``[(hr, lr)]`` 2D pairs (HR ``scale`` times
    LR in each dimension)."""
    pairs = list(pairs)
    if not pairs:
        raise ValueError("no (hr, lr) pairs to fit")
    for hr, lr in pairs:
        if np.ndim(lr) != 2 or np.shape(hr) != (np.shape(lr)[0] * scale, np.shape(lr)[1] * scale):
            raise ValueError(f"HR {np.shape(hr)} is not x{scale} of LR {np.shape(lr)} (2D pairs only)")
    a = np.concatenate([_neighbourhoods(lr, taps) for _, lr in pairs])
    b = np.concatenate([_phases(hr, scale) for hr, _ in pairs])
    return np.linalg.lstsq(a, b, rcond=None)[0]


def apply_linear_upscaler(filters: np.ndarray, lr: np.ndarray, scale: int) -> np.ndarray:
    """Upscale a 2D ``lr`` with ``filters`` (from :func:`fit_linear_upscaler`): float64 ``(H*scale, W*scale)``."""
    taps = int(round(np.sqrt(filters.shape[0] - 1)))
    if filters.shape != (taps * taps + 1, scale * scale):
        raise ValueError(f"filters {filters.shape} do not fit x{scale}")
    h, w = np.shape(lr)
    values = _neighbourhoods(lr, taps) @ filters
    out = np.empty((h * scale, w * scale))
    for n in range(scale * scale):
        out[n // scale :: scale, n % scale :: scale] = values[:, n].reshape(h, w)
    return out
