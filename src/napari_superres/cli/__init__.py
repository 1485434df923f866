"""The ``napari-superres`` command.

Each subcommand lives in its own module with ``add_parser(subparsers)`` and ``run(args) -> int``.
Errors a user can act on (:class:`~napari_superres.errors.SuperResError`) exit non-zero with one line.
"""

import argparse
import importlib
import sys

from ..errors import Cancelled, SuperResError

# subcommand name -> module (imported lazily, so `napari-superres models` does not load TensorFlow)
SUBCOMMANDS = {
    "models": "napari_superres.cli.models_cmd",
    "upscale": "napari_superres.cli.upscale_cmd",
    "train": "napari_superres.cli.train_cmd",
    "evaluate": "napari_superres.cli.evaluate_cmd",
    "bench": "napari_superres.cli.bench_cmd",
}


def build_parser():
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="napari-superres",
        description="Deep-learning super-resolution: upscale images and stacks, train and evaluate models.",
        epilog="Installed from the napari-superres-keras distribution (pip install napari-superres-keras).",
    )
    parser.add_argument("--version", action="version", version=f"napari-superres (napari-superres-keras) {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, module in SUBCOMMANDS.items():
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue  # subcommand not installed in this build
        p = mod.add_parser(sub)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except Cancelled as exc:
        print(f"napari-superres: cancelled: {exc}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("napari-superres: interrupted; no incomplete output was left behind", file=sys.stderr)
        return 130
    except SuperResError as exc:
        print(f"napari-superres: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
