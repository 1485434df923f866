"""Process isolation: Keras runs in a separate worker process, napari's process never imports TensorFlow.

``get_client()`` returns the shared :class:`WorkerClient` (``_napari._layer.upscale_layer`` upscales a napari
Image layer through it). See docs/architecture.md, "Why Keras runs in its own process".
"""

from .client import WorkerClient, get_client
from .protocol import WorkerDied, WorkerError

__all__ = ["WorkerClient", "get_client", "WorkerDied", "WorkerError"]
