#!/usr/bin/env bash
# Upscale a photo bundled with scikit-image (LR made by bicubic downscaling) with the default shipped model,
# write out/ (HR, LR, model, bicubic and Lanczos images) and print PSNR/SSIM against bicubic and Lanczos.
#   bash scripts/demo.sh [--image astronaut|coffee|chelsea|rocket] [--model NAME] [--out DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
exec .venv/bin/python bench/demo.py "$@"
