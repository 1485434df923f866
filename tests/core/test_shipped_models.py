"""Every shipped model loads safely and beats bicubic on a photo it never saw; its card and the models table
state the figures stored in the model itself."""

import ast
import re
from pathlib import Path

import numpy as np
import pytest

from napari_superres.models.catalog import DEFAULT_MODEL, list_models

REPO = Path(__file__).resolve().parents[2]
SHIPPED = [m for m in list_models() if m.source == "shipped"]
IDS = [m.name for m in SHIPPED]


@pytest.fixture(scope="module")
def photo():
    """A 192x192 crop of scikit-image's astronaut (face, hair, flag, suit): detail at every scale."""
    from skimage import data

    return data.astronaut()[24:216, 152:344]


def test_the_default_model_is_shipped():
    assert DEFAULT_MODEL in IDS, f"the default model {DEFAULT_MODEL} is not among the shipped ones: {IDS}"


@pytest.mark.parametrize("info", SHIPPED, ids=IDS)
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


@pytest.mark.parametrize("info", SHIPPED, ids=IDS)
def test_shipped_model_has_a_card_with_its_own_figures(info):
    val = info.description["validation"]
    for key in ("psnr", "ssim", "bicubic_psnr", "bicubic_ssim", "lanczos_psnr", "lanczos_ssim"):
        assert isinstance(val[key], float), key
    assert info.card is not None, f"no model card {info.path.with_suffix('.md').name} (run bench/make_cards.py)"
    card = info.card.read_text()
    # the card is regenerated whenever the weights change: it quotes the file's own validation scores
    for key in ("psnr", "bicubic_psnr", "lanczos_psnr"):
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


def test_bench_held_out_photos_are_the_training_scripts():
    """The benchmark's default quality set must be exactly the photos that training left out."""
    from napari_superres.benchmark import HELD_OUT

    tree = ast.parse((REPO / "scripts" / "train_zoo.py").read_text())
    held = next(ast.literal_eval(node.value) for node in ast.walk(tree)
                if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "VALIDATION" for t in node.targets))
    assert tuple(held) == HELD_OUT
