"""Optional format packages (NIfTI, DICOM): imported on first use, with one clear line when missing.

The install hint names this package's distribution as installed (read from its metadata), so the message stays
right whatever name it is published under; ``DIST_FALLBACK`` is used when it runs from a source tree.
"""

from __future__ import annotations

import importlib

from ..errors import SuperResError

DIST_FALLBACK = "napari-superres-keras"
MEDICAL_EXTRA = "medical"


def distribution_name() -> str:
    """The distribution that installed ``napari_superres`` (its PyPI name), or ``DIST_FALLBACK``."""
    try:
        from importlib.metadata import packages_distributions

        names = packages_distributions().get(__name__.split(".")[0]) or []
    except Exception:  # metadata unreadable: the fallback is still a correct hint for a source install
        names = []
    return names[0] if names else DIST_FALLBACK


def require(module: str, what: str, extra: str = MEDICAL_EXTRA):
    """Import ``module`` or raise a SuperResError naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise SuperResError(
            f"{what} needs the '{module}' package, which is not installed: "
            f'pip install "{distribution_name()}[{extra}]"'
        ) from None
