"""Train: the dock widget that trains a model on a folder of images in the worker process, with a live plot
of loss and validation PSNR (model vs bicubic), and the user's model library (rename, delete).

Training runs in the worker process (Keras never enters napari's process); ``train_steps`` is the generator
napari's ``thread_worker`` runs, yielding each training event and finally the saved model's path.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Generator
from pathlib import Path
from typing import TYPE_CHECKING

from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    Label,
    LineEdit,
    ProgressBar,
    PushButton,
    SpinBox,
)

from napari_superres.errors import Cancelled, InputError, SuperResError

from . import _models
from ._folder import FolderSummary, summarize_folder
from ._library import LibraryControls
from ._runs import RunWidget, show_failure, show_run_state, start_run, stop_run
from ._state import stream

if TYPE_CHECKING:
    import napari

log = logging.getLogger(__name__)


class TrainResult(str):
    """The path of the model a training run saved (the generator's last item)."""


def train_steps(
    config: dict, *, client=None, cancel: Callable[[], bool] | None = None
) -> Generator[dict | TrainResult, None, None]:
    """Train in the worker process: yield each event of the training log (dicts, e.g. ``{"event": "epoch",
    "epoch": 3, "loss": ..., "val_psnr": ..., "bicubic_psnr": ...}``), then the saved model's path."""
    from napari_superres.worker.client import get_client

    client = client or get_client()
    yield {"event": "starting"}
    path = yield from stream(lambda emit: client.train(config, on_event=emit, cancel=cancel))
    yield TrainResult(path)


class TrainWidget(LibraryControls, RunWidget):
    """Dock widget: train a model from a folder of images; the result joins the Upscale widget's model list."""

    def __init__(self, viewer: napari.viewer.Viewer):
        from napari_superres.models.registry import ARCHITECTURES
        from napari_superres.training.config import DEGRADATION_LABELS, DEGRADATIONS

        from ._plot import TrainingPlot

        super().__init__(viewer, labels=False)
        self._summary = FolderSummary("invalid")
        self._summary_for: tuple = ()
        self._start_when_ready = False
        self._out_path: Path | None = None
        self._epochs_seen, self._epochs_total, self._end_status = 0, 0, ""

        self._folder = FileEdit(label="Data folder", mode="d", value="")
        self._folder_info = Label(label="", value="Choose a folder: HR images, or lr/ and hr/ subfolders of pairs.")
        self._arch = ComboBox(
            label="Architecture",
            choices=[(f"{name}", name) for name in ARCHITECTURES],
            value="espcn" if "espcn" in ARCHITECTURES else None,
        )
        self._arch_info = Label(label="", value="")
        self._scale = ComboBox(label="Scale", choices=[("x2", 2), ("x3", 3), ("x4", 4)], value=2)
        self._degradation = ComboBox(
            label="LR made by",
            choices=[(DEGRADATION_LABELS.get(d, d), d) for d in DEGRADATIONS],
            value="bicubic",
            tooltip="How low-resolution inputs are made from HR-only folders",
        )
        self._epochs = SpinBox(label="Epochs", min=1, max=10000, value=20)
        self._steps = SpinBox(label="Steps per epoch", min=1, max=100000, value=50)
        self._patch = SpinBox(
            label="Patch (HR px)", min=8, max=1024, step=8, value=96, tooltip="Side of the HR training patches"
        )
        self._batch = SpinBox(label="Batch size", min=1, max=256, value=16)
        self._gan = CheckBox(text="GAN (sharper textures, slower; L1 pre-training first)", value=False)
        self._name = LineEdit(label="Save as", value="my-model")
        self._name_info = Label(label="", value="")
        self._start = PushButton(text="Start")
        self._stop = PushButton(text="Stop", enabled=False)
        self._bar = ProgressBar(label="", value=0, max=1)
        self._status = Label(label="", value="")
        self._plot = TrainingPlot()
        for label in (self._folder_info, self._arch_info, self._name_info, self._status):
            label.native.setWordWrap(True)

        training = Container(
            labels=True,
            widgets=[
                self._folder,
                self._folder_info,
                self._arch,
                self._arch_info,
                self._scale,
                self._degradation,
                self._epochs,
                self._steps,
                self._patch,
                self._batch,
                self._gan,
                self._name,
                self._name_info,
                Container(widgets=[self._start, self._stop], layout="horizontal", labels=False),
                self._bar,
                self._status,
            ],
        )
        library = self._library_section()
        self.extend([training, library])
        self._plot.setMinimumHeight(200)
        self.native.layout().insertWidget(1, self._plot)  # the live plot between the run and the library
        for sub in (training, library):
            sub.margins = (0, 0, 0, 0)

        self._folder.changed.connect(self._refresh_summary)
        self._scale.changed.connect(self._refresh_summary)
        self._patch.changed.connect(self._refresh_summary)
        self._arch.changed.connect(self._update_arch_info)
        self._arch.changed.connect(self._suggest_name)
        self._scale.changed.connect(self._suggest_name)
        self._name.changed.connect(self._check_name)
        self._start.clicked.connect(self.start)
        self._stop.clicked.connect(self.stop)
        show_run_state(self.state, self._start, self._stop, self._bar, self._status)
        self._update_arch_info()
        self._suggest_name()
        self._update_library_info()

    # ---- data folder summary (computed in a thread: a big folder has many headers to read)

    def _summary_key(self) -> tuple:
        folder = str(self._folder.value) if self._folder.value else ""
        return (folder, int(self._scale.value), int(self._patch.value))

    def _refresh_summary(self, *_):
        from napari.qt.threading import create_worker

        key = self._summary_key()
        self._suggest_name()
        if key[0] in ("", "."):
            return None
        self._folder_info.value = "Reading the folder..."
        worker = create_worker(summarize_folder, key[0], scale=key[1], patch=key[2], _ignore_errors=True)
        worker.returned.connect(lambda summary: self._set_summary(key, summary))
        worker.errored.connect(
            lambda exc: self._set_summary(key, FolderSummary("invalid", problems=[f"cannot read the folder: {exc}"]))
        )
        worker.start()
        return worker

    def _set_summary(self, key: tuple, summary: FolderSummary):
        if not self._alive or key != self._summary_key():  # the user picked another folder meanwhile
            return
        self._summary, self._summary_for = summary, key
        self._folder_info.value = summary.text()
        self._degradation.enabled = summary.kind != "paired"
        if self._start_when_ready:
            self._start_when_ready = False
            self.start()

    # ---- names and architecture

    def _update_arch_info(self, *_):
        from napari_superres.models.registry import ARCHITECTURES

        spec = ARCHITECTURES.get(self._arch.value)
        self._arch_info.value = spec.summary if spec else ""

    def _suggest_name(self, *_):
        """Offer a free name like ``cells-espcn-x2`` until the user types their own."""
        if getattr(self, "_name_typed", False):
            return
        folder = Path(str(self._folder.value)).name if self._folder.value and str(self._folder.value) != "." else ""
        folder = re.sub(r"[^A-Za-z0-9_.-]+", "-", folder).strip("-.")[:32] or "my"
        base = f"{folder}-{self._arch.value}-x{self._scale.value}"
        name, i = base, 2
        while _models.user_model_path_exists(name) and i < 1000:
            name, i = f"{base}-{i}", i + 1
        self._setting_name = True
        self._name.value = name
        self._setting_name = False
        self._check_name()

    def _check_name(self, *_):
        if not getattr(self, "_setting_name", False):
            self._name_typed = True
        try:
            path = _models.user_model_path(self._name.value)
        except SuperResError as exc:
            self._name_info.value = str(exc)
            return None
        exists = path.exists()
        self._name_info.value = (
            f"A model named {path.stem!r} exists: choose another name" if exists else f"Saved to {path}"
        )
        return None if exists else path

    # ---- run

    def config(self) -> dict:
        """The training configuration from the widget (raises InputError on a bad folder or name)."""
        summary = self._summary
        if not summary.usable:
            raise InputError(f"invalid training folder: {summary.text()}")
        from napari_superres.training.config import TrainConfig

        out = _models.user_model_path(self._name.value)
        if out.exists():
            raise InputError(f"a model named {out.stem!r} already exists: choose another name or rename it")
        config = {
            "data_dir": str(self._folder.value),
            "arch": self._arch.value,
            "scale": int(self._scale.value),
            "out": str(out),
            "epochs": int(self._epochs.value),
            "steps_per_epoch": int(self._steps.value),
            "patch": int(self._patch.value),
            "batch": int(self._batch.value),
            "hr_only": summary.kind == "hr_only",
            "degradation": self._degradation.value,
            "gan": bool(self._gan.value),
            "val_fraction": 0.1,
        }
        TrainConfig(**config).check()  # the training's own checks, before the worker starts
        return config

    def start(self, *_):
        """Start training in the worker process; returns the background worker (None if refused)."""
        if self.state.running:
            return self._worker
        if self._summary_for != self._summary_key():  # start once the folder has been read
            self._start_when_ready = True
            if self._refresh_summary() is None:
                self._start_when_ready = False
                show_failure(InputError("choose a folder of training images"), "Training")
            return None
        try:
            config = self.config()
        except SuperResError as exc:
            show_failure(exc, "Training")
            return None
        self._out_path = Path(config["out"])
        self._epochs_seen, self._epochs_total, self._end_status = 0, config["epochs"], ""
        self._plot.clear()
        self.state.done = self.state.total = 0
        self.state.message = "Starting the model worker..."
        self._worker = start_run(
            train_steps,
            config,
            state=self.state,
            description=f"napari-superres: training {self._out_path.stem}",
            on_item=self._on_event,
            on_error=self._on_error,
            on_finished=self._on_finished,
        )
        return self._worker

    def stop(self, *_):
        """Stop training after the current step; the model trained so far is kept (pressing twice is fine)."""
        stop_run(self._worker, self.state, "Stopping after the current step...")

    def _on_event(self, event, pbar):
        from napari.utils.notifications import show_info

        if isinstance(event, TrainResult):
            path = Path(event)
            _models.LIBRARY.changed.emit(str(path.resolve()))
            if self._end_status == "cancelled":
                show_info(f"Training stopped: the model so far is saved as {path.stem!r} (in the Upscale models)")
            else:
                show_info(f"Training finished: model {path.stem!r} saved and added to the Upscale models")
            self.state.message = f"{'Stopped' if self._end_status == 'cancelled' else 'Finished'}: saved {path.stem!r}"
            return
        kind = event.get("event")
        if kind == "progress":
            self.state.total, self.state.done = int(event.get("total", 0)), int(event.get("done", 0))
            if self._epochs_seen == 0:
                self.state.message = f"Training: step {self.state.done}/{self.state.total}"
            pbar.update(self.state.done, self.state.total)
        elif kind == "epoch":
            self._epochs_seen += 1
            if self._alive:
                self._plot.add_epoch(event)
            parts = [f"Epoch {int(event.get('epoch', self._epochs_seen))}/{self._epochs_total}"]
            for key, fmt in (("loss", "loss {:.4f}"), ("val_psnr", "PSNR {:.2f} dB"), ("bicubic_psnr", "bicubic {:.2f} dB")):
                if isinstance(event.get(key), (int, float)):
                    parts.append(fmt.format(event[key]))
            self.state.message = ", ".join(parts)
        elif kind == "start":
            self._epochs_total = int(event.get("epochs", self._epochs_total))
            self.state.message = (
                f"Training on {event.get('train_images', '?')} images, validating on {event.get('val_images', 0)}..."
            )
        elif kind == "end":
            self._end_status = str(event.get("status", ""))
        elif kind == "starting":
            self.state.message = "Starting the model worker and reading the data..."

    def _on_error(self, exc):
        from napari.utils.notifications import show_info

        if isinstance(exc, Cancelled) and self._out_path is not None and self._out_path.is_file():
            _models.LIBRARY.changed.emit(str(self._out_path.resolve()))
            show_info(f"Training stopped: the model so far is saved as {self._out_path.stem!r}")
            self.state.message = f"Stopped: saved {self._out_path.stem!r}"
            return
        self.state.message = "Stopped" if isinstance(exc, Cancelled) else f"Failed: {exc}"
        show_failure(exc, "Training")

    def _on_finished(self):
        if self._alive:  # a fresh name for the next run
            self._name_typed = False
            self._suggest_name()
