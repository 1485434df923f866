"""Benchmark of super-resolution models: quality, speed, efficiency, tiling, memory and the options that matter.

One :func:`run_bench` call measures, in one process and one run:

- **quality**: mean PSNR/SSIM (Y of BT.601, border crop = scale, uint8; see
  :mod:`napari_superres.training.metrics`) of each model on high-resolution photos whose low-resolution input is
  made by the benchmark degradation (antialiased bicubic, as MATLAB ``imresize``), next to bicubic and Lanczos
  upscaling of the same input (:mod:`.quality`);
- **speed**: output megapixels per second of each model on a fixed input (a crop of a real photo), the
  median of repeated calls after warm-up (:mod:`.speed`);
- **efficiency**: the model's multiply-accumulates per second (counted analytically from its convolution and
  dense layers, see :func:`count_macs`) divided by the rate of a large matrix product of the same precision,
  measured in the same backend in the same run: the practical ceiling of the machine;
- **tiling**: time of tiled against whole-image inference on a large image, their largest difference, and
  the peak resident memory of each (the process's high-water mark, which sees TensorFlow's allocations;
  :mod:`.tiling`);
- **options**: XLA ``jit_compile``, bfloat16 inference, and TensorFlow's oneDNN kernels switched off (a
  subprocess: ``TF_ENABLE_ONEDNN_OPTS`` is read when TensorFlow loads), each with its speed and its effect on
  the output (:mod:`.options`);
- **peers**: the same models run by PyTorch and ONNX Runtime (:mod:`.peers`, the ``bench`` extra).

:func:`format_report` prints it as tables; ``napari-superres bench`` and ``bench/run.py`` are the commands.
:func:`demo` upscales one bundled photo with the default model and prints its PSNR against bicubic.

Importing this package imports NumPy only: Keras, TensorFlow and the peers' packages load when a section runs.
"""

from .config import HELD_OUT, PRECISIONS, SECTIONS, BenchConfig
from .demo import demo
from .macs import count_macs
from .machine import machine
from .report import format_report, text_table
from .run import run_bench, select_models
from .speed import with_options
from .timing import Matmul, PeakRSS, Timing, time_calls

__all__ = [
    "HELD_OUT", "PRECISIONS", "SECTIONS", "BenchConfig", "Matmul", "PeakRSS", "Timing", "count_macs", "demo",
    "format_report", "machine", "run_bench", "select_models", "text_table", "time_calls", "with_options",
]
