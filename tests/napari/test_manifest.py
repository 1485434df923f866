"""The npe2 manifest: valid, its widgets and menu items reach napari, its sample data load without network."""

from __future__ import annotations

import numpy as np


def test_manifest_is_valid():
    import npe2

    manifest = npe2.PluginManifest.from_distribution("napari-superres-keras")
    assert manifest.name == "napari-superres-keras"
    assert {w.display_name for w in manifest.contributions.widgets} == {"Upscale", "Train"}
    commands = {c.id for c in manifest.contributions.commands}
    for menu, items in manifest.contributions.menus.items():
        assert all(item.command in commands for item in items), menu
    assert "napari/layers/context" in manifest.contributions.menus
    # every python_name resolves without TensorFlow (checked by the autouse fixture)
    for command in manifest.contributions.commands:
        module, _, attr = command.python_name.partition(":")
        assert callable(getattr(__import__(module, fromlist=[attr]), attr))


def test_both_widgets_dock(make_napari_viewer, qtbot):
    from napari_superres._napari._train import TrainWidget
    from napari_superres._napari._upscale import UpscaleWidget

    viewer = make_napari_viewer()
    dock_u, upscale = viewer.window.add_plugin_dock_widget("napari-superres-keras", "Upscale")
    dock_t, train = viewer.window.add_plugin_dock_widget("napari-superres-keras", "Train")
    assert isinstance(upscale, UpscaleWidget) and isinstance(train, TrainWidget)
    assert "Upscale" in dock_u.name and "Train" in dock_t.name
    # the device list comes from the worker: its GPUs if it sees any, and the CPU
    from napari_superres.worker.client import get_client

    qtbot.waitUntil(lambda: upscale._devices_known, timeout=180_000)
    gpus = [d.upper() for d in get_client().devices() if d.lower().startswith("gpu")]
    assert [upscale._device.native.itemText(i) for i in range(upscale._device.native.count())] == gpus + ["CPU"]


def test_menu_items(make_napari_viewer):
    from napari_superres._napari._menu import COMMAND_ID, napari_app

    viewer = make_napari_viewer()
    app = napari_app()

    def menu_commands(menu_id):
        return [getattr(getattr(item, "command", None), "id", None) for item in app.menus.get_menu(menu_id)]

    assert COMMAND_ID in menu_commands("napari/layers/transform")  # Layers > Transform, from the manifest
    viewer.window.add_plugin_dock_widget("napari-superres-keras", "Upscale")
    assert COMMAND_ID in menu_commands("napari/layers/context")  # the layer list's right-click menu
    assert menu_commands("napari/layers/context").count(COMMAND_ID) == 1
    viewer.window.add_plugin_dock_widget("napari-superres-keras", "Train")
    assert menu_commands("napari/layers/context").count(COMMAND_ID) == 1  # added once


def test_sample_data(make_napari_viewer):
    viewer = make_napari_viewer()
    photo = viewer.open_sample("napari-superres-keras", "low_res_photo")[0]
    assert photo.rgb and photo.data.shape == (150, 225, 3) and photo.data.dtype == np.uint8
    stack = viewer.open_sample("napari-superres-keras", "focal_stack")[0]
    assert stack.data.shape == (12, 256, 256) and stack.data.dtype == np.uint8
    assert tuple(stack.scale) == (2.0, 0.5, 0.5)
    # a focal series: the middle slices are the sharpest (most high-frequency energy)
    sharpness = [float(np.abs(np.diff(plane.astype(float), axis=1)).mean()) for plane in stack.data]
    assert int(np.argmax(sharpness)) in (5, 6)
    assert sharpness[0] < sharpness[5] / 1.5
