"""The benchmark harness: ``napari-superres bench --quick`` on a tiny real model prints every section with
figures that hold together, MACs are counted right, memory peaks are seen, bad options fail in one line."""

import contextlib
import io
import json
import os
import re

import numpy as np
import pytest

from napari_superres.cli import main

# The options table switches oneDNN to the other setting than this process's (off by default; on when the suite
# runs with TF_ENABLE_ONEDNN_OPTS=0, the second kernel family).
ONEDNN_SWITCHED = "oneDNN on" if os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1").strip().lower() in ("0", "false") \
    else "oneDNN off"

# ESPCN with 8 features: 5x5x3x8 + 3x3x8x4 + 3x3x4x(3*2*2) multiply-accumulates per low-resolution pixel
TINY_MACS_PER_PIXEL = 5 * 5 * 3 * 8 + 3 * 3 * 8 * 4 + 3 * 3 * 4 * 12


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """An ESPCN x2 with 8 features, as built (its last convolution starts at zero: it outputs bicubic)."""
    from napari_superres.models.loading import save_model
    from napari_superres.models.registry import build_model

    path = tmp_path_factory.mktemp("bench") / "tiny-x2.keras"
    model = build_model("espcn", 2, 3, n_feats=8)
    return save_model(model, path, {"architecture": "espcn", "options": {"n_feats": 8}})


def _cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def quick(tiny_model, tmp_path_factory):
    figures = tmp_path_factory.mktemp("figures") / "bench.json"
    code, out, err = _cli("bench", "--quick", "--models", str(tiny_model), "-o", str(figures))
    assert code == 0, err
    return out, json.loads(figures.read_text())


def _section(text, title):
    """The table lines under the line starting with ``title`` (header, rule, rows) up to the blank line."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    block = []
    for line in lines[start + 1:]:
        if not line.strip():
            break
        block.append(line)
    return block


def test_quick_bench_prints_every_table_with_its_columns(quick):
    out, _ = quick
    assert re.search(r"matmul 512x512 \(median of 2\): float32 [\d.]+ GMAC/s \([\d.]+ per CPU-second\), "
                     r"bfloat16 [\d.]+ GMAC/s", out)
    expected = {
        "QUALITY": ["model", "scale", "PSNR", "SSIM", "bicubic", "SSIM", "Lanczos", "SSIM", "vs bicubic", "vs Lanczos"],
        "SPEED": ["model", "scale", "params", "GMAC", "ms", "out MP/s", "cores busy", "GMAC/CPU-s", "matmul",
                  "efficiency", "wall eff.", "end-to-end MP/s", "end-to-end eff."],
        "TILING AND MEMORY": ["mode", "seconds", "CPU s", "out MP/s", "time ratio", "peak RSS MB", "above model MB"],
        "OPTIONS": ["model", "option", "ms", "out MP/s", "speed-up", "efficiency", "PSNR", "max diff"],
    }
    for title, columns in expected.items():
        table = _section(out, title)
        header = table[0].split("  ")
        assert [c.strip() for c in header if c.strip()] == columns, title
        assert set(table[1]) <= {"-", " "}
        assert len(table) >= 3, f"{title} has no rows"
    rows = [line.split() for line in _section(out, "QUALITY")[2:]]
    assert rows[0][:2] == ["tiny-x2", "x2"]
    assert all(re.fullmatch(r"[+-]?\d+\.\d+", cell) for cell in rows[0][2:])
    speed = _section(out, "SPEED")[2].split()
    assert speed[0] == "tiny-x2" and all(re.fullmatch(r"\d+\.\d+", cell) for cell in speed[-2:])  # end to end
    modes = [line.split()[0] for line in _section(out, "TILING AND MEMORY")[2:4]]
    assert modes == ["whole", "tiled"]
    options = [line[len("tiny-x2"):].split("  ")[1].strip() for line in _section(out, "OPTIONS")[2:]
               if line.startswith("tiny-x2")]
    assert options == ["float32", "float32 + XLA", "bfloat16", "bfloat16 + XLA", ONEDNN_SWITCHED]
    assert re.search(rf"\(tiny-x2, {ONEDNN_SWITCHED}: float32 matmul [\d.]+ GMAC per CPU-second in that process\)", out)


def test_quality_is_scored_like_the_baselines(quick):
    """The untrained tiny model is bicubic computed in Keras: it must score as Pillow's bicubic does."""
    _, r = quick
    (q,) = r["quality"]
    assert q["images"] == 4
    assert q["psnr"] == pytest.approx(q["bicubic_psnr"], abs=0.05)
    assert q["ssim"] == pytest.approx(q["bicubic_ssim"], abs=0.002)
    assert 20 < q["bicubic_psnr"] < 45 and 20 < q["lanczos_psnr"] < 45
    assert q["lanczos_psnr"] != q["bicubic_psnr"]


def test_speed_and_efficiency_add_up(quick):
    _, r = quick
    (s,) = r["speed"]
    size = r["config"]["size"]
    assert s["macs"] == TINY_MACS_PER_PIXEL * size * size
    assert s["mp_per_s"] == pytest.approx((2 * size) ** 2 / 1e6 / (s["ms"] / 1e3))
    assert s["efficiency"] == pytest.approx(s["gmac_per_cpu_s"] / s["matmul_gmac_per_cpu_s"])
    assert s["efficiency_wall"] == pytest.approx(s["gmac_per_s"] / s["matmul_gmac_per_s"])
    assert s["gmac_per_s"] == pytest.approx(s["macs"] / (s["ms"] / 1e3) / 1e9)
    assert s["matmul_gmac_per_cpu_s"] > 0.5 and r["matmul"]["float32_gmac_per_s"] > 0.5 and s["efficiency"] > 0
    assert 0 < s["cores_busy"] <= r["machine"]["cores"] + 0.5


def test_tiling_is_exact_and_memory_is_measured(quick):
    _, r = quick
    t = r["tiling"]
    # The engine's overlap covers ESPCN's receptive field: tiles differ from the whole image only where float32
    # rounding (which CPU kernels run, by tile and position) tips a value across a grey-level boundary.
    assert t["max_abs_diff"] <= 1 and t["differing_pixels"] < 1e-3
    assert t["ratio"] == pytest.approx(t["tiled"]["seconds"] / t["whole"]["seconds"])
    for mode in ("whole", "tiled"):
        assert t[mode]["baseline_rss_mb"] > 100  # a process with TensorFlow loaded
        assert t[mode]["peak_rss_mb"] >= t[mode]["baseline_rss_mb"]
        assert t[mode]["added_rss_mb"] == pytest.approx(t[mode]["peak_rss_mb"] - t[mode]["baseline_rss_mb"])


def test_options_run_and_keep_the_output(quick):
    _, r = quick
    rows = {o["option"]: o for o in r["options"]}
    assert not [o for o in rows.values() if "error" in o]
    assert rows["float32"]["speedup"] == 1.0
    for o in rows.values():
        assert o["ms"] > 0 and o["psnr"] > 20 and o["efficiency"] > 0
        assert o["max_abs_diff"] <= 2  # the bicubic skip stays float32 under bfloat16
    assert rows[ONEDNN_SWITCHED]["matmul_gmac_per_cpu_s"] > 0


def test_json_output(tiny_model):
    code, out, _ = _cli("bench", "--quick", "--sections", "speed,tiling", "--json", "--models", str(tiny_model),
                        "--size", "32")
    assert code == 0
    r = json.loads(out)
    assert {"machine", "matmul", "speed", "tiling"} <= set(r) and not {"quality", "options"} & set(r)
    assert r["speed"][0]["input"] == "32x32"
    assert r["machine"]["cores"] >= 1 and r["machine"]["backend"] == "tensorflow"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--quality", "/no/such/folder"], "quality folder not found"),
        (["--models", "no-such-model"], "unknown model"),
        (["--scales", "two"], "comma-separated integers"),
        (["--repeats", "0"], "--repeats must be at least 1"),
        (["--sections", "speed,colour"], "sections are some of quality, speed, tiling, options, peers, not colour"),
        (["-o", "/no/such/folder/bench.json"], "folder does not exist"),
    ],
)
def test_bad_options_fail_in_one_line(argv, message, tiny_model):
    code, out, err = _cli("bench", "--quick", *argv)
    assert code == 2 and not out
    lines = [line for line in err.splitlines() if line.startswith("napari-superres")]
    assert len(lines) == 1 and message in lines[0], err


def test_scales_filter_refuses_a_scale_with_no_model(tiny_model):
    code, _, err = _cli("bench", "--quick", "--models", str(tiny_model), "--scales", "4")
    assert code == 2 and "no model of scale x4" in err


def test_count_macs_of_transposed_sequential_and_nested_models():
    import keras

    from napari_superres.benchmark import count_macs

    L = keras.layers
    seq = keras.Sequential([keras.Input((None, None, 3)), L.Conv2D(8, 3, padding="same"),
                            L.Conv2DTranspose(3, 4, strides=2, padding="same")])
    # the deconvolution scatters each of the 10x10 input pixels over a 4x4x8x3 kernel
    assert count_macs(seq, 10, 10) == 100 * 3 * 3 * 3 * 8 + 100 * 4 * 4 * 8 * 3
    inp = keras.Input((None, None, 3))
    inner = keras.Sequential([keras.Input((None, None, 3)), L.Conv2D(3, 3, padding="same")])
    nested = keras.Model(inp, inner(L.UpSampling2D(2)(inp)))
    assert count_macs(nested, 10, 10) == 20 * 20 * 3 * 3 * 3 * 3  # counted on the upsampled grid


def test_peak_rss_sees_a_large_allocation():
    from napari_superres.benchmark import PeakRSS

    with PeakRSS() as mem:
        block = np.ones(256 * 2**20 // 8)  # 256 MiB, written
        del block
    assert mem.peak - mem.before > 200 * 2**20


def test_demo_writes_images_and_prints_psnr(tiny_model, tmp_path, capsys):
    from napari_superres.benchmark import demo

    result = demo(tmp_path / "out", image="chelsea", model=str(tiny_model))
    printed = capsys.readouterr().out
    assert "tiny-x2 vs bicubic" in printed and "PSNR-Y" in printed
    for key in ("model", "bicubic", "lanczos"):
        assert (tmp_path / "out" / result[key]["file"].split("/")[-1]).is_file()
    assert result["model"]["psnr"] == pytest.approx(result["bicubic"]["psnr"], abs=0.05)
