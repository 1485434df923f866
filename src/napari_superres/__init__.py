"""Deep-learning super-resolution for napari.

The public API is lazy: ``import napari_superres`` imports neither TensorFlow/Keras nor Qt, so napari
starts fast with the plugin installed. Each name below is imported on first use.
"""

__version__ = "0.1.0"

__all__ = ["upscale", "upscale_path", "upscale_layer", "UpscaleOptions", "load_model", "list_models", "SuperResError"]

_LAZY = {
    "upscale": ("napari_superres.engine.api", "upscale"),
    "upscale_path": ("napari_superres.engine.files", "upscale_path"),
    "upscale_layer": ("napari_superres._napari._layer", "upscale_layer"),
    "UpscaleOptions": ("napari_superres.engine.options", "UpscaleOptions"),
    "load_model": ("napari_superres.models.loading", "load_model"),
    "list_models": ("napari_superres.models.catalog", "list_models"),
    "SuperResError": ("napari_superres.errors", "SuperResError"),
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'napari_superres' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
