"""Automatic precision: the decision from CPU flags and the probe, the user's override, the cache, the report,
and the bound (a forced bfloat16 run stays within one grey level of float32 on a shipped model)."""

import logging

import numpy as np
import pytest

from napari_superres.engine import precision as P
from napari_superres.errors import InputError
from napari_superres.models.loading import load_model

AVX2 = {"fpu", "sse4_2", "avx", "avx2", "fma"}  # an AVX2-only CPU (AMD Zen 2/3, older Intel)
AVX512_BF16 = AVX2 | {"avx512f", "avx512_bf16"}  # AMD Zen 4/5, Intel Cooper Lake
AMX = AVX2 | {"avx512f", "amx_tile", "amx_bf16"}  # Intel Sapphire Rapids and later


@pytest.fixture(autouse=True)
def fresh_choices(tmp_path, monkeypatch):
    """Each test decides afresh: its own cache folder, nothing remembered in the process."""
    monkeypatch.setenv("NAPARI_SUPERRES_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(P.ENV, raising=False)
    monkeypatch.setattr(P, "_decided", type(P._decided)())


def never(*_):
    raise AssertionError("the probe must not run here")


def measured(**results):
    """A probe that reports ``results`` ({precision: (speed-up, grey levels)}) and counts its calls."""
    calls = []

    def measure(srm, tries):
        calls.append(tries)
        return {p: results[p] for p in tries if p in results}

    measure.calls = calls
    return measure


@pytest.fixture
def espcn():
    return load_model("espcn-x2")


def test_candidates_follow_the_cpu_flags_and_the_gpu():
    assert P.candidates(AVX2, None)[0] == ()
    assert P.candidates(AVX512_BF16, None)[0] == ("bfloat16",)
    assert P.candidates(AMX, None)[0] == ("bfloat16",)
    assert P.candidates(AVX2, "NVIDIA H200")[0] == ("bfloat16", "float16")


def test_an_avx2_cpu_runs_float32_without_a_probe(espcn):
    choice = P.choose(espcn, "auto", flags=AVX2, gpu=None, measure=never)
    assert choice.precision == "float32"
    assert "without bfloat16 instructions" in choice.reason


@pytest.mark.parametrize("flags", [AVX512_BF16, AMX])
def test_a_bf16_cpu_takes_bfloat16_when_the_probe_finds_it_faster_and_close(espcn, flags):
    measure = measured(bfloat16=(1.9, 0.3))
    choice = P.choose(espcn, None, flags=flags, gpu=None, measure=measure)
    assert choice.precision == "bfloat16"
    assert measure.calls == [("bfloat16",)]
    assert "x1.90 faster" in choice.reason and "0.30 grey levels" in choice.reason


@pytest.mark.parametrize("result, why", [((1.9, 0.8), "0.80 grey levels off"), ((1.02, 0.1), "x1.02 faster")])
def test_float32_stays_when_bfloat16_is_too_far_off_or_not_faster(espcn, result, why):
    choice = P.choose(espcn, None, flags=AVX512_BF16, gpu=None, measure=measured(bfloat16=result))
    assert choice.precision == "float32"
    assert why in choice.reason


def test_a_gpu_takes_the_fastest_16_bit_format_within_the_bound(espcn):
    measure = measured(bfloat16=(3.0, 0.9), float16=(2.5, 0.05))  # bfloat16 faster but too coarse here
    choice = P.choose(espcn, None, flags=AVX2, gpu="NVIDIA H200", measure=measure)
    assert choice.precision == "float16"
    assert "GPU NVIDIA H200" in choice.reason


def test_the_probe_runs_once_per_machine_and_model_then_the_cache_answers(espcn, monkeypatch):
    first = P.choose(espcn, None, flags=AVX512_BF16, gpu=None, measure=measured(bfloat16=(1.9, 0.3)))
    assert P.cache_file().is_file()
    monkeypatch.setattr(P, "_decided", type(P._decided)())  # a new process
    again = P.choose(load_model("espcn-x2"), None, flags=AVX512_BF16, gpu=None, measure=never)
    assert again.precision == first.precision == "bfloat16" and "cached" in again.reason
    # another model (other weights) is probed on its own
    other = P.choose(load_model("espcn-x3"), None, flags=AVX512_BF16, gpu=None, measure=measured(bfloat16=(1.0, 0.1)))
    assert other.precision == "float32"


def test_the_user_overrides_auto_by_argument_and_by_environment(espcn, monkeypatch):
    assert P.choose(espcn, "float32", flags=AMX, gpu=None, measure=never) == P.PrecisionChoice("float32", "requested")
    assert P.choose(espcn, "bfloat16", flags=AVX2, gpu=None, measure=never).precision == "bfloat16"
    monkeypatch.setenv(P.ENV, "bfloat16")
    assert P.choose(espcn, None, flags=AVX2, gpu=None, measure=never).precision == "bfloat16"
    assert P.choose(espcn, "auto", flags=AVX2, gpu=None, measure=never).precision == "float32"
    with pytest.raises(InputError, match="precision must be one of"):
        P.requested_precision("half")


def test_the_real_probe_measures_a_shipped_model_within_the_bound(espcn):
    (speedup, levels), = P.probe(espcn, ("bfloat16",)).values()
    assert speedup > 0
    assert 0 < levels <= 1.0  # bfloat16 changes the output, by less than a grey level


def test_a_resolved_model_keeps_its_precision_and_its_variants_are_shared(espcn):
    bf16, choice = P.resolve(espcn, "bfloat16")
    assert bf16.precision == "bfloat16" and choice.reason == "requested"
    assert P.resolve(bf16, "auto")[0] is bf16  # auto keeps what was decided (the CLI resolves once)
    again, _ = P.resolve(espcn, "bfloat16")
    assert again.keras_model is bf16.keras_model  # built once
    assert P.resolve(bf16, "float32")[0].keras_model is espcn.keras_model
    layers = {layer.name: layer.dtype_policy.name for layer in bf16.keras_model.layers}
    assert layers["feat0"] == "mixed_bfloat16"
    assert layers["bicubic"] == layers["hr"] == "float32"  # the skip carries every grey level exactly


@pytest.mark.parametrize("name, side", [("espcn-x2", 160), ("edsr-x2", 96)])
def test_forced_bfloat16_stays_within_one_grey_level_of_float32(astronaut, name, side):
    """uint8 within 1 level; uint16 and float within the same fraction of their range."""
    from napari_superres import upscale

    srm = load_model(name)
    rgb8 = np.ascontiguousarray(astronaut[60 : 60 + side, 180 : 180 + side])
    for data, bound in ((rgb8, 1), (rgb8.astype(np.uint16) * 257, 257), (rgb8 / np.float32(255), 1 / 255)):
        f32 = upscale(data, srm, precision="float32").astype(np.float64)
        bf16 = upscale(data, srm, precision="bfloat16").astype(np.float64)
        diff = np.abs(bf16 - f32)
        assert 0 < diff.max() <= bound + 1e-6, (data.dtype, diff.max())


def test_upscale_reports_its_choice_on_the_log(astronaut, espcn, caplog):
    from napari_superres import upscale

    with caplog.at_level(logging.INFO, logger="napari_superres"):
        upscale(astronaut[:40, :40], espcn, precision="bfloat16")
    assert "espcn-x2: precision bfloat16: requested" in caplog.text


def test_the_cli_prints_its_choice_and_takes_the_override(tmp_path, astronaut, capsys):
    from napari_superres.cli import main
    from napari_superres.io.images import read_image, write_image

    src = tmp_path / "in.png"
    write_image(src, astronaut[:48, :48])
    outputs = {}
    for p in ("float32", "bfloat16"):
        assert main(["upscale", str(src), "-m", "espcn-x2", "-o", str(tmp_path / f"{p}.png"), "--precision", p]) == 0
        assert f"espcn-x2: precision {p}: requested" in capsys.readouterr().out
        outputs[p] = read_image(tmp_path / f"{p}.png")[0].astype(int)
    assert np.abs(outputs["float32"] - outputs["bfloat16"]).max() <= 1
    with pytest.raises(SystemExit) as bad:
        main(["upscale", str(src), "-m", "espcn-x2", "-o", str(tmp_path / "x.png"), "--precision", "half"])
    assert bad.value.code == 2 and "invalid choice: 'half'" in capsys.readouterr().err
