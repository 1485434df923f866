#!/usr/bin/env bash
# Set up everything napari-superres-keras needs on Debian/Ubuntu, in a virtual environment of the repo (.venv):
# Xvfb + Mesa software OpenGL + the XCB libraries Qt 6 needs (for napari and its tests), then the plugin
# with its GUI and test extras. Safe to re-run: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

SYSTEM_PACKAGES=(xvfb xauth libgl1-mesa-dri libegl1 libglib2.0-0 libfontconfig1 libdbus-1-3
  libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0
  libxcb-xinerama0 libxcb-xfixes0 libxcb-shape0 libxcb-cursor0)

if command -v apt-get >/dev/null 2>&1; then
  if ! dpkg -s "${SYSTEM_PACKAGES[@]}" >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    echo "setup: installing system packages (Xvfb, Mesa, Qt XCB libraries)"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${SYSTEM_PACKAGES[@]}" >/dev/null
  fi
else
  echo "setup: not a Debian-like system; install Xvfb and Mesa OpenGL yourself for the napari tests" >&2
fi

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# The distribution is napari-superres-keras; a .venv made before the rename holds "napari-superres" (same import
# package): replace it, or napari would find the plugin's manifest under the old name.
if .venv/bin/python -c "import importlib.metadata as m; m.version('napari-superres')" >/dev/null 2>&1; then
  .venv/bin/python -m pip uninstall -q -y napari-superres
fi
if ! .venv/bin/python -c "import importlib.metadata as m; m.version('napari-superres-keras')
import napari_superres, tensorflow, napari, pytest, uv, importlinter" >/dev/null 2>&1; then
  echo "setup: installing napari-superres-keras with its GUI and test extras into .venv (a few minutes)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[testing]"
fi
echo "setup: ready (.venv)"
