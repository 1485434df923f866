"""Read and write images and stacks: TIFF and GeoTIFF (tifffile), PNG and JPEG (Pillow), ``.npy``, Zarr, and
with the ``medical`` extra NIfTI (``.nii``, ``.nii.gz``; read and write) and DICOM series folders (read).

A leaf module (no Keras, no Qt), used by the CLI, the napari reader side and the benchmarks. TIFF lives in
``io.tiff_store``, Zarr/OME-Zarr in ``io.zarr_store`` (both also written block by block there, for the
out-of-core path, which reads through ``io.source``).

``read_image`` returns ``(array, meta)``. ``meta`` always has ``"format"`` and may carry:

- ``"axes"``: napari-order axis letters from T, Z, C, Y, X (e.g. ``"ZYX"``, ``"YXC"``), only when the file says
  so (ImageJ, OME or our own TIFF metadata, OME-Zarr, RGB samples); never guessed for a plain stack;
- ``"pixel_size"``: ``{axis letter: size}`` in ``meta["unit"]`` (e.g. ``{"Z": 2.0, "Y": 0.5, "X": 0.5}``);
- ``"geotiff"`` (:class:`~napari_superres.io.geotiff.GeoTags`) and ``"photometric"`` for GeoTIFFs;
  ``"affine"`` (voxel to scanner mm) and ``"nifti_header"`` for NIfTI and DICOM (``io.nifti``, ``io.dicom``).
  ``io.placement.upscaled_meta`` updates all of them for an upscaled output.

``write_image`` is atomic: it writes to a hidden temporary name in the destination folder, then renames it, so a
failed or interrupted write never leaves a file under the final name. Every problem a user can fix is an
:class:`~napari_superres.errors.InputError` or :class:`~napari_superres.errors.OutputError` with one line that
names the file.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

import numpy as np

from ..errors import InputError, OutputError, SuperResError, one_line
from .atomic import removed_on_failure, replace_path, usual_file_mode
from .dicom import is_dicom_folder
from .meta import drop_bad_axes
from .nifti import NIFTI_SUFFIXES, check_nifti_axes, is_nifti
from .source import TIFF_SUFFIXES
from .tiff_store import read_tiff, write_tiff
from .zarr_store import read_zarr, write_zarr

PIL_SUFFIXES = (".png", ".jpg", ".jpeg")
IMAGE_SUFFIXES = TIFF_SUFFIXES + PIL_SUFFIXES + (".npy", ".zarr") + NIFTI_SUFFIXES

JPEG_MAX_SIDE = 65535  # the format stores sizes in 16 bits
BIGTIFF_BYTES = 2**31  # classic TIFF offsets are 32-bit; switch to BigTIFF well before the 4 GB limit


# ----------------------------------------------------------------------------------------------- reading


def read_image(path) -> tuple[np.ndarray, dict]:
    """Read one image or stack; return ``(array, meta)``. Raises InputError with one line on any problem."""
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.exists():
        raise InputError(f"input not found: {path}")
    medical = _medical_reader(path)
    if medical is None and suffix not in IMAGE_SUFFIXES:
        raise InputError(
            f"unsupported image format {path.suffix or '(no suffix)'!r}: {path} "
            f"(supported: {', '.join(IMAGE_SUFFIXES)})"
        )
    if medical is not None:
        (fmt, reader) = medical
    elif suffix == ".zarr":
        if not path.is_dir():
            raise InputError(f"not a Zarr folder: {path}")
    elif path.is_dir():
        raise InputError(f"expected an image file, found a folder: {path}")
    elif path.stat().st_size == 0:
        raise InputError(f"empty file (0 bytes): {path}")

    if medical is None:
        fmt = suffix.lstrip(".").replace("jpeg", "jpg").replace("tiff", "tif")
        reader = {".npy": _read_npy, ".zarr": read_zarr}.get(suffix)
        if reader is None:
            reader = read_tiff if suffix in TIFF_SUFFIXES else _read_pil
    try:
        data, meta = reader(path)
    except SuperResError:  # already one clear line (e.g. a missing extra, a refused DICOM series)
        raise
    except MemoryError:
        raise InputError(f"not enough memory to read {path}") from None
    except Exception as exc:  # any decoder failure means the file is corrupt or not what its name says
        raise InputError(f"cannot read {path}: {one_line(exc)}") from None
    meta["format"] = fmt
    drop_bad_axes(meta, data.ndim)
    return data, meta


def _medical_reader(path):
    """("nifti" or "dicom", its reader) for a NIfTI file or a DICOM series folder, else None."""
    if is_nifti(path):
        from .nifti import read_nifti

        return "nifti", read_nifti
    if is_dicom_folder(path):
        from .dicom import read_dicom_series

        return "dicom", read_dicom_series
    return None


def _read_pil(path):
    from PIL import Image, ImageOps

    if path.suffix.lower() == ".png":
        _refuse_16bit_colour_png(path)
    with Image.open(path) as im:
        im.load()
        im = ImageOps.exif_transpose(im)  # show the photo the way the camera (and every viewer) shows it
        if im.mode in ("1", "L"):
            im = im.convert("L")
        elif im.mode in ("P", "PA", "LA"):
            im = im.convert("RGBA" if im.mode != "P" or "transparency" in im.info else "RGB")
        elif im.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
            im = im.convert("RGB")
        data = np.asarray(im)
    if data.dtype == np.int32 and data.size and data.min() >= 0 and data.max() <= 65535:
        data = data.astype(np.uint16)  # 16-bit grayscale PNG, opened by Pillow in its 32-bit "I" mode
    meta = {"axes": "YX" if data.ndim == 2 else "YXC"}
    return np.ascontiguousarray(data), meta


def _refuse_16bit_colour_png(path):
    # Pillow silently reduces 16-bit colour PNGs to 8 bits; refusing beats losing half the data unannounced.
    with open(path, "rb") as f:
        head = f.read(26)
    if len(head) == 26 and head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        bit_depth, colour_type = head[24], head[25]
        if bit_depth == 16 and colour_type in (2, 4, 6):
            raise InputError(f"16-bit colour PNG is not supported (it would lose precision); save it as TIFF: {path}")


def _read_npy(path):
    try:
        data = np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise InputError(f"{path} holds Python objects, not an image (pickled .npy files are refused)") from None
        raise
    if not isinstance(data, np.ndarray):
        raise InputError(f"not a single array: {path}")
    return data, {}


# ----------------------------------------------------------------------------------------------- writing


def check_writable(path, shape, dtype, *, overwrite=False, axes=None) -> Path:
    """Raise OutputError if ``write_image(path, array of shape/dtype, meta with axes)`` would fail before writing
    anything: format that cannot hold the array, an existing output without ``overwrite``, a missing or
    unwritable folder. Lets a caller fail fast, before a long computation."""
    path = Path(path)
    check_format(path, shape, dtype, axes)
    if path.exists() or path.is_symlink():
        if not overwrite:
            raise OutputError(f"output exists: {path} (use --overwrite to replace it)")
        if path.is_dir() and path.suffix.lower() != ".zarr":
            raise OutputError(f"output path is a folder, not a file: {path}")
    check_folder_writable(path.parent)
    return path


def can_hold(path, shape, dtype, axes=None) -> bool:
    """Whether the format named by ``path``'s suffix can store an array of this shape, dtype and axes."""
    try:
        check_format(path, shape, dtype, axes)
    except OutputError:
        return False
    return True


def check_folder_writable(folder) -> None:
    """OutputError (one line) unless ``folder`` exists, is a folder and accepts new files."""
    folder = Path(folder)
    if not folder.exists():
        raise OutputError(f"output folder does not exist: {folder}")
    if not folder.is_dir():
        raise OutputError(f"output folder is not a folder: {folder}")
    # os.access says yes to root even on read-only filesystems; creating a file is the only honest test.
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".napari-superres-probe-")
    except OSError as exc:
        raise OutputError(f"output folder is not writable: {folder} ({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(probe)


def write_image(path, array, *, overwrite=False, meta=None) -> Path:
    """Write ``array`` to ``path`` in the format its suffix names, atomically. Returns the path.

    ``meta`` (as returned by :func:`read_image`) carries axes and pixel sizes into TIFF and Zarr outputs.
    """
    path = Path(path)
    array = np.asarray(array)
    meta = dict(meta or {})
    drop_bad_axes(meta, array.ndim)
    check_writable(path, array.shape, array.dtype, overwrite=overwrite, axes=meta.get("axes"))
    suffix = ".nii.gz" if path.name.lower().endswith(".nii.gz") else path.suffix.lower()
    if suffix == ".zarr":
        _write_zarr_atomic(path, array, meta)
        return path
    writer = {".nii": _write_nifti, ".nii.gz": _write_nifti_gz, ".npy": _write_npy, ".png": _write_png, ".jpg": _write_jpeg, ".jpeg": _write_jpeg}.get(
        suffix, _write_tiff
    )
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    with removed_on_failure(tmp, path):
        with open(tmp, "r+b") as f:  # a named file object: tifffile wants a name
            writer(f, array, meta)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, usual_file_mode())  # mkstemp makes owner-only files; an image gets the usual mode
        os.replace(tmp, path)
    return path


def check_output_axes(path, axes: str) -> None:
    """OutputError unless the format named by ``path``'s suffix can store data with these axes (NIfTI: spatial
    and time axes only). Needs no model: a caller checks it before loading one, the sizes come later."""
    if is_nifti(path):
        check_nifti_axes(axes, len(axes), path)


def check_format(path, shape, dtype, axes=None) -> None:
    """OutputError unless the format named by ``path``'s suffix can store an array of this shape and dtype
    (and these axes, when given: see :func:`check_output_axes`)."""
    path, shape, dtype = Path(path), tuple(shape), np.dtype(dtype)
    suffix = ".nii.gz" if is_nifti(path) else path.suffix.lower()
    if suffix in (".dcm", ".dicom"):
        raise OutputError(f"writing DICOM is not supported: {path} (write .nii, .nii.gz or .tif)")
    if suffix not in IMAGE_SUFFIXES:
        raise OutputError(
            f"unsupported output format {path.suffix or '(no suffix)'!r}: {path} "
            f"(use one of {', '.join(IMAGE_SUFFIXES)})"
        )
    if 0 in shape or not shape:
        raise OutputError(f"refusing to write an empty array of shape {shape} to {path}")
    if dtype.kind not in "uif":
        raise OutputError(f"cannot write {dtype} data to {path}")
    if suffix in NIFTI_SUFFIXES and not 2 <= len(shape) <= 4:
        raise OutputError(f"NIfTI holds 2D, 3D or 3D+t data, not {'x'.join(map(str, shape))}: {path} (use .tif)")
    if suffix in NIFTI_SUFFIXES:
        check_nifti_axes(axes, len(shape), path)
    if suffix in PIL_SUFFIXES:
        jpeg = suffix != ".png"
        channels_ok = (3,) if jpeg else (3, 4)
        fits = dtype == np.uint8 and (len(shape) == 2 or (len(shape) == 3 and shape[2] in channels_ok))
        fits = fits or (not jpeg and dtype == np.uint16 and len(shape) == 2)
        if not fits:
            what = "8-bit gray or RGB" if jpeg else "8-bit gray, RGB or RGBA, or 16-bit gray"
            raise OutputError(
                f"{suffix.lstrip('.').upper()} holds only {what} images, not {'x'.join(map(str, shape))} {dtype}: "
                f"{path} (use .tif, .npy or .zarr)"
            )
        if jpeg and max(shape[:2]) > JPEG_MAX_SIDE:
            raise OutputError(
                f"JPEG images are at most {JPEG_MAX_SIDE} pixels a side, not {shape[0]}x{shape[1]}: {path} (use .tif)"
            )


def _write_nifti(f, array, meta):
    from .nifti import nifti_bytes

    f.write(nifti_bytes(array, meta, compressed=False))


def _write_nifti_gz(f, array, meta):
    from .nifti import nifti_bytes

    f.write(nifti_bytes(array, meta, compressed=True))


def _write_npy(f, array, meta):
    np.save(f, array, allow_pickle=False)


def _write_png(f, array, meta):
    from PIL import Image

    Image.fromarray(np.ascontiguousarray(array)).save(f, format="PNG")


def _write_jpeg(f, array, meta):
    from PIL import Image

    # quality 95 without chroma subsampling: an upscaled image should not lose its new detail to the encoder
    Image.fromarray(np.ascontiguousarray(array)).save(f, format="JPEG", quality=95, subsampling=0)


def _write_tiff(f, array, meta):
    write_tiff(f, array, meta, bigtiff=array.nbytes > BIGTIFF_BYTES)


def _write_zarr_atomic(path, array, meta):
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.part"
    with removed_on_failure(tmp, path):
        write_zarr(tmp, array, meta)
        replace_path(tmp, path)


# ----------------------------------------------------------------------------------------------- folders


def list_images(folder) -> list[Path]:
    """The images in ``folder`` (not recursive), sorted by name; hidden files (our temporaries) are skipped."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"not a folder: {folder}")
    return sorted(
        p
        for p in folder.iterdir()
        if (p.suffix.lower() in IMAGE_SUFFIXES or is_nifti(p))
        and not p.name.startswith(".")
        and (p.is_dir() if p.suffix.lower() == ".zarr" else p.is_file())
    )
