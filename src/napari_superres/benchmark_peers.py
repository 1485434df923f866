"""The bench's ``peers`` section: the same models, same weights, run by PyTorch and by ONNX Runtime on the CPU.

Both run in a child process with ``KERAS_BACKEND=torch`` (a Keras backend is chosen once per process):

- **PyTorch**: the model file loaded by Keras on its torch backend, every layer a torch operation, called
  under ``torch.no_grad()`` (float32, batch 1);
- **ONNX Runtime**: the same model exported by Keras (``model.export(format="onnx")``, through torch's
  exporter) and run by ONNX Runtime's CPU provider, intra-op spinning off so that its CPU time counts work.

Each peer's output is checked against ours before it is timed. The figure is our speed over the peer's:
medians of interleaved calls on the speed input, from CPU time (steady on a shared machine) and from wall
time, for our model in float32 and in the precision ``auto`` picks on this machine. The packages are the
``bench`` extra; a missing one is said in one line and the rest of the bench runs.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path

import numpy as np

PEERS = {"torch": "PyTorch", "onnxruntime": "ONNX Runtime"}
# what a peer needs besides itself: the export to ONNX goes through torch
NEEDS = {"torch": ("torch",), "onnxruntime": ("torch", "onnxruntime", "onnx")}


def missing_packages() -> dict:
    """{peer: [missing packages]} for the peers that cannot run here."""
    gone = {name for name in {p for need in NEEDS.values() for p in need} if importlib.util.find_spec(name) is None}
    return {peer: [p for p in need if p in gone] for peer, need in NEEDS.items() if gone & set(need)}


def peers_section(models, config, ours: dict) -> dict:
    """{"rows": [...], "missing": {peer: [packages]}}. ``ours[model name]``: {label: Timing} of our calls."""
    from .benchmark import log, run_child, speed_input

    missing = missing_packages()
    peers = [p for p in PEERS if p not in missing]
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
    return {"rows": rows, "missing": missing}


def peer_child(task: dict) -> dict:
    """In the child (KERAS_BACKEND=torch): {peer: [wall s, CPU s, max |peer - ours|]} on ``task["x"]``."""
    import keras
    import torch

    from .benchmark import time_calls
    from .models.loading import load_model

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


def format_peers(section: dict, cfg: dict) -> list:
    from .benchmark import text_table
    from .io.extras import distribution_name

    out = ["", f"PEERS: the same models and weights on the CPU, {cfg['size']}x{cfg['size']} input, batch 1, float32; "
           "ours over the peer = the peer's time / ours (above 1: we are faster), from CPU time and wall time; "
           "max diff: largest |peer - ours| (float32)"]
    for peer, packages in section["missing"].items():
        out.append(f"{PEERS[peer]}: not measured, {' and '.join(packages)} not installed "
                   f"(pip install '{distribution_name()}[bench]')")
    good = [r for r in section["rows"] if "error" not in r]
    labels = [k for k in ("float32", "auto") if any(k in r for r in good)]
    headers = ("model", "peer", "peer ms", "max diff") + tuple(
        h for k in labels for h in (f"ours {k} ms", f"x CPU ({k})", f"x wall ({k})"))
    rows = []
    for r in section["rows"]:
        if "error" in r:
            rows.append((r["model"], "failed: " + r["error"]) + ("",) * (len(headers) - 2))
            continue
        cells = [r["model"], r["peer"], f"{r['ms']:.1f}", f"{r['max_diff']:.1e}"]
        for k in labels:
            v = r.get(k)
            cells += [f"{v['ms']:.1f}", f"x{v['speedup_cpu']:.2f}", f"x{v['speedup_wall']:.2f}"] if v else ["-"] * 3
        rows.append(cells)
    return out + (text_table(headers, rows) if rows else [])
