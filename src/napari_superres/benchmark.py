"""Benchmark of super-resolution models: quality, speed, efficiency, tiling, memory and the options that matter.

One :func:`run_bench` call measures, in one process and one run:

- **quality**: mean PSNR/SSIM (Y of BT.601, border crop = scale, uint8; see :mod:`.training.metrics`) of each
  model on high-resolution photos whose low-resolution input is made by the benchmark degradation
  (antialiased bicubic, as MATLAB ``imresize``), next to bicubic and Lanczos upscaling of the same input;
- **speed**: output megapixels per second of each model on a fixed input (a crop of a real photo), the
  median of repeated calls after warm-up;
- **efficiency**: the model's multiply-accumulates per second (counted analytically from its convolution and
  dense layers, see :func:`count_macs`) divided by the rate of a large matrix product of the same precision,
  measured in the same backend in the same run: the practical ceiling of the machine;
- **tiling**: time of tiled against whole-image inference on a large image, their largest difference, and
  the peak resident memory of each (the process's high-water mark, which sees TensorFlow's allocations);
- **options**: XLA ``jit_compile``, bfloat16 inference, and TensorFlow's oneDNN kernels switched off (a
  subprocess: ``TF_ENABLE_ONEDNN_OPTS`` is read when TensorFlow loads), each with its speed and its effect on
  the output.

:func:`format_report` prints it as tables; ``napari-superres bench`` and ``bench/run.py`` are the commands.
:func:`demo` upscales one bundled photo with the default model and prints its PSNR against bicubic.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

import numpy as np

from .errors import InputError, ModelError

# The photos of the corpus that the shipped models never saw in training (scripts/zoo_data.py keeps them out):
# one landscape, one macro, one night scene, one texture.
HELD_OUT = (
    "BytheWater_contents_images_2560x1600.png",
    "backgrounds_mate_nature_LadyBird.png",
    "DarkestHour_contents_images_2560x1600.png",
    "backgrounds_mate_nature_Wood.png",
)
SPEED_PHOTO = HELD_OUT[3]  # fine texture all over: the input of the speed, options and tiling sections
CORPUS = Path(os.environ.get("NAPARI_SUPERRES_CORPUS", Path.home() / ".cache" / "napari-superres-corpus"))
# scikit-image's bundled colour photographs: the fallback quality set and the source of the speed input.
SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
PRECISIONS = ("float32", "bfloat16")
SECTIONS = ("quality", "speed", "tiling", "options", "peers")


@dataclass
class BenchConfig:
    """What to measure. ``quick`` shrinks every size and repeat count so the whole run takes seconds."""

    models: Optional[list] = None  # names or .keras paths; None: every shipped model
    scales: Optional[list] = None  # keep only models of these scales
    quality_dir: Optional[Path] = None  # HR images folder, or "skimage"; None: held-out corpus photos, else skimage's
    size: int = 256  # side of the speed input, LR pixels
    large: int = 1024  # side of the tiling/memory input, LR pixels
    tile: Optional[int] = None  # tile of the tiling section (None: the engine's default tile)
    precision: str = "float32"  # of the speed section
    jit: bool = False  # XLA jit_compile in the speed section
    repeats: int = 5
    matmul_n: int = 2048
    sections: tuple = SECTIONS  # which tables to measure
    quick: bool = False
    quality_crop: Optional[int] = None  # crop quality images to this side (HR pixels), centred

    @classmethod
    def quick_config(cls, **kw):
        base = dict(size=64, large=192, tile=64, repeats=2, matmul_n=512, quick=True, quality_crop=96)
        base.update({k: v for k, v in kw.items() if v is not None})
        return cls(**base)


_T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f"bench [{time.perf_counter() - _T0:6.1f} s] {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------- images


def _skimage_photo(name: str) -> np.ndarray:
    from skimage import data

    return np.asarray(getattr(data, name)())


def _as_rgb8(img: np.ndarray, name: str) -> Optional[np.ndarray]:
    """uint8 RGB (alpha dropped) or uint8 gray; None for anything else (the metric convention is 8-bit)."""
    if img.dtype != np.uint8:
        log(f"skipping {name}: quality is measured on 8-bit photos, this one is {img.dtype}")
        return None
    if img.ndim == 3 and img.shape[-1] == 4:
        img = img[..., :3]
    if img.ndim == 2 or (img.ndim == 3 and img.shape[-1] == 3):
        return img
    log(f"skipping {name}: not a gray or RGB image (shape {img.shape})")
    return None


def _centre_crop(img: np.ndarray, side: Optional[int]) -> np.ndarray:
    if not side:
        return img
    h, w = img.shape[:2]
    y, x = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return img[y : y + side, x : x + side]


def quality_images(config: BenchConfig) -> tuple[str, list]:
    """(description of the set, [(name, uint8 HR image)]) for the quality section."""
    if config.quality_dir is not None and str(config.quality_dir) != "skimage":
        from .io.images import list_images, read_image

        folder = Path(config.quality_dir)
        if not folder.is_dir():
            raise InputError(f"quality folder not found: {folder}")
        images = []
        for path in list_images(folder):
            img = _as_rgb8(read_image(path)[0], path.name)
            if img is not None:
                images.append((path.name, _centre_crop(img, config.quality_crop)))
        if not images:
            raise InputError(f"no 8-bit gray or RGB image in {folder}")
        label = f"{len(images)} images of {folder}"
    elif config.quality_dir is None and all((CORPUS / n).is_file() for n in HELD_OUT) and not config.quick:
        from PIL import Image

        images = [(n, _centre_crop(np.asarray(Image.open(CORPUS / n).convert("RGB")), config.quality_crop))
                  for n in HELD_OUT]
        label = f"{len(images)} held-out corpus photos (whole images, never seen in training)"
    else:
        images = [(n, _centre_crop(_skimage_photo(n), config.quality_crop)) for n in SKIMAGE_PHOTOS]
        crop = f", centre {config.quality_crop}px crops" if config.quality_crop else ""
        label = f"{len(images)} scikit-image photos ({', '.join(SKIMAGE_PHOTOS)}{crop})"
    return label, images


def photo_crop(side: int) -> np.ndarray:
    """A side x side uint8 RGB crop of a real photo (the held-out wood texture of the corpus if present, else scikit-image's retina or
    astronaut, reflected if smaller): the fixed input of the speed and tiling sections."""
    img = None
    if (CORPUS / SPEED_PHOTO).is_file():
        from PIL import Image

        img = np.asarray(Image.open(CORPUS / SPEED_PHOTO).convert("RGB"))
    if img is None or min(img.shape[:2]) < side:
        img = _skimage_photo("retina" if side > 512 else "astronaut")
    if min(img.shape[:2]) < side:
        reps = -(-side // min(img.shape[:2]))
        img = np.pad(img, ((0, reps * img.shape[0]), (0, reps * img.shape[1]), (0, 0)), mode="reflect")
    return np.ascontiguousarray(_centre_crop(img, side)[:side, :side])


# ------------------------------------------------------------------------------------------------ models


def select_models(config: BenchConfig) -> list:
    """The SRModels to measure: the named ones (names or paths), else every shipped model; filtered by scale."""
    from .models.catalog import list_models
    from .models.loading import load_model

    specs = config.models or [m.path for m in list_models() if m.source == "shipped"]
    if not specs:
        raise ModelError("no shipped models are installed; name models with --models")
    models = [load_model(s) for s in specs]
    if config.scales:
        models = [m for m in models if m.scale in config.scales]
        if not models:
            raise InputError(f"no model of scale {', '.join(f'x{s}' for s in config.scales)} among those selected")
    return models


def count_macs(keras_model, height: int, width: int) -> int:
    """Multiply-accumulates of one forward pass on a ``height x width`` input (batch 1).

    Counted from the layers that do the arithmetic: Conv1D/2D/3D and DepthwiseConv2D (output pixels x kernel
    size), Conv*DTranspose (input pixels x kernel size), SeparableConv2D and Dense (per pixel); nested models
    are counted layer by layer. Element-wise layers, pixel shuffles and fixed resampling layers (e.g. the
    bicubic skip: 25 taps per output phase) are left out: they are memory-bound and well under 1% of the
    arithmetic of any shipped model. Every layer's real grid comes from a symbolic pass with this input size.
    """
    channels = keras_model.inputs[0].shape[-1]
    return _macs(keras_model, (1, height, width, channels))


def _macs(model, input_shape) -> int:
    import keras

    graph = getattr(model, "_functional", None) or model  # a Sequential model wraps a functional one
    nodes = [n for depth in graph._nodes_by_depth.values() for n in depth]
    picked = [n for n in nodes if _is_model(n.operation) or _layer_macs(n.operation, None, None) is not None]
    if not picked:
        return 0
    tensors = [t for n in picked for t in (n.input_tensors[0], n.output_tensors[0])]
    specs = keras.Model(graph.inputs, tensors).compute_output_spec(keras.KerasTensor(input_shape))
    total = 0
    for k, node in enumerate(picked):
        inp, out = specs[2 * k].shape, specs[2 * k + 1].shape
        if _is_model(node.operation):
            total += _macs(node.operation, inp)
        else:
            total += _layer_macs(node.operation, inp, out)
    return total


def _is_model(op) -> bool:
    import keras

    return isinstance(op, keras.Model)


def _layer_macs(layer, inp, out):
    """MACs of one call of ``layer`` from its input and output shapes; None for a layer that is not counted
    (``inp`` None: only asks whether it is counted)."""
    import keras

    L = keras.layers
    if isinstance(layer, L.SeparableConv2D):
        kernel = int(np.prod(layer.depthwise_kernel.shape)) + int(np.prod(layer.pointwise_kernel.shape))
        grid = out
    elif isinstance(layer, (L.Conv1DTranspose, L.Conv2DTranspose, L.Conv3DTranspose)):
        kernel, grid = int(np.prod(layer.kernel.shape)), inp
    elif isinstance(layer, (L.Conv1D, L.Conv2D, L.Conv3D, L.DepthwiseConv2D, L.Dense)):
        kernel, grid = int(np.prod(layer.kernel.shape)), out
    else:
        return None
    return 0 if inp is None else int(np.prod(grid[1:-1])) * kernel


def with_options(srm, precision: str = "float32", jit: bool = False):
    """The same model (same weights) computing in ``precision`` (see :mod:`.models.precision`), with XLA
    ``jit_compile`` if asked (on a copy: the precision variants are shared with the engine)."""
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    from .models.precision import with_precision

    variant = with_precision(srm, precision)
    if not jit:
        return variant
    import keras

    model = keras.models.clone_model(variant.keras_model)
    model.set_weights(variant.keras_model.get_weights())
    model.jit_compile = True
    return replace(variant, keras_model=model, variants={})


# ------------------------------------------------------------------------------------------------ timing


@dataclass(frozen=True)
class Timing:
    """Median seconds of a call: ``wall`` (what a user waits) and ``cpu`` (CPU time of this process, all its
    threads). On a machine shared with other work the wall time moves with their load, the CPU time hardly;
    rates per CPU-second compare two computations fairly even then."""

    wall: float
    cpu: float


def time_calls(fns: dict, *, warmup: int = 2, repeats: int = 5) -> dict:
    """{key: Timing} of each ``fns[key]()``, medians over ``repeats`` calls after ``warmup`` calls. The calls
    are interleaved (a, b, a, b, ...) so that all figures share the same moments of the machine's load."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    wall, cpu = {key: [] for key in fns}, {key: [] for key in fns}
    for _ in range(max(1, repeats)):
        for key, fn in fns.items():
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall[key].append(time.perf_counter() - t0)
            cpu[key].append(time.process_time() - c0)
    return {key: Timing(statistics.median(wall[key]), statistics.median(cpu[key])) for key in fns}


class Matmul:
    """An n x n by n x n matrix product in the Keras backend, ``precision`` float32 or bfloat16: the
    practical peak the model's convolutions are compared against. ``macs`` per call: n**3."""

    def __init__(self, n: int = 2048, precision: str = "float32"):
        from keras import ops

        rng = np.random.default_rng(0)
        self.a, self.b = (ops.cast(ops.convert_to_tensor(rng.standard_normal((n, n), dtype=np.float32)), precision)
                          for _ in range(2))
        self.n, self.macs = n, n**3

    def __call__(self):
        from keras import ops

        # reading one element back waits for the product on asynchronous backends
        return ops.convert_to_numpy(ops.matmul(self.a, self.b)[:1, :1])


class PeakRSS:
    """Peak resident memory of this process during a ``with`` block, in bytes (``.peak``; ``.before`` is the
    resident size at entry). On Linux the kernel's high-water mark is reset at entry (``/proc/self/clear_refs``)
    and read at exit, so every allocation counts, TensorFlow's included; elsewhere a thread samples the
    resident size every 2 ms."""

    def __enter__(self):
        import psutil

        self._proc = psutil.Process()
        self.before = self._proc.memory_info().rss
        self._kernel = _reset_hwm()
        self._samples, self._stop = [self.before], None
        if not self._kernel:
            import threading

            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.002):
            self._samples.append(self._proc.memory_info().rss)

    def __exit__(self, *exc):
        if self._kernel:
            self.peak = _read_hwm() or self._proc.memory_info().rss
        else:
            self._stop.set()
            self._thread.join()
            self.peak = max(self._samples + [self._proc.memory_info().rss])
        return False


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return _read_hwm() is not None
    except OSError:
        return False


def _read_hwm() -> Optional[int]:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


# ---------------------------------------------------------------------------------------------- sections


def quality_section(models, images) -> list:
    """Per model: mean PSNR/SSIM and those of bicubic and Lanczos on the same LR inputs."""
    from .engine.api import upscale
    from .training.metrics import bicubic_downscale, bicubic_upscale, lanczos_upscale, modcrop, psnr, ssim

    baselines, rows = {}, []
    for srm in models:
        s = srm.scale
        if s not in baselines:
            samples = []
            for name, img in images:
                hr = modcrop(img, s)
                if min(hr.shape[:2]) < 2 * s + 11:
                    continue
                lr = bicubic_downscale(hr, s)
                samples.append((name, hr, lr))
            if not samples:
                raise InputError(f"no quality image is large enough for x{s}")
            scores = {"bicubic": [], "lanczos": []}
            for _, hr, lr in samples:
                for key, up in (("bicubic", bicubic_upscale), ("lanczos", lanczos_upscale)):
                    out = up(lr, s)
                    scores[key].append((psnr(hr, out, scale=s), ssim(hr, out, scale=s)))
            baselines[s] = (samples, {k: np.mean(v, axis=0) for k, v in scores.items()})
        samples, base = baselines[s]
        log(f"quality: {srm.name} on {len(samples)} images")
        t0 = time.perf_counter()
        scores = []
        for _, hr, lr in samples:
            out = upscale(lr, srm, precision="float32")  # the reference arithmetic
            scores.append((psnr(hr, out, scale=s), ssim(hr, out, scale=s)))
        p, q = np.mean(scores, axis=0)
        rows.append({
            "model": srm.name, "scale": s, "images": len(samples), "psnr": float(p), "ssim": float(q),
            "bicubic_psnr": float(base["bicubic"][0]), "bicubic_ssim": float(base["bicubic"][1]),
            "lanczos_psnr": float(base["lanczos"][0]), "lanczos_ssim": float(base["lanczos"][1]),
            "seconds": time.perf_counter() - t0,
        })
    return rows


def speed_input(srm, size: int):
    """(HR crop, float32 NHWC LR batch) for a model: a real photo crop, LR by the benchmark degradation."""
    from .training.metrics import bicubic_downscale, rgb_to_y

    hr = photo_crop(size * srm.scale)
    lr = bicubic_downscale(hr, srm.scale)
    x = lr.astype(np.float32) / 255.0
    if srm.channels == 1:
        x = (np.rint(rgb_to_y(lr)) / 255.0).astype(np.float32)[..., None]
    return hr, x[None]


def _to_uint8(batch_out: np.ndarray) -> np.ndarray:
    y = np.clip(np.rint(batch_out[0] * 255.0), 0, 255).astype(np.uint8)
    return y[..., 0] if y.shape[-1] == 1 else y


def speed_row(srm, size: int, repeats: int, matmul: Matmul) -> dict:
    """Output megapixels/s and efficiency of one model (any variant) on the fixed input. The model's calls
    alternate with the matmul's. Efficiency is the ratio of their MACs per CPU-second (steady on a shared
    machine); ``efficiency_wall`` the ratio of their wall-clock rates (the same on an idle machine, when both
    keep every core busy)."""
    _, x = speed_input(srm, size)
    t = time_calls({"model": lambda: srm.predict(x), "matmul": matmul}, warmup=2, repeats=repeats)
    m, mm = t["model"], t["matmul"]
    macs = count_macs(srm.keras_model, size, size)
    return {
        "model": srm.name, "scale": srm.scale, "parameters": int(srm.keras_model.count_params()),
        "input": f"{size}x{size}", "macs": macs, "ms": m.wall * 1e3, "cpu_ms": m.cpu * 1e3,
        "mp_per_s": (size * srm.scale) ** 2 / 1e6 / m.wall, "cores_busy": m.cpu / m.wall,
        "gmac_per_s": macs / m.wall / 1e9, "gmac_per_cpu_s": macs / m.cpu / 1e9,
        "matmul_gmac_per_s": matmul.macs / mm.wall / 1e9, "matmul_gmac_per_cpu_s": matmul.macs / mm.cpu / 1e9,
        "efficiency": (macs / m.cpu) / (matmul.macs / mm.cpu),
        "efficiency_wall": (macs / m.wall) / (matmul.macs / mm.wall),
    }


def speed_section(models, config: BenchConfig, matmul: Matmul) -> list:
    rows = []
    for srm in models:
        log(f"speed: {srm.name} ({config.precision}{', XLA' if config.jit else ''})")
        variant = with_options(srm, config.precision, config.jit)
        rows.append(speed_row(variant, config.size, config.repeats, matmul))
    return rows


def tiling_section(srm, config: BenchConfig) -> dict:
    """Tiled against whole-image inference of a large photo through the engine (uint8 in and out): time
    (interleaved calls in this process), largest difference, and peak resident memory, each mode in a fresh
    process (earlier work would otherwise leave its buffers in the allocator and blur the figure)."""
    from .engine.api import upscale
    from .engine.predictor import DEFAULT_TILE

    side, tile = config.large, config.tile or DEFAULT_TILE
    lr = photo_crop(side)
    if srm.channels == 1:
        from .training.metrics import rgb_to_y

        lr = np.clip(np.rint(rgb_to_y(lr)), 0, 255).astype(np.uint8)
    log(f"tiling: {srm.name} on {side}x{side}, tile {tile} against whole image")
    result = {"model": srm.name, "scale": srm.scale, "input": f"{side}x{side}", "tile": tile}
    outputs, calls = {}, {}
    for mode, t in (("tiled", tile), ("whole", 0)):
        calls[mode] = lambda t=t: upscale(lr, srm, tile=t, precision="float32")
        outputs[mode] = calls[mode]()  # the first call traces the model for this shape
    for mode, t in time_calls(calls, warmup=0, repeats=max(1, config.repeats // 2)).items():
        result[mode] = {"seconds": t.wall, "cpu_seconds": t.cpu, "mp_per_s": (side * srm.scale) ** 2 / 1e6 / t.wall}
    result["ratio"] = result["tiled"]["seconds"] / result["whole"]["seconds"]
    diff = np.abs(outputs["tiled"].astype(np.int16) - outputs["whole"].astype(np.int16))
    result["max_abs_diff"] = int(diff.max())
    result["differing_pixels"] = float((diff > 0).mean())
    if srm.path is not None:
        for mode, t in (("tiled", tile), ("whole", 0)):
            log(f"memory: {srm.name} {mode} (subprocess)")
            mem = run_child({"task": "memory", "model": str(srm.path), "tile": t}, {"lr": lr})
            if "error" in mem:
                result[mode]["memory_error"] = mem["error"]
                continue
            result[mode].update(peak_rss_mb=mem["peak"] / 2**20, baseline_rss_mb=mem["baseline"] / 2**20,
                                added_rss_mb=(mem["peak"] - mem["baseline"]) / 2**20)
    return result


def _backend() -> str:
    import keras

    return keras.backend.backend()


def _onednn_default_on() -> bool:
    return os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1").strip().lower() not in ("0", "false")


def options_section(models, config: BenchConfig, matmuls: dict) -> list:
    """Per model: float32, XLA, bfloat16, bfloat16 + XLA in this process; oneDNN switched (off, or on when
    this process runs with it off) in a subprocess. Each row: wall time and output MP/s; speed-up over float32
    and efficiency against the matmul of the same precision, both from CPU time of interleaved calls (steady
    under load); PSNR-Y of the output against the HR crop; largest difference to float32 (grey levels)."""
    rows = []
    tf = _backend() == "tensorflow"
    for srm in models:
        hr, x = speed_input(srm, config.size)
        macs = count_macs(srm.keras_model, config.size, config.size)
        base_out = _to_uint8(srm.predict(x))
        variants = [("float32", "float32", False)] + ([("float32 + XLA", "float32", True)] if tf else [])
        variants += [("bfloat16", "bfloat16", False)] + ([("bfloat16 + XLA", "bfloat16", True)] if tf else [])
        base_cpu = None
        for label, precision, jit in variants:
            log(f"options: {srm.name} {label}")
            try:
                variant = with_options(srm, precision, jit)
                calls = {"variant": lambda: variant.predict(x), "matmul": matmuls[precision]}
                if variant is not srm:
                    calls["float32"] = lambda: srm.predict(x)
                t = time_calls(calls, warmup=2, repeats=config.repeats)
                t.setdefault("float32", t["variant"])
                base_cpu = t["float32"].cpu if base_cpu is None else base_cpu
                out = _to_uint8(variant.predict(x))
            except Exception as e:  # an option the backend or CPU cannot run is reported, not fatal
                rows.append({"model": srm.name, "option": label, "error": str(e).strip().splitlines()[0][:120]})
                continue
            rows.append(_option_row(srm, label, t["variant"], t["float32"].cpu, t["matmul"], matmuls[precision].macs,
                                    out, base_out, hr, config.size, macs))
        if tf and srm.path is not None:
            label = "oneDNN off" if _onednn_default_on() else "oneDNN on"
            log(f"options: {srm.name} {label} (subprocess)")
            child = run_child({"task": "speed", "model": str(srm.path), "repeats": config.repeats,
                               "matmul_n": config.matmul_n}, {"x": x},
                              env={"TF_ENABLE_ONEDNN_OPTS": "0" if _onednn_default_on() else "1"})
            if "error" in child:
                rows.append({"model": srm.name, "option": label, "error": child["error"]})
            else:
                mm = Timing(*child["matmul"])
                rows.append(_option_row(srm, label, Timing(*child["model"]), base_cpu, mm, child["matmul_macs"],
                                        _to_uint8(child["out"]), base_out, hr, config.size, macs))
                rows[-1]["matmul_gmac_per_cpu_s"] = child["matmul_macs"] / mm.cpu / 1e9
    return rows


def _option_row(srm, label, t: Timing, base_cpu, mm: Timing, mm_macs, out, base_out, hr, size, macs) -> dict:
    from .training.metrics import psnr, rgb_to_y

    s = srm.scale
    if out.ndim == 2 and hr.ndim == 3:  # a gray model: compared with the photo's luminance
        hr = np.clip(np.rint(rgb_to_y(hr)), 0, 255).astype(np.uint8)
    return {
        "model": srm.name, "option": label, "ms": t.wall * 1e3, "cpu_ms": t.cpu * 1e3,
        "mp_per_s": (size * s) ** 2 / 1e6 / t.wall, "speedup": base_cpu / t.cpu, "macs": macs,
        "efficiency": (macs / t.cpu) / (mm_macs / mm.cpu), "psnr": psnr(hr, out, scale=s),
        "max_abs_diff": int(np.abs(out.astype(np.int16) - base_out.astype(np.int16)).max()),
    }


# ----------------------------------------------------------------------------------- the oneDNN subprocess


def run_child(task: dict, arrays: dict, env: Optional[dict] = None) -> dict:
    """Run ``task`` in a fresh Python (this module with ``--child``): arrays cross as .npy files in a temporary
    folder; returns the child's JSON answer, with ``out`` loaded when the child wrote it."""
    with tempfile.TemporaryDirectory(prefix="superres-bench-") as tmp:
        task = dict(task, out=str(Path(tmp) / "out.npy"))
        for key, array in arrays.items():
            task[key] = str(Path(tmp) / f"{key}.npy")
            np.save(task[key], array)
        proc = subprocess.run([sys.executable, "-m", "napari_superres.benchmark", "--child", json.dumps(task)],
                              env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **(env or {})),
                              capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            return {"error": f"subprocess failed ({proc.returncode}): {tail[:200]}"}
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        if Path(task["out"]).is_file():
            result["out"] = np.load(task["out"])
        return result


def _child(task: dict) -> dict:
    if task["task"] == "peers":  # PyTorch and ONNX Runtime (this child runs Keras on torch)
        from .benchmark_peers import peer_child

        return peer_child(task)
    import psutil

    from .engine.api import upscale
    from .models.loading import load_model

    srm = load_model(task["model"])
    if task["task"] == "memory":  # peak resident memory of one upscale, above the loaded model's baseline
        lr = np.load(task["lr"])
        upscale(lr[:32, :32], srm, tile=0, precision="float32")  # the backend's kernels and threads, set up once
        baseline = psutil.Process().memory_info().rss
        with PeakRSS() as mem:
            upscale(lr, srm, tile=task["tile"], precision="float32")
        return {"baseline": baseline, "peak": mem.peak}
    x = np.load(task["x"])  # "speed": the model and a float32 matmul, alternating
    matmul = Matmul(task["matmul_n"], "float32")
    t = time_calls({"model": lambda: srm.predict(x), "matmul": matmul}, warmup=2, repeats=task["repeats"])
    np.save(task["out"], srm.predict(x))
    return {"model": [t["model"].wall, t["model"].cpu], "matmul": [t["matmul"].wall, t["matmul"].cpu],
            "matmul_macs": matmul.macs}


# ------------------------------------------------------------------------------------------------- all


def machine() -> dict:
    """What the figures were measured on."""
    cpu, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and cpu in ("", platform.machine(), platform.processor()):
                    cpu = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    import keras

    info = {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "isa": " ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in flags),
        "python": platform.python_version(),
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "system": f"{platform.system()} {platform.release()}",
    }
    if info["backend"] == "tensorflow":
        import tensorflow as tf

        info["tensorflow"] = tf.__version__
        info["onednn"] = _onednn_default_on()
        info["gpus"] = len(tf.config.list_physical_devices("GPU"))
    try:
        import psutil

        info["memory_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
        info["load_average"] = round(os.getloadavg()[0], 2)
    except (ImportError, OSError):
        pass
    return info


def run_bench(config: BenchConfig) -> dict:
    """Every section; returns a JSON-able dict (see :func:`format_report`)."""
    if config.precision not in PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, not {config.precision!r}")
    if config.size < 8 or config.large < 16:
        raise InputError("the speed input needs at least 8 pixels a side, the tiling input 16")
    unknown = set(config.sections) - set(SECTIONS)
    if unknown or not config.sections:
        raise InputError(f"sections are some of {', '.join(SECTIONS)}, not {', '.join(sorted(unknown)) or 'none'}")
    started = time.perf_counter()
    if "quality" in config.sections:
        label, images = quality_images(config)  # a wrong folder fails before any model loads
    models = select_models(config)
    result = {"config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(config).items()},
              "machine": machine()}

    log(f"matmul rate ({config.matmul_n}x{config.matmul_n})")
    matmuls = {p: Matmul(config.matmul_n, p) for p in PRECISIONS}
    t = time_calls(matmuls, warmup=2, repeats=config.repeats)
    result["matmul"] = {"n": config.matmul_n}
    for p, timing in t.items():
        result["matmul"][f"{p}_gmac_per_s"] = matmuls[p].macs / timing.wall / 1e9
        result["matmul"][f"{p}_gmac_per_cpu_s"] = matmuls[p].macs / timing.cpu / 1e9

    if "quality" in config.sections:
        result["quality_set"] = label
        result["quality"] = quality_section(models, images)
    if "speed" in config.sections:
        result["speed"] = speed_section(models, config, matmuls[config.precision])
    if "tiling" in config.sections:
        from .models.catalog import DEFAULT_MODEL

        main = next((m for m in models if m.name == DEFAULT_MODEL), models[0])
        result["tiling"] = tiling_section(main, config)
    if "options" in config.sections:
        # the options for the models of the smallest scale measured (the fast and the quality model at x2)
        smallest = min(m.scale for m in models)
        result["options"] = options_section([m for m in models if m.scale == smallest], config, matmuls)
    if "peers" in config.sections:
        result["peers"] = _peers(models, config)
    result["machine"]["load_average_end"] = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    result["seconds"] = time.perf_counter() - started
    return result


def _peers(models, config: BenchConfig) -> dict:
    """Our float32 and auto-precision calls timed here, then the peers in a child (see benchmark_peers)."""
    from .benchmark_peers import missing_packages, peers_section
    from .engine.precision import resolve

    ours, chosen = {}, {}
    if len(missing_packages()) < 2:
        for srm in models:
            _, x = speed_input(srm, config.size)
            auto, choice = resolve(srm, "auto")
            chosen[srm.name] = str(choice)
            log(f"peers: {srm.name} ours (float32, auto: {choice.precision})")
            ours[srm.name] = time_calls({"float32": lambda: srm.predict(x), "auto": lambda: auto.predict(x)},
                                        warmup=2, repeats=config.repeats)
    section = peers_section(models, config, ours)
    section["auto"] = chosen
    return section


# --------------------------------------------------------------------------------------------- printing


def text_table(headers, rows, align=None) -> list:
    """Lines of a plain-text table, columns padded to their widest cell (None shows as "-")."""
    cells = [[str(c) for c in headers]] + [[("-" if c is None else str(c)) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    align = align or ("<" + ">" * (len(headers) - 1))
    lines = ["  ".join(f"{c:{a}{w}}" for c, a, w in zip(r, align, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def _count(n) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.1f}k" if n >= 1e3 else str(n)


def format_report(r: dict) -> str:
    m, cfg, mm = r["machine"], r["config"], r["matmul"]
    out = [
        f"napari-superres bench  ({'quick' if cfg['quick'] else 'full'}, {r['seconds']:.0f} s)",
        f"machine: {m['cpu']}, {m['cores']} cores [{m['isa']}], {m.get('memory_gb', '?')} GB; "
        f"Keras {m['keras']} ({m['backend']}"
        + (f" {m['tensorflow']}, oneDNN {'on' if m['onednn'] else 'off'}" if "tensorflow" in m else "")
        + f"), Python {m['python']}; load average {m.get('load_average', '?')} -> {m.get('load_average_end', '?')}",
        f"matmul {mm['n']}x{mm['n']} (median of {cfg['repeats']}): float32 {mm['float32_gmac_per_s']:.1f} GMAC/s "
        f"({mm['float32_gmac_per_cpu_s']:.1f} per CPU-second), bfloat16 {mm['bfloat16_gmac_per_s']:.1f} GMAC/s "
        f"({mm['bfloat16_gmac_per_cpu_s']:.1f} per CPU-second)",
    ]
    if r.get("quality"):
        out += _quality_table(r)
    if r.get("speed"):
        out += _speed_table(r, cfg)
    if r.get("tiling"):
        out += _tiling_table(r["tiling"])
    if r.get("options"):
        out += _options_table(r["options"], cfg)
    if r.get("peers"):
        from .benchmark_peers import format_peers

        out += format_peers(r["peers"], cfg)
    return "\n".join(out)


def _quality_table(r) -> list:
    out = ["", f"QUALITY: PSNR-Y (dB) / SSIM-Y, border = scale, LR = bicubic downscale; {r['quality_set']}"]
    return out + text_table(
        ("model", "scale", "PSNR", "SSIM", "bicubic", "SSIM", "Lanczos", "SSIM", "vs bicubic", "vs Lanczos"),
        [(q["model"], f"x{q['scale']}", f"{q['psnr']:.2f}", f"{q['ssim']:.4f}", f"{q['bicubic_psnr']:.2f}",
          f"{q['bicubic_ssim']:.4f}", f"{q['lanczos_psnr']:.2f}", f"{q['lanczos_ssim']:.4f}",
          f"{q['psnr'] - q['bicubic_psnr']:+.2f}", f"{q['psnr'] - q['lanczos_psnr']:+.2f}") for q in r["quality"]],
    )


def _speed_table(r, cfg) -> list:
    size, precision = cfg["size"], cfg["precision"] + (" + XLA" if cfg["jit"] else "")
    out = ["", f"SPEED: {size}x{size} RGB input, batch 1, {precision}, medians of {cfg['repeats']} calls after 2 "
            f"warm-up calls, alternating with a {cfg['precision']} matmul. efficiency = model MACs per CPU-second / "
            "matmul MACs per CPU-second; wall eff. = the same from wall-clock time (equal on an idle machine)"]
    out += text_table(
        ("model", "scale", "params", "GMAC", "ms", "out MP/s", "cores busy", "GMAC/CPU-s", "matmul", "efficiency",
         "wall eff."),
        [(s["model"], f"x{s['scale']}", _count(s["parameters"]), f"{s['macs'] / 1e9:.3g}", f"{s['ms']:.1f}",
          f"{s['mp_per_s']:.2f}", f"{s['cores_busy']:.2f}", f"{s['gmac_per_cpu_s']:.1f}",
          f"{s['matmul_gmac_per_cpu_s']:.1f}", f"{s['efficiency']:.2f}", f"{s['efficiency_wall']:.2f}")
         for s in r["speed"]],
    )
    return out


def _tiling_table(t) -> list:
    out = ["", f"TILING AND MEMORY: {t['model']} on a {t['input']} photo (uint8, through the engine), tile {t['tile']}; "
            f"max |tiled - whole| = {t['max_abs_diff']} grey levels ({100 * t['differing_pixels']:.3f}% of values differ)"]
    out += text_table(
        ("mode", "seconds", "CPU s", "out MP/s", "time ratio", "peak RSS MB", "above model MB"),
        [(mode, f"{t[mode]['seconds']:.2f}", f"{t[mode]['cpu_seconds']:.2f}", f"{t[mode]['mp_per_s']:.2f}",
          f"{t[mode]['seconds'] / t['whole']['seconds']:.2f}",
          *((f"{t[mode]['peak_rss_mb']:.0f}", f"{t[mode]['added_rss_mb']:.0f}") if "peak_rss_mb" in t[mode]
            else ("-", "-"))) for mode in ("whole", "tiled")],
    )
    out.append("(peak resident memory of a fresh process upscaling the image once; above model: over its size "
               "with the model loaded and run once on a small input)")
    return out


def _options_table(options, cfg) -> list:
    size = cfg["size"]
    out = ["", f"OPTIONS: {size}x{size} input. ms and MP/s: wall clock; speed-up over float32 and efficiency "
           "(against the matmul of the same precision; oneDNN off: its own process's float32 matmul) from CPU "
           "time; PSNR-Y of the output against the HR crop; max diff to float32 in grey levels"]
    out += text_table(
        ("model", "option", "ms", "out MP/s", "speed-up", "efficiency", "PSNR", "max diff"),
        [(o["model"], o["option"], *((f"{o['ms']:.1f}", f"{o['mp_per_s']:.2f}", f"x{o['speedup']:.2f}",
           f"{o['efficiency']:.2f}", f"{o['psnr']:.2f}", o["max_abs_diff"]) if "error" not in o
          else ("failed: " + o["error"], "", "", "", "", ""))) for o in options],
        align="<<>>>>>>",
    )
    notes = [o for o in options if "matmul_gmac_per_cpu_s" in o]
    out += [""] if notes else []
    out += [f"({o['model']}, {o['option']}: float32 matmul {o['matmul_gmac_per_cpu_s']:.1f} GMAC per CPU-second "
            "in that process)" for o in notes]
    return out


# ------------------------------------------------------------------------------------------------- demo


def demo(out_dir="out", image: str = "astronaut", model: Optional[str] = None) -> dict:
    """Upscale a scikit-image photo with the default shipped model: its LR is made by the benchmark
    degradation, then the model, bicubic and Lanczos upscale it. Writes the images to ``out_dir`` and returns
    (and prints) PSNR/SSIM of each against the original."""
    from .engine.api import upscale
    from .io.images import write_image
    from .models.catalog import DEFAULT_MODEL
    from .models.loading import load_model
    from .training.metrics import bicubic_downscale, bicubic_upscale, lanczos_upscale, modcrop, psnr, ssim

    from skimage import data

    if not hasattr(data, image):
        raise InputError(f"unknown scikit-image photo {image!r} (try: {', '.join(SKIMAGE_PHOTOS)})")
    hr = _as_rgb8(np.asarray(getattr(data, image)()), image)
    if hr is None:
        raise InputError(f"scikit-image's {image!r} is not an 8-bit photo")
    t0 = time.perf_counter()
    srm = load_model(model or DEFAULT_MODEL)
    s = srm.scale
    hr = modcrop(hr, s)
    lr = bicubic_downscale(hr, s)
    t1 = time.perf_counter()
    sr = upscale(lr, srm)
    seconds = time.perf_counter() - t1
    results = {}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_image(out / f"{image}_hr.png", hr, overwrite=True)
    write_image(out / f"{image}_lr_x{s}.png", lr, overwrite=True)
    for key, img in (("model", sr), ("bicubic", bicubic_upscale(lr, s)), ("lanczos", lanczos_upscale(lr, s))):
        name = f"{image}_{srm.name if key == 'model' else key}_x{s}.png"
        write_image(out / name, img, overwrite=True)
        results[key] = {"psnr": psnr(hr, img, scale=s), "ssim": ssim(hr, img, scale=s), "file": str(out / name)}
    lines = [
        f"{image}: {hr.shape[1]}x{hr.shape[0]} photo from scikit-image, LR {lr.shape[1]}x{lr.shape[0]} by "
        f"bicubic downscale x{s}; model {srm.name} ({seconds:.2f} s, {time.perf_counter() - t0:.1f} s with loading)",
        f"{'method':<12} {'PSNR-Y':>7} {'SSIM-Y':>7}  file",
    ]
    for key, label in (("model", srm.name), ("bicubic", "bicubic"), ("lanczos", "Lanczos")):
        v = results[key]
        lines.append(f"{label:<12} {v['psnr']:7.2f} {v['ssim']:7.4f}  {v['file']}")
    gain_b = results["model"]["psnr"] - results["bicubic"]["psnr"]
    gain_l = results["model"]["psnr"] - results["lanczos"]["psnr"]
    lines.append(f"{srm.name} vs bicubic: {gain_b:+.2f} dB PSNR-Y; vs Lanczos: {gain_l:+.2f} dB")
    print("\n".join(lines), flush=True)
    return {"image": image, "model": srm.name, "scale": s, "seconds": seconds, **results}


if __name__ == "__main__":  # the oneDNN subprocess of options_section
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        print(json.dumps(_child(json.loads(sys.argv[2]))))
    else:
        sys.exit("usage: napari-superres bench (this module's own entry is for its subprocess)")
