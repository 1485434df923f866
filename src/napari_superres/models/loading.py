"""Load and save super-resolution models: ours, and any Keras SR model a user brings.

A model file is a Keras 3 ``.keras`` zip, loaded with ``safe_mode=True``. What the engine needs to know
(scale, channels, input multiple, tile context, normalisation) comes from the description stored in the file,
or, for a model without one, is found by running the model on a small zero input.
"""

import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from ..errors import InputError, ModelError
from . import layers as _registered_layers  # noqa: F401  (registers our layers before any load)
from .catalog import resolve_model
from .description import read_description, write_description
from .graph import working_floats_per_pixel
from .registry import ARCHITECTURES, geometry

DEFAULT_OVERLAP = 16  # tile context (LR pixels) for a model whose receptive field is not stated
PROBE_MULTIPLES = (1, 2, 4, 8, 16, 32, 64)
UNSAFE_HINT = "pass allow_unsafe=True (--allow-unsafe) only if you trust its source"


@dataclass
class SRModel:
    """A loaded model and what the engine needs to run it."""

    name: str
    path: Path | None
    keras_model: keras.Model
    scale: int
    channels: int
    multiple: int = 1
    overlap: int = DEFAULT_OVERLAP
    normalization: dict = field(default_factory=lambda: {"mode": "range"})
    description: dict = field(default_factory=dict)
    fixed_size: tuple | None = None
    eager: bool = False  # set when the compiled path fails for this model's layers
    precision: str = "float32"  # arithmetic of keras_model (see models/precision.py)
    precision_reason: str = ""  # why the engine chose that precision; empty: not chosen yet
    variants: dict = field(default_factory=dict, repr=False, compare=False)  # precision -> SRModel, shared
    _working_floats: tuple = field(default=(), repr=False, compare=False)  # (value,) once measured

    @property
    def working_floats(self) -> float | None:
        """Values the model holds at its widest step per input pixel (models/graph.py); None: unknown."""
        if not self._working_floats:
            self._working_floats = (working_floats_per_pixel(self.keras_model),)
        return self._working_floats[0]

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Run the model in inference mode on a float32 NHWC batch; returns (N, H*s, W*s, C) float32, possibly
        read-only (a view of the backend's result: copy it before writing into it).

        ``predict_on_batch`` keeps one compiled function per model (TensorFlow retraces once for a new shape
        and then generalises; JAX compiles once per tile shape), so repeated calls with tiles are cheap.
        """
        batch = np.asarray(batch, dtype=np.float32)
        if batch.ndim != 4 or batch.shape[-1] != self.channels:
            raise InputError(
                f"model {self.name} takes (N, H, W, {self.channels}) batches, got shape {batch.shape}"
            )
        if self.fixed_size is not None and tuple(batch.shape[1:3]) != tuple(self.fixed_size):
            raise InputError(f"model {self.name} takes only {self.fixed_size[0]}x{self.fixed_size[1]} tiles")
        out = np.asarray(self._run(batch), dtype=np.float32)
        n, h, w, c = batch.shape
        if out.shape != (n, h * self.scale, w * self.scale, c):
            raise ModelError(f"model {self.name} returned shape {out.shape} for input {batch.shape}")
        return out

    def _run(self, batch):
        if not self.eager:
            try:
                if keras.backend.backend() == "tensorflow":
                    return _tensorflow_predict(self.keras_model, batch)
                return self.keras_model.predict_on_batch(batch)
            except Exception:
                # Some layers cannot be traced with unknown H and W (e.g. UpSampling2D "bilinear" on
                # TensorFlow, keras-team/keras#22079); they still run eagerly, only slower.
                self.eager = True
        return keras.ops.convert_to_numpy(self.keras_model(batch, training=False))

    def __repr__(self):
        return f"SRModel({self.name!r}, scale={self.scale}, channels={self.channels}, path={self.path})"


def _tensorflow_predict(model: keras.Model, batch: np.ndarray) -> np.ndarray:
    """``predict_on_batch`` without its copy of the output: a read-only view of TensorFlow's float32 result
    (the output is the largest array of a run, 16x the input at x4; the engine reads it once)."""
    model.make_predict_function()
    out = model.predict_function([(batch,)])
    if isinstance(out, (list, tuple, dict)) or out.dtype.name != "float32":
        return keras.tree.map_structure(keras.ops.convert_to_numpy, out)
    return np.asarray(memoryview(out))


def _first_line(err: BaseException) -> str:
    """The first line of a Keras error (the rest is a trace of the layer calls), at most 300 characters."""
    text = str(err).strip().splitlines()
    return text[0][:300] if text else type(err).__name__


def _check_file(path: Path) -> None:
    if path.suffix.lower() in (".h5", ".hdf5"):
        raise ModelError(
            f"{path.name} is a legacy HDF5 model; re-save it in the Keras 3 format: model.save('name.keras')"
        )
    if not zipfile.is_zipfile(path):
        raise ModelError(f"{path} is not a Keras model file (a .keras file is a zip archive)")
    with zipfile.ZipFile(path) as z:
        if "config.json" not in z.namelist():
            raise ModelError(f"{path} is a zip archive but not a Keras model (no config.json inside)")
    if path.suffix != ".keras":
        raise ModelError(f"{path} looks like a Keras model; Keras loads it only with a .keras suffix")


def _read_keras(path: Path, allow_unsafe: bool) -> keras.Model:
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as e:  # Keras raises ValueError/TypeError/KeyError... for every kind of bad file
        msg = str(e)
        unsafe = "safe_mode" in msg or "unsafe" in msg.lower()
        if not unsafe:
            raise ModelError(f"cannot load model {path.name}: {_first_line(e)}") from None
        if not allow_unsafe:
            raise ModelError(
                f"model {path.name} needs unsafe code to load (a Lambda layer or Python function); {UNSAFE_HINT}"
            ) from None
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=False)
    except Exception as e:
        raise ModelError(f"cannot load model {path.name}: {_first_line(e)}") from None


def _io_shapes(model) -> tuple[int, tuple | None]:
    """(channels, fixed (h, w) or None) of a single-input NHWC image-to-image model."""
    try:
        inputs, outputs = model.inputs, model.outputs
    except (AttributeError, ValueError):
        inputs = outputs = None
    if not inputs or not outputs:
        raise ModelError(f"model {model.name} has no defined input; build it from keras.Input((None, None, C))")
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ModelError(f"model {model.name} must have one input and one output image")
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 4:
        raise ModelError(f"model {model.name} takes input of shape {shape}; expected (batch, height, width, channels)")
    channels = shape[-1]
    if channels not in (1, 3):
        raise ModelError(f"model {model.name} has {channels} input channels; supported are 1 (gray) and 3 (RGB)")
    if model.outputs[0].shape[-1] != channels:
        raise ModelError(f"model {model.name} maps {channels} channels to {model.outputs[0].shape[-1]}")
    fixed = None if shape[1] is None or shape[2] is None else (int(shape[1]), int(shape[2]))
    return channels, fixed


def _run_zero(model, h, w, channels):
    zeros = np.zeros((1, h, w, channels), np.float32)
    try:
        return np.asarray(model.predict_on_batch(zeros)).shape
    except Exception:  # see SRModel._run
        return keras.ops.convert_to_numpy(model(zeros, training=False)).shape


def probe_geometry(model, channels, fixed=None) -> tuple[int, int]:
    """(scale, multiple) of an SR model found by running it on zero images.

    The multiple is the smallest m of 1, 2, 4, ... for which an input of (5m, 7m) pixels runs: the odd
    factors make any pooling grid that m does not align break, so a too small m fails."""
    tries = [(fixed, 1)] if fixed else [((5 * m, 7 * m), m) for m in PROBE_MULTIPLES]
    error = None
    for (h, w), m in tries:
        try:
            out = _run_zero(model, h, w, channels)
        except Exception as e:  # shapes that do not fit the model raise backend-specific errors
            error = e
            continue
        if len(out) != 4 or out[1] % h or out[2] % w or out[1] // h != out[2] // w or out[1] < h:
            raise ModelError(
                f"model {model.name} is not a super-resolution model with an integer scale: "
                f"input {h}x{w} gives output {'x'.join(map(str, out[1:3]))}"
            )
        return out[1] // h, m
    raise ModelError(f"model {model.name} fails on small test images: {_first_line(error)}")


def _wrap(model, path, desc: dict | None) -> SRModel:
    channels, fixed = _io_shapes(model)
    desc = dict(desc or {})
    if desc.get("scale") and desc.get("channels"):
        if int(desc["channels"]) != channels:
            raise ModelError(f"model {model.name}: its description says {desc['channels']} channels, the network has {channels}")
        scale, multiple = int(desc["scale"]), int(desc.get("multiple", 1))
    else:
        scale, multiple = probe_geometry(model, channels, fixed)
    name = desc.get("name") or (Path(path).stem if path else model.name)
    return SRModel(
        name=name,
        path=Path(path) if path else None,
        keras_model=model,
        scale=scale,
        channels=channels,
        multiple=multiple,
        overlap=int(desc.get("overlap", DEFAULT_OVERLAP)),
        normalization=desc.get("normalization") or {"mode": "range"},
        description=desc,
        fixed_size=fixed,
    )


def load_model(spec, *, allow_unsafe=False) -> SRModel:
    """An :class:`SRModel` from an SRModel (returned as is), a ``keras.Model``, a shipped or user model's name,
    or a path to a ``.keras`` file. Raises ModelError with one clear line for anything unusable."""
    if isinstance(spec, SRModel):
        return spec
    if isinstance(spec, keras.Model):
        return _wrap(spec, None, None)
    path = resolve_model(spec)
    _check_file(path)
    return _wrap(_read_keras(path, allow_unsafe), path, read_description(path))


def _standalone(model):
    """The same network without its optimizer, so the file holds the weights only (a third of the size
    after Adam training). Functional models share their layers; other models are saved as they are."""
    if getattr(model, "optimizer", None) is None or not hasattr(model, "_nodes_by_depth"):
        return model
    return keras.Model(model.inputs, model.outputs, name=model.name)


def complete_description(keras_model, description: dict | None, name: str) -> dict:
    """``description`` with the keys the engine needs filled in (probed where missing)."""
    desc = dict(description or {})
    channels, fixed = _io_shapes(keras_model)
    desc.setdefault("name", name)
    desc.setdefault("channels", channels)
    if "scale" not in desc or "multiple" not in desc:
        scale, multiple = probe_geometry(keras_model, channels, fixed)
        desc.setdefault("scale", scale)
        desc.setdefault("multiple", multiple)
    arch = desc.get("architecture")  # the builder's options change the receptive field
    desc.setdefault("overlap", geometry(arch, **(desc.get("options") or {}))[1] if arch in ARCHITECTURES
                    else DEFAULT_OVERLAP)
    desc.setdefault("normalization", {"mode": "range"})
    desc.setdefault("parameters", int(keras_model.count_params()))
    return desc


def finalized(keras_model, description: dict | None):
    """The form of ``keras_model`` that is saved, and its description: the architecture's ``finalize`` hook
    (see ``registry.ArchSpec``) applied, e.g. SPAN's training branches merged into plain convolutions."""
    desc = dict(description or {})
    spec = ARCHITECTURES.get(desc.get("architecture"))
    if spec is None or spec.finalize is None:
        return keras_model, desc
    keras_model, desc["options"] = spec.finalize(keras_model, dict(desc.get("options") or {}))
    return keras_model, desc


def save_model(keras_model, path, description=None) -> Path:
    """Save ``keras_model`` with its description as ``path`` (a ``.keras`` file), atomically: written under a
    temporary name in the same folder, then renamed. The model is saved in its architecture's inference form
    (:func:`finalized`). Returns the path."""
    path = Path(path)
    if path.suffix != ".keras":
        raise ModelError(f"a model file must end in .keras, not {path.name}")
    if not path.parent.is_dir():
        raise ModelError(f"folder does not exist: {path.parent}")
    keras_model, description = finalized(keras_model, description)
    desc = complete_description(keras_model, description, path.stem)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".keras", dir=path.parent)
    os.close(fd)
    try:
        _standalone(keras_model).save(tmp)
        write_description(tmp, desc)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as e:
        raise ModelError(f"cannot save model to {path}: {e}") from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path
