"""Where models live and how a name becomes a file. No Keras here: the napari process lists models too.

Shipped models are ``models/weights/<name>.keras`` inside the package, each with an optional model card
``<name>.md``. Each model states its domain ("photo" or "microscopy", :func:`model_domain`). User models are ``<name>.keras`` files in :func:`user_models_dir`.
"""

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelError
from .description import read_description

SHIPPED_DIR = Path(__file__).parent / "weights"
DEFAULT_MODEL = "edsr-x2"
# Proposed for single-channel and multichannel non-RGB layers (fluorescence) when installed.
DEFAULT_MICROSCOPY_MODEL = "fluo-edsr-x2"
DOMAINS = ("photo", "microscopy")
# Shipped models the package is meant to carry, so that a missing file reads as "not installed", not "unknown".
EXPECTED_SHIPPED = (DEFAULT_MODEL,)
SUFFIX = ".keras"


@dataclass(frozen=True)
class ModelInfo:
    name: str
    path: Path
    source: str  # "shipped" | "user"
    description: dict
    card: Path | None = None  # the model card (markdown), if any


def model_domain(description: dict | None) -> str:
    """"photo" or "microscopy": what the model was trained for (its description's ``domain``; models
    without one, made before the field existed, learned photographs)."""
    domain = (description or {}).get("domain")
    return domain if domain in DOMAINS else "photo"


def user_models_dir() -> Path:
    """``$NAPARI_SUPERRES_HOME/models`` if that is set (tests, shared installs), else the platform's user
    data folder, e.g. ``~/.local/share/napari-superres/models``. Not created here."""
    home = os.environ.get("NAPARI_SUPERRES_HOME")
    if not home:
        from platformdirs import user_data_dir

        home = user_data_dir("napari-superres", appauthor=False)
    return Path(home) / "models"


def _infos(folder: Path, source: str) -> list[ModelInfo]:
    if not folder.is_dir():
        return []
    infos = []
    for path in sorted(folder.glob(f"*{SUFFIX}")):
        if path.name.startswith("."):  # a temporary file being written
            continue
        card = path.with_suffix(".md")
        desc = read_description(path) or {}
        infos.append(ModelInfo(path.stem, path, source, desc, card if card.is_file() else None))
    return infos


def list_models() -> list[ModelInfo]:
    """Shipped models, then the user's, each sorted by name."""
    return _infos(SHIPPED_DIR, "shipped") + _infos(user_models_dir(), "user")


def _looks_like_path(spec: str) -> bool:
    return spec.endswith((SUFFIX, ".h5", ".hdf5")) or "/" in spec or os.sep in spec


def resolve_model(spec) -> Path:
    """The file of a model given as a path, a shipped model's name or a user model's name."""
    if isinstance(spec, os.PathLike) or (isinstance(spec, str) and _looks_like_path(spec)):
        path = Path(spec).expanduser()
        if not path.exists():
            raise ModelError(f"model file not found: {path}")
        if path.is_dir():
            raise ModelError(f"{path} is a folder, not a .keras model file")
        return path
    if not isinstance(spec, str) or not spec:
        raise ModelError(f"a model is a name or a .keras path, not {spec!r}")
    for folder in (SHIPPED_DIR, user_models_dir()):
        path = folder / f"{spec}{SUFFIX}"
        if path.is_file():
            return path
    if spec in EXPECTED_SHIPPED:
        raise ModelError(f"shipped model {spec!r} is not installed (its weights are missing from {SHIPPED_DIR})")
    if Path(spec).exists():  # a file in the current folder without a recognised suffix
        return Path(spec)
    known = ", ".join(m.name for m in list_models()) or "none installed"
    raise ModelError(f"unknown model {spec!r}: not a file, nor a shipped or user model (models: {known})")
