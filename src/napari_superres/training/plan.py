"""Everything about a run that can be checked before Keras loads: options, architecture and scale, the output
path, the data (every file read once), the validation split and its bicubic baseline.

A mistake costs seconds, not a run; and nothing is written before all of it passed. No Keras here: the CLI
and the napari worker call :func:`prepare` first, then ``trainer.train(config, plan=...)``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Optional

from ..errors import InputError, OutputError
from ..io.images import check_folder_writable
from ..models.registry import ArchSpec, get_arch
from .config import TrainConfig
from .degrade import Degradation
from .folders import DataSet, check_patch, choose_normalization, load_folder, resolve_channels, split
from .runfiles import checkpoint_path, run_dir
from .validation import baseline, make_samples, metric_kind

log = logging.getLogger("napari_superres.training")


@dataclass
class Plan:
    cfg: TrainConfig
    spec: ArchSpec
    data: DataSet
    channels: int
    train_items: list
    val_items: list
    normalization: dict
    degradation: Degradation
    samples: list  # validation images (validation.Sample)
    kind: Optional[str]  # metric convention: "uint8" or "normalised" (None without validation)
    base: dict  # bicubic / Lanczos scores on the validation images
    warnings: list = field(default_factory=list)

    @property
    def train_images(self) -> int:
        return sum(len(it.slices) for it in self.train_items)


def check_output(cfg: TrainConfig) -> None:
    """OutputError/InputError unless the run may write ``cfg.out`` (and resume finds its checkpoint)."""
    out = cfg.out
    check_folder_writable(out.parent)
    if out.is_dir():
        raise OutputError(f"output is a folder, not a model file: {out}")
    ckpt = checkpoint_path(out)
    if cfg.resume:
        if not ckpt.exists():
            raise InputError(f"nothing to resume: no checkpoint of {out.name} at {ckpt}")
        return
    if out.exists() and not cfg.overwrite:
        raise OutputError(f"model exists: {out} (use --overwrite to replace it, or --resume to continue its run)")
    if ckpt.exists() and not cfg.overwrite:
        raise OutputError(
            f"an unfinished run of {out.name} is in {run_dir(out)} "
            "(use --resume to continue it, or --overwrite to start over)"
        )


def prepare(config: TrainConfig) -> Plan:
    cfg = config.check()
    spec = get_arch(cfg.arch)
    if cfg.scale not in spec.scales:
        raise InputError(f"{cfg.arch} supports scales {', '.join(map(str, spec.scales))}, not x{cfg.scale}")
    check_output(cfg)

    data = load_folder(cfg.data_dir, scale=cfg.scale, hr_only=cfg.hr_only)
    channels = resolve_channels(data, cfg.channels)
    check_patch(data, cfg.hr_patch, cfg.scale)
    if cfg.val_dir is not None:
        val_data = load_folder(cfg.val_dir, scale=cfg.scale, hr_only=None if data.paired else True)
        resolve_channels(val_data, channels)
        train_items, val_items, val_paired = data.items, val_data.items, val_data.paired
    else:
        train_items, val_items = split(data, cfg.val_fraction, cfg.seed)
        val_paired = data.paired
    # microscope: percentile 2 / 99.8 whatever the dtype, the map the model learns through (degrade.renormalise)
    normalization = choose_normalization(data, "percentile" if cfg.degradation == "microscope" else cfg.normalization)
    deg = Degradation.from_config(cfg)
    samples = make_samples(
        val_items, scale=cfg.scale, channels=channels, paired=val_paired, degradation=deg,
        normalization=normalization, limit=cfg.val_max_images,
    )
    kind = metric_kind(s.hr.dtype for s in samples) if samples else None
    base = baseline(samples, cfg.scale, kind) if samples else {}
    warnings = []
    if data.skipped:
        warnings.append(f"not images, skipped: {', '.join(data.skipped)}")
    if not samples:
        warnings.append("no validation images: the model of the last epoch is kept")
    for w in warnings:
        log.warning(w)
    return Plan(cfg, spec, data, channels, train_items, val_items, normalization, deg, samples, kind, base, warnings)
