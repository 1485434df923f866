"""Run inside the fresh environment made by test_plugin_manager_install.py (the plugin's wheel, its base
dependencies and napari[pyqt6], nothing else), under Xvfb: what a user who installed the plugin from napari's
plugin manager does first.

Opens both dock widgets through the npe2 manifest, lets the Train widget's live plot draw two epochs, and
upscales a small layer with a shipped model through the Upscale widget's real path (worker process included).
Prints one line per check and exits non-zero on the first failure."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

PLUGIN = "napari-superres-keras"


def wait_until(app, condition, timeout_s: float, what: str) -> None:
    end = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > end:
            raise SystemExit(f"timed out after {timeout_s:.0f} s waiting for {what}")
        app.processEvents()
        time.sleep(0.02)


def main() -> None:
    import napari
    from qtpy.QtWidgets import QApplication
    from skimage import data

    from napari_superres._napari._plot import LOSS, MODEL
    from napari_superres.training.metrics import bicubic_upscale

    viewer = napari.Viewer(show=True)
    app = QApplication.instance()
    _, upscale = viewer.window.add_plugin_dock_widget(PLUGIN, "Upscale")
    _, train = viewer.window.add_plugin_dock_widget(PLUGIN, "Train")
    print(f"docked: {type(upscale).__name__}, {type(train).__name__}")

    # The live plot draws from the base install: loss and model PSNR lines appear in their colours.
    plot = train._plot
    plot.resize(420, 200)
    for epoch, loss, psnr in ((1, 0.08, 27.0), (2, 0.05, 28.5)):
        plot.add_epoch({"epoch": epoch, "loss": loss, "val_psnr": psnr, "bicubic_psnr": 27.5})
    image = plot.grab().toImage()
    colours = {image.pixelColor(x, y).name() for x in range(image.width()) for y in range(image.height())}
    for name, colour in (("loss", LOSS), ("PSNR", MODEL)):
        assert colour.name() in colours, f"the plot did not draw its {name} line"
    print("plot: loss and PSNR lines drawn")

    photo = data.camera()[200:248, 180:244]  # 48 x 64, uint8
    layer = viewer.add_image(photo, name="camera")
    upscale._image.value = layer
    shipped = [value for value in upscale._model.choices if Path(value).name == "espcn-x2.keras"]
    assert shipped, f"shipped model espcn-x2 not offered: {upscale._model.choices}"
    upscale._model.value = shipped[0]
    assert upscale.run() is not None, "Run refused"
    wait_until(app, lambda: not upscale.state.running, 300, "the upscale run")
    out = viewer.layers[-1]
    assert out.name == "camera (x2 espcn-x2)", out.name
    assert out.data.shape == (96, 128) and out.data.dtype == np.uint8, (out.data.shape, out.data.dtype)
    difference = np.abs(out.data.astype(float) - bicubic_upscale(photo, 2)).mean()
    assert difference < 6, f"the result is not the picture: mean |model - bicubic| = {difference:.1f}"
    print(f"upscaled: {out.name} {out.data.shape}, mean |model - bicubic| {difference:.2f} grey levels")

    # The napari process stays free of TensorFlow (the model ran in the worker) and of matplotlib.
    leaked = [m for m in ("tensorflow", "keras", "matplotlib") if m in sys.modules]
    assert not leaked, f"imported in the napari process: {leaked}"

    from napari_superres.worker.client import get_client

    get_client().shutdown()
    viewer.close()
    print("OK")


if __name__ == "__main__":
    main()
