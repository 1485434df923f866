"""Train the shipped zoo on a GPU: Keras on JAX, mixed bfloat16 (the device run's first half).

    KERAS_BACKEND=jax python3 scripts/device/train_gpu.py --data .device/data --out OUT [--deadline 480]

Each model trains for a wall-clock budget (counted after its XLA compile) on random patches: bicubic LR from
the packed photos (``pack.py``), or microscope LR (binning, shot and read noise) from simulated and real
fluorescence. Where a shipped model of the same name, architecture and options exists (the ``ZOO`` row names
it), training resumes from its weights, so GPU time adds to what earlier runs did; SPAN models start over, as
their shipped form is merged for inference. The learning rate follows a cosine over the budget from the
trainer's default for the architecture (a quarter of it for a resumed model).

Everything lands in OUT as it is made, so a run cut short still yields every model it reached:
``<group>.tar`` (one ``<name>.npz`` of weight arrays per model, rewritten atomically at each checkpoint) and
``history.json`` (per model: steps, seconds, compile seconds, loss and validation PSNR against steps).
``import_weights.py`` turns them into shipped models (float32, validated on whole photos, described, carded).
``--deadline`` bounds the whole run: models are trained in ``ZOO`` order (most used first) and each budget is
cut to what is left, keeping ``--reserve`` seconds for the GPU bench that follows.
"""

import argparse
import io
import json
import math
import os
import sys
import tarfile
import threading
import time
import traceback
import zlib
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
import numpy as np  # noqa: E402

SCRIPTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(SCRIPTS))
from train_zoo import EDSR_CPU, WEIGHTS, build, resume_from_shipped  # noqa: E402
from zoo_data import PatchPairs, load_packed  # noqa: E402

from napari_superres.models.registry import SPAN_FAST, SPAN_QUALITY  # noqa: E402

START = time.monotonic()

# name, tar group, domain, architecture, scale, builder options, seconds, batch, warm start (a shipped model)
# Most used first: a run cut short still has the default and the fast x2 models.
ZOO = [
    ("edsr-x2", "photo", "photo", "edsr", 2, EDSR_CPU, 70, 64, "edsr-x2"),
    ("span-x2", "span", "photo", "span", 2, SPAN_QUALITY, 50, 64, None),
    ("span-fast-x2", "span", "photo", "span", 2, SPAN_FAST, 35, 64, None),
    ("fluo-edsr-x2", "microscopy", "microscopy", "edsr", 2, EDSR_CPU, 35, 32, "fluo-edsr-x2"),
    ("fluo-espcn-x2", "microscopy", "microscopy", "espcn", 2, {}, 12, 32, None),
    ("edsr-x4", "photo", "photo", "edsr", 4, EDSR_CPU, 30, 32, "edsr-x4"),
    ("fluo-edsr-x4", "microscopy", "microscopy", "edsr", 4, EDSR_CPU, 25, 32, "fluo-edsr-x4"),
    ("fluo-espcn-x4", "microscopy", "microscopy", "espcn", 4, {}, 12, 32, None),
    ("span-x4", "span4", "photo", "span", 4, SPAN_QUALITY, 25, 32, None),
    ("espcn-x2", "fast", "photo", "espcn", 2, {}, 8, 64, "espcn-x2"),
    ("espcn-x4", "fast", "photo", "espcn", 4, {}, 8, 32, "espcn-x4"),
    ("edsr-x3", "photo", "photo", "edsr", 3, EDSR_CPU, 15, 32, "edsr-x3"),
    ("espcn-x3", "fast", "photo", "espcn", 3, {}, 6, 64, "espcn-x3"),
]
LR_PATCH = 48
RESUME_FACTOR = 0.25  # a resumed model starts its cosine at a quarter of the from-scratch peak


def log(msg):
    print(f"[{time.monotonic() - START:6.1f}s] {msg}", flush=True)


class Outbox:
    """The files of OUT: tar groups of weight files and the history, each replaced atomically."""

    def __init__(self, out: Path):
        self.out = out
        out.mkdir(parents=True, exist_ok=True)
        self.history = {}
        self.lock = threading.Lock()

    def _replace(self, name, data: bytes):
        tmp = self.out / f".{name}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, self.out / name)

    def save_weights(self, group, name, model):
        # The model's weights alone, as arrays (a .weights.h5 of a compiled model carries the optimizer's state
        # too, three times the size: the device brings back at most 16 MiB a file).
        buf = io.BytesIO()
        np.savez(buf, *[np.asarray(w, np.float32) for w in model.get_weights()])
        with self.lock:
            tar_path = self.out / f"{group}.tar"
            members = {}
            if tar_path.exists():
                with tarfile.open(tar_path) as t:
                    members = {m.name: t.extractfile(m).read() for m in t.getmembers()}
            members[f"{name}.npz"] = buf.getvalue()
            tar_buf = io.BytesIO()
            with tarfile.open(fileobj=tar_buf, mode="w") as t:
                for member, data in sorted(members.items()):
                    info = tarfile.TarInfo(member)
                    info.size = len(data)
                    t.addfile(info, io.BytesIO(data))
            self._replace(tar_path.name, tar_buf.getvalue())

    def record(self, name, entry):
        with self.lock:
            self.history[name] = entry
            self._replace("history.json", json.dumps(self.history, indent=1).encode())


def cosine(fraction, peak):
    return peak * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, fraction))))


def make_callback(name, group, entry, budget, peak, outbox, validate):
    import keras

    class Budget(keras.callbacks.Callback):
        """Counts time from the first finished step (after compile), sets the learning rate, validates and
        checkpoints at each quarter of the budget, stops when the budget is spent."""

        def on_train_begin(self, logs=None):
            self.t0 = None
            self.begin = time.monotonic()
            self.next_check = 0.25
            self.steps = 0

        def on_train_batch_end(self, batch, logs=None):
            self.steps += 1
            now = time.monotonic()
            if self.t0 is None:
                self.t0 = now
                entry["compile_seconds"] = round(now - self.begin, 1)
                return
            fraction = (now - self.t0) / budget
            if self.steps % 25 == 0:
                self.model.optimizer.learning_rate.assign(cosine(fraction, peak))
            if fraction >= self.next_check:
                self.next_check += 0.25
                entry["steps"] = entry["steps_before"] + self.steps
                entry["seconds"] = round(now - self.t0, 1)
                entry["loss"] = float(logs["loss"]) if logs and "loss" in logs else None
                entry["curve"].append([entry["steps"], validate(self.model)])
                outbox.save_weights(group, name, self.model)
                outbox.record(name, entry)
                log(f"{name}: step {entry['steps']} loss {entry['loss']:.4f} val PSNR {entry['curve'][-1][1]:.2f}")
                if fraction >= 1.0:
                    self.model.stop_training = True

    return Budget()


def train_one(row, data, outbox, budget, shipped):
    import keras

    name, group, domain, arch, scale, options, _, batch, init = row
    model = build(arch, scale, options, "mixed_bfloat16", channels=data.channels)
    entry = {"arch": arch, "scale": scale, "options": options, "domain": domain, "channels": data.channels, "batch": batch,
             "lr_patch": LR_PATCH, "precision": "mixed_bfloat16", "steps_before": 0, "curve": [],
             "warm_start": None, "budget_seconds": round(budget, 1)}
    from napari_superres.training.config import DEFAULT_LEARNING_RATE, FALLBACK_LEARNING_RATE

    peak = DEFAULT_LEARNING_RATE.get(arch, FALLBACK_LEARNING_RATE)
    before = resume_from_shipped(model, init, arch, options, shipped) if init else None
    if before is not None:
        entry.update(warm_start=init, steps_before=int(before.get("steps", 0)), history_before=before)
        peak *= RESUME_FACTOR
    model.compile(optimizer=keras.optimizers.Adam(peak), loss="mae")
    validate = data.validator(scale)
    entry["curve"].append([entry["steps_before"], validate(model)])
    log(f"{name}: {model.count_params():,} parameters, {budget:.0f} s, start PSNR {entry['curve'][0][1]:.2f}"
        + (f" (resumed from {init} at step {entry['steps_before']})" if entry["warm_start"] else ""))
    seq = data.sequence(scale, batch, LR_PATCH, seed=zlib.crc32(name.encode()))
    callback = make_callback(name, group, entry, budget, peak, outbox, validate)
    model.fit(seq, epochs=10_000, verbose=0, callbacks=[callback])
    entry["steps_per_second"] = round((entry["steps"] - entry["steps_before"]) / max(entry["seconds"], 1e-9), 2)
    outbox.record(name, entry)
    log(f"{name}: done, {entry['steps'] - entry['steps_before']} steps in {entry['seconds']} s "
        f"(compile {entry['compile_seconds']} s), PSNR {entry['curve'][0][1]:.2f} -> {entry['curve'][-1][1]:.2f}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, required=True, help="folder written by pack.py")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--only", help="comma-separated model names (default: all, in ZOO order)")
    p.add_argument("--seconds-scale", type=float, default=1.0, help="multiply every budget by this")
    p.add_argument("--deadline", type=float, default=480, help="seconds for the whole run, from start")
    p.add_argument("--reserve", type=float, default=0, help="seconds kept free at the end (for the bench)")
    p.add_argument("--micro-pool", type=int, default=16000, help="microscopy pairs simulated per scale")
    p.add_argument("--shipped", type=Path, default=WEIGHTS, help="folder of the shipped models to resume from")
    args = p.parse_args(argv)

    import keras

    import jax

    log(f"Keras {keras.__version__} on {keras.backend.backend()}, devices {jax.devices()}")
    wanted = args.only.split(",") if args.only else None
    rows = [r for r in ZOO if wanted is None or r[0] in wanted]
    photos = microscopy = None
    outbox, failed = Outbox(args.out), []
    for i, row in enumerate(rows):
        left = args.deadline - args.reserve - (time.monotonic() - START)
        # Later models need their compile time too: ~20 s each is set aside from what is left.
        budget = min(row[6] * args.seconds_scale, left - 20 * (len(rows) - i))
        if budget < 3:
            log(f"{row[0]}: skipped, {left:.0f} s left")
            continue
        if row[2] == "photo":
            photos = photos or PatchPairs(*load_packed(args.data))
            data = photos
        else:
            from zoo_data import MicroscopyPairs

            microscopy = microscopy or MicroscopyPairs(args.data, pool=args.micro_pool)
            data = microscopy
        try:
            train_one(row, data, outbox, budget, args.shipped)
        except Exception:  # one model's failure must not cost the others their turn on the GPU
            failed.append(row[0])
            log(f"{row[0]}: FAILED\n{traceback.format_exc()}")
    log(f"all done{'; failed: ' + ', '.join(failed) if failed else ''}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
