"""What a bench run measures: the sections, the photos, the sizes and repeat counts (:class:`BenchConfig`), and
the progress line each step writes to stderr."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

# The photos of the corpus that the shipped models never saw in training (scripts/zoo_data.py keeps them out):
# one landscape, one macro, one night scene, one texture. The one list of validation photos: the training
# scripts, the model cards and the tests import it from here.
HELD_OUT = (
    "BytheWater_contents_images_2560x1600.png",
    "backgrounds_mate_nature_LadyBird.png",
    "DarkestHour_contents_images_2560x1600.png",
    "backgrounds_mate_nature_Wood.png",
)
SPEED_PHOTO = HELD_OUT[3]  # fine texture all over: the input of the speed, options and tiling sections
CORPUS = Path(os.environ.get("NAPARI_SUPERRES_CORPUS", Path.home() / ".cache" / "napari-superres-corpus"))
# scikit-image's bundled colour photographs: the fallback quality set and the source of the speed input.
SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
PRECISIONS = ("float32", "bfloat16")
SECTIONS = ("quality", "speed", "tiling", "options", "peers")


@dataclass
class BenchConfig:
    """What to measure. ``quick`` shrinks every size and repeat count so the whole run takes seconds."""

    models: Optional[list] = None  # names or .keras paths; None: every shipped model
    scales: Optional[list] = None  # keep only models of these scales
    quality_dir: Optional[Path] = None  # HR images folder, or "skimage"; None: held-out corpus photos, else skimage's
    size: int = 256  # side of the speed input, LR pixels
    e2e_size: int = 768  # side of the photo the speed section also upscales end to end (0: skip)
    large: int = 1024  # side of the tiling/memory input, LR pixels
    tile: Optional[int] = None  # tile of the tiling section (None: the engine's default tile)
    precision: str = "float32"  # of the speed section
    jit: bool = False  # XLA jit_compile in the speed section
    repeats: int = 5
    matmul_n: int = 2048
    sections: tuple = SECTIONS  # which tables to measure
    quick: bool = False
    quality_crop: Optional[int] = None  # crop quality images to this side (HR pixels), centred

    @classmethod
    def quick_config(cls, **kw):
        base = dict(size=64, e2e_size=96, large=192, tile=64, repeats=2, matmul_n=512, quick=True, quality_crop=96)
        base.update({k: v for k, v in kw.items() if v is not None})
        return cls(**base)


_T0 = time.perf_counter()


def log(msg: str) -> None:
    """One progress line on stderr, stamped with the seconds since the bench was imported."""
    print(f"bench [{time.perf_counter() - _T0:6.1f} s] {msg}", file=sys.stderr, flush=True)
