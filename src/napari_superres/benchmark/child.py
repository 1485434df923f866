"""A bench task in a fresh Python process: for what must not share this process (a different Keras backend, the
oneDNN switch read when TensorFlow loads, a clean memory high-water mark). ``__main__`` runs the task there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional

import numpy as np


def run_child(task: dict, arrays: dict, env: Optional[dict] = None) -> dict:
    """Run ``task`` in a fresh Python (``python -m napari_superres.benchmark --child``): arrays cross as .npy
    files in a temporary folder; returns the child's JSON answer, with ``out`` loaded when the child wrote it."""
    with tempfile.TemporaryDirectory(prefix="superres-bench-") as tmp:
        task = dict(task, out=str(Path(tmp) / "out.npy"))
        for key, array in arrays.items():
            task[key] = str(Path(tmp) / f"{key}.npy")
            np.save(task[key], array)
        proc = subprocess.run([sys.executable, "-m", "napari_superres.benchmark", "--child", json.dumps(task)],
                              env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **(env or {})),
                              capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            return {"error": f"subprocess failed ({proc.returncode}): {tail[:200]}"}
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        if Path(task["out"]).is_file():
            result["out"] = np.load(task["out"])
        return result
