"""``napari-superres train`` and ``evaluate``: every bad input of the training issue gives one clear line,
exit code 2, and writes nothing; a real run prints its progress and a per-epoch line."""

import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image
from skimage import data

from napari_superres.cli import main
from napari_superres.training import metrics


def _png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


@pytest.fixture
def photos(tmp_path):
    root = tmp_path / "photos"
    _png(root / "chelsea.png", data.chelsea()[:96, :128])
    _png(root / "coffee.png", data.coffee()[:96, :128])
    _png(root / "astronaut.png", data.astronaut()[:96, :128])
    return root


def _fails(capsys, argv, *fragments):
    """Run the CLI; it must exit 2 with one line on stderr containing every fragment."""
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("napari-superres: error: "), err
    for f in fragments:
        assert f in lines[0], lines[0]
    return lines[0]


def _train(data_dir, out, *extra):
    return ["train", str(data_dir), "--arch", "espcn", "--scale", "2", "-o", str(out), "--epochs", "1",
            "--steps", "2", "--patch", "32", "--batch", "2", "-q", *extra]


def _nothing_written(out: Path):
    assert not out.exists() and not out.with_name(out.stem + ".train").exists()


def test_empty_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    _fails(capsys, _train(tmp_path / "empty", tmp_path / "m.keras"), "no images in", "empty")
    _nothing_written(tmp_path / "m.keras")


def test_missing_data_folder(tmp_path, capsys):
    _fails(capsys, _train(tmp_path / "nope", tmp_path / "m.keras"), "data folder not found")


def test_corrupt_files_are_named(photos, tmp_path, capsys):
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff" + b"\x00" * 50)
    (photos / "half.png").write_bytes((photos / "chelsea.png").read_bytes()[:300])
    line = _fails(capsys, _train(photos, tmp_path / "m.keras"), "2 file(s)", "broken.jpg", "half.png", "fix or remove")
    assert "chelsea.png" not in line
    _nothing_written(tmp_path / "m.keras")


def test_non_images_are_skipped_with_a_warning(photos, tmp_path, capsys):
    (photos / "README.txt").write_text("hello")
    out = tmp_path / "m.keras"
    assert main(_train(photos, out)) == 0
    captured = capsys.readouterr()
    assert "napari-superres: warning: not images, skipped: README.txt" in captured.err
    assert "epoch 1/1  loss" in captured.out and "val PSNR" in captured.out and out.exists()


def test_unmatched_pairs_are_listed(tmp_path, capsys):
    hr = data.chelsea()[:96, :128]
    _png(tmp_path / "d" / "hr" / "a.png", hr)
    _png(tmp_path / "d" / "hr" / "b.png", hr)
    _png(tmp_path / "d" / "lr" / "a.png", metrics.bicubic_downscale(hr, 2))
    _png(tmp_path / "d" / "lr" / "c.png", metrics.bicubic_downscale(hr, 2))
    _fails(capsys, _train(tmp_path / "d", tmp_path / "m.keras"), "do not match by name", "b.png", "c.png")


def test_wrong_size_ratio_is_listed(tmp_path, capsys):
    hr = data.chelsea()[:96, :128]
    _png(tmp_path / "d" / "hr" / "a.png", hr)
    _png(tmp_path / "d" / "lr" / "a.png", metrics.bicubic_downscale(hr, 4))
    _fails(capsys, _train(tmp_path / "d", tmp_path / "m.keras"), "do not fit scale x2", "a.png", "LR 32x24")


def test_images_smaller_than_the_patch(photos, tmp_path, capsys):
    _png(photos / "tiny.png", data.chelsea()[:20, :20])
    _fails(capsys, _train(photos, tmp_path / "m.keras"), "smaller than the patch of 32", "tiny.png (20x20)")


def test_mixed_channel_counts(photos, tmp_path, capsys):
    _png(photos / "camera.png", data.camera()[:96, :96])
    _fails(capsys, _train(photos, tmp_path / "m.keras"), "mixed channel counts", "camera.png", "channels 1")


def test_scale_not_supported(photos, tmp_path, capsys):
    # argparse refuses scales no architecture has; the API says which scales the architecture supports
    with pytest.raises(SystemExit) as e:
        main(_train(photos, tmp_path / "m.keras") + ["--scale", "5"])
    assert e.value.code == 2 and "invalid choice: 5" in capsys.readouterr().err
    from napari_superres.errors import InputError
    from napari_superres.training import TrainConfig
    from napari_superres.training.plan import prepare

    with pytest.raises(InputError, match="espcn supports scales 2, 3, 4, not x8"):
        prepare(TrainConfig(photos, tmp_path / "m.keras", scale=8))


def test_output_exists_or_unwritable(photos, tmp_path, capsys):
    out = tmp_path / "m.keras"
    out.write_bytes(b"previous model")
    _fails(capsys, _train(photos, out), "model exists", "--overwrite", "--resume")
    assert out.read_bytes() == b"previous model"
    _fails(capsys, _train(photos, tmp_path / "missing" / "m.keras"), "output folder does not exist")
    _fails(capsys, _train(photos, out / "m.keras"), "output folder is not a folder")
    _fails(capsys, _train(photos, tmp_path / "model.h5"), "must be a .keras file")
    _fails(capsys, _train(photos, tmp_path / "new.keras", "--resume"), "nothing to resume")


def _limited_run(argv, limit_bytes):
    """Run the CLI in a child process whose files may not grow beyond ``limit_bytes`` (the kernel refuses
    the write as on a full disk)."""

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a refused write is then an error, not a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "napari_superres.cli", *argv], capture_output=True, text=True,
                          preexec_fn=limit, env=env, timeout=600)


def test_full_disk_keeps_the_previous_model(photos, tmp_path):
    out = tmp_path / "m.keras"
    assert main(_train(photos, out)) == 0
    before = out.read_bytes()
    proc = _limited_run(_train(photos, out, "--resume", "--epochs", "2"), limit_bytes=len(before) // 2)
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("napari-superres: error: ") and "File too large" in last, proc.stderr
    assert "Traceback" not in proc.stderr
    assert out.read_bytes() == before  # the previous model is intact
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_train_then_evaluate_json(photos, tmp_path, capsys):
    out = tmp_path / "m.keras"
    assert main(_train(photos, out, "--epochs", "2")) == 0
    printed = capsys.readouterr().out
    assert "training espcn x2" in printed and "epoch 2/2" in printed and "finished after 2 epoch(s)" in printed
    assert main(["evaluate", "-m", str(out), str(photos), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["scale"] == 2 and len(result["images"]) == 3
    assert {"psnr", "ssim", "bicubic_psnr", "bicubic_ssim", "lanczos_psnr"} <= set(result["mean"])
    assert main(["evaluate", "-m", str(out), str(photos)]) == 0
    table = capsys.readouterr().out
    assert "bicubic" in table and "mean of 3" in table and "chelsea.png" in table


def test_evaluate_bad_inputs(photos, tmp_path, capsys):
    _fails(capsys, ["evaluate", "-m", str(tmp_path / "none.keras"), str(photos)], "none.keras")
    _fails(capsys, ["evaluate", "-m", "espcn-x2", str(tmp_path / "nowhere")], "data folder not found")
    tifffile.imwrite(tmp_path / "fake.keras", np.zeros((4, 4), np.uint8))
    _fails(capsys, ["evaluate", "-m", str(tmp_path / "fake.keras"), str(photos)], "not a Keras model")


def test_ctrl_c_stops_after_the_step_and_keeps_a_model(photos, tmp_path):
    import time

    from napari_superres.models.loading import load_model
    from napari_superres.training import log_path, read_log

    out = tmp_path / "m.keras"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    argv = _train(photos, out, "--epochs", "500", "--steps", "3")
    proc = subprocess.Popen([sys.executable, "-m", "napari_superres.cli", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.time() + 300
        while not (log_path(out).exists() and any(r["event"] == "epoch" for r in read_log(log_path(out)))):
            assert proc.poll() is None and time.time() < deadline, proc.communicate()
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert "stopping after this step" in stderr and "Traceback" not in stderr
    assert "stopped (cancelled)" in stdout
    end = read_log(log_path(out))[-1]
    assert end["event"] == "end" and end["status"] == "cancelled" and end["epochs"] < 500
    assert load_model(out).scale == 2
