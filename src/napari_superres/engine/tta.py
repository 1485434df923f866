"""Self-ensemble ("x8" test-time augmentation, as in EDSR/RCAN): the model is run on the eight flips and
quarter turns of each tile, each prediction is turned back, and the eight are averaged in float (model
values), before any conversion back to the input's dtype."""

from __future__ import annotations

from typing import Callable, List, Tuple

import numpy as np

Predict = Callable[[np.ndarray], np.ndarray]

# (quarter turns, horizontal flip) for the 8 elements of the dihedral group D4.
DIHEDRAL: List[Tuple[int, bool]] = [(k, f) for k in range(4) for f in (False, True)]


def _forward(x: np.ndarray, k: int, flip: bool) -> np.ndarray:
    x = np.rot90(x, k, axes=(1, 2))
    if flip:
        x = x[:, :, ::-1]
    return np.ascontiguousarray(x)


def _backward(y: np.ndarray, k: int, flip: bool) -> np.ndarray:
    if flip:
        y = y[:, :, ::-1]
    return np.rot90(y, -k, axes=(1, 2))


def tta_predict(predict: Predict, *, rotations: bool = True) -> Predict:
    """Wrap ``predict`` (NHWC -> NHWC) into its x8 self-ensemble (x4 flips only if ``rotations`` is False,
    for models with a fixed, non-square input size)."""
    transforms = DIHEDRAL if rotations else [(0, False), (0, True), (2, False), (2, True)]

    def ensemble(batch: np.ndarray) -> np.ndarray:
        total = None
        for k, flip in transforms:
            y = _backward(np.asarray(predict(_forward(batch, k, flip)), np.float32), k, flip)
            total = y.copy() if total is None else total + y
        return total / np.float32(len(transforms))

    return ensemble
