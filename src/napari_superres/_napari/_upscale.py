"""Upscale: the generator that upscales layers in the worker process, the dock widget, and the layer
context-menu command. All model work happens in the worker process (never TensorFlow in napari's process);
the generator runs in napari's ``thread_worker`` so the viewer stays responsive, and tests iterate it directly.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from magicgui.widgets import CheckBox, ComboBox, Container, Label, ProgressBar, PushButton, SpinBox, create_widget

from napari_superres.errors import Cancelled, InputError, SuperResError

from . import _models
from ._runs import RunWidget, show_failure, show_run_state, start_run, stop_run
from ._state import LAST_SETTINGS, RunState, UpscaleSettings, stream

if TYPE_CHECKING:
    import napari

log = logging.getLogger(__name__)


class Progress(NamedTuple):
    """A progress event of a background run: ``total == 0`` means busy without a known length."""

    done: int
    total: int
    text: str


def upscale_steps(
    layers: Sequence,
    settings: UpscaleSettings,
    *,
    client=None,
    cancel: Callable[[], bool] | None = None,
) -> Generator[Progress | tuple, None, None]:
    """Upscale each layer in the worker process: yield ``Progress`` while it runs, then the output's
    ``LayerDataTuple`` (one per layer, in order). Raises a ``SuperResError`` with a one-line message."""
    from napari_superres.worker.client import get_client
    from napari_superres._napari._layer import upscale_layer

    if not layers:
        raise InputError("no image layer selected: open or select an image to upscale")
    client = client or get_client()
    cancel = cancel or (lambda: False)
    options = settings.options()  # one set of options for every layer of the run
    for i, layer in enumerate(layers):
        model = settings.model or _default_model_name(layer)
        text = f"Upscaling {layer.name}" + (f" ({i + 1}/{len(layers)})" if len(layers) > 1 else "")
        yield Progress(0, 0, text)

        def call(emit, layer=layer, text=text):
            return upscale_layer(
                layer,
                model,
                options,
                device=settings.device,
                progress=lambda done, total: emit(Progress(int(done), int(total), text)),
                cancel=cancel,
                client=client,
            )

        result = yield from stream(call)
        if cancel():  # cancelled after the last batch: do not add a result the user asked to drop
            raise Cancelled("upscale cancelled")
        yield result


def _default_model_name(layer=None) -> str:
    """The model proposed for the layer (microscopy for non-RGB, photo for RGB; see ``_models.propose``)."""
    choice = _models.propose(_models.model_choices(), layer)[0]
    if choice is None:
        raise InputError("no model available: train one in the Train widget or pick a .keras file with Browse...")
    return choice.value


# ------------------------------------------------------------------------------------------ background runs


def start_upscale(
    viewer: napari.viewer.Viewer,
    layers: Sequence,
    settings: UpscaleSettings,
    *,
    state: RunState | None = None,
):
    """Run ``upscale_steps`` in a napari ``thread_worker``; add each output layer as it arrives.
    Returns the worker; ``worker.cancel_event`` stops the run."""
    from napari.layers import Layer

    settings = dataclasses.replace(settings)  # the run keeps its own copy
    state = state or RunState()

    def on_item(item, pbar):  # in Qt's main thread, after start_run has returned the worker
        if worker.cancel_event.is_set():  # cancelled, or its widget is gone: late items change nothing
            return
        try:
            show(item, pbar)
        except (RuntimeError, IndexError) as exc:
            # The viewer closed meanwhile: its Qt objects are gone (RuntimeError), or its dims sliders are
            # half torn down and napari's own layer-added handler fails on them (IndexError).
            worker.cancel_event.set()
            log.warning("napari-superres: result dropped, the viewer is gone (%s)", exc)

    def show(item, pbar):
        # Our state first: napari's progress bar processes pending events while it updates, so the next
        # items of this run (even its end) may be handled inside pbar.update.
        if isinstance(item, Progress):
            state.total, state.done = item.total, item.done
            state.message = f"{item.text}: {item.done}/{item.total}" if item.total else f"{item.text}..."
            pbar.update(item.done, item.total, f"napari-superres: {item.text}")
        else:
            data, meta, kind = item
            viewer.layers.append(Layer.create(data, meta, kind))
            state.message = f"Added {meta.get('name', 'the upscaled layer')}"

    def on_error(exc):
        state.message = "Cancelled" if isinstance(exc, Cancelled) else f"Failed: {exc}"
        show_failure(exc, "Upscale")

    worker = start_run(
        upscale_steps,
        list(layers),
        settings,
        state=state,
        description="napari-superres: starting the model worker",
        on_item=on_item,
        on_error=on_error,
    )
    return worker


# ------------------------------------------------------------------------------------------------ the widget


class UpscaleWidget(RunWidget):
    """Dock widget: pick an image layer and a model, upscale in the background into a new layer."""

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__(viewer, labels=True)
        self._devices_known = False

        self._image = create_widget(annotation="napari.layers.Image", label="Image")
        self._model = ComboBox(label="Model", choices=self._model_choices, nullable=False)
        self._auto_model = None  # the model this widget chose itself (default or proposal), not the user
        self._browse = PushButton(text="Browse...", tooltip="Use a .keras model file from disk")
        self._model_info = Label(label="", value="")
        self._proposal = Label(label="", value="")  # which model suits the layer, and why
        self._fit = Label(label="", value="")
        self._tile = SpinBox(
            label="Tile (0: auto)",
            min=0,
            max=8192,
            step=32,
            value=LAST_SETTINGS.tile,
            tooltip="Input tile size in pixels (0: automatic). Smaller tiles use less memory.",
        )
        self._tta = CheckBox(text="Test-time augmentation (8x slower)", value=LAST_SETTINGS.tta)
        self._device = ComboBox(label="Device", choices=[("CPU", "auto")], value="auto")
        self._precision = ComboBox(
            label="Precision",
            choices=[("auto", ""), ("float32", "float32"), ("bfloat16", "bfloat16")],
            value=LAST_SETTINGS.precision,
            tooltip="auto: bfloat16 where this machine runs it faster and within one grey level of float32 "
            "(CPUs with AMX or AVX512-BF16, GPUs), else float32",
        )
        self._z = CheckBox(
            text="Upscale Z too (anisotropic stack)",
            value=LAST_SETTINGS.upscale_z,
            tooltip="Also upscale the slice axis of a 3D stack; by default only Y and X of each slice",
        )
        self._run = PushButton(text="Run")
        self._cancel = PushButton(text="Cancel", enabled=False)
        self._bar = ProgressBar(label="", value=0, max=1, visible=False)
        self._status = Label(label="", value="")
        for label in (self._model_info, self._proposal, self._fit, self._status):
            label.native.setWordWrap(True)

        self.extend(
            [
                self._image,
                self._model,
                self._browse,
                self._proposal,
                self._model_info,
                self._fit,
                self._tile,
                self._tta,
                self._device,
                self._precision,
                self._z,
                Container(widgets=[self._run, self._cancel], layout="horizontal", labels=False),
                self._bar,
                self._status,
            ]
        )
        self._select_model(LAST_SETTINGS.model)

        self._model.changed.connect(self._update_info)
        self._image.changed.connect(self._propose)
        self._image.changed.connect(self._update_info)
        self._browse.clicked.connect(self._pick_file)
        self._run.clicked.connect(self.run)
        self._cancel.clicked.connect(self.cancel)
        show_run_state(self.state, self._run, self._cancel, self._bar, self._status, hide_bar_when_idle=True)
        self._propose()
        self._update_info()
        self._query_devices()

    # ---- model list

    def _model_choices(self, _widget=None):
        return [(c.text, c.value) for c in _models.model_choices()]

    def _select_model(self, value: str) -> None:
        choices = _models.model_choices()
        values = [c.value for c in choices]
        if value and str(value) in values:
            self._model.value = str(value)
        elif value and Path(value).suffix == "" and any(Path(v).stem == value for v in values):
            self._model.value = next(v for v in values if Path(v).stem == value)
        else:
            default = _models.default_choice(choices)
            if default is not None:
                self._model.value = self._auto_model = default.value

    def _propose(self, *_) -> None:
        """Select the model that suits the chosen layer (photo for RGB, microscopy otherwise) and say why, unless
        the user picked a model: that one stays (the reason line still says what would suit)."""
        choice, reason = _models.propose(_models.model_choices(), self._image.value)
        picked_by_user = self._model.value not in (None, "", self._auto_model)
        if choice is not None and self._image.value is not None and not picked_by_user:
            self._model.value = self._auto_model = choice.value
        self._proposal.value = reason

    def _on_library_changed(self, select: str = "") -> None:
        current = self._model.value
        self._model.reset_choices()
        self._select_model(select or current or "")
        self._update_info()

    def _current_choice(self) -> _models.Choice | None:
        return next((c for c in _models.model_choices() if c.value == self._model.value), None)

    def _update_info(self, *_):
        choice = self._current_choice()
        self._model_info.value = (
            _models.summary_line(choice.description, choice.source) if choice else "No model: train one or Browse..."
        )
        self._fit.value = _models.fit_hint(choice, self._image.value)
        layer = self._image.value
        self._z.enabled = layer is not None and not layer.rgb and layer.ndim >= 3

    def _pick_file(self, *_):
        from qtpy.QtWidgets import QFileDialog

        path, _ = QFileDialog.getOpenFileName(self.native, "Choose a Keras model", "", "Keras models (*.keras)")
        if path:
            self.add_model_file(path)

    def add_model_file(self, path: str):
        """Check a .keras file in the worker (loads safely, probes scale), then add and select it.
        Returns the background worker."""
        from napari.qt.threading import create_worker

        try:
            desc = _models.read_file_description(path)
        except SuperResError as exc:
            show_failure(exc, "Loading the model")
            return None
        self._model_info.value = f"Checking {Path(path).name} in the model worker..."

        def info():
            from napari_superres.worker.client import get_client

            return get_client().model_info(str(path))

        worker = create_worker(info, _ignore_errors=True)

        def on_returned(details):
            if not self._alive:
                return
            merged = {**(desc or {}), **{k: v for k, v in (details or {}).items() if v is not None}}
            _models.remember_browsed(path, merged)

        def on_errored(exc):
            if self._alive:
                self._update_info()
            show_failure(exc, "Loading the model")

        worker.returned.connect(on_returned)
        worker.errored.connect(on_errored)
        worker.start()
        return worker

    # ---- devices

    def _query_devices(self):
        """Ask the worker which devices it sees (this also warms it up); offer GPU only when there is one."""
        from napari.qt.threading import create_worker

        def devices():
            from napari_superres.worker.client import get_client

            return list(get_client().devices())

        worker = create_worker(devices, _ignore_errors=True)
        worker.returned.connect(self._set_devices)
        worker.errored.connect(lambda exc: log.warning("could not list devices: %s", exc))
        worker.start()
        self._devices_worker = worker

    def _set_devices(self, devices):
        """GPUs first when the worker sees any; on a CPU-only machine the one choice is "auto" shown as CPU,
        so the warm worker (started with "auto") is reused instead of restarted."""
        if not self._alive:
            return
        gpus = [str(d).upper() for d in devices if str(d).lower().startswith("gpu")]
        choices = [(gpu, gpu.lower()) for gpu in gpus] + [("CPU", "cpu" if gpus else "auto")]
        self._device.choices = choices
        values = [value for _, value in choices]
        self._device.value = LAST_SETTINGS.device if LAST_SETTINGS.device in values else values[0]
        self._devices_known = True

    # ---- run

    def settings(self) -> UpscaleSettings:
        return UpscaleSettings(
            model=self._model.value or "",
            tile=int(self._tile.value),
            tta=bool(self._tta.value),
            device=str(self._device.value or "auto"),
            precision=str(self._precision.value or ""),
            upscale_z=bool(self._z.value and self._z.enabled),
        )

    def run(self, *_):
        """Start upscaling the chosen layer; returns the background worker (None if refused)."""
        from napari.utils.notifications import show_warning

        if self.state.running:
            return self._worker
        layer = self._image.value
        if layer is None:
            show_warning("Upscale: no image layer. Open an image or add one from File > Open Sample.")
            return None
        settings = self.settings()
        for field in dataclasses.fields(settings):
            setattr(LAST_SETTINGS, field.name, getattr(settings, field.name))
        self._bar.visible = True
        self._bar.value = 0
        self._worker = start_upscale(self._viewer, [layer], settings, state=self.state)
        return self._worker

    def cancel(self, *_):
        """Stop the current run (pressing it again changes nothing)."""
        stop_run(self._worker, self.state, "Cancelling...")


# ------------------------------------------------------------------------------------------ the menu command


def upscale_selected_layers(viewer: napari.viewer.Viewer):
    """Layer context-menu command: upscale the selected image layers with the last-used settings."""
    from napari.layers import Image
    from napari.utils.notifications import show_warning

    layers = [layer for layer in viewer.layers.selection if isinstance(layer, Image)]
    if not layers:
        show_warning("Upscale with napari-superres: select one or more image layers first")
        return None
    return start_upscale(viewer, layers, LAST_SETTINGS)
