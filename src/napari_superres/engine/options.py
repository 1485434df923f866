"""The settings of one upscale, in one object, and the run's progress and cancel hooks.

:class:`UpscaleOptions` is what every front end builds once (the Python API from its keywords, the CLI from
its flags, the Upscale widget from its fields) and every path of the engine takes as it is: in memory, Dask,
out of core, and the model worker, which receives it through its pipe. A new option is a new field here, with
its default and its check; nothing else declares the list.

The model is not an option: it is resolved differently in each process (a name or path in napari's process,
a loaded model in the worker, a picklable handle on Dask workers), while the options are plain values that
pickle, compare and cross process boundaries unchanged.

Imports no Keras: the napari process builds these too.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

from ..errors import Cancelled, InputError
from .axes import CHANNEL_MODES
from .normalize import Normalizer, parse_spec

Z_METHODS = ("model", "linear")


@dataclass(frozen=True)
class UpscaleOptions:
    """How to upscale (see ``napari_superres.upscale`` for what each setting does to the result).

    - ``axes``: the data's axes in napari order (``YX``, ``YXC``, ``TZYX``...); None: inferred.
    - ``tile``: core tile size in input pixels (None: the whole image when it fits one call, else windows
      of one call each, cut so that the least context is computed twice; 0: the whole image). ``overlap``:
      context pixels per tile side (None: the model's own).
    - ``tta``: x8 self-ensemble. ``batch_size``: windows per model call (None: 512x512 pixels a call for EDSR-x2,
      more for lighter models).
    - ``normalization``: None (the model's), ``"range"``, ``"percentile"``, a dict, or a fitted
      ``normalize.Normalizer`` (shared statistics for the parts of a larger stack).
    - ``channel_mode``: how the data's channels meet the model's (``axes.plan_channels``).
    - ``precision``: None/``"auto"``, ``"float32"``, ``"bfloat16"`` or ``"float16"`` (``engine.precision``
      checks it, together with the ``NAPARI_SUPERRES_PRECISION`` default).
    - ``upscale_z``: also upscale Z first (``engine.anisotropic``), by the model's scale; ``z_factor``: by
      this factor instead (above 1 it upscales Z on its own); ``z_method``: ``"model"`` or ``"linear"``.
    - ``bands``: how a scene's bands meet the model (``engine.scene``): ``"auto"``, ``"each"``, ``"rgb"`` or
      three band indices.
    """

    axes: Optional[str] = None
    tile: Optional[int] = None
    overlap: Optional[int] = None
    tta: bool = False
    batch_size: Optional[int] = None
    normalization: Any = None
    channel_mode: str = "auto"
    precision: Optional[str] = None
    upscale_z: bool = False
    z_factor: Optional[int] = None
    z_method: str = "model"
    bands: Union[str, tuple] = "auto"

    def __post_init__(self):
        for name, least in (("tile", 0), ("overlap", 0), ("batch_size", 1)):
            value = getattr(self, name)
            if value is None:
                continue
            try:
                number = int(value)
            except (TypeError, ValueError):
                raise InputError(f"{name} must be a whole number, got {value!r}") from None
            if number < least:
                raise InputError(f"{name} must be >= {least}, got {value}")
        if self.channel_mode not in CHANNEL_MODES:
            raise InputError(f"Unknown channel_mode {self.channel_mode!r}; use one of {', '.join(CHANNEL_MODES)}.")
        if self.normalization is not None and not isinstance(self.normalization, Normalizer):
            parse_spec(self.normalization)
        if self.z_method not in Z_METHODS:
            raise InputError(f"Unknown Z method {self.z_method!r}; use one of {', '.join(Z_METHODS)}.")
        if self.z_factor is not None and int(self.z_factor) < 1:
            raise InputError("Give the Z factor (an integer >= 1).")
        if isinstance(self.bands, list):
            object.__setattr__(self, "bands", tuple(self.bands))  # hashable, and equal after a JSON round trip

    def replace(self, **settings) -> "UpscaleOptions":
        return dataclasses.replace(self, **settings)

    def xy_only(self) -> "UpscaleOptions":
        """These options, refused with a clear error if they ask what an array upscale cannot do: Z upscaling
        and scene bands need the file's geometry and are done by ``napari_superres.upscale_path`` (or
        ``engine.anisotropic.upscale_z`` and ``engine.scene.upscale_scene``)."""
        if self.z_upscaled:
            raise InputError("upscale works in Y and X: upscale Z with napari_superres.upscale_path (z_factor=...) "
                             "or engine.anisotropic.upscale_z")
        if self.bands != "auto":
            raise InputError("bands apply to scenes read from files: use napari_superres.upscale_path (bands=...)")
        return self

    @property
    def z_upscaled(self) -> bool:
        """Whether Z is upscaled: a ``z_factor`` above 1, or ``upscale_z`` without a factor."""
        return (self.z_factor or 1) > 1 or (bool(self.upscale_z) and self.z_factor is None)

    def z_factor_for(self, model_scale: int) -> int:
        """The factor Z is upscaled by with a model of ``model_scale`` (1: Z is left as it is)."""
        if not self.z_upscaled:
            return 1
        return int(self.z_factor or model_scale)

    def axis_factors(self, axes: str, model_scale: int) -> tuple:
        """How much each of ``axes`` grows: Y and X by the model's scale, Z by :meth:`z_factor_for`, others 1."""
        z = self.z_factor_for(model_scale)
        return tuple(int(model_scale) if a in "YX" else z if a == "Z" else 1 for a in axes)

    def upscaled_shape(self, shape, axes: str, model_scale: int) -> tuple:
        """The result's shape for data of ``shape`` and ``axes``."""
        return tuple(int(n) * f for n, f in zip(shape, self.axis_factors(axes, model_scale)))


def as_options(options: Optional[UpscaleOptions], settings: dict) -> UpscaleOptions:
    """The options a keyword-compatible function runs with: ``options`` (or the defaults) with the keyword
    ``settings`` applied."""
    if options is not None and not isinstance(options, UpscaleOptions):
        raise TypeError(f"options must be UpscaleOptions, not {type(options).__name__}")
    try:
        return dataclasses.replace(options or UpscaleOptions(), **settings)
    except TypeError as exc:  # an unknown keyword
        names = ", ".join(f.name for f in dataclasses.fields(UpscaleOptions))
        raise TypeError(f"{exc}; the upscale options are: {names}") from None


@dataclass(frozen=True)
class RunControl:
    """Progress and cancel of one run. ``progress(done, total)`` is told after each step; ``cancel`` (a
    callable returning True to stop, or a ``threading.Event``) is asked before each step."""

    progress: Optional[Callable[[int, int], None]] = None
    cancel: Any = None

    def __post_init__(self):
        c = self.cancel
        if c is not None and not hasattr(c, "is_set") and not callable(c):
            raise TypeError("cancel must be a threading.Event or a callable returning bool")

    def cancelled(self) -> bool:
        c = self.cancel
        if c is None:
            return False
        return bool(c.is_set() if hasattr(c, "is_set") else c())

    def check(self, message: str = "Cancelled by the user.") -> None:
        """Raise :class:`Cancelled` when the user asked to stop."""
        if self.cancelled():
            raise Cancelled(message)

    def report(self, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(done, total)

    @property
    def active(self) -> bool:
        """Whether anyone listens (a run without hooks can skip the bookkeeping)."""
        return self.progress is not None or self.cancel is not None


NO_CONTROL = RunControl()
