"""The files of a training run, next to the model it writes (``MODEL.keras``):

- ``MODEL.keras``: the model (best by validation PSNR; in GAN mode the latest), with its description;
- ``MODEL.train/log.jsonl``: one JSON object per line (events ``start``, ``epoch``, ``end``, ``error``), flushed
  line by line so that a UI can tail it;
- ``MODEL.train/checkpoint.npz``: weights, optimizer state and run state after the last complete epoch
  (what ``resume`` continues from);
- ``MODEL.train/tensorboard/``: TensorBoard logs, when asked for.

Every file is replaced atomically (written under a temporary name in the same folder, then renamed), so an
interruption or a full disk leaves the previous version intact.
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from ..errors import InputError, OutputError


def run_dir(out) -> Path:
    out = Path(out)
    return out.with_name(out.stem + ".train")


def log_path(out) -> Path:
    """Where ``train`` writes the JSON-lines log of the model ``out``."""
    return run_dir(out) / "log.jsonl"


def checkpoint_path(out) -> Path:
    return run_dir(out) / "checkpoint.npz"


def _clean(value):
    """JSON-safe: NaN/inf become None, numpy scalars plain numbers, paths strings."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, Path):
        return str(value)
    return value


class RunLog:
    """Appends one JSON object per line; also hands each record to ``listener``."""

    def __init__(self, path: Path, listener: Optional[Callable[[dict], None]] = None):
        self.path = Path(path)
        self.listener = listener

    def write(self, event: str, **fields) -> dict:
        record = _clean({"event": event, "timestamp": round(time.time(), 3), **fields})
        line = json.dumps(record, allow_nan=False)
        try:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(line + "\n")
                f.flush()
        except OSError as e:
            raise OutputError(f"cannot write the training log {self.path}: {e.strerror or e}") from None
        if self.listener is not None:
            self.listener(record)
        return record


def read_log(path) -> list:
    """The records of a log (a UI tailing it reads complete lines the same way)."""
    records = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.endswith("\n") and line.strip():
                records.append(json.loads(line))
    return records


def save_checkpoint(path: Path, groups: dict, state: dict) -> None:
    """``groups``: name -> list of arrays (weights, optimizer variables); ``state``: JSON-ready dict."""
    arrays = {f"{name}/{i:05d}": np.asarray(a) for name, values in groups.items() for i, a in enumerate(values)}
    arrays["state"] = np.frombuffer(json.dumps(_clean(state)).encode("utf-8"), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    fd, tmp = tempfile.mkstemp(prefix=".checkpoint-", suffix=".npz", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(buf.getbuffer())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"cannot write checkpoint {path}: {e.strerror or e}; the previous one is kept") from None


def load_checkpoint(path: Path) -> tuple:
    """(groups, state) as written by :func:`save_checkpoint`."""
    try:
        with np.load(path, allow_pickle=False) as z:
            state = json.loads(bytes(z["state"]).decode("utf-8"))
            groups: dict = {}
            for key in sorted(k for k in z.files if k != "state"):
                name, _ = key.rsplit("/", 1)
                groups.setdefault(name, []).append(z[key])
    except (OSError, ValueError, KeyError) as e:
        raise InputError(f"cannot read the checkpoint {path}: {e}") from None
    return groups, state
