"""The plugin manager's path: build the wheel, install it with its base dependencies and ``napari[pyqt6]`` and
nothing else into a fresh virtual environment, then (under Xvfb) open both widgets through the manifest and
upscale a layer there (plugin_manager_check.py).

Needs the package registry (PyPI), as the plugin manager does. uv (a test extra) keeps a warm run to a minute
or two by linking from its cache; without it pip does the same, slower.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
REPO = HERE.parent.parent


def _run(cmd, timeout, **kw):
    t0 = time.monotonic()
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, **kw)
    print(f"{time.monotonic() - t0:6.1f} s  {' '.join(str(c) for c in cmd)[:160]}")
    assert done.returncode == 0, f"{cmd[:4]} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _uv() -> list[str] | None:
    try:
        import uv
    except ImportError:
        return None
    return [uv.find_uv_bin()]


def test_wheel_with_plain_napari_gets_every_widget(tmp_path):
    assert os.environ.get("DISPLAY"), "run under Xvfb (scripts/test.sh does): napari needs a display"
    dist, venv = tmp_path / "dist", tmp_path / "venv"
    python = venv / "bin" / "python"
    uv = _uv()
    if uv:
        _run([*uv, "build", "--wheel", "--out-dir", dist, REPO], timeout=600)
    else:
        _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", dist, REPO], timeout=600)
    wheels = list(dist.glob("napari_superres_keras-*.whl"))
    assert len(wheels) == 1, sorted(p.name for p in dist.iterdir())
    requirements = [wheels[0], "napari[pyqt6]"]  # what napari's plugin manager installs: no extras
    if uv:
        _run([*uv, "venv", "--python", sys.executable, venv], timeout=120)
        _run([*uv, "pip", "install", "--python", python, *requirements], timeout=1800)
    else:
        _run([sys.executable, "-m", "venv", venv], timeout=120)
        _run([python, "-m", "pip", "install", "-q", *requirements], timeout=1800)

    # Only the wheel's own dependencies and napari's: no test or GUI extras came along.
    listed = _run([python, "-c", "import importlib.metadata as m, json; "
                   "print(json.dumps([d.metadata['Name'] for d in m.distributions()]))"], 60)
    names = {n.lower() for n in json.loads(listed.stdout)}
    assert "napari-superres-keras" in names and not names & {"pytest", "pytest-qt", "distributed", "napari-superres"}

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(NAPARI_SUPERRES_HOME=str(tmp_path / "home"), TF_CPP_MIN_LOG_LEVEL="2")
    check = _run([python, HERE / "plugin_manager_check.py"], timeout=900, env=env, cwd=tmp_path)
    print(check.stdout)
    assert check.stdout.strip().endswith("OK"), check.stdout + check.stderr[-3000:]
    shutil.rmtree(venv, ignore_errors=True)  # about 2 GB, mostly TensorFlow
