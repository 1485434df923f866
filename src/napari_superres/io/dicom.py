"""DICOM series (a folder holding one series of single-frame grayscale slices) with pydicom (``medical`` extra).

Read only: an upscaled series is written as NIfTI or TIFF, never back to DICOM (a new DICOM series would need
new UIDs and a derivation history that this tool cannot vouch for).

The slices are ordered by their position along the slice normal (``ImagePositionPatient`` projected on the
cross product of the ``ImageOrientationPatient`` row and column directions), not by file name or instance
number. Each slice's ``RescaleSlope``/``RescaleIntercept`` is applied (CT in Hounsfield units): the array keeps
an integer dtype when the rescaled values are integers that fit one, else float32.

``meta["affine"]`` maps voxel indices ``(i, j, k)`` = (column, row, slice) to scanner millimetres in RAS, as
NIfTI does (DICOM's LPS with x and y negated), ``meta["pixel_size"]`` holds the spacing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from .extras import require

_MAGIC_AT = 128
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
_SPACING_TOLERANCE = 1e-3  # relative: slice gaps that differ more than this are a gap or a missing slice


def _is_dicom_file(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(_MAGIC_AT + 4)
    except OSError:
        return False
    return head[_MAGIC_AT:] == b"DICM"


def _candidates(folder: Path):
    return (p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and _is_dicom_file(p))


def dicom_files(folder) -> list:
    """The DICOM files (``DICM`` after the 128-byte preamble) directly in ``folder``, hidden ones skipped."""
    folder = Path(folder)
    return sorted(_candidates(folder)) if folder.is_dir() else []


def is_dicom_folder(path) -> bool:
    """Whether ``path`` is a folder holding a DICOM file (stops at the first one found)."""
    path = Path(path)
    return path.is_dir() and path.suffix.lower() != ".zarr" and any(True for _ in _candidates(path))


def read_dicom_series(folder):
    """``(array ZYX, meta)`` of the series in ``folder``; see the module docstring."""
    pydicom = require("pydicom", "Reading DICOM")
    folder = Path(folder)
    headers = []
    for path in dicom_files(folder):
        ds = pydicom.dcmread(str(path), stop_before_pixels=True)
        if "Rows" in ds and "ImagePositionPatient" in ds:  # an image slice (not a DICOMDIR, report, ...)
            headers.append((path, ds))
    if not headers:
        raise InputError(f"no DICOM image slices with a position in {folder}")
    series = {str(ds.get("SeriesInstanceUID", "")) for _, ds in headers}
    if len(series) > 1:
        raise InputError(f"{folder} holds {len(series)} DICOM series; put each series in a folder of its own")
    first = headers[0][1]
    if int(first.get("NumberOfFrames", 1) or 1) > 1:
        raise InputError(f"{folder}: multi-frame DICOM is not supported (one slice per file)")
    if int(first.get("SamplesPerPixel", 1)) != 1:
        raise InputError(f"{folder}: colour DICOM is not supported (grayscale slices only)")

    orientation = np.array(first.ImageOrientationPatient, dtype=float)
    row_dir, col_dir = orientation[:3], orientation[3:]
    normal = np.cross(row_dir, col_dir)
    for path, ds in headers:
        if not np.allclose(np.array(ds.ImageOrientationPatient, dtype=float), orientation, atol=1e-4):
            raise InputError(f"{folder}: the slices have different orientations (e.g. {path.name})")
        if (ds.Rows, ds.Columns) != (first.Rows, first.Columns):
            raise InputError(f"{folder}: the slices have different sizes (e.g. {path.name})")
    positions = np.array([np.array(ds.ImagePositionPatient, dtype=float) for _, ds in headers])
    order = np.argsort(positions @ normal, kind="stable")
    headers, positions = [headers[i] for i in order], positions[order]
    along = positions @ normal
    gaps = np.diff(along)
    if len(gaps) and np.min(gaps) <= 1e-6:
        raise InputError(f"{folder}: two slices lie at the same position; the folder holds a series twice?")
    if len(gaps) and np.ptp(gaps) > _SPACING_TOLERANCE * np.median(gaps) + 1e-6:
        raise InputError(
            f"{folder}: the slices are not evenly spaced ({gaps.min():g} to {gaps.max():g} mm apart); "
            "a slice is missing or the series has gaps"
        )

    row_spacing, col_spacing = (float(v) for v in first.PixelSpacing)  # between rows, between columns
    if len(headers) > 1:
        step = (positions[-1] - positions[0]) / (len(headers) - 1)  # follows a gantry tilt, if any
    else:
        step = normal * float(first.get("SpacingBetweenSlices", first.get("SliceThickness", 1.0)) or 1.0)
    lps = np.eye(4)
    lps[:3, 0], lps[:3, 1], lps[:3, 2], lps[:3, 3] = row_dir * col_spacing, col_dir * row_spacing, step, positions[0]

    data = _rescaled_stack([pydicom.dcmread(str(path)) for path, _ in headers], folder)
    meta = {
        "axes": "ZYX",
        "pixel_size": {"Z": float(np.linalg.norm(step)), "Y": row_spacing, "X": col_spacing},
        "unit": "mm",
        "affine": _LPS_TO_RAS @ lps,
    }
    return data, meta


def _rescaled_stack(datasets, folder) -> np.ndarray:
    raw = []
    rescale = []
    for ds in datasets:
        try:
            raw.append(np.asarray(ds.pixel_array))
        except Exception as exc:  # compressed syntax without its decoder, truncated pixel data
            raise InputError(f"{folder}: cannot decode the pixel data of {Path(ds.filename).name}: {exc}") from None
        rescale.append((float(ds.get("RescaleSlope", 1.0) or 1.0), float(ds.get("RescaleIntercept", 0.0) or 0.0)))
    stack = np.stack(raw)
    if all(r == (1.0, 0.0) for r in rescale):
        return stack
    values = np.stack([a.astype(np.float64) * s + b for a, (s, b) in zip(raw, rescale)])
    if all(float(s).is_integer() and float(b).is_integer() for s, b in rescale):
        for dtype in (stack.dtype, np.int16, np.uint16, np.int32):
            info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
            if info is not None and values.min() >= info.min and values.max() <= info.max:
                return values.astype(dtype)
    return values.astype(np.float32)
