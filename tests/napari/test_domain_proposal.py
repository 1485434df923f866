"""The Upscale widget proposes a model by the layer's domain: photo for RGB, microscopy for other layers, the
photo default (saying why) while no microscopy model is installed. Real viewer, real worker process."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers_napari import wait_idle


def _stem(widget) -> str:
    return Path(widget._model.value).stem


@pytest.fixture
def microscopy_model(models, monkeypatch):
    """A tiny (untrained) 1-channel model with domain "microscopy" in the user's model library, the only
    microscopy model in the lists (the shipped ones left out, so a run's output is known exactly)."""
    from napari_superres._napari import _models
    from napari_superres.models.catalog import model_domain
    from napari_superres.models.description import read_description, write_description

    every = _models.model_choices
    monkeypatch.setattr(_models, "model_choices", lambda: [
        c for c in every() if not (c.source == "shipped" and model_domain(c.description) == "microscopy")])
    path = _models.user_model_path("tiny-fluo-x2")
    shutil.copy(models["nearest-gray-x2"], path)
    write_description(path, {**read_description(path), "name": path.stem, "domain": "microscopy"})
    _models.LIBRARY.changed.emit("")
    yield path
    path.unlink(missing_ok=True)
    _models.LIBRARY.changed.emit("")


@pytest.fixture
def no_microscopy_model(monkeypatch):
    """The model lists as they are where no microscopy model is installed."""
    from napari_superres._napari import _models
    from napari_superres.models.catalog import model_domain

    every = _models.model_choices
    monkeypatch.setattr(_models, "model_choices",
                        lambda: [c for c in every() if model_domain(c.description) != "microscopy"])


def test_without_a_microscopy_model_the_photo_default_is_proposed_with_the_reason(no_microscopy_model, upscale_widget):
    from napari_superres.models.catalog import DEFAULT_MODEL

    viewer, widget = upscale_widget
    widget._image.value = viewer.add_image(np.zeros((40, 48), np.uint16), name="fluo")
    assert _stem(widget) == DEFAULT_MODEL
    assert widget._proposal.value.startswith(f"Photo model proposed ({DEFAULT_MODEL}), as no microscopy model is installed")

    widget._image.value = viewer.add_image(np.zeros((40, 48, 3), np.uint8), name="photo")
    assert _stem(widget) == DEFAULT_MODEL and "the layer is RGB" in widget._proposal.value


def test_a_microscopy_model_is_proposed_for_fluorescence_and_used(qtbot, upscale_widget, microscopy_model, notes):
    from napari_superres.models.catalog import DEFAULT_MODEL

    viewer, widget = upscale_widget
    stack = (np.arange(2 * 24 * 32, dtype=np.uint16).reshape(2, 24, 32) * 7) % 4000
    fluo = viewer.add_image(stack, name="fluo")
    widget._image.value = fluo
    assert _stem(widget) == "tiny-fluo-x2"
    assert widget._proposal.value.startswith("Microscopy model proposed: the layer is not RGB")
    assert "uint16" in widget._proposal.value

    photo = viewer.add_image(np.zeros((40, 48, 3), np.uint8), name="photo")
    widget._image.value = photo
    assert _stem(widget) == DEFAULT_MODEL  # RGB: the photo model
    assert widget._proposal.value == "Photo model proposed: the layer is RGB."

    widget._image.value = fluo  # back to the stack: microscopy again, and the run uses it
    assert _stem(widget) == "tiny-fluo-x2"
    widget.run()
    wait_idle(qtbot, widget, 120)
    assert notes.errors() == []
    out = viewer.layers[-1]
    assert out.name == "fluo (x2 tiny-fluo-x2)"
    assert out.data.dtype == np.uint16
    np.testing.assert_array_equal(out.data, np.repeat(np.repeat(stack, 2, axis=-2), 2, axis=-1))


def test_the_user_can_change_the_proposed_model(upscale_widget, microscopy_model, models):
    from napari_superres.models.catalog import DEFAULT_MODEL

    viewer, widget = upscale_widget
    widget._image.value = viewer.add_image(np.zeros((40, 48), np.float32), name="fluo")
    assert _stem(widget) == "tiny-fluo-x2"
    photo_default = next(v for _, v in widget._model_choices() if Path(v).stem == DEFAULT_MODEL)
    widget._model.value = photo_default
    assert _stem(widget) == DEFAULT_MODEL
    assert widget.settings().model == photo_default
    widget._image.value = viewer.add_image(np.zeros((40, 48), np.uint16), name="fluo 2")
    assert _stem(widget) == DEFAULT_MODEL  # the user's pick stays on the next layer
    assert widget._proposal.value.startswith("Microscopy model proposed")  # while the reason says what suits


def test_the_shipped_microscopy_model_is_proposed_for_fluorescence(upscale_widget):
    from napari_superres.models.catalog import DEFAULT_MICROSCOPY_MODEL

    viewer, widget = upscale_widget
    widget._image.value = viewer.add_image(np.zeros((2, 40, 48), np.uint16), name="stack")
    assert _stem(widget) == DEFAULT_MICROSCOPY_MODEL
    assert widget._proposal.value.startswith("Microscopy model proposed: the layer is not RGB")


@pytest.fixture
def no_photo_model(monkeypatch):
    """The model lists as they are where only microscopy models are installed."""
    from napari_superres._napari import _models
    from napari_superres.models.catalog import model_domain

    every = _models.model_choices
    monkeypatch.setattr(_models, "model_choices",
                        lambda: [c for c in every() if model_domain(c.description) == "microscopy"])


def test_without_a_photo_model_an_rgb_layer_gets_a_microscopy_model_that_can_take_it(no_photo_model, upscale_widget):
    from napari_superres.models.catalog import DEFAULT_MICROSCOPY_MODEL

    viewer, widget = upscale_widget
    widget._image.value = viewer.add_image(np.zeros((40, 48, 3), np.uint8), name="photo")
    assert _stem(widget) == DEFAULT_MICROSCOPY_MODEL
    assert widget._proposal.value == (
        f"Microscopy model proposed ({DEFAULT_MICROSCOPY_MODEL}), as no photo model is installed: the layer is RGB.")
    assert widget._fit.value.startswith("1-channel model on an RGB layer: each colour channel")


def test_when_no_model_can_take_the_layer_none_is_proposed_and_the_reason_says_how_to_get_one():
    from napari.layers import Image

    from napari_superres._napari._models import Choice, propose

    rgb = Image(np.zeros((40, 48, 3), np.uint8), rgb=True)
    grey = Image(np.zeros((40, 48), np.uint16))
    two_channels = Choice("two (x2)", "/models/two.keras", {"scale": 2, "channels": 2, "domain": "microscopy"}, "user")
    for library in ([], [two_channels]):
        assert propose(library, rgb) == (None, "No model for this RGB layer: no installed model takes it (1- or "
                                               "3-channel models do); train one in the Train widget or pick a .keras "
                                               "file with the Browse button.")
        choice, reason = propose(library, grey)
        assert choice is None
        assert reason.startswith("No model for this layer: no installed model takes it (1- or 3-channel models do); "
                                 "train one")
