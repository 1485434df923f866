"""Turn what a device run brought back into shipped models (the device run's second half, on a CPU).

    .venv/bin/python scripts/device/import_weights.py RUN_DIR [--only a,b] [--corpus DIR] [--machine TEXT]

RUN_DIR holds the device run's ``*.tar`` weight groups and ``history.json`` (``train_gpu.py``). Each model is
rebuilt in float32, given its trained weights, put in its inference form, validated on the whole held-out
photos (not the crops the run tracked), described and saved into ``models/weights/`` by the same code as CPU
training (``train_zoo.finish_model``). Its description keeps every training run: the earlier ones (for a
resumed model) and this one, with validation PSNR on the run's crops against steps.
"""

import argparse
import io
import json
import sys
import tarfile
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(SCRIPTS))
from train_zoo import DEFAULT_CORPUS, WEIGHTS, finish_model, training_record  # noqa: E402
from zoo_data import CURVE_IMAGES, load_corpus  # noqa: E402


def trained_weights(run_dir: Path, name: str):
    """The weights of ``name`` (training-time model) from the run's tar files: a list of arrays, or None."""
    import numpy as np

    for tar_path in sorted(run_dir.glob("*.tar")):
        with tarfile.open(tar_path) as t:
            if f"{name}.npz" in t.getnames():
                arrays = np.load(io.BytesIO(t.extractfile(f"{name}.npz").read()))
                return [arrays[f"arr_{i}"] for i in range(len(arrays.files))]
    return None


def gpu_record(entry: dict, machine: str, data: str) -> dict:
    run = {"machine": machine, "steps": entry["steps"] - entry["steps_before"], "batch": entry["batch"],
           "lr_patch": entry["lr_patch"], "minutes": round(entry["seconds"] / 60, 1), "precision": entry["precision"],
           "loss": "L1", "warm_start": entry.get("warm_start"), "curve": entry["curve"],
           "curve_images": CURVE_IMAGES[entry["domain"]]}
    return training_record(entry.get("history_before"), run, data)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("--only", help="comma-separated model names (default: every model of the run)")
    p.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    p.add_argument("--machine", default="NVIDIA H200 (Keras on JAX)")
    p.add_argument("--weights-dir", type=Path, default=WEIGHTS, help="where the models are saved")
    args = p.parse_args(argv)
    history = json.loads((args.run_dir / "history.json").read_text())
    wanted = set(args.only.split(",")) if args.only else set(history)
    train_imgs, val = load_corpus(args.corpus)
    for name, entry in history.items():
        if name not in wanted:
            continue
        weights = trained_weights(args.run_dir, name)
        if weights is None:
            print(f"{name}: no weights in {args.run_dir}", flush=True)
            continue
        if entry["domain"] == "microscopy":
            import train_microscopy
            from napari_superres.training.microscopy import training_images

            training = gpu_record(entry, args.machine, train_microscopy.data_text(training_images()))
            training["script"] = "scripts/train_microscopy.py"
            train_microscopy.finish_model(name, entry["arch"], entry["scale"], entry["options"], weights, training,
                                          args.weights_dir)
            continue
        data = (f"{len(train_imgs)} real 2K photographs (../shared/data/make_corpus.py), "
                f"bicubic x{entry['scale']} degradation")
        finish_model(name, entry["arch"], entry["scale"], entry["options"], weights,
                     gpu_record(entry, args.machine, data), val, weights_dir=args.weights_dir)


if __name__ == "__main__":
    main()
