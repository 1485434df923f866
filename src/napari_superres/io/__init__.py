"""Image and stack files: read, write atomically, list a folder. No Keras, no Qt."""

from .images import (
    IMAGE_SUFFIXES,
    can_hold,
    check_folder_writable,
    check_format,
    check_writable,
    list_images,
    read_image,
    write_image,
)

__all__ = [
    "IMAGE_SUFFIXES",
    "can_hold",
    "check_folder_writable",
    "check_format",
    "check_writable",
    "list_images",
    "read_image",
    "write_image",
]
