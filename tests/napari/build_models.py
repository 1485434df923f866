"""Build the small models the napari tests use, in a separate process (the test process never imports Keras).

Usage: python build_models.py OUT_DIR. Writes:
  nearest-gray-x2.keras, nearest-rgb-x2.keras  nearest-neighbour x2: outputs known exactly, so the tests can
                                               check every pixel that comes back into napari;
  espcn-gray-x2.keras                          an untrained ESPCN (real convolutions): slow enough on a CPU to
                                               cancel, kill or time a run.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from napari_superres.models.loading import save_model  # noqa: E402
from napari_superres.models.registry import build_model  # noqa: E402


def nearest(channels):
    inp = keras.Input((None, None, channels))
    out = keras.layers.UpSampling2D(2, interpolation="nearest")(inp)
    return keras.Model(inp, out, name=f"nearest_{channels}ch_x2")


def main(out_dir):
    keras.utils.set_random_seed(0)
    desc = {"architecture": "nearest", "normalization": {"mode": "range"}, "overlap": 0}
    save_model(nearest(1), os.path.join(out_dir, "nearest-gray-x2.keras"), dict(desc))
    save_model(nearest(3), os.path.join(out_dir, "nearest-rgb-x2.keras"), dict(desc))
    save_model(build_model("espcn", 2, 1), os.path.join(out_dir, "espcn-gray-x2.keras"), {"architecture": "espcn"})


if __name__ == "__main__":
    main(sys.argv[1])
