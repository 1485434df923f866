"""Every shipped model loads safely and beats bicubic on data of its domain it never saw (a photo; noisy
fluorescence through a camera); its card and the models table state the figures stored in the model itself."""

import re
from pathlib import Path

import numpy as np
import pytest

from napari_superres.models.catalog import DEFAULT_MODEL, list_models, model_domain

REPO = Path(__file__).resolve().parents[2]
SHIPPED = [m for m in list_models() if m.source == "shipped"]
IDS = [m.name for m in SHIPPED]
PHOTO = [m for m in SHIPPED if model_domain(m.description) == "photo"]
MICROSCOPY = [m for m in SHIPPED if model_domain(m.description) == "microscopy"]


@pytest.fixture(scope="module")
def photo():
    """A 192x192 crop of scikit-image's astronaut (face, hair, flag, suit): detail at every scale."""
    from skimage import data

    return data.astronaut()[24:216, 152:344]


def test_the_default_model_is_shipped():
    assert DEFAULT_MODEL in IDS, f"the default model {DEFAULT_MODEL} is not among the shipped ones: {IDS}"


def test_every_shipped_model_has_a_domain():
    assert {m.name for m in PHOTO + MICROSCOPY} == set(IDS)
    assert MICROSCOPY, "no shipped microscopy model"


@pytest.mark.parametrize("info", PHOTO, ids=[m.name for m in PHOTO])
def test_shipped_model_beats_bicubic_on_a_photo(info, photo):
    from napari_superres.engine.api import upscale
    from napari_superres.models.loading import load_model
    from napari_superres.training.metrics import bicubic_downscale, bicubic_upscale, modcrop, psnr

    srm = load_model(info.name)  # safe_mode=True: no unsafe code in any shipped file
    desc = info.description
    assert (srm.scale, srm.channels) == (desc["scale"], desc["channels"])
    assert f"x{srm.scale}" in info.name
    assert srm.keras_model.count_params() == desc["parameters"]

    hr = modcrop(photo, srm.scale)
    lr = bicubic_downscale(hr, srm.scale)
    sr = upscale(lr, srm)
    assert sr.shape == hr.shape and sr.dtype == np.uint8
    model_db, bicubic_db = psnr(hr, sr, scale=srm.scale), psnr(hr, bicubic_upscale(lr, srm.scale), scale=srm.scale)
    assert model_db > bicubic_db, f"{info.name}: PSNR-Y {model_db:.2f} dB is not above bicubic {bicubic_db:.2f} dB"


@pytest.mark.parametrize("info", MICROSCOPY, ids=[m.name for m in MICROSCOPY])
def test_shipped_microscopy_model_beats_bicubic_on_noisy_fluorescence(info):
    """Simulated fluorescence (a seed training never drew) through a camera at 100 photons: the model, through the
    engine with its percentile normalisation, scores above bicubic, in the background too."""
    from napari_superres.models.loading import load_model
    from napari_superres.training.fluorescence import simulate_hr
    from napari_superres.training.validation import microscopy_scores

    srm = load_model(info.name)
    assert srm.channels == 1 and srm.normalization["mode"] == "percentile"
    field = simulate_hr((256, 256), np.random.default_rng(2**31 - 7))
    mean = microscopy_scores(srm, [("simulated", field)], photons=100.0)["mean"]
    assert mean["psnr"] > mean["bicubic_psnr"], (info.name, mean)
    if "background_psnr" in mean:
        assert mean["background_psnr"] > mean["background_bicubic_psnr"], (info.name, mean)


@pytest.mark.parametrize("info", SHIPPED, ids=IDS)
def test_shipped_model_has_a_card_with_its_own_figures(info):
    val = info.description["validation"]
    keys = ("psnr", "ssim", "bicubic_psnr", "bicubic_ssim") + (
        ("lanczos_psnr", "lanczos_ssim") if info in PHOTO else ())
    for key in keys:
        assert isinstance(val[key], float), key
    assert info.card is not None, f"no model card {info.path.with_suffix('.md').name} (run bench/make_cards.py)"
    card = info.card.read_text()
    # the card is regenerated whenever the weights change: it quotes the file's own validation scores
    for key in [k for k in keys if k.endswith("psnr")]:
        assert f"{val[key]:.2f}" in card, f"{info.card.name} does not quote {key} = {val[key]:.2f} of the model"
    assert f"{info.description['parameters']:,}" in card
    assert "MP/s" in card, "the card states the model's speed"


def test_models_table_lists_every_shipped_model():
    table = (REPO / "docs" / "models.md").read_text()
    for info in SHIPPED:
        row = next((line for line in table.splitlines() if re.match(rf"\|\s*\[?`?{re.escape(info.name)}\b", line)),
                   None)
        assert row, f"docs/models.md has no row for {info.name}"
        assert f"{info.description['validation']['psnr']:.2f}" in row


def test_training_leaves_out_the_bench_held_out_photos(tmp_path, monkeypatch):
    """The benchmark's default quality set is exactly the photos that training (CPU and GPU) leaves out."""
    from PIL import Image

    from napari_superres.benchmark import HELD_OUT

    monkeypatch.syspath_prepend(str(REPO / "scripts"))
    import zoo_data

    for name in HELD_OUT + ("train_a.png", "train_b.png"):
        Image.fromarray(np.full((8, 8, 3), len(name), np.uint8)).save(tmp_path / name)
    train, val = zoo_data.load_corpus(tmp_path)
    assert [name for name, _ in val] == list(HELD_OUT)
    assert len(train) == 2 and all(img[0, 0, 0] == len("train_a.png") for img in train)


def test_extra_corpus_trains_but_never_on_a_copy_of_a_held_out_photo(tmp_path, monkeypatch):
    """Photos of the extra corpus join training, except a near-copy of a held-out photo (resized, re-encoded,
    brighter), which stays out; distinct photos are not mistaken for copies."""
    from PIL import Image
    from skimage import data

    from napari_superres.benchmark import HELD_OUT

    monkeypatch.syspath_prepend(str(REPO / "scripts"))
    import zoo_data

    main, extra = tmp_path / "main", tmp_path / "extra"
    main.mkdir()
    extra.mkdir()
    held = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()][: len(HELD_OUT)]
    for name, img in zip(HELD_OUT, held):
        Image.fromarray(img).save(main / name)
    Image.fromarray(data.immunohistochemistry()).save(main / "train_a.png")
    copy = Image.fromarray(held[-1]).resize((held[-1].shape[1] // 2, held[-1].shape[0] // 2), Image.BICUBIC)
    Image.fromarray(np.clip(np.asarray(copy) * 1.15 + 8, 0, 255).astype(np.uint8)).save(extra / "copy.jpg.png")
    Image.fromarray(data.retina()[..., :3]).save(extra / "other.png")
    train, val = zoo_data.load_corpus(main, extra)
    assert len(val) == len(HELD_OUT)
    assert [img.shape for img in train] == [data.immunohistochemistry().shape, data.retina()[..., :3].shape]
    assert len(zoo_data.load_corpus(main)[0]) == 1
