"""Train super-resolution models from folders of images, and measure them.

- :class:`TrainConfig` and :func:`train` (``train(config, progress=None, cancel=None) -> Path``);
- :func:`evaluate` (``evaluate(model, hr_dir, scale=None) -> dict``: PSNR/SSIM next to bicubic and Lanczos);
- :func:`log_path` (the JSON-lines log a UI tails), :func:`summarize` (what a data folder holds);
- :mod:`.metrics`: PSNR, SSIM and the classic resamplers (NumPy only).

Lazy: importing this package (or ``TrainConfig``, ``log_path``, ``summarize``) does not import Keras, so the
napari process can prepare a run that a worker process executes.
"""

_LAZY = {
    "TrainConfig": ("napari_superres.training.config", "TrainConfig"),
    "train": ("napari_superres.training.trainer", "train"),
    "TrainingError": ("napari_superres.training.trainer", "TrainingError"),
    "evaluate": ("napari_superres.training.validation", "evaluate"),
    "log_path": ("napari_superres.training.runfiles", "log_path"),
    "read_log": ("napari_superres.training.runfiles", "read_log"),
    "summarize": ("napari_superres.training.folders", "summarize"),
}

__all__ = list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'napari_superres.training' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
