"""The Train dock widget: folder summary, a tiny real training run in the worker process, the live plot, the
model appearing at once in the Upscale widget, Stop, and the user's model library (rename, delete)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from helpers_napari import LoopGapMeter, wait_idle
from PIL import Image


def _photos(folder: Path, size: int = 96) -> Path:
    """HR-only training folder: crops of scikit-image's bundled photos (no download)."""
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    for name in ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field"):
        image = getattr(data, name)()
        h, w = image.shape[:2]
        crop = image[(h - size) // 2 : (h + size) // 2, (w - size) // 2 : (w + size) // 2]
        Image.fromarray(crop).save(folder / f"{name}.png")
    return folder


@pytest.fixture
def train_widget(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    _, upscale = viewer.window.add_plugin_dock_widget("napari-superres-keras", "Upscale")
    _, train = viewer.window.add_plugin_dock_widget("napari-superres-keras", "Train")
    return viewer, upscale, train


def _set_folder(qtbot, widget, folder):
    widget._folder.value = str(folder)
    qtbot.waitUntil(lambda: widget._summary_for == widget._summary_key(), timeout=60_000)


def _tiny_settings(widget, *, epochs=2, steps=4, name="tiny"):
    widget._arch.value = "espcn"
    widget._scale.value = 2
    widget._epochs.value = epochs
    widget._steps.value = steps
    widget._patch.value = 32
    widget._batch.value = 4
    widget._name.value = name


def test_folder_summary(qtbot, train_widget, tmp_path):
    _, _, widget = train_widget
    _set_folder(qtbot, widget, _photos(tmp_path / "photos"))
    assert widget._summary.usable
    text = widget._folder_info.value
    assert text.startswith("HR only: 6 files") and "RGB" in text and "96x96 px" in text, text

    widget._patch.value = 128  # larger than the images
    qtbot.waitUntil(lambda: widget._summary_for == widget._summary_key(), timeout=60_000)
    assert not widget._summary.usable and "patch" in widget._folder_info.value

    pairs = tmp_path / "pairs"
    (pairs / "lr").mkdir(parents=True)
    (pairs / "hr").mkdir()
    for i in range(3):
        Image.fromarray(np.full((64, 64), i * 40, np.uint8)).save(pairs / "hr" / f"img{i}.png")
        Image.fromarray(np.full((32, 32), i * 40, np.uint8)).save(pairs / "lr" / f"img{i}.png")
    widget._patch.value = 32
    _set_folder(qtbot, widget, pairs)
    assert widget._folder_info.value.startswith("Paired: 3 LR/HR pairs"), widget._folder_info.value
    assert not widget._degradation.enabled  # a degradation only makes sense for HR-only data


@pytest.mark.parametrize("kind", ["empty", "corrupt", "mismatched pairs"])
def test_invalid_folder_is_refused(qtbot, train_widget, tmp_path, notes, kind):
    _, _, widget = train_widget
    folder = tmp_path / "data"
    folder.mkdir()
    if kind == "corrupt":
        _photos(folder)
        (folder / "broken.png").write_bytes(b"\x89PNG not really")
    elif kind == "mismatched pairs":
        (folder / "lr").mkdir()
        (folder / "hr").mkdir()
        Image.fromarray(np.zeros((64, 64), np.uint8)).save(folder / "hr" / "a.png")
        Image.fromarray(np.zeros((32, 32), np.uint8)).save(folder / "lr" / "b.png")
    _set_folder(qtbot, widget, folder)
    assert not widget._summary.usable
    expected = {"empty": "no images", "corrupt": "broken.png", "mismatched pairs": "a.png"}[kind]
    assert expected in widget._folder_info.value, widget._folder_info.value

    assert widget.start() is None
    errors = notes.errors()
    assert len(errors) == 1 and "invalid training folder" in errors[0] and expected in errors[0]
    assert not widget.state.running


def test_train_then_upscale_with_the_new_model(qtbot, train_widget, tmp_path, notes):
    viewer, upscale, widget = train_widget
    _set_folder(qtbot, widget, _photos(tmp_path / "photos"))
    _tiny_settings(widget, epochs=2, steps=4, name="tiny-espcn")

    with LoopGapMeter() as meter:
        widget.start()  # starts once the folder summary for the new patch size is in
        qtbot.waitUntil(lambda: widget._worker is not None, timeout=60_000)
        qtbot.waitUntil(lambda: not widget.state.running, timeout=600_000)
    worst = meter.worst()
    print(f"\nworst event-loop gap during training: {meter.describe(worst)}")

    assert notes.errors() == []
    assert any("Training finished" in m for m in notes.messages)
    from napari_superres.models.catalog import user_models_dir

    path = (user_models_dir() / "tiny-espcn.keras").resolve()
    assert path.is_file()
    # the live plot got one point per epoch, with the model's and bicubic's validation PSNR
    assert widget._plot.epochs == [1, 2]
    assert all(np.isfinite(widget._plot.val_psnr)) and all(np.isfinite(widget._plot.bicubic_psnr))
    assert widget._status.value.startswith("Finished")
    # at once in the Upscale widget's list (no re-opening), and in the library
    assert str(path) in list(upscale._model.choices)
    assert str(path) in list(widget._library.choices)

    from skimage import data

    photo = data.chelsea()[100:164, 150:246]
    layer = viewer.add_image(photo, name="cat")
    upscale._image.value = layer
    upscale._model.value = str(path)
    assert "espcn" in upscale._model_info.value and "x2" in upscale._model_info.value
    upscale.run()
    wait_idle(qtbot, upscale, timeout_s=120)
    assert notes.errors() == []
    out = viewer.layers[-1]
    assert out.name == "cat (x2 tiny-espcn)"
    assert out.data.shape == (128, 192, 3) and out.data.dtype == np.uint8
    # a model that starts near bicubic and trained a little keeps the picture: close to a plain upscaling
    reference = np.asarray(Image.fromarray(photo).resize((192, 128), Image.Resampling.BICUBIC), np.float64)
    assert np.abs(out.data.astype(np.float64) - reference).mean() < 12
    assert worst[1] < 0.2, f"event loop blocked during training: {meter.describe(worst)}"


def test_stop_training_keeps_the_model(qtbot, train_widget, tmp_path, notes):
    _, upscale, widget = train_widget
    _set_folder(qtbot, widget, _photos(tmp_path / "photos"))
    _tiny_settings(widget, epochs=500, steps=10, name="stopped")

    widget.start()
    qtbot.waitUntil(lambda: widget.state.running and widget.state.done > 0, timeout=300_000)  # steps are running
    t0 = time.monotonic()
    widget.stop()
    widget.stop()  # twice is fine
    qtbot.waitUntil(lambda: not widget.state.running, timeout=120_000)
    print(f"\ntraining stopped {time.monotonic() - t0:.1f} s after Stop")

    assert notes.errors() == []
    assert any("Training stopped" in m for m in notes.messages), notes.messages
    from napari_superres.models.catalog import user_models_dir

    path = (user_models_dir() / "stopped.keras").resolve()
    assert path.is_file()
    assert str(path) in list(upscale._model.choices)
    assert widget._start.enabled and not widget._stop.enabled



def _train_and_wait(qtbot, widget):
    assert widget.start() is not None or widget._start_when_ready
    qtbot.waitUntil(lambda: widget._worker is not None and widget.state.running, timeout=60_000)
    qtbot.waitUntil(lambda: not widget.state.running, timeout=600_000)


def test_train_twice_in_one_widget(qtbot, train_widget, tmp_path, notes):
    """A second Start in the same widget: a new run with its own settings, plot and model."""
    from napari_superres.models.catalog import user_models_dir

    _, upscale, widget = train_widget
    _set_folder(qtbot, widget, _photos(tmp_path / "photos"))
    _tiny_settings(widget, epochs=1, steps=2, name="first-run")
    _train_and_wait(qtbot, widget)
    assert notes.errors() == [] and widget._status.value.startswith("Finished"), widget._status.value
    assert widget._plot.epochs == [1]

    _tiny_settings(widget, epochs=2, steps=2, name="second-run")
    _train_and_wait(qtbot, widget)

    assert notes.errors() == []
    assert widget._status.value.startswith("Finished: saved 'second-run'"), widget._status.value
    assert widget._plot.epochs == [1, 2]  # the plot starts over for the new run
    for name in ("first-run", "second-run"):
        path = (user_models_dir() / f"{name}.keras").resolve()
        assert path.is_file() and str(path) in list(upscale._model.choices)
    assert widget._epochs.value == 2  # the Epochs box is still the box, holding the user's value
    assert widget._start.enabled and not widget._stop.enabled


def test_train_after_stop(qtbot, train_widget, tmp_path, notes):
    from napari_superres.models.catalog import user_models_dir

    _, _, widget = train_widget
    _set_folder(qtbot, widget, _photos(tmp_path / "photos"))
    _tiny_settings(widget, epochs=500, steps=10, name="stopped-first")
    widget.start()
    qtbot.waitUntil(lambda: widget.state.running and widget.state.done > 0, timeout=300_000)
    widget.stop()
    qtbot.waitUntil(lambda: not widget.state.running, timeout=120_000)
    assert any("Training stopped" in m for m in notes.messages), notes.messages

    _tiny_settings(widget, epochs=1, steps=2, name="after-stop")
    _train_and_wait(qtbot, widget)

    assert notes.errors() == []
    assert widget._status.value.startswith("Finished: saved 'after-stop'"), widget._status.value
    assert widget._plot.epochs == [1]
    assert (user_models_dir() / "stopped-first.keras").is_file()
    assert (user_models_dir() / "after-stop.keras").is_file()


def test_rename_and_delete_user_models(qtbot, train_widget, models, monkeypatch):
    import shutil

    from qtpy.QtCore import QTimer
    from qtpy.QtWidgets import QApplication, QMessageBox

    from napari_superres._napari import _models
    from napari_superres.models.catalog import user_models_dir
    from napari_superres.models.description import read_description

    _, upscale, widget = train_widget
    folder = user_models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    src = folder / "lib-model.keras"
    shutil.copy(models["nearest-gray-x2"], src)
    _models.LIBRARY.changed.emit(str(src.resolve()))
    assert widget._library.value == str(src.resolve())

    widget._new_name.value = "renamed model"
    renamed = widget.rename_selected()
    assert renamed == folder / "renamed model.keras" and renamed.is_file() and not src.exists()
    assert read_description(renamed)["name"] == "renamed model"
    assert str(renamed.resolve()) in list(upscale._model.choices)
    assert str(src.resolve()) not in list(upscale._model.choices)

    widget._new_name.value = "bad/name"
    assert widget.rename_selected() is None and renamed.is_file()

    def click_yes():
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            box.button(QMessageBox.StandardButton.Yes).click()
        else:
            QTimer.singleShot(50, click_yes)

    QTimer.singleShot(50, click_yes)
    widget._confirm_delete()
    assert not renamed.exists()
    assert str(renamed.resolve()) not in list(upscale._model.choices)
    assert str(renamed.resolve()) not in list(widget._library.choices)
    assert widget._library.value != str(renamed.resolve())
