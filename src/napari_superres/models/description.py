"""A model's description, stored inside its ``.keras`` file as the zip member ``napari_superres.json``.

Read with ``zipfile`` alone: the napari process lists models without importing Keras. Keras ignores the extra
member when it loads the file.

Keys: name, architecture, domain ("photo" or "microscopy"), scale (int), channels (1 or 3), normalization ({"mode": "range"} or
{"mode": "percentile", "low": 2.0, "high": 99.8}), multiple (int), overlap (int, LR pixels), parameters (int),
training (dict), validation (dict: psnr, ssim, bicubic_psnr, ...).
"""

import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from ..errors import ModelError

MEMBER = "napari_superres.json"


def read_description(path) -> dict | None:
    """The description stored in the model file, or None if it has none (or is not a zip file)."""
    try:
        with zipfile.ZipFile(path) as z:
            if MEMBER not in z.namelist():
                return None
            desc = json.loads(z.read(MEMBER).decode("utf-8"))
    except (OSError, zipfile.BadZipFile, ValueError):
        return None
    return desc if isinstance(desc, dict) else None


def write_description(path, desc: dict) -> None:
    """Store ``desc`` in the ``.keras`` file at ``path``, replacing any earlier description.

    The file is rewritten under a temporary name in the same folder, then renamed over the original, so a
    crash leaves either the old or the new file, never a broken one.
    """
    path = Path(path)
    data = json.dumps(desc, indent=2, sort_keys=True).encode("utf-8")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".keras", dir=path.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
            for info in src.infolist():
                if info.filename != MEMBER:
                    with src.open(info) as f_in, dst.open(info, "w") as f_out:
                        shutil.copyfileobj(f_in, f_out, 1 << 20)
            dst.writestr(MEMBER, data)
        os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except (OSError, zipfile.BadZipFile) as e:
        Path(tmp).unlink(missing_ok=True)
        raise ModelError(f"cannot write the description into {path}: {e}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
