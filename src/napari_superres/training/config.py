"""What a training run is asked to do: one small dataclass, checked before any data is read.

Plain Python (no Keras): the napari Train widget builds a :class:`TrainConfig` in the viewer's process and
sends it to the worker process that trains.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

from ..errors import InputError

DEGRADATIONS = ("bicubic", "area", "microscope")
# What the Train widget shows for each degradation.
DEGRADATION_LABELS = {"bicubic": "bicubic", "area": "area (pixel binning)", "microscope": "microscope (binning + noise)"}
LOSSES = ("l1", "mse", "charbonnier")
GAN_LOSSES = ("relativistic", "vanilla")
NORMALIZATIONS = ("auto", "range", "percentile")
# Adam's starting rate (cosine decay to a tenth over the run). ESPCN, small and shallow, learns fastest at
# 3e-3 on short CPU budgets (measured against 1e-3, 2e-3, 6e-3 and 1e-2); deeper networks take the usual 5e-4.
DEFAULT_LEARNING_RATE = {"espcn": 3e-3}
FALLBACK_LEARNING_RATE = 5e-4


@dataclass
class TrainConfig:
    """A training run.

    Data: ``data_dir`` holds either ``lr/`` and ``hr/`` subfolders (also ``low/high``, ``LR/HR``; pairs matched
    by file name) or high-resolution images from which low-resolution inputs are made on the fly
    (``hr_only``; ``None`` decides from the folder). ``val_dir`` (same layout) is the validation set; without
    it, ``val_fraction`` of the files are held out (by file, never by patch).

    Degradation (HR-only): ``degradation`` ``"bicubic"`` (antialiased, the benchmark convention) or ``"area"``
    (pixel binning, as a camera with larger pixels) or ``"microscope"`` (a fluorescence camera: binning, shot
    noise over a range of photon levels, read noise, offset, integer counts; the model sees LR and HR through
    the LR's percentile map, as the engine at inference); ``blur`` a Gaussian PSF sigma in HR pixels applied first;
    ``noise`` the largest Gaussian noise sigma (each patch draws one in [0, noise], in units of the normalised
    range 0..1); ``poisson`` photons at the top of the range (0: no shot noise; smaller is noisier);
    ``jpeg`` the lowest JPEG quality (each patch draws one in [jpeg, 95]; 0: none).

    ``learning_rate``: Adam's starting rate, decayed to a tenth over the run by a cosine (None: 3e-3 for
    espcn, 5e-4 for the others).

    ``patch`` is the HR patch side in pixels (rounded down to a multiple of ``scale``); ``steps_per_epoch``
    batches of ``batch`` patches make an epoch. ``channels`` "auto" follows the data (1 gray, 3 RGB); 1 on
    RGB data trains on the luminance. ``normalization`` "auto" is "range" for 8-bit data and "percentile"
    (2 / 99.8, per file, as the engine does at inference) for anything else.

    ``gan``: adversarial training (TensorFlow backend): the generator learns on the pixel loss alone for
    ``gan_pretrain`` steps (None: the first half of the run), then also against a patch discriminator, with
    weight ``gan_weight`` (``gan_loss`` "relativistic" average as ESRGAN, or "vanilla").
    """

    data_dir: Union[str, Path]
    out: Union[str, Path]
    arch: str = "espcn"
    scale: int = 2
    epochs: int = 20
    steps_per_epoch: int = 100
    patch: int = 96
    batch: int = 16
    hr_only: Optional[bool] = None
    degradation: str = "bicubic"
    blur: float = 0.0
    noise: float = 0.0
    poisson: float = 0.0
    jpeg: int = 0
    loss: str = "l1"
    learning_rate: Optional[float] = None
    gan: bool = False
    gan_loss: str = "relativistic"
    gan_weight: float = 5e-3
    gan_pretrain: Optional[int] = None
    resume: bool = False
    overwrite: bool = False
    val_dir: Optional[Union[str, Path]] = None
    val_fraction: float = 0.1
    val_max_images: int = 16
    seed: int = 0
    channels: Union[str, int] = "auto"
    normalization: str = "auto"
    tensorboard: bool = False
    workers: int = 1
    arch_options: dict = field(default_factory=dict)

    def __post_init__(self):
        self.data_dir = Path(self.data_dir).expanduser()
        self.out = Path(self.out).expanduser()
        if self.val_dir is not None:
            self.val_dir = Path(self.val_dir).expanduser()

    def to_dict(self) -> dict:
        """JSON-ready copy (paths as strings)."""
        d = dataclasses.asdict(self)
        return {k: str(v) if isinstance(v, Path) else v for k, v in d.items()}

    @property
    def lr(self) -> float:
        if self.learning_rate is None:
            return DEFAULT_LEARNING_RATE.get(self.arch, FALLBACK_LEARNING_RATE)
        return float(self.learning_rate)

    @property
    def pretrain_steps(self) -> int:
        if self.gan_pretrain is None:
            return self.epochs * self.steps_per_epoch // 2
        return int(self.gan_pretrain)

    @property
    def hr_patch(self) -> int:
        return int(self.patch) - int(self.patch) % int(self.scale)

    @property
    def lr_patch(self) -> int:
        return self.hr_patch // int(self.scale)

    def check(self) -> "TrainConfig":
        """Raise InputError (one line) for values no run can use. Returns self."""
        bad = []

        def positive(name, minimum=1):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < minimum:
                bad.append(f"{name.replace('_', '-')} must be an integer >= {minimum}, not {v!r}")

        for name in ("epochs", "steps_per_epoch", "batch", "scale", "workers"):
            positive(name)
        positive("patch", 4)
        if not bad and self.lr_patch < 4:
            bad.append(f"patch {self.patch} is too small for scale {self.scale}: use at least {4 * self.scale}")
        if self.degradation not in DEGRADATIONS:
            bad.append(f"degradation must be one of {', '.join(DEGRADATIONS)}, not {self.degradation!r}")
        if self.loss not in LOSSES:
            bad.append(f"loss must be one of {', '.join(LOSSES)}, not {self.loss!r}")
        if self.gan_loss not in GAN_LOSSES:
            bad.append(f"gan-loss must be one of {', '.join(GAN_LOSSES)}, not {self.gan_loss!r}")
        if self.degradation == "microscope" and self.normalization == "range":
            bad.append("the microscope degradation trains on percentile-normalised values: "
                       "use normalization percentile (or auto)")
        if self.normalization not in NORMALIZATIONS:
            bad.append(f"normalization must be one of {', '.join(NORMALIZATIONS)}, not {self.normalization!r}")
        if self.channels not in ("auto", 1, 3):
            bad.append(f"channels must be 'auto', 1 or 3, not {self.channels!r}")
        for name in ("blur", "noise", "poisson", "gan_weight", "gan_pretrain"):
            if getattr(self, name) is not None and getattr(self, name) < 0:
                bad.append(f"{name.replace('_', '-')} must be >= 0, not {getattr(self, name)!r}")
        if not 0 <= self.jpeg <= 95:
            bad.append(f"jpeg quality must be in 1..95 (0: no JPEG), not {self.jpeg!r}")
        if not 0 <= self.val_fraction < 1:
            bad.append(f"val-fraction must be in [0, 1), not {self.val_fraction!r}")
        if self.learning_rate is not None and not self.learning_rate > 0:
            bad.append(f"learning-rate must be > 0, not {self.learning_rate!r}")
        if self.out.suffix != ".keras":
            bad.append(f"the output model must be a .keras file, not {self.out.name!r}")
        if bad:
            raise InputError("; ".join(bad))
        return self
