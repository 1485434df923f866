"""Fixtures for the napari tests: real viewers under Xvfb, a real model worker process, small real models.

The test process must never import TensorFlow or Keras (TensorFlow's LLVM and Mesa's OpenGL cannot share a
process, see docs/architecture.md): models are built in a subprocess, and every test checks sys.modules afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.fixture(scope="session", autouse=True)
def superres_home(tmp_path_factory):
    """User models go to a temporary folder (set before any worker process starts, so it inherits it)."""
    home = tmp_path_factory.mktemp("superres-home")
    old = os.environ.get("NAPARI_SUPERRES_HOME")
    os.environ["NAPARI_SUPERRES_HOME"] = str(home)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("NAPARI_SUPERRES_PRECISION", "float32")  # auto depends on the CPU and a timed probe
    yield home
    from napari_superres.worker.client import get_client

    get_client().shutdown()
    if old is None:
        os.environ.pop("NAPARI_SUPERRES_HOME", None)
    else:
        os.environ["NAPARI_SUPERRES_HOME"] = old


@pytest.fixture(autouse=True)
def _never_tensorflow():
    yield
    assert "tensorflow" not in sys.modules, "the napari test process imported TensorFlow"
    assert "keras" not in sys.modules, "the napari test process imported Keras"


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> dict[str, str]:
    """Small real .keras models, built once in a subprocess (see build_models.py)."""
    out = tmp_path_factory.mktemp("models")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run(
        [sys.executable, str(HERE / "build_models.py"), str(out)], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return {p.stem: str(p) for p in out.glob("*.keras")}


@pytest.fixture(autouse=True)
def _reset_settings():
    """Each test starts from the default upscale settings and no browsed files."""
    from napari_superres._napari import _models, _state

    defaults = _state.UpscaleSettings()
    for name in ("model", "tile", "tta", "device", "upscale_z"):
        setattr(_state.LAST_SETTINGS, name, getattr(defaults, name))
    _models._BROWSED.clear()
    yield


@pytest.fixture(autouse=True)
def _no_thread_left(qtbot):
    """A run still going when a test ends is cancelled, and every background thread the widgets started
    (runs, the device query, model checks) is waited for: none may outlive its viewer or the Qt application
    (napari itself waits for them when it quits)."""
    yield
    from napari.qt.threading import WorkerBase

    from napari_superres._napari._runs import ACTIVE_RUNS

    for worker in list(ACTIVE_RUNS):
        worker.cancel_event.set()
    qtbot.waitUntil(lambda: not ACTIVE_RUNS and not WorkerBase._worker_set, timeout=180_000)


@pytest.fixture
def notes():
    from helpers_napari import Notifications

    return Notifications()


@pytest.fixture
def upscale_widget(make_napari_viewer, models):
    """A viewer with the Upscale widget added through the real manifest."""
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-superres-keras", "Upscale")
    return viewer, widget
