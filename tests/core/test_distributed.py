"""The engine on a dask.distributed cluster of real worker processes: same output as one process, the model
loaded once per worker, a dead worker's blocks redone, an unreachable scheduler refused in seconds.

One LocalCluster (2 processes, 1 thread each) serves the whole module: each worker imports TensorFlow once.
"""

import logging
import os
import signal
import time

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")

from napari_superres import upscale  # noqa: E402
from napari_superres.cli import main  # noqa: E402
from napari_superres.engine.chunked import upscale_file  # noqa: E402
from napari_superres.engine.distributed import ModelHandle, connect, model_loads  # noqa: E402
from napari_superres.errors import SuperResError  # noqa: E402
from napari_superres.io import read_image, write_image  # noqa: E402
from conftest import assert_equal_to_float32_rounding  # noqa: E402


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR
    )
    with cluster, distributed.Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from conftest import _residual_cnn

    from napari_superres.models.loading import load_model, save_model

    return load_model(save_model(_residual_cnn(1), tmp_path_factory.mktemp("m") / "gray_x2.keras"))


@pytest.fixture(scope="module")
def stack():
    return np.random.default_rng(2).integers(0, 60000, (12, 64, 72)).astype(np.uint16)


def _loads(client, key):
    """Per worker: how many times it loaded the model ``key``."""
    return {w: counts.get(key, 0) for w, counts in client.run(model_loads).items()}


def test_lazy_stack_on_the_cluster_equals_one_process_and_loads_the_model_once_per_worker(client, model, stack):
    expected = upscale(stack, model, tile=40)
    lazy = upscale(da.from_array(stack, chunks=(1, 64, 72)), model, tile=40)
    got = client.compute(lazy).result()
    assert_equal_to_float32_rounding(got, expected)
    key = ModelHandle(model).key
    assert list(_loads(client, key).values()) == [1, 1]  # 12 blocks, 2 workers, 2 loads


def test_a_model_without_a_file_travels_as_bytes(client, gray_model, stack):
    expected = upscale(stack[:4], gray_model)
    got = client.compute(upscale(da.from_array(stack[:4], chunks=(1, 64, 72)), gray_model)).result()
    assert_equal_to_float32_rounding(got, expected)


def test_file_job_on_the_cluster_equals_one_process_without_reloading(client, model, stack, tmp_path):
    src = tmp_path / "in.zarr"
    write_image(src, stack, meta={"axes": "ZYX"})
    address = client.scheduler.address
    kw = dict(tile=40, chunk=32, normalization="percentile", quiet=True)  # statistics on the cluster too
    upscale_file(src, tmp_path / "local.zarr", model, **kw)
    upscale_file(src, tmp_path / "cluster.zarr", model, scheduler=address, **kw)
    assert_equal_to_float32_rounding(read_image(tmp_path / "cluster.zarr")[0], read_image(tmp_path / "local.zarr")[0])
    assert set(_loads(client, ModelHandle(model).key).values()) == {1}  # still once per worker


def test_z_upscaling_runs_on_the_cluster_too(client, model, stack, tmp_path):
    from napari_superres.engine.anisotropic import upscale_z

    src = tmp_path / "in.zarr"
    write_image(src, stack[:4], meta={"axes": "ZYX"})
    dst = upscale_file(src, tmp_path / "out.zarr", model, z_factor=2, scheduler=client.scheduler.address, quiet=True)
    assert_equal_to_float32_rounding(read_image(dst)[0], upscale(upscale_z(stack[:4], model), model))


def test_a_worker_that_dies_mid_job_has_its_blocks_redone(client, model, stack, tmp_path):
    src = tmp_path / "in.zarr"
    write_image(src, stack, meta={"axes": "ZYX"})
    victim = next(iter(client.run(os.getpid).items()))
    killed = []

    def kill_one_worker(done, total):
        if done == 1:
            os.kill(victim[1], signal.SIGKILL)
            killed.append(total - done)

    dst = upscale_file(
        src, tmp_path / "out.zarr", model, tile=40, chunk=32, scheduler=client.scheduler.address, quiet=True,
        on_block=kill_one_worker,
    )
    assert killed and killed[0] > 2  # the worker died with work left, some of it on that worker
    assert_equal_to_float32_rounding(read_image(dst)[0], upscale(stack, model, tile=40))


def test_an_unreachable_scheduler_is_refused_within_seconds(tmp_path, stack, model, monkeypatch, capsys):
    start = time.monotonic()
    with pytest.raises(SuperResError, match="cannot reach the Dask scheduler"):
        connect("tcp://127.0.0.1:1", timeout=3)
    assert time.monotonic() - start < 10
    src = tmp_path / "in.zarr"
    write_image(src, stack[:2], meta={"axes": "ZYX"})
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://127.0.0.1:1")
    start = time.monotonic()
    assert main(["upscale", str(src), "-m", str(model.path), "-o", str(tmp_path / "out.zarr")]) == 2
    assert time.monotonic() - start < 10
    err = capsys.readouterr().err
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:1" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out.zarr").exists()
