"""What the subcommands share: the device set-up before Keras loads, TensorFlow's start-up noise held back,
the upscale options from the command line, and the progress bar."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile

from ..errors import SuperResError


def at_least(minimum, kind=int):
    """An argparse ``type``: a number of ``kind`` no smaller than ``minimum`` (argparse names the option)."""

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {text}")
        return value

    return parse


def prepare_device(device):
    """Set the environment before Keras is imported: quiet TensorFlow, and hide GPUs for ``cpu`` (the
    settings the model worker uses for the same choice)."""
    from ..worker.protocol import device_env

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if device == "cpu":
        os.environ.update(device_env("cpu"))


def check_gpu():
    """SuperResError unless the Keras backend sees at least one GPU."""
    import keras

    from ..worker.server import visible_devices

    if visible_devices() == ["CPU"]:
        backend = keras.backend.backend()
        raise SuperResError(f"--device gpu: no GPU is visible to Keras ({backend} backend); use --device cpu or auto")


def upscale_options(args):
    """The ``UpscaleOptions`` the upscale flags ask for, built once per command (``--z-factor`` of 1 or less
    leaves Z as it is)."""
    from ..engine.options import UpscaleOptions

    z_factor = getattr(args, "z_factor", None)
    return UpscaleOptions(
        axes=args.axes,
        tile=args.tile,  # 0: the whole image in one window
        overlap=args.overlap,
        tta=args.tta,
        batch_size=args.batch_size,
        normalization=args.normalization,
        precision=args.precision,  # an explicit choice beats the environment
        z_factor=z_factor if (z_factor or 1) > 1 else None,
        z_method=getattr(args, "z_method", "model"),
        bands=getattr(args, "bands", "auto"),
    )


@contextlib.contextmanager
def quiet_native_stderr():
    """Hold back what TensorFlow's C++ side prints while it loads (oneDNN, CUDA probing: a dozen lines that
    TF_CPP_MIN_LOG_LEVEL no longer silences); replayed if something unexpected goes wrong."""
    sys.stderr.flush()
    saved = os.dup(2)
    held = tempfile.TemporaryFile()
    os.dup2(held.fileno(), 2)
    unexpected = False
    try:
        yield
    except SuperResError:
        raise
    except Exception:
        unexpected = True
        raise
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        if unexpected:
            held.seek(0)
            sys.stderr.write(held.read().decode(errors="replace"))
        held.close()


class Progress:
    """A tqdm bar on stderr fed by the engine's ``progress(done, total)`` callback."""

    def __init__(self, label, enabled):
        self.label, self.enabled, self.bar = label, enabled, None

    def __call__(self, done, total):
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=self.label, unit="step", file=sys.stderr, dynamic_ncols=True)
        self.bar.total = total
        self.bar.n = done
        self.bar.refresh()

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
