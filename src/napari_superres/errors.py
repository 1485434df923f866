"""Errors a user can act on. Their message is one clear line; the CLI prints it without a traceback
and the napari widgets show it as a notification."""


def one_line(exc: BaseException) -> str:
    """``exc``'s message on one line of at most 200 characters (its type name when it has none), to quote in
    a :class:`SuperResError` about a file that could not be read or written."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


class SuperResError(Exception):
    """Base class: bad input, bad model, bad path. Never raised for programming errors."""


class InputError(SuperResError):
    """The image or stack cannot be processed as given (dtype, NaN, axes, size, unreadable file)."""


class ModelError(SuperResError):
    """The model cannot be used (not a Keras file, unsafe code, wrong shape, unknown name)."""


class OutputError(SuperResError):
    """The output cannot be written (exists, unwritable folder, disk full)."""


class Cancelled(SuperResError):
    """The user cancelled the run. Nothing incomplete was left behind."""
