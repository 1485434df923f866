"""Outputs appear whole or not at all: built under a hidden temporary name, then renamed to the final one."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path

from ..errors import OutputError, one_line


def replace_path(tmp, dst) -> None:
    """Rename the finished ``tmp`` (a file or a folder) to ``dst``, replacing what is there. A folder cannot be
    renamed over another, so an old ``dst`` is moved aside first and deleted once replaced."""
    tmp, dst = Path(tmp), Path(dst)
    if dst.exists() or dst.is_symlink():
        old = dst.parent / f".{dst.name}.{uuid.uuid4().hex[:8]}.old"
        os.replace(dst, old)
        os.replace(tmp, dst)
        remove_quietly(old)
    else:
        os.replace(tmp, dst)


@contextlib.contextmanager
def removed_on_failure(tmp, path):
    """Delete ``tmp`` if the block fails; an OSError becomes one OutputError line that names ``path``."""
    try:
        yield
    except BaseException as exc:
        remove_quietly(tmp)
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write {path}: {one_line(exc)}") from None
        raise


def remove_quietly(p) -> None:
    """Delete a file or folder; nothing if it is not there."""
    p = Path(p)
    try:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()
    except FileNotFoundError:
        pass


def usual_file_mode() -> int:
    """The mode a new file gets under this process's umask (``mkstemp`` makes owner-only files)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask
