"""Training data from folders: find the images, pair LR with HR, check them, split off validation.

Layouts:

- paired: ``DATA/lr`` and ``DATA/hr`` (also ``low``/``high``, ``LR``/``HR``), files matched by name (an LR name
  may end in ``x2``/``_x2`` or ``_lr``, an HR name in ``_hr``, as in DIV2K);
- HR-only: the images directly in ``DATA``; low-resolution inputs are made from them during training.

Every file is a set of 2D training images: an RGB image is one 3-channel image (alpha dropped), a gray image
one 1-channel image, a stack one image per slice, and a multichannel microscopy image one gray image per
channel. Everything a user can fix is reported at once, with the names of the files concerned.

NumPy only (no Keras): the napari Train widget shows :func:`summarize` of a folder in the viewer's process.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from ..engine.axes import make_layout, to_batches
from ..engine.normalize import Normalizer, fit_normalizer
from ..errors import InputError
from ..io.images import IMAGE_SUFFIXES, list_images, read_image

log = logging.getLogger("napari_superres.training")

PAIR_FOLDERS = (("lr", "hr"), ("low", "high"))  # matched case-insensitively, so LR/HR too
PERCENTILES = {"mode": "percentile", "low": 2.0, "high": 99.8}
_LR_TAIL = re.compile(r"([_-]?x\d+|[_-](lr|low))$", re.IGNORECASE)
_HR_TAIL = re.compile(r"[_-](hr|high)$", re.IGNORECASE)
_MAX_NAMES = 8  # files named in one error line


def _names(items, limit=_MAX_NAMES) -> str:
    items = list(items)
    text = ", ".join(str(i) for i in items[:limit])
    return text + (f" and {len(items) - limit} more" if len(items) > limit else "")


def to_slices(data: np.ndarray, axes: Optional[str] = None) -> np.ndarray:
    """Any image or stack -> N x H x W x C with C 1 (gray) or 3 (RGB): colour images keep their 3 channels
    (alpha dropped), other channel axes are split into separate gray images."""
    layout = make_layout(data.shape, axes)
    x = to_batches(data, layout)
    if layout.colour:
        return x[..., :3]
    if x.shape[-1] > 1:
        n, h, w, c = x.shape
        x = x.transpose(0, 3, 1, 2).reshape(n * c, h, w, 1)
    return x


@dataclass
class ImageFile:
    """One file, as training sees it (shapes after :func:`to_slices`)."""

    path: Path
    dtype: np.dtype
    slices: int
    height: int
    width: int
    channels: int
    axes: Optional[str]
    normalizers: dict  # "range" and "percentile" -> fitted Normalizer (plain numbers, cheap to keep)

    @property
    def name(self) -> str:
        return self.path.name

    def size(self) -> str:
        return f"{self.width}x{self.height}" + (f"x{self.slices}" if self.slices > 1 else "")


@dataclass
class Item:
    """A training or validation image: an HR file (and its LR partner in paired mode) and which slices."""

    hr: ImageFile
    lr: Optional[ImageFile] = None
    slices: tuple = ()

    @property
    def name(self) -> str:
        return self.hr.name


@dataclass
class DataSet:
    root: Path
    paired: bool
    items: list
    skipped: list = field(default_factory=list)  # files that are not images (named, not used)

    @property
    def files(self) -> list:
        return [it.hr for it in self.items]

    @property
    def n_images(self) -> int:
        return sum(len(it.slices) for it in self.items)

    @property
    def channels(self) -> set:
        return {it.hr.channels for it in self.items}

    @property
    def dtypes(self) -> list:
        return sorted({str(f.dtype) for it in self.items for f in (it.hr, it.lr) if f is not None})


def find_pair_folders(root: Path) -> Optional[tuple]:
    """(lr_dir, hr_dir) if ``root`` holds a known pair of subfolders, else None."""
    subdirs = {p.name.lower(): p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")}
    for lr, hr in PAIR_FOLDERS:
        if lr in subdirs and hr in subdirs:
            return subdirs[lr], subdirs[hr]
    return None


def _non_images(folder: Path) -> list:
    return sorted(
        p.name
        for p in folder.iterdir()
        if not p.name.startswith(".") and p.is_file() and p.suffix.lower() not in IMAGE_SUFFIXES
    )


def read_slices(path: Path) -> tuple:
    """(N x H x W x C array, axes) of an image file; InputError names the file if it cannot be used."""
    data, meta = read_image(path)
    axes = meta.get("axes")
    if data.dtype.kind not in "uif" or data.dtype.kind == "b":
        raise InputError(f"{path.name}: unsupported pixel type {data.dtype}")
    try:
        x = to_slices(data, axes)
    except InputError as e:
        raise InputError(f"{path.name}: {e}") from None
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise InputError(f"{path.name}: contains NaN or infinite values")
    return x, axes


def _probe(path: Path) -> ImageFile:
    x, axes = read_slices(path)
    n, h, w, c = x.shape
    return ImageFile(
        path=path,
        dtype=x.dtype,
        slices=n,
        height=h,
        width=w,
        channels=c,
        axes=axes,
        normalizers={
            "range": fit_normalizer(x[:1], "range", channel_axis=-1),
            "percentile": fit_normalizer(x, PERCENTILES, channel_axis=-1),
        },
    )


def _scan(folder: Path) -> tuple:
    """(ImageFiles, non-image names) of a folder; InputError naming every unreadable file."""
    if not folder.is_dir():
        raise InputError(f"not a folder: {folder}")
    paths = list_images(folder)
    skipped = _non_images(folder)
    if not paths:
        extra = f" (found only: {_names(skipped)})" if skipped else ""
        raise InputError(f"no images in {folder}{extra}; supported: {', '.join(IMAGE_SUFFIXES)}")
    files, bad = [], []
    for p in paths:
        try:
            files.append(_probe(p))
        except InputError as e:
            bad.append(str(e).replace(str(p), p.name))
    if bad:
        raise InputError(
            f"{len(bad)} file(s) in {folder} cannot be used; fix or remove them: " + "; ".join(bad[:_MAX_NAMES])
        )
    return files, skipped


def _pair_key(stem: str, tail) -> str:
    return tail.sub("", stem).lower()


def _pair(lr_dir: Path, hr_dir: Path, scale: int) -> tuple:
    lr_files, skip_lr = _scan(lr_dir)
    hr_files, skip_hr = _scan(hr_dir)
    lr_by = {_pair_key(f.path.stem, _LR_TAIL): f for f in lr_files}
    hr_by = {_pair_key(f.path.stem, _HR_TAIL): f for f in hr_files}
    only_lr = sorted(lr_by[k].name for k in lr_by.keys() - hr_by.keys())
    only_hr = sorted(hr_by[k].name for k in hr_by.keys() - lr_by.keys())
    if only_lr or only_hr:
        parts = []
        if only_hr:
            parts.append(f"{len(only_hr)} HR image(s) without an LR partner: {_names(only_hr)}")
        if only_lr:
            parts.append(f"{len(only_lr)} LR image(s) without an HR partner: {_names(only_lr)}")
        raise InputError(f"LR/HR pairs do not match by name in {lr_dir.parent}: " + "; ".join(parts))
    items, wrong = [], []
    for key in sorted(hr_by):
        lr, hr = lr_by[key], hr_by[key]
        ok = (
            lr.slices == hr.slices
            and lr.channels == hr.channels
            and lr.height * scale <= hr.height < (lr.height + 1) * scale
            and lr.width * scale <= hr.width < (lr.width + 1) * scale
        )
        if not ok:
            wrong.append(
                f"{hr.name} (LR {lr.size()}x{lr.channels}ch, HR {hr.size()}x{hr.channels}ch; "
                f"x{scale} needs HR {lr.width * scale}x{lr.height * scale})"
            )
        items.append(Item(hr=hr, lr=lr, slices=tuple(range(hr.slices))))
    if wrong:
        raise InputError(f"{len(wrong)} LR/HR pair(s) do not fit scale x{scale}: " + "; ".join(wrong[:_MAX_NAMES]))
    return items, [f"lr/{n}" for n in skip_lr] + [f"hr/{n}" for n in skip_hr]


def check_folder(root) -> Path:
    """InputError unless ``root`` is an existing folder."""
    root = Path(root)
    if not root.exists():
        raise InputError(f"data folder not found: {root}")
    if not root.is_dir():
        raise InputError(f"data folder is not a folder: {root}")
    return root


def load_folder(root, *, scale: int, hr_only: Optional[bool] = None) -> DataSet:
    """Scan a training (or validation) folder. ``hr_only`` None: paired if ``root`` has lr/hr subfolders."""
    root = check_folder(root)
    pair = find_pair_folders(root)
    if pair is not None and hr_only is not True:
        items, skipped = _pair(pair[0], pair[1], scale)
        return DataSet(root, True, items, skipped)
    if hr_only is False:
        raise InputError(
            f"no lr/hr (or low/high) subfolders in {root}: paired training needs them (or train HR-only)"
        )
    folder = pair[1] if pair is not None else root
    files, skipped = _scan(folder)
    return DataSet(root, False, [Item(hr=f, slices=tuple(range(f.slices))) for f in files], skipped)


def resolve_channels(data: DataSet, channels="auto") -> int:
    """The model's channels for this data; InputError for mixed or unusable channel counts."""
    found = {}
    for it in data.items:
        found.setdefault(it.hr.channels, []).append(it.name)
    if channels == "auto":
        if len(found) > 1:
            raise InputError(
                f"mixed channel counts: {len(found[3])} RGB image(s) ({_names(found[3], 3)}) and "
                f"{len(found[1])} gray ({_names(found[1], 3)}); use channels 1 to train on the luminance, "
                "or put RGB and gray images in separate folders"
            )
        return next(iter(found))
    channels = int(channels)
    if channels == 3 and 1 in found:
        raise InputError(f"a 3-channel (RGB) model needs RGB images; these are gray: {_names(found[1])}")
    return channels


def check_patch(data: DataSet, hr_patch: int, scale: int) -> None:
    """InputError listing the images smaller than the patch (HR-only: HR side; paired: LR side)."""
    small = []
    for it in data.items:
        f, need = (it.lr, hr_patch // scale) if data.paired else (it.hr, hr_patch)
        if f.height < need or f.width < need:
            small.append(f"{f.name} ({f.width}x{f.height})")
    if small:
        side = f"LR patch of {hr_patch // scale}" if data.paired else f"patch of {hr_patch}"
        raise InputError(
            f"{len(small)} image(s) smaller than the {side} pixels: {_names(small)}; use a smaller --patch"
        )


def split(data: DataSet, fraction: float, seed: int) -> tuple:
    """(train items, validation items): whole files are held out, chosen at random with ``seed``.

    One file alone (a single stack) is split by slices: the last block of slices is held out. A single 2D
    image cannot be split: it is all training, and the run has no validation.
    """
    items = list(data.items)
    if fraction <= 0:
        return items, []
    if len(items) == 1:
        it = items[0]
        n_val = int(round(fraction * len(it.slices)))
        n_val = min(max(n_val, 1), len(it.slices) - 1)
        if n_val <= 0:
            return items, []
        cut = len(it.slices) - n_val
        return [Item(it.hr, it.lr, it.slices[:cut])], [Item(it.hr, it.lr, it.slices[cut:])]
    n_val = min(max(int(round(fraction * len(items))), 1), len(items) - 1)
    order = np.random.default_rng(seed).permutation(len(items))
    val = sorted((items[i] for i in order[:n_val]), key=lambda it: it.name)
    train = sorted((items[i] for i in order[n_val:]), key=lambda it: it.name)
    return train, val


def choose_normalization(data: DataSet, requested: str = "auto") -> dict:
    """The model's normalisation: "range" for 8-bit data, percentiles (2 / 99.8) for anything else."""
    if requested == "range" or (requested == "auto" and data.dtypes == ["uint8"]):
        return {"mode": "range"}
    return dict(PERCENTILES)


def normalizer_of(f: ImageFile, spec: dict) -> Normalizer:
    return f.normalizers[spec["mode"]]


def summarize(root, *, scale: int = 2, hr_only: Optional[bool] = None) -> dict:
    """What a folder holds, for a UI: mode, image count, sizes, dtypes, channels, and the problem if any.
    Never raises for bad data: ``problem`` holds the one-line message instead."""
    try:
        data = load_folder(root, scale=scale, hr_only=hr_only)
    except InputError as e:
        return {"ok": False, "problem": str(e)}
    sizes = [(f.width, f.height) for f in data.files]
    return {
        "ok": True,
        "problem": None,
        "mode": "paired" if data.paired else "hr-only",
        "files": len(data.items),
        "images": data.n_images,
        "channels": sorted(data.channels),
        "dtypes": data.dtypes,
        "min_size": [min(w for w, _ in sizes), min(h for _, h in sizes)],
        "max_size": [max(w for w, _ in sizes), max(h for _, h in sizes)],
        "skipped": data.skipped,
    }
