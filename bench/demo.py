"""Upscale a scikit-image photo with the default shipped model; write the images; print PSNR against bicubic.

    .venv/bin/python bench/demo.py [--image astronaut] [--model edsr-x2] [--out out]
"""

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None):
    from napari_superres.errors import SuperResError

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--image", default="astronaut", help="a scikit-image photo: astronaut, coffee, chelsea, rocket")
    p.add_argument("--model", help="model name or .keras path (default: the default shipped model)")
    p.add_argument("--out", default="out", help="folder for the images (default: out)")
    args = p.parse_args(argv)
    from napari_superres.cli.upscale_cmd import quiet_native_stderr

    try:
        with quiet_native_stderr():  # TensorFlow's start-up lines
            import keras

            keras.ops.zeros((1,))
        from napari_superres.benchmark import demo

        demo(args.out, image=args.image, model=args.model)
    except SuperResError as e:
        print(f"demo: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
