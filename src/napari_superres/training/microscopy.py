"""Training pairs for fluorescence microscopy models: simulated and real fluorescence through a camera.

One function makes a batch, for the CPU trainer (``scripts/train_microscopy.py``) and a GPU script alike:
:func:`microscopy_pairs` ``(n, lr_patch, scale, rng) -> (lr, hr)``, float32 ``(n, p, p, 1)`` and
``(n, p*s, p*s, 1)``. Each pair: a field of HR relative intensity (simulated by :mod:`.fluorescence`, or a
crop of a real image), its camera image (:func:`.fluorescence.microscope_lr`: binning, shot and read noise,
offset, uint16 counts), its clean HR in the same counts (:func:`.fluorescence.expected_counts`); both mapped
by the percentile map (2 / 99.8) fitted on the LR field, exactly what the engine does to a microscopy input,
so the engine's inverse map returns the model's output in the input's units. The field is larger than the
patch (``context``), so the percentiles see about as much of the scene as they would in a whole image.

Real fluorescence at hand (no hub; these packages ship it):

- ``mahotas`` (PyPI, MIT) ships ``mahotas/demos/data/nuclear.png``: a widefield image of fluorescently
  stained nuclei (DNA stain), 1344 x 1024, 8-bit (stored as RGB with three equal channels). Its LEFT half
  (columns 0-671) is training data; its RIGHT half (columns 672-1343), as two crops of 512 x 672, is the
  held-out validation (:func:`validation_images`): real fluorescence, never seen in training.
- Debian's ``stellarium-data`` ships ~550 astronomy photographs (``usr/share/stellarium/nebulae/default/``):
  photon-limited point and diffuse sources on a dark background. Optional training data
  (:func:`stellarium_images`, from a folder the caller extracted with ``apt-get download`` + ``dpkg -x``).
- scikit-image's wheel ships no fluorescence image (``cells3d``, ``human_mitosis``, ``kidney`` are fetched
  from the network; ``cell.png`` is quantitative phase, ``ihc.png`` bright-field): none are used.

NumPy, SciPy and Pillow only: no Keras import.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from ..engine.normalize import DEFAULT_PERCENTILES
from . import fluorescence as fl
from ..engine.axes import luminance

NUCLEAR_SPLIT = 672  # columns of nuclear.png: training to the left, validation to the right
CONTEXT = 2  # the simulated field is this many patches wide: the percentiles see more than the patch
CLEAN_PHOTONS = 1e5  # "clean" pairs: binning and quantisation with almost no shot noise (bright samples)
CLEAN_LEVELS = (30.0, 60000.0)  # their brightest pixel this many counts above the offset (camera gain, bit depth)
SATURATED = (97.0, 99.9)  # a saturated scene: clipped at a percentile drawn in this range, as a detector clips
# Where the shipped models' pairs come from (the rest: simulated fields), and the shares of clean and saturated
# pairs: the defaults of microscopy_pairs, for the CPU and GPU training scripts alike.
MIX = {"real_fraction": 0.2, "photo_fraction": 0.4, "clean_fraction": 0.7, "saturated_fraction": 0.1}


def _package_file(package: str, *parts: str) -> Path | None:
    """A data file shipped inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]).joinpath(*parts)
    return path if path.is_file() else None


def nuclear_file() -> Path | None:
    """The nuclear.png that mahotas ships (None if mahotas is not installed)."""
    return _package_file("mahotas", "demos", "data", "nuclear.png")


def nuclear_image(path=None) -> np.ndarray | None:
    """mahotas' nuclear.png (or a copy of it at ``path``) as a uint8 2D array (None if mahotas is not installed)."""
    from PIL import Image

    path = path or nuclear_file()
    return None if path is None else np.asarray(Image.open(path).convert("L"))


def validation_images(nuclear=None) -> list:
    """Held-out real fluorescence: ``[(name, uint8 2D array)]`` (empty without mahotas); ``nuclear``: a copy of
    nuclear.png to read instead of mahotas' own."""
    img = nuclear_image(nuclear)
    if img is None:
        return []
    right = img[:, NUCLEAR_SPLIT:]
    half = right.shape[0] // 2
    return [("nuclear.png right, upper", right[:half]), ("nuclear.png right, lower", right[half:])]


def relative_intensity(img: np.ndarray, low: float = 0.1, high: float = 99.9) -> np.ndarray:
    """A real image as relative intensity: its ``low`` percentile (camera offset + background) at 0, its
    ``high`` percentile at 1; float32, negative values clipped (no negative photons)."""
    x = np.asarray(img, np.float64)
    lo, hi = np.percentile(x, [low, high])
    return np.clip((x - lo) / max(hi - lo, 1e-9), 0, None).astype(np.float32)


def training_images(stellarium_dir=None, *, min_side: int = 512, limit: int | None = None, nuclear=None) -> list:
    """Real training fields as relative intensity: ``[(name, float32 2D)]``. The left half of nuclear.png
    (if mahotas is installed), and, with ``stellarium_dir``, the luminance of the nebula photographs of at
    least ``min_side`` pixels (at most ``limit`` of them, in name order)."""
    out = []
    img = nuclear_image(nuclear)
    if img is not None:
        out.append(("nuclear.png left", relative_intensity(img[:, :NUCLEAR_SPLIT])))
    if stellarium_dir is not None:
        out += stellarium_images(stellarium_dir, min_side=min_side, limit=limit)
    return out


def photo_luminance(photos) -> list:
    """RGB photographs (``[(name, uint8 HxWx3)]``) as relative intensity of their luminance (BT.601)."""
    return [(name, relative_intensity(luminance(rgb)[..., 0])) for name, rgb in photos]


def stellarium_images(folder, *, min_side: int = 512, limit: int | None = None) -> list:
    from PIL import Image

    out = []
    for path in sorted(Path(folder).glob("*.png")):
        with Image.open(path) as im:
            if min(im.size) < min_side:
                continue
            gray = np.asarray(im.convert("L"))
        out.append((path.name, relative_intensity(gray)))
        if limit and len(out) >= limit:
            break
    return out


def simulated_fields(n: int, side: int, seed: int) -> list:
    """``n`` simulated HR fields of ``side`` pixels (a pool to crop from: simulation costs tens of ms each)."""
    rng = np.random.default_rng(seed)
    return [fl.simulate_hr((side, side), rng) for _ in range(n)]


def _crop(field: np.ndarray, side: int, rng) -> np.ndarray:
    h, w = field.shape[:2]
    if h < side or w < side:
        field = np.pad(field, ((0, max(0, side - h)), (0, max(0, side - w))), mode="reflect")
        h, w = field.shape[:2]
    y0, x0 = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    out = field[y0 : y0 + side, x0 : x0 + side]
    k = int(rng.integers(8))
    out = np.rot90(out, k % 4)
    return out[:, ::-1] if k >= 4 else out


def camera_pair(hr: np.ndarray, scale: int, rng, *, photons=fl.PHOTONS, read_noise=fl.READ_NOISE,
                percentiles=DEFAULT_PERCENTILES, levels=None) -> tuple:
    """(LR, HR) of one HR field as the model sees them: both through the LR counts' percentile map."""
    counts, p = fl.microscope_lr(hr, scale, rng, photons=photons, read_noise=read_noise, avoid_saturation=True,
                                 levels=levels)
    target = fl.expected_counts(hr[: counts.shape[0] * scale, : counts.shape[1] * scale], scale, p)
    lo, hi = np.percentile(counts, percentiles)
    span = hi - lo if hi > lo else 1.0
    return ((counts - lo) / span).astype(np.float32), ((target - lo) / span).astype(np.float32)


def microscopy_pairs(n: int, lr_patch: int, scale: int, rng: np.random.Generator, *, fields=None,
                     real=(), real_fraction: float = MIX["real_fraction"], photos=(),
                     photo_fraction: float = MIX["photo_fraction"], clean_fraction: float = MIX["clean_fraction"],
                     saturated_fraction: float = MIX["saturated_fraction"], photons=fl.PHOTONS,
                     read_noise=fl.READ_NOISE,
                     percentiles=DEFAULT_PERCENTILES, context: int = CONTEXT) -> tuple:
    """A batch of normalised pairs: LR float32 ``(n, lr_patch, lr_patch, 1)``, HR ``(n, lr_patch*scale, ...)``.

    Each pair comes from a real image of ``real`` (``[(name, relative intensity)]``, chance
    ``real_fraction``), or from a photograph's luminance of ``photos`` (same form, chance ``photo_fraction``:
    fine detail of every size below the binned pixel, which neither the simulation nor smooth nuclei have),
    else from ``fields`` (a pool of simulated HR fields, :func:`simulated_fields`), else
    from a field simulated now. A field of ``context`` patches per side goes through the camera (at
    ``CLEAN_PHOTONS`` for a share ``clean_fraction`` of the pairs: a model must also sharpen bright, clean
    data without smoothing its texture away; their camera's gain leaves at most 30 to 60,000 grey levels,
    ``CLEAN_LEVELS``); a share ``saturated_fraction`` of the scenes is clipped at a high percentile first, as
    a detector clips a scene too bright for it (the reference then holds the same flat tops). The pair is a
    random patch of it (grid aligned), after a random flip or quarter turn.
    """
    side = lr_patch * scale * context
    lrs, hrs = [], []
    for _ in range(n):
        source = rng.random()
        if real and source < real_fraction:
            field = _crop(real[int(rng.integers(len(real)))][1], side, rng)
        elif photos and source < real_fraction + photo_fraction:
            field = _crop(photos[int(rng.integers(len(photos)))][1], side, rng)
        elif fields:
            field = _crop(fields[int(rng.integers(len(fields)))], side, rng)
        else:
            field = fl.simulate_hr((side, side), rng)
        if rng.random() < saturated_fraction:
            field = np.minimum(field, np.percentile(field, rng.uniform(*SATURATED)))
        clean = rng.random() < clean_fraction
        lr, hr = camera_pair(field, scale, rng, photons=CLEAN_PHOTONS if clean else photons, read_noise=read_noise,
                             percentiles=percentiles, levels=CLEAN_LEVELS if clean else None)
        y0, x0 = (int(v) for v in rng.integers(0, lr.shape[0] - lr_patch + 1, size=2))
        lrs.append(lr[y0 : y0 + lr_patch, x0 : x0 + lr_patch])
        hrs.append(hr[y0 * scale : (y0 + lr_patch) * scale, x0 * scale : (x0 + lr_patch) * scale])
    return np.stack(lrs)[..., None], np.stack(hrs)[..., None]
