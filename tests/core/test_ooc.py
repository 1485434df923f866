"""Out-of-core file jobs: TIFF/Zarr in, OME-Zarr/BigTIFF out, block by block; resume, completion, full disk;
and the CLI options that lead there."""

import resource
import signal

import numpy as np
import pytest
import tifffile
import zarr

from napari_superres import upscale
from napari_superres.cli import main
from napari_superres.engine.chunked import partial_dir, upscale_file
from napari_superres.errors import Cancelled, InputError, OutputError
from napari_superres.io import read_image, write_image
from conftest import assert_equal_to_float32_rounding


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """The conftest's small residual CNN (1 channel, x2) saved as a user's .keras file."""
    from conftest import _residual_cnn

    from napari_superres.models.loading import save_model

    return save_model(_residual_cnn(1), tmp_path_factory.mktemp("m") / "gray_x2.keras")


@pytest.fixture(scope="module")
def model(model_file):
    from napari_superres.models.loading import load_model

    return load_model(model_file)


@pytest.fixture(scope="module")
def stack():
    rng = np.random.default_rng(1)
    return rng.integers(0, 60000, (3, 150, 170)).astype(np.uint16)


@pytest.fixture(scope="module")
def expected(stack, model):
    return upscale(stack, model, tile=48)


def test_tiff_to_ome_zarr_equals_in_memory_with_pixel_sizes_and_pyramid(tmp_path, stack, model, expected):
    src = tmp_path / "in.ome.tif"
    tifffile.imwrite(src, stack, ome=True, metadata={"axes": "ZYX", "PhysicalSizeZ": 2.0, "PhysicalSizeY": 0.5, "PhysicalSizeX": 0.5})
    dst = upscale_file(src, tmp_path / "out.ome.zarr", model, tile=48, chunk=64, pyramid=1, quiet=True)
    got, meta = read_image(dst)
    assert_equal_to_float32_rounding(got, expected)
    assert meta["axes"] == "ZYX" and meta["pixel_size"] == {"Z": 2.0, "Y": 0.25, "X": 0.25}
    level1 = zarr.open_group(str(dst), mode="r")["1"]
    assert level1.shape == (3, 150, 170)  # half of the 300 x 340 output
    np.testing.assert_allclose(level1[0, :2, :2], expected[0, :4, :4].reshape(2, 2, 2, 2).mean(axis=(1, 3)), atol=0.5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.ome.tif", "out.ome.zarr"]  # nothing left over


@pytest.mark.parametrize("axes, shape", [("YXS", (60, 70, 3)), ("CZYX", (2, 3, 40, 50)), ("ZCYX", (3, 2, 40, 50))])
def test_a_zarr_output_gets_the_same_metadata_out_of_core_as_in_memory(tmp_path, model, axes, shape):
    # OME-Zarr names time, channel, space in that order (CZYX); other axes (a channel after Z, a sample axis S,
    # which files know as C) go into a plain Zarr array with our metadata, whichever path writes them
    from napari_superres.engine.files import upscale_path

    src = tmp_path / "in.tif"
    tifffile.imwrite(src, np.random.default_rng(3).integers(0, 60000, shape).astype(np.uint16))
    ooc = zarr.open(str(upscale_file(src, tmp_path / "ooc.zarr", model, axes=axes, tile=48, chunk=32, quiet=True)), mode="r")
    mem = zarr.open(str(upscale_path(src, tmp_path / "mem.zarr", model, axes=axes, tile=48)), mode="r")
    assert dict(ooc.attrs) == dict(mem.attrs)
    if axes == "CZYX":
        assert [a["name"] for a in ooc.attrs["ome"]["multiscales"][0]["axes"]] == ["c", "z", "y", "x"]
        ooc, mem = ooc["0"], mem["0"]
    else:
        assert isinstance(ooc, zarr.Array) and ooc.attrs["napari_superres"]["axes"] == axes.replace("S", "C")
    assert_equal_to_float32_rounding(ooc[...], mem[...])
    assert read_image(tmp_path / "ooc.zarr")[1]["axes"] == axes.replace("S", "C")


def test_compressed_tiled_tiff_to_bigtiff(tmp_path, stack, model, expected):
    src = tmp_path / "in.tif"
    tifffile.imwrite(src, stack, tile=(64, 64), compression="zlib", metadata={"axes": "ZYX"})
    dst = upscale_file(src, tmp_path / "out.tif", model, tile=48, chunk=100, quiet=True)
    with tifffile.TiffFile(dst) as tif:
        assert tif.is_bigtiff
    got, meta = read_image(dst)
    assert_equal_to_float32_rounding(got, expected)
    assert meta["axes"] == "ZYX"


def test_zarr_without_axes_metadata_asks_for_axes(tmp_path, stack, model, expected):
    src = tmp_path / "plain.zarr"
    zarr.create_array(str(src), shape=stack.shape, dtype=stack.dtype, chunks=(1, 64, 64))[...] = stack
    with pytest.raises(InputError, match="--axes"):
        upscale_file(src, tmp_path / "out.zarr", model, quiet=True)
    assert not (tmp_path / "out.zarr").exists() and not partial_dir(tmp_path / "out.zarr").exists()
    upscale_file(src, tmp_path / "out.zarr", model, axes="ZYX", tile=48, chunk=64, quiet=True)
    assert_equal_to_float32_rounding(read_image(tmp_path / "out.zarr")[0], expected)


def _stop_after(n):
    def on_block(done, total):
        if done == n:
            raise KeyboardInterrupt

    return on_block


def test_an_interrupted_run_resumes_and_never_looks_complete(tmp_path, stack, model, expected):
    src, dst = tmp_path / "in.zarr", tmp_path / "out.zarr"
    write_image(src, stack, meta={"axes": "ZYX"})
    with pytest.raises(Cancelled, match="run the same command again"):
        upscale_file(src, dst, model, tile=48, chunk=64, quiet=True, on_block=_stop_after(4))
    assert not dst.exists()  # the final name appears only when every block is written
    assert partial_dir(dst).is_dir()
    seen = []
    upscale_file(src, dst, model, tile=48, chunk=64, quiet=True, on_block=lambda d, t: seen.append((d, t)))
    total = seen[-1][1]
    assert seen[0] == (5, total) and seen[-1] == (total, total)  # 4 blocks were kept, not redone
    assert_equal_to_float32_rounding(read_image(dst)[0], expected)
    assert not partial_dir(dst).exists()


def test_a_different_job_starts_over(tmp_path, stack, model):
    src, dst = tmp_path / "in.zarr", tmp_path / "out.zarr"
    write_image(src, stack, meta={"axes": "ZYX"})
    with pytest.raises(Cancelled):
        upscale_file(src, dst, model, tile=48, chunk=64, quiet=True, on_block=_stop_after(3))
    seen = []
    upscale_file(src, dst, model, tile=40, chunk=64, quiet=True, on_block=lambda d, t: seen.append(d))
    assert seen[0] == 1
    assert_equal_to_float32_rounding(read_image(dst)[0], upscale(stack, model, tile=40))


@pytest.mark.parametrize("out_name", ["out.zarr", "out.tif"])
def test_a_full_disk_stops_keeps_what_is_complete_and_resumes(tmp_path, stack, model, expected, out_name):
    """The file-size limit makes the kernel refuse writes (EFBIG), as a full disk does (ENOSPC)."""
    src, dst = tmp_path / "in.zarr", tmp_path / out_name
    write_image(src, stack, meta={"axes": "ZYX"})
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    def fill_disk(done, total):
        if done == 2:
            resource.setrlimit(resource.RLIMIT_FSIZE, (1, hard))

    try:
        with pytest.raises(OutputError, match=r"no space left .* 2 of \d+ blocks are complete"):
            upscale_file(src, dst, model, tile=48, chunk=64, quiet=True, on_block=fill_disk)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old_handler)
    assert not dst.exists()
    seen = []
    upscale_file(src, dst, model, tile=48, chunk=64, quiet=True, on_block=lambda d, t: seen.append(d))
    assert seen[0] == 3
    assert_equal_to_float32_rounding(read_image(dst)[0], expected)


# ----------------------------------------------------------------------------------------------- CLI


def test_cli_zarr_to_tiff_and_zarr_chosen_by_suffix(tmp_path, stack, model_file, expected, capsys):
    src = tmp_path / "in.zarr"
    write_image(src, stack, meta={"axes": "ZYX", "pixel_size": {"Z": 1.0, "Y": 0.4, "X": 0.4}, "unit": "µm"})
    for name in ("out.tif", "out.ome.zarr"):
        assert main(["upscale", str(src), "-m", str(model_file), "-o", str(tmp_path / name), "--tile", "48", "-q"]) == 0
        got, meta = read_image(tmp_path / name)
        assert_equal_to_float32_rounding(got, expected)
        assert meta["pixel_size"] == {"Z": 1.0, "Y": 0.2, "X": 0.2}


def test_cli_big_tiff_goes_out_of_core(tmp_path, stack, model_file, expected, capsys, monkeypatch):
    src = tmp_path / "in.tif"
    tifffile.imwrite(src, stack, metadata={"axes": "ZYX"})
    monkeypatch.setenv("NAPARI_SUPERRES_OOC_BYTES", str(stack.nbytes))  # "bigger than memory allows"
    assert main(["upscale", str(src), "-m", str(model_file), "-o", str(tmp_path / "out.tif"), "--tile", "48"]) == 0
    assert "out of core" in capsys.readouterr().out
    assert_equal_to_float32_rounding(read_image(tmp_path / "out.tif")[0], expected)


def test_cli_refuses_big_data_options_for_other_outputs(tmp_path, stack, model_file, capsys):
    src = tmp_path / "in.zarr"
    write_image(src, stack, meta={"axes": "ZYX"})
    assert main(["upscale", str(src), "-m", str(model_file), "-o", str(tmp_path / "out.npy"), "--chunk", "256"]) == 2
    err = capsys.readouterr().err
    assert "--chunk" in err and "Zarr" in err and len(err.strip().splitlines()) == 1
    plain = tmp_path / "plain.zarr"
    zarr.create_array(str(plain), shape=stack.shape, dtype=stack.dtype)[...] = stack
    assert main(["upscale", str(plain), "-m", str(model_file), "-o", str(tmp_path / "o.zarr")]) == 2
    assert "--axes" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.zarr", "plain.zarr"]
