"""Where an upscaled output lies: its file metadata updated so that it overlays its input exactly.

The geometry rule of the project: upscaling an axis by ``f`` turns each pixel into ``f`` pixels of size
``s / f`` covering the same extent, so the first new pixel centre sits ``s (1/f - 1) / 2`` from the old one.
Applied here to every kind of placement a file can carry: pixel sizes, GeoTIFF georeferencing
(:class:`~napari_superres.io.geotiff.GeoTags`) and voxel-to-scanner affines (NIfTI, DICOM; with the NIfTI
header's pixdim, qform and sform updated and their codes kept).
"""

from __future__ import annotations

import numpy as np

CARRIED = ("pixel_size", "unit", "geotiff", "photometric", "affine", "nifti_header")


def upscaled_affine(affine, fx: float, fy: float, fz: float = 1) -> np.ndarray:
    """A voxel ``(i, j, k)`` -> world affine for the grid upscaled by ``fx`` along i, ``fy`` along j and
    ``fz`` along k: ``A @ S`` with ``S`` mapping a new index ``n`` to the old ``(n + 1/2) / f - 1/2``."""
    f = np.array([fx, fy, fz], dtype=float)
    s = np.diag(np.append(1.0 / f, 1.0))
    s[:3, 3] = (1.0 / f - 1.0) / 2.0
    return np.asarray(affine, dtype=float) @ s


def upscaled_meta(meta: dict, factors: dict) -> dict:
    """The placement metadata of ``meta`` for the output upscaled by ``factors`` (``{"Y": 2, "X": 2, "Z": 1}``;
    missing axes: 1). Other keys (axes, format) are the caller's business and are not copied."""
    fy, fx, fz = (int(factors.get(a, 1)) for a in "YXZ")
    out = {k: meta[k] for k in CARRIED if meta.get(k) is not None}
    if out.get("pixel_size"):
        out["pixel_size"] = {a: float(v) / int(factors.get(a, 1)) for a, v in out["pixel_size"].items()}
    if "geotiff" in out:
        out["geotiff"] = out["geotiff"].upscaled(fy, fx)
    if "affine" in out:
        out["affine"] = upscaled_affine(out["affine"], fx, fy, fz)
    if "nifti_header" in out:
        out["nifti_header"] = _upscaled_header(out["nifti_header"], fx, fy, fz)
    return out


def _upscaled_header(header, fx, fy, fz):
    header = header.copy()
    qcode, scode = int(header["qform_code"]), int(header["sform_code"])
    qform, sform = header.get_qform(), header.get_sform()  # before pixdim changes: the qform is built from it
    zooms = list(header.get_zooms())
    for i, f in enumerate((fx, fy, fz)[: len(zooms)]):
        zooms[i] = zooms[i] / f
    header.set_zooms(zooms)
    if qcode > 0:
        header.set_qform(upscaled_affine(qform, fx, fy, fz), code=qcode)
    if scode > 0:
        header.set_sform(upscaled_affine(sform, fx, fy, fz), code=scode)
    return header
