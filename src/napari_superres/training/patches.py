"""Random training patches from the images of a folder, decoded on demand.

Files are read when a patch needs them and kept in a small least-recently-used cache (by bytes), so a folder
larger than memory trains as well as a small one. Each patch: a random image (chance proportional to its
area), a random position, a random flip / quarter turn; its LR partner is the same region of the LR file
(paired) or is made from the HR patch by the degradation (HR-only).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from .degrade import Degradation, degrade, margin, renormalise
from ..engine.axes import luminance
from .folders import ImageFile, normalizer_of, read_slices

CACHE_BYTES = 1 << 30


class ImageCache:
    """Normalised float32 N x H x W x C arrays of files, least recently used dropped beyond ``max_bytes``."""

    def __init__(self, normalization: dict, channels: int, max_bytes: int = CACHE_BYTES):
        self.normalization = normalization
        self.channels = channels
        self.max_bytes = max_bytes
        self._data: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, f: ImageFile) -> np.ndarray:
        with self._lock:
            if f.path in self._data:
                self._data.move_to_end(f.path)
                return self._data[f.path]
        x = self.load(f)
        with self._lock:
            self._data[f.path] = x
            while len(self._data) > 1 and sum(a.nbytes for a in self._data.values()) > self.max_bytes:
                self._data.popitem(last=False)
        return x

    def load(self, f: ImageFile) -> np.ndarray:
        raw, _ = read_slices(f.path)
        x = normalizer_of(f, self.normalization).forward(raw)
        if self.channels == 1 and x.shape[-1] == 3:
            x = luminance(x)
        return np.ascontiguousarray(x, dtype=np.float32)


def augment(lr: np.ndarray, hr: np.ndarray, t: int) -> tuple:
    """One of the 8 flips / quarter turns (``t`` in 0..7), the same for LR and HR."""
    k, flip = t % 4, t >= 4
    lr, hr = np.rot90(lr, k), np.rot90(hr, k)
    if flip:
        lr, hr = lr[:, ::-1], hr[:, ::-1]
    return lr, hr


class PatchSampler:
    """``batch(rng, n)`` -> (LR float32 (n, p, p, C), HR float32 (n, p*s, p*s, C))."""

    def __init__(self, items, cache: ImageCache, *, scale: int, hr_patch: int, degradation: Degradation,
                 paired: bool, augment: bool = True):
        self.items = list(items)
        self.cache = cache
        self.scale = scale
        self.hr_patch = hr_patch
        self.lr_patch = hr_patch // scale
        self.degradation = degradation
        self.paired = paired
        self.augment = augment
        self.margin = margin(degradation)
        area = np.array([len(it.slices) * it.hr.height * it.hr.width for it in self.items], np.float64)
        self.weights = area / area.sum()

    def _hr_only(self, it, rng):
        x = self.cache.get(it.hr)
        k = int(rng.choice(it.slices))
        p, m = self.hr_patch, self.margin
        _, h, w, _ = x.shape
        y0, x0 = int(rng.integers(0, h - p + 1)), int(rng.integers(0, w - p + 1))
        ya, yb, xa, xb = max(y0 - m, 0), min(y0 + p + m, h), max(x0 - m, 0), min(x0 + p + m, w)
        window = x[k, ya:yb, xa:xb]
        pad = ((ya - (y0 - m), (y0 + p + m) - yb), (xa - (x0 - m), (x0 + p + m) - xb), (0, 0))
        if any(a or b for a, b in pad[:2]):
            window = np.pad(window, pad, mode="symmetric")
        lr = degrade(window, self.degradation, rng)
        c = m // self.scale
        lr = lr[c : c + self.lr_patch, c : c + self.lr_patch]
        hr = x[k, y0 : y0 + p, x0 : x0 + p]
        if self.degradation.kind == "microscope":  # the engine's view of a microscopy input
            lr, hr = renormalise(lr, hr)
        return lr, hr

    def _paired(self, it, rng):
        lr_all, hr_all = self.cache.get(it.lr), self.cache.get(it.hr)
        k = int(rng.choice(it.slices))
        q, s = self.lr_patch, self.scale
        _, h, w, _ = lr_all.shape
        y0, x0 = int(rng.integers(0, h - q + 1)), int(rng.integers(0, w - q + 1))
        lr = lr_all[k, y0 : y0 + q, x0 : x0 + q]
        hr = hr_all[k, y0 * s : (y0 + q) * s, x0 * s : (x0 + q) * s]
        return lr, hr

    def sample(self, rng: np.random.Generator) -> tuple:
        it = self.items[int(rng.choice(len(self.items), p=self.weights))]
        lr, hr = self._paired(it, rng) if self.paired else self._hr_only(it, rng)
        if self.augment:
            lr, hr = augment(lr, hr, int(rng.integers(8)))
        return lr, hr

    def batch(self, rng: np.random.Generator, n: int) -> tuple:
        pairs = [self.sample(rng) for _ in range(n)]
        lr = np.stack([p[0] for p in pairs]).astype(np.float32, copy=False)
        hr = np.stack([p[1] for p in pairs]).astype(np.float32, copy=False)
        return lr, hr
