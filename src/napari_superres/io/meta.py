"""The axes a file's metadata may carry, shared by every reader and writer.

A file's ``meta["axes"]`` uses napari-order letters from T, Z, C, Y, X, each at most once, one per dimension;
anything else (a sample axis ``S``, a letter count that does not fit) is not kept: the engine or ``--axes``
decides then.
"""

from __future__ import annotations

KNOWN_AXES = "TZCYX"
META_KEY = "napari_superres"  # our metadata (axes, pixel sizes, unit) where a format has no place for it


def drop_bad_axes(meta: dict, ndim: int) -> None:
    """Remove ``meta["axes"]`` unless it names each of the ``ndim`` dimensions once with a known letter."""
    axes = meta.get("axes")
    if axes is not None and not (
        isinstance(axes, str) and len(axes) == ndim and set(axes) <= set(KNOWN_AXES) and len(set(axes)) == ndim
    ):
        del meta["axes"]


def own_metadata(meta: dict) -> dict:
    """What of ``meta`` goes under :data:`META_KEY`: axes, pixel sizes and unit, as plain JSON values."""
    import json

    return json.loads(json.dumps({k: meta[k] for k in ("axes", "pixel_size", "unit") if meta.get(k)}))
