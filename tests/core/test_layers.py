"""The layering of docs/architecture.md holds: ``lint-imports`` checks the contracts in pyproject.toml
(dependencies point one way; no napari or Qt below the front ends; no TensorFlow or Keras on the napari side)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _lint_imports(src: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` with this checkout's contracts on the package under ``src``."""
    exe = Path(sys.executable).with_name("lint-imports")
    if not exe.is_file():
        exe = shutil.which("lint-imports")
    assert exe, "lint-imports not found: install the testing extra (pip install -e '.[testing]')"
    env = dict(os.environ, PYTHONPATH=str(src))
    return subprocess.run([str(exe), str(ROOT / "pyproject.toml"), "--no-cache"], cwd=src, env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_package_keeps_its_import_contracts():
    proc = _lint_imports(ROOT / "src")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "Contracts: 3 kept, 0 broken." in proc.stdout


@pytest.mark.parametrize("module, line, contract", [
    ("engine/tiling.py", "import napari", "The worker, engine, training and models never import napari or Qt"),
    ("_napari/_models.py", "import keras", "The napari side never imports TensorFlow or Keras"),
    ("io/images.py", "from napari_superres.engine import axes", "Dependencies point one way"),
])
def test_a_forbidden_import_breaks_its_contract(tmp_path, module, line, contract):
    src = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "napari_superres", src / "napari_superres",
                    ignore=shutil.ignore_patterns("__pycache__", "weights"))
    target = src / "napari_superres" / module
    target.write_text(target.read_text() + f"\n{line}\n")
    proc = _lint_imports(src)
    assert proc.returncode == 1, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "Contracts: 2 kept, 1 broken." in proc.stdout
    broken = proc.stdout.split("Broken contracts", 1)[1]
    assert contract in broken
