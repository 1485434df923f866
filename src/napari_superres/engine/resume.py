"""The state that lets an out-of-core job stop and resume: a hidden partial folder next to the output.

``.NAME.partial`` holds the output being built (renamed to ``NAME`` only when every block is written: the
rename is the completion marker), ``job.json`` (what is being computed, with the fitted normalisation) and
``done.txt`` (the blocks written, one per line, appended after each block's data is on disk).
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

from ..errors import OutputError, one_line

NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def partial_dir(dst: Path) -> Path:
    """Where the output ``dst`` is built and its job's state kept."""
    return dst.parent / f".{dst.name}.partial"


class Ledger:
    """``done.txt``: indices of the blocks on disk, appended (and synced) after each block is written."""

    def __init__(self, path: Path):
        self.path = path
        self.done = set()
        if path.exists():
            for line in path.read_text().splitlines():
                if line.strip().isdigit():  # a torn last line (crash mid-append) is ignored
                    self.done.add(int(line))
        self._f = None

    def add(self, index: int):
        if self._f is None:
            self._f = open(self.path, "a")
        self._f.write(f"{index}\n")
        self._f.flush()
        os.fsync(self._f.fileno())
        self.done.add(index)

    def close(self):
        if self._f is not None:
            self._f.close()
            self._f = None


def load_state(work: Path, fingerprint: dict):
    """The saved state of an earlier run of the same job (the same ``fingerprint``), or None."""
    try:
        state = json.loads((work / "job.json").read_text())
    except (OSError, ValueError):
        return None
    return state if state.get("job") == json.loads(json.dumps(fingerprint)) else None


def write_json(path: Path, obj):
    """Write ``obj`` as JSON, atomically (a crash leaves the old file or the new one)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


def guard_space(action, dst, work, done, total):
    """Run ``action``; a full disk (or any write error) becomes one OutputError line that says what is kept."""
    try:
        return action()
    except OSError as exc:
        if exc.errno in NO_SPACE:
            raise OutputError(
                f"no space left writing {dst.name}: {done} of {total} blocks are complete and kept in {work}; "
                "free some space and run the same command again to resume"
            ) from None
        raise OutputError(f"cannot write {dst}: {one_line(exc)}") from None

