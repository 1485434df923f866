"""The ``napari-superres upscale`` and ``models`` commands, as a user runs them.

A few tests start the real console script in a subprocess; the others call ``cli.main`` in-process (same code
path, without paying for a TensorFlow import each time). Models are plain Keras models saved with
``model.save`` here, as a user's own model would be.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tifffile
from PIL import Image

from napari_superres.cli import main
from napari_superres.io import read_image, write_image

ERROR_PREFIX = "napari-superres: error:"


# ------------------------------------------------------------------------------------------- models


def _keras():
    import keras

    return keras


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def plain_rgb(models_dir):
    """Conv2D + UpSampling2D, 3 channels, x2: a model made with plain Keras outside this project."""
    keras = _keras()
    keras.utils.set_random_seed(7)
    inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(12, 3, padding="same", activation="relu")(inp)
    x = keras.layers.Conv2D(12, 3, padding="same", activation="relu")(x)
    x = keras.layers.UpSampling2D(2)(x)
    x = keras.layers.Conv2D(3, 3, padding="same")(x)
    model = keras.Model(inp, keras.layers.Add()([keras.layers.UpSampling2D(2)(inp), x]))
    path = models_dir / "plain_rgb_x2.keras"
    model.save(path)
    return path


@pytest.fixture(scope="module")
def copy_gray(models_dir):
    """1 channel, x2, output = nearest-neighbour upsampling exactly (a 1x1 Conv2D of weight 1 after
    UpSampling2D): every output value is known."""
    keras = _keras()
    inp = keras.Input((None, None, 1))
    conv = keras.layers.Conv2D(1, 1)
    model = keras.Model(inp, conv(keras.layers.UpSampling2D(2)(inp)))
    conv.set_weights([np.ones((1, 1, 1, 1), np.float32), np.zeros(1, np.float32)])
    path = models_dir / "copy_gray_x2.keras"
    model.save(path)
    return path


@pytest.fixture(scope="module")
def lambda_model(models_dir):
    """A model with a Lambda layer: loading it runs Python code stored in the file."""
    keras = _keras()
    inp = keras.Input((None, None, 1))
    x = keras.layers.Lambda(lambda t: t * 1.0)(inp)
    model = keras.Model(inp, keras.layers.UpSampling2D(2)(x))
    path = models_dir / "lambda_x2.keras"
    model.save(path)
    return path


# ------------------------------------------------------------------------------------------- helpers


def run_cli(capsys, *args):
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def run_script(*args, env=None):
    full_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "napari_superres.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=300,
    )


def error_line(rc, err):
    """The one line of a user error (and nothing else on stderr)."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith(ERROR_PREFIX)
    return lines[0]


def snapshot(folder):
    """Every file under folder with its content: to check that nothing was written or changed."""
    return {
        p.relative_to(folder): p.read_bytes() if p.is_file() else None for p in sorted(folder.rglob("*"))
    }


def nearest_x2(a, axes="YX"):
    y, x = axes.index("Y"), axes.index("X")
    return np.repeat(np.repeat(a, 2, axis=y), 2, axis=x)


@pytest.fixture
def rgb_png(tmp_path, astronaut):
    path = tmp_path / "in" / "astro.png"
    path.parent.mkdir()
    Image.fromarray(astronaut[100:196, 150:270]).save(path)
    return path


# ------------------------------------------------------------------------------------------- done-when cases


def test_console_script_upscales_rgb_png_with_a_plain_keras_model(tmp_path, rgb_png, plain_rgb):
    import napari_superres

    out = tmp_path / "astro_x2.png"
    proc = run_script("upscale", rgb_png, "-m", plain_rgb, "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    result, meta = read_image(out)
    src = read_image(rgb_png)[0]
    assert result.dtype == np.uint8 and result.shape == (192, 240, 3) and meta["axes"] == "YXC"
    # the same numbers as the Python API on the same model file
    expected = napari_superres.upscale(src, str(plain_rgb))
    assert np.abs(result.astype(int) - expected).max() <= 1
    assert str(out) in proc.stdout


def test_console_script_uint16_zyx_stack_keeps_dtype_axes_and_calibration(tmp_path, copy_gray):
    rng = np.random.default_rng(0)
    stack = rng.integers(0, 65535, size=(5, 200, 300), endpoint=True).astype(np.uint16)
    src = tmp_path / "stack.tif"
    tifffile.imwrite(
        src, stack, imagej=True, resolution=(1 / 0.4, 1 / 0.4), metadata={"axes": "ZYX", "spacing": 2.0, "unit": "um"}
    )
    out = tmp_path / "stack_x2.tif"
    proc = run_script("upscale", src, "-m", copy_gray, "-o", out, "--device", "cpu", "--tile", "128")
    assert proc.returncode == 0, proc.stderr
    result, meta = read_image(out)
    assert result.dtype == np.uint16 and result.shape == (5, 400, 600)
    np.testing.assert_array_equal(result, nearest_x2(stack, "ZYX"))
    assert meta["axes"] == "ZYX"
    assert meta["pixel_size"]["X"] == pytest.approx(0.2) and meta["pixel_size"]["Y"] == pytest.approx(0.2)
    assert meta["pixel_size"]["Z"] == pytest.approx(2.0)


def test_console_script_refuses_a_corrupt_image_in_one_line(tmp_path, plain_rgb):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    proc = run_script("upscale", bad, "-m", plain_rgb, "-o", tmp_path / "out.png")
    line = error_line(proc.returncode, proc.stderr)
    assert "broken.png" in line
    assert not (tmp_path / "out.png").exists()


def test_tile_64_equals_untiled_within_one_grey_level(capsys, tmp_path, astronaut, plain_rgb):
    src = tmp_path / "a.png"
    Image.fromarray(astronaut[:150, :170]).save(src)
    rc1, _, err1 = run_cli(capsys, "upscale", src, "-m", plain_rgb, "-o", tmp_path / "tiled.png", "--tile", "64")
    rc2, _, err2 = run_cli(capsys, "upscale", src, "-m", plain_rgb, "-o", tmp_path / "whole.png", "--tile", "0")
    assert rc1 == rc2 == 0, err1 + err2
    tiled = read_image(tmp_path / "tiled.png")[0].astype(int)
    whole = read_image(tmp_path / "whole.png")[0].astype(int)
    assert tiled.shape == (300, 340, 3)
    assert whole.std() > 20  # a real picture, not a flat output where any tiling would agree
    assert np.abs(tiled - whole).max() <= 1


def test_folder_in_folder_out_keeps_names_formats_and_dtypes(capsys, tmp_path, astronaut, plain_rgb):
    src = tmp_path / "in"
    src.mkdir()
    write_image(src / "photo.png", astronaut[:40, :50])
    write_image(src / "stack.tif", np.arange(2 * 30 * 20, dtype=np.uint16).reshape(2, 30, 20) * 50)
    write_image(src / "field.npy", np.linspace(0, 1, 24 * 36, dtype=np.float32).reshape(24, 36))
    (src / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    rc, stdout, err = run_cli(capsys, "upscale", src, "-m", plain_rgb, "-o", out, "-q")
    assert rc == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["field.npy", "photo.png", "stack.tif"]
    photo, stack, field = (read_image(out / n)[0] for n in ("photo.png", "stack.tif", "field.npy"))
    assert photo.shape == (80, 100, 3) and photo.dtype == np.uint8
    assert stack.shape == (2, 60, 40) and stack.dtype == np.uint16
    assert field.shape == (48, 72) and field.dtype == np.float32
    assert "3 written" in stdout


def test_output_named_after_its_input_becomes_tif_when_the_format_cannot_hold_it(capsys, tmp_path, copy_gray):
    src = tmp_path / "in"
    src.mkdir()
    strip = np.tile(np.arange(0, 250, 10, dtype=np.uint8), (8, 1700))[:, :40000]  # 8 x 40000: a long scan line
    write_image(src / "scan.jpg", strip)
    rc, _, err = run_cli(capsys, "upscale", src / "scan.jpg", "-m", copy_gray, "-o", tmp_path / "out", "-q")
    assert rc == 0, err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["scan.tif"]  # JPEG stops at 65535 pixels a side
    assert read_image(tmp_path / "out" / "scan.tif")[0].shape == (16, 80000)


# ------------------------------------------------------------------------------------------- batches


@pytest.fixture
def three_pngs(tmp_path, astronaut):
    src = tmp_path / "in"
    src.mkdir()
    for i, name in enumerate(("a.png", "b.png", "c.png")):
        Image.fromarray(astronaut[i * 30 : i * 30 + 24, :32]).save(src / name)
    return src


def test_a_bad_file_in_a_batch_is_reported_and_the_others_processed(capsys, tmp_path, three_pngs, plain_rgb):
    (three_pngs / "b.png").write_bytes(b"definitely not a png")
    out = tmp_path / "out"
    rc, stdout, err = run_cli(capsys, "upscale", three_pngs, "-m", plain_rgb, "-o", out, "-q")
    assert rc == 1
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "c.png"]
    failures = [line for line in err.splitlines() if "failed" in line]
    assert any("b.png" in line and "cannot read" in line for line in failures)
    assert "2 written" in err and "1 failed" in err and "b.png" in err.splitlines()[-1]


def test_existing_outputs_are_refused_skipped_or_replaced(capsys, tmp_path, three_pngs, plain_rgb):
    out = tmp_path / "out"
    assert run_cli(capsys, "upscale", three_pngs, "-m", plain_rgb, "-o", out, "-q")[0] == 0
    before = snapshot(out)

    rc, _, err = run_cli(capsys, "upscale", three_pngs, "-m", plain_rgb, "-o", out, "-q")
    line = error_line(rc, err)
    assert "3 outputs already exist" in line and "--overwrite" in line and "--skip-existing" in line
    assert snapshot(out) == before

    Image.fromarray(np.zeros((10, 12, 3), np.uint8)).save(three_pngs / "d.png")
    rc, stdout, err = run_cli(capsys, "upscale", three_pngs, "-m", plain_rgb, "-o", out, "--skip-existing", "-q")
    assert rc == 0, err
    assert "1 written" in stdout and "3 skipped" in stdout
    assert {k: v for k, v in snapshot(out).items() if k.name != "d.png"} == before
    assert read_image(out / "d.png")[0].shape == (20, 24, 3)

    (out / "a.png").write_bytes(b"stale")
    rc, _, err = run_cli(capsys, "upscale", three_pngs, "-m", plain_rgb, "-o", out, "--overwrite", "-q")
    assert rc == 0, err
    assert read_image(out / "a.png")[0].shape == (48, 64, 3)


def test_several_inputs_need_an_output_folder(capsys, tmp_path, three_pngs, plain_rgb):
    files = sorted(three_pngs.iterdir())
    before = snapshot(tmp_path)
    line = error_line(*run_cli(capsys, "upscale", *files, "-m", plain_rgb, "-o", tmp_path / "x.png")[::2])
    assert "need a folder" in line
    assert snapshot(tmp_path) == before


def test_one_input_into_an_existing_folder(capsys, tmp_path, rgb_png, plain_rgb):
    out = tmp_path / "results"
    out.mkdir()
    rc, _, err = run_cli(capsys, "upscale", rgb_png, "-m", plain_rgb, "-o", out, "-q")
    assert rc == 0, err
    assert read_image(out / "astro.png")[0].shape == (192, 240, 3)


# ------------------------------------------------------------------------------------------- bad input


def _npy(array):
    return lambda p: np.save(p, array)


BAD_INPUTS = {
    # name: (input file name, how to make it, extra args, words the error line must contain)
    "missing file": ("ghost.png", None, [], ["not found", "ghost.png"]),
    "corrupt png": ("bad.png", lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x01" * 40), [], ["cannot read"]),
    "zero-byte file": ("zero.tif", lambda p: p.write_bytes(b""), [], ["empty file"]),
    "empty array": ("empty.npy", _npy(np.zeros((0, 16), np.uint8)), [], ["empty"]),
    "NaN values": ("nan.npy", _npy(np.where(np.eye(8), np.nan, 0.5).astype(np.float32)), [], ["NaN"]),
    "inf values": ("inf.npy", _npy(np.full((8, 8), np.inf)), [], ["inf"]),
    "complex dtype": ("c.npy", _npy(np.ones((8, 8), np.complex64)), [], ["complex"]),
    "bool dtype": ("mask.npy", _npy(np.ones((8, 8), bool)), [], ["bool"]),
    "axes of wrong length": ("g.npy", _npy(np.ones((8, 9), np.uint8)), ["--axes", "ZYX"], ["Axes", "ZYX"]),
    "axes with unknown letter": ("h.npy", _npy(np.ones((4, 8, 9), np.uint8)), ["--axes", "QYX"], ["Q"]),
    "one-dimensional data": ("line.npy", _npy(np.ones(8, np.uint8)), [], ["two dimensions"]),
    "unsupported suffix": ("img.bmp", lambda p: p.write_bytes(b"BM" + b"\x00" * 60), [], ["unsupported"]),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_one_line_nothing_written_input_untouched(capsys, tmp_path, plain_rgb, case):
    name, make, extra, words = BAD_INPUTS[case]
    src = tmp_path / name
    if make is not None:
        make(src)
    before = snapshot(tmp_path)
    rc, out, err = run_cli(capsys, "upscale", src, "-m", plain_rgb, "-o", tmp_path / "out.tif", *extra)
    line = error_line(rc, err)
    for word in words:
        assert word in line
    assert snapshot(tmp_path) == before


@pytest.fixture
def gray_png(tmp_path, camera):
    path = tmp_path / "cam.png"
    Image.fromarray(camera[:20, :24]).save(path)
    return path


def test_model_file_that_is_not_keras(capsys, tmp_path, gray_png):
    fake = tmp_path / "model.keras"
    fake.write_text("this is not a model")
    before = snapshot(tmp_path)
    line = error_line(*run_cli(capsys, "upscale", gray_png, "-m", fake, "-o", tmp_path / "o.png")[::2])
    assert "not a Keras model" in line
    line = error_line(*run_cli(capsys, "upscale", gray_png, "-m", gray_png, "-o", tmp_path / "o.png")[::2])
    assert "cam.png" in line
    line = error_line(*run_cli(capsys, "upscale", gray_png, "-m", "no-such-model", "-o", tmp_path / "o.png")[::2])
    assert "unknown model" in line
    assert snapshot(tmp_path) == before


def test_model_needing_unsafe_code_is_refused_unless_allowed(capsys, tmp_path, gray_png, lambda_model):
    before = snapshot(tmp_path)
    line = error_line(*run_cli(capsys, "upscale", gray_png, "-m", lambda_model, "-o", tmp_path / "o.png")[::2])
    assert "unsafe" in line and "--allow-unsafe" in line
    assert snapshot(tmp_path) == before
    rc, _, err = run_cli(
        capsys, "upscale", gray_png, "-m", lambda_model, "-o", tmp_path / "o.png", "--allow-unsafe", "-q"
    )
    assert rc == 0, err
    np.testing.assert_array_equal(read_image(tmp_path / "o.png")[0], nearest_x2(read_image(gray_png)[0]))


def test_existing_output_is_refused_unless_overwrite(capsys, tmp_path, gray_png, copy_gray):
    out = tmp_path / "o.png"
    out.write_bytes(b"precious")
    line = error_line(*run_cli(capsys, "upscale", gray_png, "-m", copy_gray, "-o", out)[::2])
    assert "output exists" in line and "--overwrite" in line
    assert out.read_bytes() == b"precious"
    rc, _, err = run_cli(capsys, "upscale", gray_png, "-m", copy_gray, "-o", out, "--overwrite", "-q")
    assert rc == 0, err
    assert read_image(out)[0].shape == (40, 48)


@pytest.mark.parametrize(
    "target, words",
    [
        ("/sys/out.png", ["not writable", "/sys"]),  # refuses new files even for root
        ("{tmp}/missing/out.png", ["does not exist", "missing"]),
        ("{tmp}/cam.png", ["replace the input"]),
        ("{tmp}/out.bmp", ["unsupported output format"]),
    ],
)
def test_outputs_that_cannot_be_written(capsys, tmp_path, gray_png, copy_gray, target, words):
    before = snapshot(tmp_path)
    args = ("upscale", gray_png, "-m", copy_gray, "-o", target.format(tmp=tmp_path))
    line = error_line(*run_cli(capsys, *args, "--overwrite")[::2])
    for word in words:
        assert word in line
    assert snapshot(tmp_path) == before


def test_unwritable_output_folder_by_permissions(capsys, tmp_path, gray_png, copy_gray):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        rc, _, err = run_cli(capsys, "upscale", gray_png, "-m", copy_gray, "-o", locked / "o.png")
        if os.geteuid() == 0:  # root writes through permission bits: then it is simply a writable folder
            assert rc == 0, err
        else:
            assert "not writable" in error_line(rc, err)
            assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o755)


def test_a_stack_cannot_go_to_png_and_nothing_runs(capsys, tmp_path, copy_gray):
    src = tmp_path / "s.npy"
    np.save(src, np.zeros((3, 10, 12), np.uint8))
    before = snapshot(tmp_path)
    line = error_line(*run_cli(capsys, "upscale", src, "-m", copy_gray, "-o", tmp_path / "s.png")[::2])
    assert "PNG holds only" in line and ".tif" in line
    assert snapshot(tmp_path) == before


def test_bad_option_values_are_refused_by_the_parser(capsys, gray_png, copy_gray, tmp_path):
    for bad in (["--tile", "-1"], ["--batch-size", "0"], ["--device", "tpu"], ["--overwrite", "--skip-existing"]):
        with pytest.raises(SystemExit) as info:
            main(["upscale", str(gray_png), "-m", str(copy_gray), "-o", str(tmp_path / "o.png"), *bad])
        assert info.value.code == 2
    capsys.readouterr()


# ------------------------------------------------------------------------------------------- options


@pytest.mark.parametrize("shape", [(3, 4), (1, 1), (2, 9)])
def test_images_smaller_than_the_receptive_field_work(capsys, tmp_path, plain_rgb, shape):
    src = tmp_path / "tiny.npy"
    tiny = (np.arange(np.prod(shape)).reshape(shape) * 20).astype(np.uint8)
    np.save(src, tiny)
    rc, _, err = run_cli(capsys, "upscale", src, "-m", plain_rgb, "-o", tmp_path / "t.npy", "-q")
    assert rc == 0, err
    assert np.load(tmp_path / "t.npy").shape == (shape[0] * 2, shape[1] * 2)


def test_axes_option_reads_channels_first_data(capsys, tmp_path, copy_gray):
    data = np.stack([np.full((6, 8), 10, np.uint16), np.full((6, 8), 4000, np.uint16), np.eye(6, 8, dtype=np.uint16)])
    src = tmp_path / "cyx.npy"
    np.save(src, data)
    rc, _, err = run_cli(capsys, "upscale", src, "-m", copy_gray, "-o", tmp_path / "o.tif", "--axes", "CYX", "-q")
    assert rc == 0, err
    out, meta = read_image(tmp_path / "o.tif")
    np.testing.assert_array_equal(out, nearest_x2(data, "CYX"))
    assert meta["axes"] == "CYX"


def test_percentile_normalisation_tta_and_batch_size(capsys, tmp_path, copy_gray):
    rng = np.random.default_rng(1)
    data = rng.integers(100, 3000, size=(2, 16, 20)).astype(np.uint16)
    src = tmp_path / "s.tif"
    tifffile.imwrite(src, data)
    args = ("--normalization", "percentile", "--tta", "--batch-size", "1", "--overlap", "2", "--tile", "8", "-q")
    rc, _, err = run_cli(capsys, "upscale", src, "-m", copy_gray, "-o", tmp_path / "o.tif", *args)
    assert rc == 0, err
    out = read_image(tmp_path / "o.tif")[0]
    # nearest upsampling commutes with flips and the percentile mapping is inverted exactly
    assert out.dtype == np.uint16
    assert np.abs(out.astype(int) - nearest_x2(data, "ZYX")).max() <= 1


def test_device_cpu_hides_gpus_before_keras_runs(capsys, tmp_path, gray_png, copy_gray, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    monkeypatch.delenv("JAX_PLATFORMS", raising=False)
    rc, _, err = run_cli(capsys, "upscale", gray_png, "-m", copy_gray, "-o", tmp_path / "o.png", "--device", "cpu")
    assert rc == 0, err
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "-1"


def test_device_gpu_says_clearly_when_there_is_none(capsys, tmp_path, gray_png, copy_gray):
    import tensorflow as tf

    rc, _, err = run_cli(capsys, "upscale", gray_png, "-m", copy_gray, "-o", tmp_path / "o.png", "--device", "gpu")
    if tf.config.list_physical_devices("GPU"):
        assert rc == 0, err
    else:
        assert "no GPU is visible" in error_line(rc, err)
        assert not (tmp_path / "o.png").exists()


def test_progress_bar_goes_to_stderr(capsys, tmp_path, gray_png, copy_gray):
    rc, out, err = run_cli(capsys, "upscale", gray_png, "-m", copy_gray, "-o", tmp_path / "o.png", "--tile", "8")
    assert rc == 0, err
    assert "cam.png" in err and "100%" in err  # tqdm's bar, labelled with the file
    assert "100%" not in out


# ------------------------------------------------------------------------------------------- models command


@pytest.fixture
def user_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    monkeypatch.setenv("NAPARI_SUPERRES_HOME", str(home))
    return home


def _save_user_model(home):
    from napari_superres.models.loading import save_model
    from napari_superres.models.registry import build_model

    model = build_model("espcn", 2, 1)
    desc = {"architecture": "espcn", "validation": {"psnr": 31.25, "bicubic_psnr": 29.5, "dataset": "test set"}}
    return save_model(model, home / "models" / "my-espcn.keras", desc)


def test_models_json_lists_a_user_model_without_importing_keras(tmp_path, user_home):
    _save_user_model(user_home)
    code = (
        "import sys, json; from napari_superres.cli import main; rc = main(['models', '--json']); "
        "sys.stderr.write('KERAS' if {'keras', 'tensorflow'} & set(sys.modules) else 'NO-KERAS'); sys.exit(rc)"
    )
    env = dict(os.environ, NAPARI_SUPERRES_HOME=str(user_home))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.endswith("NO-KERAS")
    rows = json.loads(proc.stdout)
    mine = next(r for r in rows if r["name"] == "my-espcn")
    assert mine["source"] == "user" and mine["architecture"] == "espcn" and mine["domain"] == "photo"
    assert mine["scale"] == 2 and mine["channels"] == 1 and mine["parameters"] > 0
    assert mine["headline"].startswith("PSNR 31.25 dB vs bicubic 29.50 dB (+1.75)")

    proc = run_script("models", "--json", env={"NAPARI_SUPERRES_HOME": str(user_home)})
    assert proc.returncode == 0 and json.loads(proc.stdout) == rows


def test_models_table_and_the_empty_case(capsys, tmp_path, user_home, monkeypatch):
    from napari_superres.models import catalog

    _save_user_model(user_home)
    rc, out, _ = run_cli(capsys, "models")
    assert rc == 0
    header, *lines = out.splitlines()
    assert header.split()[:4] == ["NAME", "ARCHITECTURE", "DOMAIN", "SCALE"]
    row = next(line for line in lines if line.startswith("my-espcn"))
    assert "espcn" in row and "x2" in row and "user" in row and "+1.75" in row
    assert row.split()[2] == "photo"  # a model without a stated domain learned photographs

    empty = tmp_path / "nothing"
    empty.mkdir()
    monkeypatch.setattr(catalog, "SHIPPED_DIR", empty)
    monkeypatch.setenv("NAPARI_SUPERRES_HOME", str(empty))
    rc, out, _ = run_cli(capsys, "models")
    assert rc == 0 and out.startswith("No models are installed")
    rc, out, _ = run_cli(capsys, "models", "--json")
    assert rc == 0 and json.loads(out) == []
