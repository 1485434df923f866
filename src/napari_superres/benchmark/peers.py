"""The bench's ``peers`` section: the same models, same weights, run by PyTorch and by ONNX Runtime on the CPU.

Both run in a child process with ``KERAS_BACKEND=torch`` (a Keras backend is chosen once per process):

- **PyTorch**: the model file loaded by Keras on its torch backend, every layer a torch operation, called
  under ``torch.no_grad()`` (float32, batch 1);
- **ONNX Runtime**: the same model exported by Keras (``model.export(format="onnx")``, through torch's
  exporter) and run by ONNX Runtime's CPU provider, intra-op spinning off so that its CPU time counts work.

Each peer's output is checked against ours before it is timed. The figure is our speed over the peer's:
medians of interleaved calls on the speed input, from CPU time (steady on a shared machine) and from wall
time, for our model in float32 and in the precision ``auto`` picks on this machine. The packages are the
``bench`` extra, imported only in the child; a missing one is said in one line and the rest of the bench runs.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path

import numpy as np

from .child import run_child
from .config import BenchConfig, log
from .images import speed_input
from .timing import time_calls

PEERS = {"torch": "PyTorch", "onnxruntime": "ONNX Runtime"}
# what a peer needs besides itself: the export to ONNX goes through torch
NEEDS = {"torch": ("torch",), "onnxruntime": ("torch", "onnxruntime", "onnx")}


def missing_packages() -> dict:
    """{peer: [missing packages]} for the peers that cannot run here."""
    gone = {name for name in {p for need in NEEDS.values() for p in need} if importlib.util.find_spec(name) is None}
    return {peer: [p for p in need if p in gone] for peer, need in NEEDS.items() if gone & set(need)}


def _ours(models, config: BenchConfig) -> tuple[dict, dict]:
    """({model name: {"float32" | "auto": Timing}}, {model name: what auto chose}): our calls, timed here."""
    from ..engine.precision import resolve

    ours, chosen = {}, {}
    for srm in models:
        _, x = speed_input(srm, config.size)
        auto, choice = resolve(srm, "auto")
        chosen[srm.name] = str(choice)
        log(f"peers: {srm.name} ours (float32, auto: {choice.precision})")
        ours[srm.name] = time_calls({"float32": lambda: srm.predict(x), "auto": lambda: auto.predict(x)},
                                    warmup=2, repeats=config.repeats)
    return ours, chosen


def peers_section(models, config: BenchConfig) -> dict:
    """{"rows": [...], "missing": {peer: [packages]}, "auto": {model name: auto's choice}}: our float32 and
    auto-precision calls timed here, then each peer in a child process."""
    missing = missing_packages()
    peers = [p for p in PEERS if p not in missing]
    ours, chosen = _ours(models, config) if peers else ({}, {})
    rows = []
    for srm in models:
        if not peers:
            break
        if srm.path is None:
            rows.append({"model": srm.name, "error": "a model without a file cannot be loaded by a peer"})
            continue
        _, x = speed_input(srm, config.size)
        log(f"peers: {srm.name} ({', '.join(PEERS[p] for p in peers)}, subprocess)")
        child = run_child({"task": "peers", "model": str(srm.path), "peers": peers, "repeats": config.repeats},
                          {"x": x, "ref": srm.predict(x)}, env={"KERAS_BACKEND": "torch"})
        if "error" in child:
            rows.append({"model": srm.name, "error": child["error"]})
            continue
        for peer in peers:
            wall, cpu, diff = child[peer]
            row = {"model": srm.name, "peer": PEERS[peer], "ms": wall * 1e3, "cpu_ms": cpu * 1e3, "max_diff": diff}
            for label, t in ours[srm.name].items():
                row[label] = {"ms": t.wall * 1e3, "speedup_cpu": cpu / t.cpu, "speedup_wall": wall / t.wall}
            rows.append(row)
    return {"rows": rows, "missing": missing, "auto": chosen}


def peer_child(task: dict) -> dict:
    """In the child (KERAS_BACKEND=torch): {peer: [wall s, CPU s, max |peer - ours|]} on ``task["x"]``."""
    import keras
    import torch

    from ..models.loading import load_model

    srm = load_model(task["model"])
    x, ref = np.load(task["x"]), np.load(task["ref"])
    calls = {}
    if "torch" in task["peers"]:
        tx = torch.from_numpy(x)

        def run_torch():
            with torch.no_grad():
                return srm.keras_model(tx, training=False).numpy()

        calls["torch"] = run_torch
    with tempfile.TemporaryDirectory(prefix="superres-onnx-") as tmp:
        if "onnxruntime" in task["peers"]:
            import onnxruntime as ort

            path = str(Path(tmp) / "model.onnx")
            spec = keras.InputSpec(shape=(None, *x.shape[1:]), dtype="float32")  # traced at the timed size
            srm.keras_model.export(path, format="onnx", input_signature=[spec], verbose=False)
            options = ort.SessionOptions()
            options.intra_op_num_threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
            name = session.get_inputs()[0].name
            calls["onnxruntime"] = lambda: session.run(None, {name: x})[0]
        diffs = {peer: float(np.abs(np.asarray(fn()) - ref).max()) for peer, fn in calls.items()}
        t = time_calls(calls, warmup=2, repeats=task["repeats"])
    return {peer: [t[peer].wall, t[peer].cpu, diffs[peer]] for peer in calls}
