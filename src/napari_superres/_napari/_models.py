"""The model list the widgets show: shipped and user models from the catalog, files the user browsed to, and
the user's library (rename, delete). Reads model descriptions from the ``.keras`` zip: no Keras here.

``LIBRARY.changed`` is emitted whenever the set of models changes (a training run saved a model, a model was
renamed or deleted, a file was browsed), so every open widget refreshes its list at once.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from psygnal import Signal

from napari_superres.errors import ModelError


class _Library:
    """Holder of the signal every widget listens to; ``changed`` carries the path to select ("" for none)."""

    changed = Signal(str)


LIBRARY = _Library()

# .keras files the user picked with "Browse..." in this session: path -> description dict (may be empty).
_BROWSED: dict[str, dict] = {}


@dataclass(frozen=True)
class Choice:
    """One entry of a model combo box: ``value`` is what the worker gets (a path), ``text`` what is shown."""

    text: str
    value: str
    description: dict
    source: str  # "shipped", "user" or "file"


def _scale_text(desc: dict) -> str:
    scale = desc.get("scale")
    return f"x{scale}" if scale else "x?"


def summary_line(desc: dict | None, source: str = "") -> str:
    """One line on a model: architecture, scale, channels and its validation PSNR against bicubic."""
    if not desc:
        return "No description in this file: scale and channels are found by probing the model."
    parts = []
    arch = desc.get("architecture")
    if arch:
        parts.append(str(arch))
    parts.append(_scale_text(desc))
    channels = desc.get("channels")
    if channels:
        parts.append("RGB" if channels == 3 else "grayscale")
    val = desc.get("validation") or {}
    psnr, bicubic = val.get("psnr"), val.get("bicubic_psnr")
    if isinstance(psnr, (int, float)) and isinstance(bicubic, (int, float)):
        parts.append(f"PSNR {psnr:.2f} dB (bicubic {bicubic:.2f})")
    elif isinstance(psnr, (int, float)):
        parts.append(f"PSNR {psnr:.2f} dB")
    if source:
        parts.append({"shipped": "shipped", "user": "your model", "file": "file"}.get(source, source))
    return ", ".join(parts)


def model_choices() -> list[Choice]:
    """Shipped models, then the user's, then browsed files; values are paths so names never collide."""
    from napari_superres.models.catalog import list_models

    choices = []
    seen = set()
    for info in list_models():
        desc = info.description or {}
        text = f"{info.name} ({_scale_text(desc)})" + ("" if info.source == "shipped" else " [yours]")
        value = str(Path(info.path).resolve())
        seen.add(value)
        choices.append(Choice(text, value, desc, info.source))
    for value, desc in list(_BROWSED.items()):
        if value in seen:
            continue
        if not Path(value).is_file():
            del _BROWSED[value]
            continue
        choices.append(Choice(f"{Path(value).name} ({_scale_text(desc)}) [file]", value, desc, "file"))
    return choices


def default_choice(choices: list[Choice]) -> Choice | None:
    """The catalog's default model if present, else the first one."""
    from napari_superres.models import catalog

    default = getattr(catalog, "DEFAULT_MODEL", None)
    for choice in choices:
        if choice.source == "shipped" and Path(choice.value).stem == default:
            return choice
    return choices[0] if choices else None


def _named(choices: list[Choice], name: str | None) -> Choice | None:
    return next((c for c in choices if c.source == "shipped" and Path(c.value).stem == name), None)


def _can_take(choice: Choice) -> bool:
    """Whether the engine can run this model on an image layer: 1-channel models take each channel on its
    own, 3-channel ones take RGB or grey replicated (``engine.axes.plan_channels``); a model without a
    description is probed at run time, so it is not ruled out here."""
    return (choice.description or {}).get("channels") in (None, 1, 3)


def propose(choices: list[Choice], layer) -> tuple[Choice | None, str]:
    """The model to propose for ``layer`` and a one-line reason: a photo model for RGB layers, a microscopy
    model (the catalog's default, else one at x2, else any) for single-channel and multichannel non-RGB
    layers (fluorescence). When the suited kind is missing, the other kind is proposed and the reason says
    so; when no model can take the layer, no model, and the reason says what is missing and how to get one."""
    from napari_superres.models import catalog

    usable = [c for c in choices if _can_take(c)]
    photo = default_choice([c for c in usable if catalog.model_domain(c.description) == "photo"])
    micro = [c for c in usable if catalog.model_domain(c.description) == "microscopy"]
    micro_pick = _named(micro, catalog.DEFAULT_MICROSCOPY_MODEL) or next(
        (c for c in micro if c.description.get("scale") == 2), micro[0] if micro else None)
    if layer is None:
        return photo, ""
    if layer.rgb:
        if photo is not None:
            return photo, "Photo model proposed: the layer is RGB."
        if micro_pick is not None:
            stem = _stem(micro_pick)
            return micro_pick, f"Microscopy model proposed ({stem}), as no photo model is installed: the layer is RGB."
        return None, f"No model for this RGB layer: no installed model takes it (1- or 3-channel models do); {_HOW_TO_GET}."
    what = f"the layer is not RGB ({layer.dtype}, channels of one kind, as fluorescence)"
    if micro_pick is not None:
        return micro_pick, f"Microscopy model proposed: {what}."
    if photo is not None:
        return photo, f"Photo model proposed ({_stem(photo)}), as no microscopy model is installed: {what}."
    return None, f"No model for this layer: no installed model takes it (1- or 3-channel models do); {_HOW_TO_GET}."


# What a user without a suitable model can do, from the widgets.
_HOW_TO_GET = "train one in the Train widget or pick a .keras file with the Browse button"


def _stem(choice: Choice) -> str:
    return Path(choice.value).stem


def remember_browsed(path: str | os.PathLike, description: dict | None) -> str:
    """Add a browsed .keras file to the lists of every widget and return its key (resolved path)."""
    value = str(Path(path).resolve())
    _BROWSED[value] = dict(description or {})
    LIBRARY.changed.emit(value)
    return value


def read_file_description(path: str | os.PathLike) -> dict | None:
    """The description stored inside a .keras file, or None; ModelError if it is not a usable .keras file."""
    from napari_superres.models.description import read_description

    path = Path(path)
    if path.suffix.lower() != ".keras":
        raise ModelError(f"{path.name} is not a .keras model file")
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    try:
        return read_description(path)
    except ModelError:
        raise
    except Exception as exc:  # a damaged zip: say so in one line
        raise ModelError(f"{path.name} is not a readable .keras file ({exc})") from None


# ---------------------------------------------------------------------------------------------- user library

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\- ]{0,63}$")


def check_model_name(name: str) -> str:
    """A user model name usable as a file name on every OS; ModelError with the reason otherwise."""
    name = name.strip()
    if name.lower().endswith(".keras"):
        name = name[: -len(".keras")]
    if not _NAME_RE.match(name) or name.endswith((".", " ")):
        raise ModelError(
            f"invalid model name {name!r}: use letters, digits, '-', '_', '.' or spaces (at most 64 characters)"
        )
    return name


def user_model_path(name: str) -> Path:
    """Where a user model of this name lives (the folder is created)."""
    from napari_superres.models.catalog import user_models_dir

    folder = Path(user_models_dir())
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{check_model_name(name)}.keras"


def user_models() -> list[Choice]:
    return [c for c in model_choices() if c.source == "user"]


def rename_user_model(path: str | os.PathLike, new_name: str) -> Path:
    """Rename a user model file (and the name in its description); refuses to overwrite another model."""
    from napari_superres.models.description import read_description, write_description

    src = Path(path)
    dst = user_model_path(new_name)
    if not src.is_file():
        raise ModelError(f"model file not found: {src}")
    if dst.exists() and dst.resolve() != src.resolve():
        raise ModelError(f"a model named {dst.stem!r} already exists")
    os.replace(src, dst)
    run_dir, new_run_dir = _run_dir(src), _run_dir(dst)
    if run_dir.is_dir() and not new_run_dir.exists():  # the training log and checkpoint go with the model
        os.replace(run_dir, new_run_dir)
    desc = read_description(dst)
    if desc is not None and desc.get("name") != dst.stem:
        desc["name"] = dst.stem
        write_description(dst, desc)
    LIBRARY.changed.emit(str(dst.resolve()))
    return dst


def delete_user_model(path: str | os.PathLike) -> None:
    """Delete a model from the user's library (only files inside the user models folder)."""
    from napari_superres.models.catalog import user_models_dir

    path = Path(path).resolve()
    if path.parent != Path(user_models_dir()).resolve():
        raise ModelError(f"{path.name} is not in your model library; it was not deleted")
    path.unlink(missing_ok=True)
    shutil.rmtree(_run_dir(path), ignore_errors=True)
    LIBRARY.changed.emit("")


def _run_dir(model_path: Path) -> Path:
    """The training run folder (log, checkpoint) kept next to a trained model."""
    from napari_superres.training.runfiles import run_dir

    return Path(run_dir(model_path))


def user_model_path_exists(name: str) -> bool:
    """True if the user library has a model of this name (an invalid name counts as taken)."""
    try:
        return user_model_path(name).exists()
    except ModelError:
        return True


def fit_hint(choice: Choice | None, layer) -> str:
    """How the model's channels meet the layer's, said up front (what the engine's auto mode does)."""
    if choice is None or layer is None:
        return ""
    channels = (choice.description or {}).get("channels")
    if channels == 1 and layer.rgb:
        return "1-channel model on an RGB layer: each colour channel is upscaled separately."
    if channels == 3 and not layer.rgb:
        return "RGB model on a grayscale layer: the grey image goes in as three equal channels, averaged back."
    return ""
