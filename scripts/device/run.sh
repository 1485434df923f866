#!/usr/bin/env bash
# The prepared device run: train the whole zoo on the GPU (Keras on JAX, mixed bfloat16), then bench it there.
# Run from the repository root on the device machine, with .device/ (scripts/device/pack.py) carried:
#     bash scripts/device/run.sh            # writes into $OUT (the device's), else runs/device/
# Budget: DEADLINE seconds in all (default 500), of which BENCH_SECONDS (default 55; 0: no bench) are kept for the bench.
# DATA (default .device/data) is the packed training data; BENCH_ARGS go to bench_gpu.py, arguments to train_gpu.py.
# See docs/device-run.md for what comes back and how it becomes shipped models.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/device}
mkdir -p "$OUT"
DEADLINE=${DEADLINE:-500}
BENCH_SECONDS=${BENCH_SECONDS:-55}
DATA=${DATA:-.device/data}
PY=${PYTHON:-python3}
export KERAS_BACKEND=jax
if ! $PY -c "import keras" 2>/dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .device/whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
# JAX takes memory as it needs it, so the bench's matrix product and the models share the GPU.
export XLA_PYTHON_CLIENT_PREALLOCATE=false TF_CPP_MIN_LOG_LEVEL=2
# One log (the device brings back at most 8 files: the tars, history.json, bench.json and this).
exec > >(tee "$OUT/run.log") 2>&1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null
$PY scripts/device/train_gpu.py --data "$DATA" --out "$OUT" --deadline "$DEADLINE" --reserve "$BENCH_SECONDS" "$@"
train=$?
bench=0
if [ "$BENCH_SECONDS" -gt 0 ]; then
  timeout "$BENCH_SECONDS" $PY scripts/device/bench_gpu.py -o "$OUT/bench.json" ${BENCH_ARGS:-}
  bench=$?
fi
echo "train: exit $train; bench: exit $bench"
[ "$train" -eq 0 ] && [ "$bench" -eq 0 ]
