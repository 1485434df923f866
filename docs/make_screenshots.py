"""Make the screenshots of the plugin's widgets in use: docs/upscale_widget.png and docs/train_widget.png.

Run from the repository root with a display (on a headless machine, under Xvfb):

    xvfb-run -a -s "-screen 0 1600x1200x24" .venv/bin/python docs/make_screenshots.py

It drives a real napari viewer: the Upscale widget upscales the low-resolution photo sample with the first
shipped model, and the Train widget trains a small ESPCN for a few epochs on crops of scikit-image's bundled
photos (a minute or two on a laptop CPU). Trained models go to a temporary folder, not the user's library.
"""

import os
import sys
import tempfile
import time
from pathlib import Path

DOCS = Path(__file__).resolve().parent


def wait(app, condition, timeout_s):
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the widget did not finish in time")
        app.processEvents()
        time.sleep(0.02)


def settle(app, seconds=1.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.02)


def save(viewer, name):
    from PIL import Image

    image = viewer.screenshot(canvas_only=False, flash=False)
    Image.fromarray(image).save(DOCS / name)
    print(f"wrote {DOCS / name} ({image.shape[1]}x{image.shape[0]})")


def training_folder(folder: Path) -> Path:
    """HR crops (192 x 192) of scikit-image's bundled colour photos."""
    from PIL import Image
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    for name in ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field"):
        image = getattr(data, name)()
        for i, (y, x) in enumerate(((0, 0), (1, 1))):
            h, w = image.shape[:2]
            top, left = y * (h - 192), x * (w - 192)
            Image.fromarray(image[top : top + 192, left : left + 192]).save(folder / f"{name}-{i}.png")
    return folder


def upscale_screenshot(napari, app):
    from napari_superres._napari import _models

    viewer = napari.Viewer(title="napari-superres: Upscale")
    viewer.window.resize(1500, 950)
    _, widget = viewer.window.add_plugin_dock_widget("napari-superres-keras", "Upscale")
    photo = viewer.open_sample("napari-superres-keras", "low_res_photo")[0]
    widget._image.value = photo
    shipped = [c for c in _models.model_choices() if c.source == "shipped"]
    if not shipped:
        sys.exit("no shipped model installed: the Upscale screenshot needs one")
    widget._model.value = shipped[0].value
    widget.run()
    wait(app, lambda: not widget.state.running, 600)
    viewer.grid.enabled = True  # input and output side by side, same world extent
    viewer.reset_view()
    viewer.camera.center = (62, 112)  # the eyes: where the model's detail shows
    viewer.camera.zoom *= 2.2
    settle(app, 2)
    save(viewer, "upscale_widget.png")
    viewer.close()


def train_screenshot(napari, app, workdir: Path):
    viewer = napari.Viewer(title="napari-superres: Train")
    viewer.window.resize(1500, 1000)
    _, widget = viewer.window.add_plugin_dock_widget("napari-superres-keras", "Train")
    widget._folder.value = str(training_folder(workdir / "photos"))
    widget._arch.value = "espcn"
    widget._scale.value = 2
    widget._epochs.value = 8
    widget._steps.value = 25
    widget._patch.value = 96
    widget._batch.value = 8
    widget._name.value = "photos-espcn-x2"
    widget.start()
    wait(app, lambda: widget._worker is not None, 120)
    wait(app, lambda: not widget.state.running, 1800)
    viewer.open_sample("napari-superres-keras", "low_res_photo")
    settle(app, 2)
    save(viewer, "train_widget.png")
    viewer.close()


def main():
    workdir = Path(tempfile.mkdtemp(prefix="napari-superres-docs-"))
    os.environ["NAPARI_SUPERRES_HOME"] = str(workdir / "home")  # trained models stay out of the user's library
    import napari
    from qtpy.QtWidgets import QApplication

    napari.Viewer(show=False).close()  # creates the Qt application
    app = QApplication.instance()
    upscale_screenshot(napari, app)
    train_screenshot(napari, app, workdir)
    from napari_superres.worker.client import get_client

    get_client().shutdown()


if __name__ == "__main__":  # the model worker is spawned: it imports this file, which must not run again
    main()
