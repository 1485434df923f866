"""The Upscale dock widget and the layer menu command on a real viewer, with a real model worker process.

The nearest-neighbour test models make every output pixel known: ``np.repeat`` of the input along Y and X.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers_napari import browse, wait_idle, world_box


def nearest2(data: np.ndarray, axes=(-2, -1)) -> np.ndarray:
    for axis in axes:
        data = np.repeat(data, 2, axis=axis)
    return data


def run_and_wait(qtbot, widget, timeout_s=120):
    worker = widget.run()
    assert worker is not None
    wait_idle(qtbot, widget, timeout_s)
    return worker


def test_2d_gray_layer(qtbot, upscale_widget, models, notes):
    viewer, widget = upscale_widget
    from skimage import data

    camera = data.camera()[100:196, 200:328]  # uint8, 96 x 128
    layer = viewer.add_image(camera, name="camera", scale=(0.4, 0.4), translate=(10.0, -3.0), colormap="magma")
    layer.contrast_limits = (20, 230)
    widget._image.value = layer
    browse(qtbot, widget, models["nearest-gray-x2"])

    run_and_wait(qtbot, widget)

    assert notes.errors() == []
    out = viewer.layers[-1]
    assert out.name == "camera (x2 nearest-gray-x2)"
    assert out.data.dtype == np.uint8
    np.testing.assert_array_equal(out.data, nearest2(camera))
    np.testing.assert_allclose(world_box(out), world_box(layer), atol=1e-9)
    np.testing.assert_allclose(out.scale, (0.2, 0.2))
    assert out.colormap.name == "magma"
    assert tuple(out.contrast_limits) == (20, 230)
    np.testing.assert_array_equal(camera, data.camera()[100:196, 200:328])  # input untouched


def test_rgb_layer(qtbot, upscale_widget, models, notes):
    viewer, widget = upscale_widget
    from skimage import data

    photo = data.astronaut()[:80, :112]
    layer = viewer.add_image(photo, name="astronaut")
    assert layer.rgb
    widget._image.value = layer
    browse(qtbot, widget, models["nearest-rgb-x2"])
    assert widget._fit.value == ""  # an RGB model on an RGB layer needs no explanation

    run_and_wait(qtbot, widget)

    assert notes.errors() == []
    out = viewer.layers[-1]
    assert out.rgb and out.data.shape == (160, 224, 3) and out.data.dtype == np.uint8
    np.testing.assert_array_equal(out.data, nearest2(photo, axes=(0, 1)))
    np.testing.assert_allclose(world_box(out), world_box(layer), atol=1e-9)


def test_1_channel_model_on_rgb_explains_itself(qtbot, upscale_widget, models, notes):
    viewer, widget = upscale_widget
    from skimage import data

    photo = data.coffee()[:64, :96]
    widget._image.value = viewer.add_image(photo, name="coffee")
    browse(qtbot, widget, models["nearest-gray-x2"])
    assert "each colour channel is upscaled separately" in widget._fit.value

    run_and_wait(qtbot, widget)
    assert notes.errors() == []
    np.testing.assert_array_equal(viewer.layers[-1].data, nearest2(photo, axes=(0, 1)))


def test_3d_stack_every_slice(qtbot, upscale_widget, models, notes):
    viewer, widget = upscale_widget
    rng = np.random.default_rng(0)
    stack = rng.integers(0, 4000, size=(5, 40, 56), dtype=np.uint16)
    layer = viewer.add_image(stack, name="stack", scale=(3.0, 0.5, 0.5), translate=(1.0, 2.0, 3.0))
    viewer.dims.set_current_step(0, 2)
    widget._image.value = layer
    browse(qtbot, widget, models["nearest-gray-x2"])
    assert widget._z.enabled

    run_and_wait(qtbot, widget)

    assert notes.errors() == []
    out = viewer.layers[-1]
    assert out.data.shape == (5, 80, 112) and out.data.dtype == np.uint16
    # every slice (not only the one shown) went through the model; 16-bit values come back as they were
    np.testing.assert_array_equal(out.data, nearest2(stack))
    np.testing.assert_allclose(world_box(out), world_box(layer), atol=1e-9)
    np.testing.assert_allclose(out.scale, (3.0, 0.25, 0.25))


def test_4d_dask_layer(qtbot, upscale_widget, models, notes):
    """A lazy (Dask) TZYX layer, as readers open big files: every slice is upscaled, chunk by chunk."""
    import dask.array as da

    viewer, widget = upscale_widget
    data = np.random.default_rng(2).integers(0, 60000, size=(2, 3, 24, 32), dtype=np.uint16)
    lazy = da.from_array(data, chunks=(1, 1, 24, 32))
    layer = viewer.add_image(lazy, name="timelapse", scale=(1.0, 2.0, 0.3, 0.3), contrast_limits=(0, 60000))
    widget._image.value = layer
    browse(qtbot, widget, models["nearest-gray-x2"])

    run_and_wait(qtbot, widget)

    assert notes.errors() == []
    out = viewer.layers[-1]
    assert isinstance(out.data, np.ndarray) and out.data.shape == (2, 3, 48, 64) and out.data.dtype == np.uint16
    np.testing.assert_array_equal(out.data, nearest2(data))
    np.testing.assert_allclose(world_box(out), world_box(layer), atol=1e-9)


def test_3d_stack_z_too(qtbot, upscale_widget, models, notes):
    viewer, widget = upscale_widget
    stack = np.random.default_rng(1).integers(0, 255, size=(6, 32, 40), dtype=np.uint8)
    layer = viewer.add_image(stack, name="anisotropic", scale=(4.0, 1.0, 1.0))
    widget._image.value = layer
    browse(qtbot, widget, models["nearest-gray-x2"])
    widget._z.value = True

    run_and_wait(qtbot, widget)

    assert notes.errors() == []
    out = viewer.layers[-1]
    assert out.data.shape == (12, 64, 80) and out.data.dtype == np.uint8
    # Z by the engine's anisotropic method (the model on the XZ and YZ planes): with a nearest-neighbour model
    # each input slice becomes two equal slices with the same mean, then each pixel a 2x2 block in Y-X
    z = out.data
    np.testing.assert_array_equal(z[0::2], z[1::2])
    np.testing.assert_array_equal(z[:, 0::2, 0::2], z[:, 1::2, 1::2])
    np.testing.assert_allclose(z.reshape(6, -1).mean(1), stack.reshape(6, -1).mean(1), atol=0.5)
    np.testing.assert_allclose(world_box(out), world_box(layer), atol=1e-9)
    np.testing.assert_allclose(out.scale, (2.0, 0.5, 0.5))


def test_menu_command_uses_last_settings(qtbot, upscale_widget, models, notes):
    from napari_superres._napari import _runs
    from napari_superres._napari._menu import napari_app
    from napari_superres._napari._state import LAST_SETTINGS

    viewer, widget = upscale_widget
    a = viewer.add_image(np.arange(24 * 32, dtype=np.float32).reshape(24, 32) / 1000, name="a")
    b = viewer.add_image(np.full((16, 16), 7, np.uint8), name="b")
    viewer.add_labels(np.zeros((16, 16), np.uint8), name="labels")  # selected too, but not an image
    browse(qtbot, widget, models["nearest-gray-x2"])
    widget._image.value = b
    run_and_wait(qtbot, widget)  # this run makes the widget's choices the last-used settings
    assert LAST_SETTINGS.model == widget._model.value
    n_layers = len(viewer.layers)

    viewer.layers.selection = {a, b, viewer.layers["labels"]}
    app = napari_app()
    context_items = [getattr(getattr(i, "command", None), "id", None) for i in app.menus.get_menu("napari/layers/context")]
    assert "napari-superres-keras.upscale_selected" in context_items
    app.commands.execute_command("napari-superres-keras.upscale_selected")
    qtbot.waitUntil(lambda: len(viewer.layers) == n_layers + 2 and not _runs.ACTIVE_RUNS, timeout=120_000)

    assert notes.errors() == []
    names = [layer.name for layer in viewer.layers]
    assert "a (x2 nearest-gray-x2)" in names and "b (x2 nearest-gray-x2)" in names
    out_a = viewer.layers["a (x2 nearest-gray-x2)"]
    assert out_a.data.dtype == np.float32
    np.testing.assert_allclose(out_a.data, nearest2(a.data), rtol=1e-6)
    np.testing.assert_allclose(world_box(out_a), world_box(a), atol=1e-9)


def test_menu_command_without_image_selected(make_napari_viewer, notes):
    from napari_superres._napari._upscale import upscale_selected_layers

    viewer = make_napari_viewer()
    viewer.add_points(np.zeros((3, 2)))
    assert upscale_selected_layers(viewer) is None
    assert any("select one or more image layers" in m for m in notes.messages)


def test_only_image_layers_offered(upscale_widget):
    viewer, widget = upscale_widget
    viewer.add_labels(np.zeros((8, 8), np.uint8), name="labels")
    viewer.add_points(np.zeros((2, 2)), name="points")
    image = viewer.add_image(np.zeros((8, 8)), name="image")
    assert list(widget._image.choices) == [image]


@pytest.mark.parametrize(
    "data, expected",
    [
        (np.array([[np.nan, 1.0], [2.0, 3.0]] * 8, np.float32), "NaN"),
    ],
    ids=["nan"],  # a 1x1 layer is upscaled: test_tiny_layers_with_a_shipped_model
)
def test_bad_layers_are_refused_clearly(qtbot, upscale_widget, models, notes, data, expected):
    viewer, widget = upscale_widget
    layer = viewer.add_image(data, name="bad")
    widget._image.value = layer
    browse(qtbot, widget, models["nearest-gray-x2"])
    n_layers = len(viewer.layers)

    run_and_wait(qtbot, widget)

    errors = notes.errors()
    assert len(errors) == 1 and expected in errors[0], errors
    assert "Traceback" not in errors[0] and "\n" not in errors[0]
    assert len(viewer.layers) == n_layers  # nothing added
    assert widget._run.enabled  # ready for the next run


def test_huge_output_is_refused_before_work(qtbot, upscale_widget, models, notes):
    import dask.array as da

    viewer, widget = upscale_widget
    huge = da.zeros((40_000, 2048, 2048), dtype=np.uint16, chunks=(1, 2048, 2048))  # 335 GB at x2
    widget._image.value = viewer.add_image(huge, name="huge", contrast_limits=(0, 1))
    browse(qtbot, widget, models["nearest-gray-x2"])

    run_and_wait(qtbot, widget, timeout_s=60)

    errors = notes.errors()
    assert len(errors) == 1 and "memory" in errors[0] and "GB" in errors[0], errors


def test_no_image_layer(upscale_widget, notes):
    viewer, widget = upscale_widget
    assert widget._image.value is None
    assert widget.run() is None
    assert any("no image layer" in m for m in notes.messages)


def test_browse_refuses_a_file_that_is_not_a_model(qtbot, upscale_widget, tmp_path, notes):
    viewer, widget = upscale_widget
    bogus = tmp_path / "weights.keras"
    bogus.write_bytes(b"not a zip file")
    before = list(widget._model.choices)
    worker = widget.add_model_file(str(bogus))
    if worker is not None:
        qtbot.waitUntil(lambda: not worker.is_running, timeout=60_000)
    qtbot.waitUntil(lambda: bool(notes.errors()), timeout=60_000)
    assert "weights.keras" in notes.errors()[0]
    assert list(widget._model.choices) == before


def test_generator_runs_synchronously(models):
    """The widget's work is one generator (progress, then the layer): it runs without a viewer or a thread."""
    from napari.layers import Image

    from napari_superres._napari._state import UpscaleSettings
    from napari_superres._napari._upscale import Progress, upscale_steps

    data = np.arange(6 * 20 * 24, dtype=np.uint16).reshape(6, 20, 24)
    layer = Image(data, name="plain", scale=(1.0, 0.5, 0.5))
    items = list(upscale_steps([layer], UpscaleSettings(model=models["nearest-gray-x2"])))

    progress, result = items[:-1], items[-1]
    assert progress and all(isinstance(p, Progress) for p in progress)
    assert progress[-1].done == progress[-1].total == 6  # one step per slice of the stack
    out, meta, kind = result
    assert kind == "image" and meta["name"] == "plain (x2 nearest-gray-x2)"
    np.testing.assert_array_equal(out, nearest2(data))
    assert tuple(meta["scale"]) == (1.0, 0.25, 0.25)


def test_upscale_twice_in_one_widget(qtbot, upscale_widget, models, notes):
    """Run pressed again on the same layer, then on another: each run adds its own complete layer."""
    viewer, widget = upscale_widget
    gray = np.random.default_rng(2).integers(0, 255, size=(40, 56), dtype=np.uint8)
    layer = viewer.add_image(gray, name="gray")
    widget._image.value = layer
    browse(qtbot, widget, models["nearest-gray-x2"])

    run_and_wait(qtbot, widget)
    run_and_wait(qtbot, widget)
    other = viewer.add_image(gray[::-1].copy(), name="flipped")
    widget._image.value = other
    run_and_wait(qtbot, widget)

    assert notes.errors() == []
    outputs = viewer.layers[-4:]
    assert [out.name for out in outputs] == [
        "gray (x2 nearest-gray-x2)", "gray (x2 nearest-gray-x2) [1]", "flipped", "flipped (x2 nearest-gray-x2)",
    ]
    for out, source in ((outputs[0], gray), (outputs[1], gray), (outputs[3], gray[::-1])):
        np.testing.assert_array_equal(out.data, nearest2(source))
    assert widget._run.enabled and not widget._cancel.enabled


@pytest.mark.parametrize("shape", [(1, 1), (1, 7, 3), (2, 2, 3)], ids=["1x1 gray", "1x7 RGB", "2x2 RGB"])
def test_tiny_layers_with_a_shipped_model(qtbot, upscale_widget, notes, shape):
    """Images smaller than the model's context are upscaled in napari as by the API and the CLI."""
    viewer, widget = upscale_widget
    img = np.random.default_rng(3).integers(0, 255, size=shape, dtype=np.uint8)
    widget._image.value = viewer.add_image(img, name="tiny", rgb=len(shape) == 3)
    widget._model.value = next(v for v in widget._model.choices if v.endswith("espcn-x2.keras"))

    run_and_wait(qtbot, widget)

    assert notes.errors() == []
    out = viewer.layers[-1]
    assert out.name == "tiny (x2 espcn-x2)"
    assert out.data.shape == (2 * shape[0], 2 * shape[1]) + shape[2:] and out.data.dtype == np.uint8
    if shape == (1, 1):  # one pixel is a flat picture: kept, within what the model does at any image's border
        assert np.abs(out.data.astype(int) - int(img[0, 0])).max() <= 3
    assert np.abs(out.data.mean(axis=(0, 1)) - img.mean(axis=(0, 1))).max() < 3  # its mean colour stays


def test_precision_choice_reaches_the_worker(qtbot, upscale_widget, notes):
    """float32 and bfloat16 chosen in the widget: both runs complete, the layer records the choice, and
    bfloat16 stays within one grey level of float32 (the bound auto precision keeps)."""
    viewer, widget = upscale_widget
    from skimage import data

    photo = data.astronaut()[100:164, 150:230]
    layer = viewer.add_image(photo, name="astronaut")
    widget._image.value = layer
    widget._model.value = next(v for _, v in widget._model_choices() if v.endswith("espcn-x2.keras"))
    outputs = {}
    for precision in ("float32", "bfloat16"):
        widget._precision.value = precision
        run_and_wait(qtbot, widget)
        outputs[precision] = viewer.layers[-1]
    assert notes.errors() == []
    for precision, out in outputs.items():
        assert out.metadata["napari_superres"]["precision"] == precision
        assert out.data.shape == (128, 160, 3) and out.data.dtype == np.uint8
    diff = np.abs(outputs["float32"].data.astype(int) - outputs["bfloat16"].data.astype(int))
    assert diff.max() <= 1
