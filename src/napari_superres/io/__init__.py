"""Image and stack files: read, write atomically, list a folder; GeoTIFF, NIfTI and DICOM placement.
No Keras, no Qt."""

from .dicom import is_dicom_folder, read_dicom_series
from .geotiff import GeoTags, raster_to_model, read_geotags
from .images import (
    IMAGE_SUFFIXES,
    can_hold,
    check_folder_writable,
    check_format,
    check_output_axes,
    check_writable,
    list_images,
    read_image,
    write_image,
)
from .nifti import is_nifti, read_nifti
from .placement import upscaled_affine, upscaled_meta

__all__ = [
    "IMAGE_SUFFIXES",
    "GeoTags",
    "can_hold",
    "check_folder_writable",
    "check_format",
    "check_output_axes",
    "check_writable",
    "is_dicom_folder",
    "is_nifti",
    "list_images",
    "raster_to_model",
    "read_dicom_series",
    "read_geotags",
    "read_image",
    "read_nifti",
    "upscaled_affine",
    "upscaled_meta",
    "write_image",
]
