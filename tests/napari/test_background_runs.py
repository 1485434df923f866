"""Runs in the background: napari stays responsive, Cancel works (twice too), a killed worker is reported and
replaced, closing the viewer mid-run stops the run cleanly."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
from helpers_napari import LoopGapMeter, browse, wait_idle, world_box

from napari_superres._napari import _runs


def _stack(z=12, size=160, seed=0):
    return np.random.default_rng(seed).integers(0, 255, size=(z, size, size), dtype=np.uint8)


def test_event_loop_responsive_during_upscale(qtbot, upscale_widget, models, notes):
    """While the model computes, napari's event loop never stalls for more than 200 ms.

    Showing the result is napari's own work (the new layer's controls and vispy visual, shader compilation in
    Mesa): it is reported next to the cost of adding the same array with ``viewer.add_image``."""
    viewer, widget = upscale_widget
    stack = _stack(z=8)
    layer = viewer.add_image(stack, name="stack")
    widget._image.value = layer
    browse(qtbot, widget, models["espcn-gray-x2"])
    qtbot.wait(500)

    arrived = []
    with LoopGapMeter() as meter:
        worker = widget.run()
        worker.yielded.connect(lambda item: isinstance(item, tuple) and arrived.append(time.perf_counter()))
        wait_idle(qtbot, widget, timeout_s=300)
        qtbot.wait(1500)  # the new layer's first draws
    assert arrived, "no result arrived"
    computing = meter.worst(end=arrived[0])
    showing = meter.worst(start=arrived[0])

    assert notes.errors() == []
    out = viewer.layers[-1]
    assert out.data.shape == (8, 320, 320) and out.data.dtype == np.uint8
    np.testing.assert_allclose(world_box(out), world_box(layer), atol=1e-9)
    # an untrained ESPCN starts near a smooth upscaling of the input: the mean value is kept
    assert abs(float(out.data.mean()) - float(stack.mean())) < 20

    with LoopGapMeter() as reference:
        viewer.add_image(out.data.copy(), name="same array, added directly", scale=out.scale)
        qtbot.wait(1500)
    print(
        f"\nworst event-loop gap while the model computed: {meter.describe(computing)}"
        f"\nwhile napari showed the new layer: {meter.describe(showing)}"
        f"\nnapari adding the same array directly: {meter.describe(reference.worst())}"
    )
    assert computing[1] < 0.2, f"event loop blocked while computing: {meter.describe(computing)}"


def test_cancel_upscale_twice_then_run_again(qtbot, upscale_widget, models, notes):
    viewer, widget = upscale_widget
    widget._image.value = viewer.add_image(_stack(z=40, size=192), name="long")
    browse(qtbot, widget, models["espcn-gray-x2"])
    n_layers = len(viewer.layers)

    widget.run()
    qtbot.waitUntil(lambda: widget.state.done > 0, timeout=120_000)  # really running in the worker
    widget.cancel()
    widget.cancel()  # a second press changes nothing
    wait_idle(qtbot, widget, timeout_s=60)

    assert notes.errors() == []
    assert any("Upscale cancelled" in m for m in notes.messages)
    assert len(viewer.layers) == n_layers  # nothing half-done was added
    assert widget._run.enabled and not widget._cancel.enabled

    small = viewer.add_image(_stack(z=2, size=48), name="small")
    widget._image.value = small
    widget.run()
    wait_idle(qtbot, widget)
    assert notes.errors() == []
    assert viewer.layers[-1].data.shape == (2, 96, 96)


def test_worker_killed_mid_run_then_recovers(qtbot, upscale_widget, models, notes):
    from napari_superres.worker.client import get_client

    viewer, widget = upscale_widget
    widget._image.value = viewer.add_image(_stack(z=40, size=192), name="long")
    browse(qtbot, widget, models["espcn-gray-x2"])

    widget.run()
    qtbot.waitUntil(lambda: widget.state.done > 0, timeout=120_000)
    pid = get_client().pid
    assert pid is not None and pid != os.getpid()
    os.kill(pid, signal.SIGKILL)
    wait_idle(qtbot, widget, timeout_s=60)

    errors = notes.errors()
    assert len(errors) == 1 and "model worker stopped unexpectedly" in errors[0], errors
    assert "\n" not in errors[0]
    assert viewer.layers[-1].name == "long"  # the viewer and its layers are intact

    small = viewer.add_image(_stack(z=2, size=48), name="after")
    widget._image.value = small
    widget.run()
    wait_idle(qtbot, widget, timeout_s=180)  # a fresh worker starts
    assert len(notes.errors()) == 1
    assert viewer.layers[-1].name == "after (x2 espcn-gray-x2)"
    assert get_client().pid not in (None, pid)


def test_closing_the_viewer_mid_run_stops_it(qtbot, make_napari_viewer, models, notes):
    from napari_superres.worker.client import get_client

    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-superres-keras", "Upscale")
    widget._image.value = viewer.add_image(_stack(z=40, size=192), name="long")
    browse(qtbot, widget, models["espcn-gray-x2"])
    worker = widget.run()
    qtbot.waitUntil(lambda: widget.state.done > 0, timeout=120_000)
    pid = get_client().pid

    viewer.close()
    qtbot.waitUntil(lambda: not worker.is_running and not _runs.ACTIVE_RUNS, timeout=60_000)

    assert notes.errors() == []
    # the run stopped on cancel; the warm worker process is the same one, idle and ready
    assert get_client().pid == pid
    assert get_client().ping() is not None
