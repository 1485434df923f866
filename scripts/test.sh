#!/usr/bin/env bash
# Set up, then run the whole test suite. Separate pytest runs on purpose: tests/core may import TensorFlow and
# draws nothing; tests/napari drives real viewers under Xvfb with Mesa OpenGL and never imports
# TensorFlow (TensorFlow's LLVM and Mesa's cannot share a process; see docs/architecture.md).
# tests/install builds the wheel and installs it as napari's plugin manager does. All always run; the exit code
# is non-zero if any fails.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit $?
export KERAS_BACKEND=${KERAS_BACKEND:-tensorflow} TF_CPP_MIN_LOG_LEVEL=2
.venv/bin/python -m pytest tests/core -q -p no:cacheprovider "$@"
core=$?
xvfb-run -a -s "-screen 0 1600x1200x24" .venv/bin/python -m pytest tests/napari -q -p no:cacheprovider "$@"
napari=$?
# The plugin manager's path: the wheel plus napari[pyqt6] only, in a fresh environment (needs PyPI).
xvfb-run -a -s "-screen 0 1600x1200x24" .venv/bin/python -m pytest tests/install -q -p no:cacheprovider "$@"
install=$?
echo "tests/core: exit $core; tests/napari: exit $napari; tests/install: exit $install"
[ "$core" -eq 0 ] && [ "$napari" -eq 0 ] && [ "$install" -eq 0 ]
