"""Pack what the device run carries into ``.device/`` (ignored by git; see docs/device-run.md).

    .venv/bin/python scripts/device/pack.py [--corpus DIR] [--extra-corpus DIR] [--max-mib 40]

- ``whl/``: the Keras wheel and the packages it needs that the GPU machine lacks (it has JAX but neither
  TensorFlow nor Keras, and no network), for its Python 3.12.
- ``data/photos/``: the photos that training may use, from the main corpus and the extra one
  (``make_corpus_extra.py``, when it exists), lossless WebP, centre-cropped alike if needed so that everything
  stays under ``--max-mib`` (the device takes 64 MiB with the repository). Crops keep at least half of each
  side; past that, fewer photos go, drawn evenly from both folders (each keeps its share of the photos).
- ``data/microscopy/nuclear.png``: the real fluorescence image that mahotas ships (``training/microscopy.py``:
  its left half trains, its right half validates).
- ``data/val/``: two 480x480 crops of each held-out photo (480 is a multiple of 2, 3 and 4), lossless WebP: its
  centre and its most detailed part (largest mean gradient), so that validation is not all sky or darkness.
"""

import argparse
import shutil
import importlib.metadata
import subprocess
import sys
from pathlib import Path

from PIL import Image

SCRIPTS = Path(__file__).resolve().parents[1]
REPO = SCRIPTS.parent
sys.path.insert(0, str(SCRIPTS))
from zoo_data import add_extra_corpus_option, centre, extra_photos, load_corpus, validation_crops  # noqa: E402

DEFAULT_CORPUS = Path.home() / ".cache" / "napari-superres-corpus"
# What Keras needs beyond the GPU machine's own packages (it has numpy, h5py, ml-dtypes, rich, absl-py, packaging).
WHEELS = ["keras", "namex", "optree", "platformdirs"]
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"]
MIN_FRAC = 0.5  # the smallest share of each side a packed photo keeps


def download_wheels(dest: Path):
    dest.mkdir(parents=True, exist_ok=True)
    pins = [f"{n}=={importlib.metadata.version(n)}" for n in WHEELS]
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
           "3.12", "--implementation", "cp", "-d", str(dest)] + [a for p in PLATFORMS for a in ("--platform", p)]
    subprocess.run(cmd + pins, check=True)


def save_webp(array, path: Path) -> int:
    Image.fromarray(array).save(path, format="WEBP", lossless=True, quality=80, method=4)
    return path.stat().st_size


def fair_order(groups):
    """The photos of several folders interleaved so that any first n of them hold each folder's share."""
    ranked = [((i + 0.5) / len(g), k, i) for k, g in enumerate(groups) for i in range(len(g))]
    return [groups[k][i] for _, k, i in sorted(ranked)]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    add_extra_corpus_option(p)
    p.add_argument("--out", type=Path, default=REPO / ".device")
    p.add_argument("--max-mib", type=float, default=40.0, help="size limit of data/photos")
    p.add_argument("--skip-wheels", action="store_true")
    args = p.parse_args(argv)
    if not args.skip_wheels:
        download_wheels(args.out / "whl")
    train, val = load_corpus(args.corpus)
    extra = extra_photos(args.extra_corpus, val) if args.extra_corpus is not None else []
    photos, vals = args.out / "data" / "photos", args.out / "data" / "val"
    for d in (photos, vals):
        d.mkdir(parents=True, exist_ok=True)
        for f in d.glob("*.webp"):
            f.unlink()
    for name, crop in validation_crops(val):
        save_webp(crop, vals / f"{name}.webp")
    from napari_superres.training.microscopy import nuclear_file

    nuclear = nuclear_file()
    if nuclear is None:
        raise SystemExit("mahotas is not installed: pip install mahotas (it ships the real fluorescence image)")
    (args.out / "data" / "microscopy").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(nuclear, args.out / "data" / "microscopy" / "nuclear.png")
    photos_in_order = fair_order([train, extra])
    frac, keep = 1.0, len(photos_in_order)
    while True:  # shrink the kept area until the photos fit; below MIN_FRAC, keep fewer photos instead
        for f in photos.glob("*.webp"):
            f.unlink()
        sizes = [save_webp(centre(img, frac), photos / f"photo{i:03d}.webp")
                 for i, img in enumerate(photos_in_order[:keep])]
        total = sum(sizes) / 2**20
        print(f"{keep} photos ({len(train)} + {len(extra)} available) at {frac:.2f} of their side: {total:.1f} MiB")
        if total <= args.max_mib:
            break
        if keep == 1 and frac <= MIN_FRAC:
            raise SystemExit(f"one photo at {MIN_FRAC} of its side is {total:.1f} MiB: raise --max-mib")
        shrink = (args.max_mib / total) ** 0.5 * 0.98
        if frac * shrink >= MIN_FRAC:
            frac *= shrink
        else:
            keep = max(1, min(keep - 1, int(keep * (args.max_mib / total) * (frac / MIN_FRAC) ** 2 * 0.98)))
            frac = MIN_FRAC
    print(args.out)


if __name__ == "__main__":
    main()
