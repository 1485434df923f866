"""The model worker process, driven from a test process that never imports Keras or TensorFlow itself.

Real tiny Keras models are built (and the in-process reference outputs computed) in a separate Python process;
everything here goes through the worker: shared memory, progress and cancel over the pipe, crashes, errors,
and ``upscale_layer`` on a napari-free stand-in for an Image layer.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import pytest

from napari_superres.errors import Cancelled, InputError, ModelError
from napari_superres.worker import WorkerClient, WorkerDied
from napari_superres._napari._layer import upscale_layer
from napari_superres.worker.protocol import block_prefix

SHM = "/dev/shm"

# Builds the models in a separate process (Keras stays out of this one) and computes reference outputs with
# the engine running in that process.
_BUILD = textwrap.dedent(
    """
    import sys, numpy as np, keras
    from napari_superres.models.loading import save_model
    from napari_superres.engine.api import upscale

    out = sys.argv[1]
    L = keras.layers

    def residual(ch, scale=2, width=8):
        init = keras.initializers.RandomNormal(stddev=0.1, seed=0)
        inp = keras.Input((None, None, ch))
        x = L.Conv2D(width, 3, padding="same", activation="relu", kernel_initializer=init)(inp)
        x = L.Conv2D(width, 3, padding="same", activation="relu", kernel_initializer=init)(x)
        x = L.UpSampling2D(scale)(x)
        x = L.Conv2D(ch, 3, padding="same", kernel_initializer=init)(x)
        return keras.Model(inp, L.Add()([L.UpSampling2D(scale)(inp), x]))

    save_model(residual(1), f"{out}/gray.keras", {"name": "gray-x2", "overlap": 4})
    save_model(residual(3), f"{out}/rgb.keras", {"name": "rgb-x2", "overlap": 4})
    save_model(residual(1), f"{out}/micro.keras",
               {"name": "micro-x2", "overlap": 4, "normalization": {"mode": "percentile", "low": 2, "high": 99.8}})
    residual(1, scale=3).save(f"{out}/plain.keras")  # no description: scale found by probing
    inp = keras.Input((None, None, 1))
    save_model(keras.Model(inp, L.UpSampling2D(2)(inp)), f"{out}/nearest.keras", {"name": "nearest-x2", "overlap": 0})

    rng = np.random.default_rng(0)
    gray = (rng.random((48, 64)) * 255).astype(np.uint8)
    rgb = (rng.random((40, 56, 3)) * 255).astype(np.uint8)
    stack = rng.random((5, 32, 40)).astype(np.float32)
    micro = (rng.gamma(2.0, 300.0, (6, 32, 32))).astype(np.uint16)
    for name, a in [("gray", gray), ("rgb", rgb), ("stack", stack), ("micro", micro)]:
        np.save(f"{out}/{name}.npy", a)
    np.save(f"{out}/gray_ref.npy", upscale(gray, f"{out}/gray.keras", tile=24))
    np.save(f"{out}/rgb_ref.npy", upscale(rgb, f"{out}/rgb.keras"))
    np.save(f"{out}/stack_ref.npy", upscale(stack, f"{out}/gray.keras", axes="ZYX"))
    np.save(f"{out}/micro_ref.npy", upscale(micro, f"{out}/micro.keras", axes="ZYX"))
    from napari_superres.engine.anisotropic import upscale_z
    from napari_superres.models.loading import load_model
    m = load_model(f"{out}/gray.keras")
    np.save(f"{out}/stack_z_ref.npy", upscale(upscale_z(stack, m, axes="ZYX"), m, axes="ZYX"))
    """
)


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    folder = tmp_path_factory.mktemp("worker_assets")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    subprocess.run([sys.executable, "-c", _BUILD, str(folder)], check=True, env=env, timeout=600)
    return folder


@pytest.fixture(scope="module")
def client():
    c = WorkerClient()
    yield c
    c.shutdown()


@pytest.fixture(autouse=True)
def no_keras_here_and_no_leaks():
    """Every test: the worker is used, yet this process imports no Keras/TensorFlow and leaks no shared memory."""
    before = set(sys.modules)
    yield
    new = set(sys.modules) - before
    assert not [m for m in new if m.split(".")[0] in ("keras", "tensorflow", "jax", "torch")]
    assert _my_blocks() == []


def _my_blocks():
    prefix = block_prefix()
    leftovers = [n for n in os.listdir(SHM) if n.startswith(prefix)] if os.path.isdir(SHM) else []
    import tempfile

    leftovers += [n for n in os.listdir(tempfile.gettempdir()) if n.startswith(prefix)]
    return leftovers


def _big_gray(n=768):
    rng = np.random.default_rng(1)
    return (rng.random((n, n)) * 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------- WorkerClient


def test_upscale_in_worker_equals_engine_in_process(client, assets):
    gray, rgb = np.load(assets / "gray.npy"), np.load(assets / "rgb.npy")
    out = client.upscale(gray, assets / "gray.keras", tile=24)
    assert out.dtype == np.uint8 and out.shape == (96, 128)
    np.testing.assert_array_equal(out, np.load(assets / "gray_ref.npy"))
    out = client.upscale(rgb, str(assets / "rgb.keras"))
    assert out.dtype == np.uint8 and out.shape == (80, 112, 3)
    np.testing.assert_array_equal(out, np.load(assets / "rgb_ref.npy"))
    # the input is untouched and the worker stays warm between runs
    np.testing.assert_array_equal(gray, np.load(assets / "gray.npy"))
    pid = client.pid
    client.upscale(gray, assets / "gray.keras")
    assert client.pid == pid


def test_progress_events_arrive_in_order(client, assets):
    events = []
    client.upscale(_big_gray(256), assets / "gray.keras", tile=32, progress=lambda d, t: events.append((d, t)))
    assert len(events) >= 2
    totals = {t for _, t in events}
    assert len(totals) == 1
    done = [d for d, _ in events]
    assert done == sorted(done) and done[-1] == events[-1][1]


def test_cancel_mid_run_is_quick_and_keeps_the_worker(client, assets):
    client.upscale(np.zeros((8, 8), np.uint8), assets / "gray.keras")  # warm: the model is loaded
    pid = client.pid
    cancel = threading.Event()
    times = {}

    def progress(done, total):
        if not cancel.is_set():
            times["cancel"] = time.monotonic()
            cancel.set()
            cancel.set()  # pressed twice: harmless

    with pytest.raises(Cancelled):
        client.upscale(_big_gray(), assets / "gray.keras", tile=32, progress=progress, cancel=cancel)
    assert time.monotonic() - times["cancel"] < 2.0
    assert client.pid == pid  # acknowledged: no restart needed
    # a callable cancel works the same, and the next run is normal
    with pytest.raises(Cancelled):
        client.upscale(_big_gray(), assets / "gray.keras", tile=32, cancel=lambda: True)
    assert client.upscale(np.full((8, 8), 7, np.uint8), assets / "gray.keras").shape == (16, 16)


def test_a_failing_progress_callback_stops_the_job_and_is_raised(client, assets):
    client.ping()
    pid = client.pid

    def progress(done, total):
        raise ValueError("the progress bar is gone")

    with pytest.raises(ValueError, match="progress bar is gone"):
        client.upscale(_big_gray(), assets / "gray.keras", tile=32, progress=progress)
    assert client.pid == pid  # the job was cancelled, not the worker
    assert client.upscale(np.full((8, 8), 9, np.uint8), assets / "gray.keras").shape == (16, 16)


def test_worker_errors_come_back_as_one_line_user_errors(client, assets, tmp_path):
    client.ping()
    pid = client.pid
    with pytest.raises(ModelError) as info:
        client.upscale(np.zeros((8, 8), np.uint8), tmp_path / "missing.keras")
    assert "missing.keras" in str(info.value) and "\n" not in str(info.value)
    not_a_model = tmp_path / "notes.keras"
    not_a_model.write_text("not a model")
    with pytest.raises(ModelError):
        client.upscale(np.zeros((8, 8), np.uint8), not_a_model)
    nan = np.ones((16, 16), np.float32)
    nan[3, 4] = np.nan
    with pytest.raises(InputError, match="NaN") as info:
        client.upscale(nan, assets / "gray.keras")
    assert "\n" not in str(info.value)
    with pytest.raises(InputError, match="empty"):
        client.upscale(np.zeros((0, 5), np.uint8), assets / "gray.keras")
    with pytest.raises(InputError, match="(?i)axes"):
        client.upscale(np.zeros((8, 8), np.uint8), assets / "gray.keras", axes="ZYX")
    assert client.pid == pid  # errors do not cost the warm worker


def test_a_changed_model_file_is_reloaded(client, assets, tmp_path):
    import shutil

    gray = np.load(assets / "gray.npy")
    model = tmp_path / "mine.keras"
    shutil.copy(assets / "gray.keras", model)
    np.testing.assert_array_equal(client.upscale(gray, model, tile=24), np.load(assets / "gray_ref.npy"))
    shutil.copy(assets / "nearest.keras", tmp_path / "new.keras")
    os.replace(tmp_path / "new.keras", model)  # retrained and saved under the same name
    np.testing.assert_array_equal(client.upscale(gray, model), gray.repeat(2, 0).repeat(2, 1))


def test_model_info_without_and_with_the_worker(client, assets):
    fresh = WorkerClient()
    info = fresh.model_info(assets / "gray.keras")  # has a description: read from the file, no worker
    assert info["name"] == "gray-x2" and info["scale"] == 2 and info["channels"] == 1
    assert info["path"] == str(assets / "gray.keras") and info["description"]["overlap"] == 4
    assert fresh.pid is None
    info = client.model_info(str(assets / "plain.keras"))  # none: probed in the worker
    assert (info["name"], info["scale"], info["channels"]) == ("plain", 3, 1)
    assert client.upscale(np.zeros((10, 12), np.uint8), assets / "plain.keras").shape == (30, 36)
    with pytest.raises(ModelError):
        client.model_info("no-such-model")


# ---------------------------------------------------------------------------------------------- upscale_layer


@dataclass
class FakeImage:
    """The attributes of a napari Image layer that upscale_layer reads (real layers: tests/napari)."""

    data: object
    name: str = "img"
    rgb: bool = False
    scale: tuple = None
    translate: tuple = None
    metadata: dict = field(default_factory=dict)
    colormap: str = "magma"
    contrast_limits: tuple = (0, 255)
    blending: str = "additive"

    def __post_init__(self):
        n = self.ndim
        self.scale = tuple(self.scale or (1.0,) * n)
        self.translate = tuple(self.translate or (0.0,) * n)

    @property
    def ndim(self):
        return len(self.data.shape) - (1 if self.rgb else 0)


def _extent(scale, translate, shape):
    s, t, n = (np.asarray(v, float) for v in (scale, translate, shape))
    return t - s / 2, t + (n - 0.5) * s


def test_upscale_layer_2d_geometry_name_and_metadata(client, assets):
    gray = np.load(assets / "gray.npy")
    layer = FakeImage(gray, name="cells", scale=(0.5, 0.25), translate=(10.0, -3.0), metadata={"origin": "scope"})
    events = []
    data, kwargs, kind = upscale_layer(layer, assets / "gray.keras", tile=24, client=client,
                                       progress=lambda d, t: events.append((d, t)))
    assert kind == "image" and data.dtype == np.uint8
    np.testing.assert_array_equal(data, np.load(assets / "gray_ref.npy"))
    assert kwargs["name"] == "cells (x2 gray-x2)"
    np.testing.assert_allclose(kwargs["scale"], (0.25, 0.125))
    np.testing.assert_allclose(kwargs["translate"], (10.0 - 0.5 * 0.25, -3.0 - 0.25 * 0.25))
    for lo_hi_in, lo_hi_out in zip(_extent(layer.scale, layer.translate, gray.shape),
                                   _extent(kwargs["scale"], kwargs["translate"], data.shape)):
        np.testing.assert_allclose(lo_hi_in, lo_hi_out)
    assert kwargs["colormap"] == "magma" and kwargs["contrast_limits"] == [0, 255]
    assert kwargs["blending"] == "additive" and kwargs["rgb"] is False
    assert kwargs["metadata"]["origin"] == "scope"
    assert kwargs["metadata"]["napari_superres"] == {
        "model": "gray-x2", "model_path": str(assets / "gray.keras"), "scale": 2, "upscaled_axes": "YX",
        "tile": 24, "tta": False, "precision": "auto", "source_layer": "cells",
    }
    assert layer.metadata == {"origin": "scope"}  # the input layer is untouched
    assert events and events[-1][0] == events[-1][1]  # one image: its tiles are the progress


def test_upscale_layer_rgb(client, assets):
    rgb = np.load(assets / "rgb.npy")
    data, kwargs, _ = upscale_layer(FakeImage(rgb, name="photo", rgb=True), str(assets / "rgb.keras"), client=client)
    np.testing.assert_array_equal(data, np.load(assets / "rgb_ref.npy"))
    assert kwargs["rgb"] is True and "colormap" not in kwargs
    assert kwargs["scale"] == (0.5, 0.5) and kwargs["translate"] == (-0.25, -0.25)


def test_upscale_layer_dask_stack_slice_by_slice(client, assets, monkeypatch):
    import dask.array as da

    import napari_superres._napari._layer as layer_mod

    stack = np.load(assets / "stack.npy")
    lazy = da.from_array(stack, chunks=(2, 32, 40))
    sent = []
    real = client.upscale

    def spy(array, *args, **kwargs):
        sent.append(array.shape)
        return real(array, *args, **kwargs)

    monkeypatch.setattr(client, "upscale", spy)
    monkeypatch.setattr(layer_mod, "CALL_OUTPUT_BYTES", 1)  # force one slice per call
    events = []
    data, kwargs, _ = upscale_layer(FakeImage(lazy, name="stack", scale=(2.0, 0.5, 0.5), colormap="gray",
                                              contrast_limits=(0.0, 1.0)),
                                    assets / "gray.keras", client=client, progress=lambda d, t: events.append((d, t)))
    assert isinstance(data, np.ndarray) and data.dtype == np.float32 and data.shape == (5, 64, 80)
    np.testing.assert_allclose(data, np.load(assets / "stack_ref.npy"), atol=1e-6)
    assert sent == [(1, 32, 40)] * 5  # every slice, never the whole stack at once
    assert events[-1] == (5, 5) and {t for _, t in events} == {5}
    assert kwargs["scale"] == (2.0, 0.25, 0.25)
    assert kwargs["translate"] == (0.0, -0.125, -0.125)


def test_upscale_layer_percentile_model_shares_statistics_across_calls(client, assets, monkeypatch):
    """A stack sent in several calls gets the same normalisation as the whole stack at once."""
    import napari_superres._napari._layer as layer_mod

    monkeypatch.setattr(layer_mod, "CALL_OUTPUT_BYTES", 1)
    micro = np.load(assets / "micro.npy")
    data, _, _ = upscale_layer(FakeImage(micro), assets / "micro.keras", client=client)
    assert data.dtype == np.uint16
    np.testing.assert_allclose(data.astype(float), np.load(assets / "micro_ref.npy").astype(float), atol=1)


def test_upscale_layer_z_for_anisotropic_stacks(client, assets):
    stack = np.load(assets / "stack.npy")
    layer = FakeImage(np.stack([stack, stack[::-1]]), name="aniso", scale=(1.0, 4.0, 1.0, 1.0),
                      translate=(0.0, 5.0, 0.0, 0.0))  # T, Z, Y, X
    events = []
    data, kwargs, _ = upscale_layer(layer, assets / "gray.keras", upscale_z=True, client=client,
                                    progress=lambda d, t: events.append((d, t)))
    assert data.shape == (2, 10, 64, 80) and data.dtype == np.float32
    # each time point as the engine does it in one process: Z (model on the XZ and YZ planes), then Y and X
    ref = np.load(assets / "stack_z_ref.npy")
    np.testing.assert_allclose(data[0], ref, atol=1e-5)
    assert not np.allclose(data[1], ref, atol=1e-3)
    assert kwargs["scale"] == (1.0, 2.0, 0.5, 0.5) and kwargs["translate"] == (0.0, 4.0, -0.25, -0.25)
    assert kwargs["metadata"]["napari_superres"]["upscaled_axes"] == "ZYX"
    assert events[-1] == (20, 20)  # Y-X slices after Z upscaling, both time points
    with pytest.raises(InputError, match="no Z axis"):
        upscale_layer(FakeImage(stack[0]), assets / "gray.keras", upscale_z=True, client=client)


def test_upscale_layer_refusals(client, assets):
    import dask.array as da

    model = assets / "gray.keras"

    @dataclass
    class Labels(FakeImage):
        _type_string: str = "labels"

    with pytest.raises(InputError, match="labels layer"):
        upscale_layer(Labels(np.zeros((8, 8), np.int32)), model, client=client)
    nan = np.ones((16, 16), np.float32)
    nan[0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        upscale_layer(FakeImage(nan), model, client=client)
    with pytest.raises(InputError, match="empty"):
        upscale_layer(FakeImage(np.zeros((0, 16), np.uint8)), model, client=client)
    with pytest.raises(InputError, match="no Y and X axes"):
        upscale_layer(FakeImage(np.zeros((5,), np.uint8)), model, client=client)
    one = np.full((1, 1), 77, np.uint8)  # smaller than the model's context: upscaled, as the API does
    out = upscale_layer(FakeImage(one), assets / "nearest.keras", client=client)[0]
    np.testing.assert_array_equal(out, np.full((2, 2), 77, np.uint8))
    huge = da.zeros((200_000, 200_000), dtype=np.uint16, chunks=(4096, 4096))  # lazy: nothing is computed
    with pytest.raises(InputError, match=r"would need 298\.0 GB") as info:
        upscale_layer(FakeImage(huge, name="huge"), model, client=client)
    assert "400000x400000" in str(info.value) and "available" in str(info.value)


# ---------------------------------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    """Six 96 x 96 crops of scikit-image's camera photograph: a tiny high-resolution-only training folder."""
    from PIL import Image
    from skimage import data as skdata

    folder = tmp_path_factory.mktemp("photos")
    camera = skdata.camera()
    for i in range(6):
        y, x = 60 + 70 * (i // 3), 60 + 130 * (i % 3)
        Image.fromarray(camera[y : y + 96, x : x + 96]).save(folder / f"crop{i}.png")
    return folder


def _train_config(folder, out, **kw):
    return {"data_dir": str(folder), "out": str(out), "arch": "espcn", "scale": 2, "epochs": 2,
            "steps_per_epoch": 3, "patch": 32, "batch": 4, "hr_only": True, "val_fraction": 0.34, **kw}


def test_training_in_the_worker_reports_epochs_and_saves_a_usable_model(client, photo_folder, tmp_path):
    events = []
    path = client.train(_train_config(photo_folder, tmp_path / "tiny.keras"), on_event=events.append)
    assert path == str(tmp_path / "tiny.keras")
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "end"
    steps = [(e["done"], e["total"]) for e in events if e["event"] == "progress"]
    assert steps == [(i, 6) for i in range(1, 7)]
    epochs = [e for e in events if e["event"] == "epoch"]
    assert [e["epoch"] for e in epochs] == [1, 2]
    assert all(np.isfinite(e["loss"]) and e["val_psnr"] > 0 and e["bicubic_psnr"] > 0 for e in epochs)
    assert events[-1]["status"] == "finished"
    info = client.model_info(path)  # described by the training: no probing
    assert (info["name"], info["scale"], info["channels"]) == ("tiny", 2, 1)
    out = client.upscale(np.full((20, 30), 100, np.uint8), path)
    assert out.shape == (40, 60) and out.dtype == np.uint8


def test_training_cancel_stops_quickly_and_keeps_a_model(client, photo_folder, tmp_path):
    cancel = threading.Event()
    events = []

    def on_event(e):
        events.append(e)
        if e["event"] == "progress":
            cancel.set()

    t0 = time.monotonic()
    path = client.train(_train_config(photo_folder, tmp_path / "stopped.keras", epochs=50), on_event=on_event,
                        cancel=cancel)
    assert time.monotonic() - t0 < 60  # 50 epochs were asked for
    assert events[-1]["event"] == "end" and events[-1]["status"] == "cancelled"
    assert client.model_info(path)["scale"] == 2
    with pytest.raises(InputError, match="training"):
        client.train({"data_dir": str(photo_folder), "out": str(tmp_path / "x.keras"), "colour": "blue"})
    with pytest.raises(InputError):
        client.train(_train_config(tmp_path / "no-such-folder", tmp_path / "y.keras"))


# ---------------------------------------------------------------------------------------------- life cycle
# (these restart the worker, so they come last)


def test_worker_opens_no_network_socket(client):
    import psutil

    client.ping()
    worker = psutil.Process(client.pid)
    assert worker.net_connections(kind="inet") == []
    assert psutil.Process().net_connections(kind="inet") == []


def test_calls_from_two_threads_run_one_at_a_time(client, assets):
    gray = np.load(assets / "gray.npy")
    results, errors = [], []

    def run():
        try:
            results.append(client.upscale(gray, assets / "gray.keras", tile=24))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors and len(results) == 3
    for r in results:
        np.testing.assert_array_equal(r, np.load(assets / "gray_ref.npy"))


def test_unresponsive_worker_is_stopped_on_cancel(client, assets):
    """A worker that does not acknowledge a cancel within about 2 s is ended; the next call starts a new one."""
    client.upscale(np.zeros((8, 8), np.uint8), assets / "gray.keras")
    pid = client.pid
    cancel = threading.Event()

    def progress(done, total):
        if not cancel.is_set():
            os.kill(pid, signal.SIGSTOP)  # frozen: it cannot answer
            cancel.set()

    t0 = time.monotonic()
    with pytest.raises(Cancelled, match="stopped"):
        client.upscale(_big_gray(), assets / "gray.keras", tile=32, progress=progress, cancel=cancel)
    assert time.monotonic() - t0 < 10
    assert not _alive(pid)
    out = client.upscale(np.full((8, 8), 7, np.uint8), assets / "gray.keras")
    assert out.shape == (16, 16) and client.pid != pid


def test_kill_9_mid_run_gives_worker_died_and_recovers(client, assets):
    client.upscale(np.zeros((8, 8), np.uint8), assets / "gray.keras")
    pid = client.pid

    def progress(done, total):
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)

    with pytest.raises(WorkerDied, match="SIGKILL") as info:
        client.upscale(_big_gray(), assets / "gray.keras", tile=32, progress=progress)
    assert "\n" not in str(info.value) and "next run" in str(info.value)
    out = client.upscale(np.load(assets / "gray.npy"), assets / "gray.keras", tile=24)
    np.testing.assert_array_equal(out, np.load(assets / "gray_ref.npy"))
    assert client.pid != pid


def test_devices_and_cpu_choice_restart_the_worker(client, assets):
    devices = client.devices()
    assert devices[0] == "CPU" and all(d.startswith("GPU:") for d in devices[1:])
    auto_pid = client.pid
    client.upscale(np.zeros((8, 8), np.uint8), assets / "gray.keras", device="cpu")
    assert client.pid != auto_pid and client.device == "cpu"
    assert client.ping()["CUDA_VISIBLE_DEVICES"] == "-1"
    cpu_pid = client.pid
    client.upscale(np.zeros((8, 8), np.uint8), assets / "gray.keras", device="CPU")
    assert client.pid == cpu_pid  # same choice: same worker
    with pytest.raises(InputError, match="device"):
        client.upscale(np.zeros((8, 8), np.uint8), assets / "gray.keras", device="tpu")


def test_shutdown_during_a_run_cancels_it_and_leaves_no_process(client, assets):
    client.ping()
    pid, device = client.pid, client.device
    box = {}
    started = threading.Event()

    def run():
        try:
            client.upscale(_big_gray(), assets / "gray.keras", tile=32, device=device,
                           progress=lambda d, t: started.set())
        except BaseException as exc:  # noqa: BLE001 - checked below
            box["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    assert started.wait(60)
    client.shutdown()
    client.shutdown()  # twice: harmless
    t.join(30)
    assert isinstance(box.get("error"), Cancelled)
    assert not _alive(pid) and client.pid is None


def test_worker_ends_with_its_parent(assets):
    """No orphan: a script that uses the client and exits (or is killed, as napari may be) takes the worker
    with it; and the script itself never imports Keras or TensorFlow."""
    script = textwrap.dedent(
        f"""
        import sys, numpy as np
        from napari_superres.worker import get_client
        c = get_client()
        out = c.upscale(np.zeros((8, 8), np.uint8), {str(assets / "gray.keras")!r})
        info = c.model_info({str(assets / "plain.keras")!r})
        print(c.pid, out.shape[0], info["scale"], "tensorflow" in sys.modules, "keras" in sys.modules, flush=True)
        if sys.argv[1] == "killed":
            import time; time.sleep(600)
        """
    )
    procs = {mode: subprocess.Popen([sys.executable, "-c", script, mode], stdout=subprocess.PIPE, text=True)
             for mode in ("exits", "killed")}
    for mode, proc in procs.items():
        pid, rows, scale, tf, keras = proc.stdout.readline().split()
        assert (rows, scale, tf, keras) == ("16", "3", "False", "False")
        if mode == "killed":
            proc.kill()
        proc.wait(60)
        deadline = time.monotonic() + 10
        while _alive(int(pid)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(int(pid)), mode


def _alive(pid) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
