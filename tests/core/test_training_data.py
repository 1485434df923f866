"""Training data from folders (no Keras): pairing, checks with clear messages, split, degradations, patches."""

import numpy as np
import pytest
import tifffile
from PIL import Image
from skimage import data

from napari_superres.errors import InputError
from napari_superres.training import folders, metrics
from napari_superres.training.degrade import Degradation, degrade, margin
from napari_superres.training.folders import load_folder
from napari_superres.training.patches import ImageCache, PatchSampler


def _png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


@pytest.fixture
def photos(tmp_path):
    root = tmp_path / "photos"
    _png(root / "chelsea.png", data.chelsea()[:120, :160])
    _png(root / "coffee.png", data.coffee()[:100, :150])
    _png(root / "astronaut.png", data.astronaut()[:128, :128])
    return root


def test_hr_only_folder_lists_images_and_names_what_it_skips(photos):
    (photos / "notes.txt").write_text("not an image")
    ds = load_folder(photos, scale=2)
    assert not ds.paired and ds.n_images == 3 and ds.channels == {3} and ds.dtypes == ["uint8"]
    assert ds.skipped == ["notes.txt"]
    summary = folders.summarize(photos)
    assert summary["ok"] and summary["mode"] == "hr-only" and summary["files"] == 3
    assert summary["min_size"] == [128, 100] and summary["skipped"] == ["notes.txt"]


def test_empty_folder_and_missing_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no images in"):
        load_folder(tmp_path / "empty", scale=2)
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "a.txt").write_text("x")
    with pytest.raises(InputError, match=r"no images in .*found only: a\.txt"):
        load_folder(tmp_path / "text", scale=2)
    with pytest.raises(InputError, match="not found"):
        load_folder(tmp_path / "nowhere", scale=2)
    assert folders.summarize(tmp_path / "empty")["ok"] is False


def test_corrupt_files_are_all_named(photos):
    (photos / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    (photos / "empty.tif").write_bytes(b"")
    with pytest.raises(InputError) as e:
        load_folder(photos, scale=2)
    msg = str(e.value)
    assert "2 file(s)" in msg and "broken.png" in msg and "empty.tif" in msg and "\n" not in msg


def test_nan_in_float_image_is_refused(tmp_path):
    img = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    img[3, 3] = np.nan
    tifffile.imwrite(tmp_path / "nan.tif", img)
    with pytest.raises(InputError, match="nan.tif: contains NaN"):
        load_folder(tmp_path, scale=2)


def test_pairs_matched_by_name_with_div2k_suffixes(tmp_path):
    hr = data.chelsea()[:120, :160]
    for name in ("a", "b"):
        _png(tmp_path / "HR" / f"{name}.png", hr)
        _png(tmp_path / "LR" / f"{name}x2.png", metrics.bicubic_downscale(hr, 2))
    ds = load_folder(tmp_path, scale=2)
    assert ds.paired and [it.name for it in ds.items] == ["a.png", "b.png"]
    assert all(it.lr.name == f"{it.hr.path.stem}x2.png" for it in ds.items)


def test_unmatched_pairs_are_listed(tmp_path):
    hr = data.chelsea()[:120, :160]
    _png(tmp_path / "hr" / "a.png", hr)
    _png(tmp_path / "hr" / "extra.png", hr)
    _png(tmp_path / "lr" / "a.png", metrics.bicubic_downscale(hr, 2))
    _png(tmp_path / "lr" / "spare.png", metrics.bicubic_downscale(hr, 2))
    with pytest.raises(InputError, match=r"without an LR partner: extra\.png.*without an HR partner: spare\.png"):
        load_folder(tmp_path, scale=2)
    # name suffixes of the DIV2K/BasicSR kind pair up: x_hr.png with x_lr.png
    (tmp_path / "hr" / "extra.png").rename(tmp_path / "hr" / "spare_hr.png")
    (tmp_path / "lr" / "spare.png").rename(tmp_path / "lr" / "spare_lr.png")
    assert len(load_folder(tmp_path, scale=2).items) == 2


def test_pair_size_ratio_checked_for_every_pair(tmp_path):
    hr = data.chelsea()[:120, :160]
    _png(tmp_path / "high" / "good.png", hr)
    _png(tmp_path / "low" / "good.png", metrics.bicubic_downscale(hr, 2))
    _png(tmp_path / "high" / "bad.png", hr)
    _png(tmp_path / "low" / "bad.png", metrics.bicubic_downscale(hr, 3))
    with pytest.raises(InputError, match=r"1 LR/HR pair\(s\) do not fit scale x2: bad\.png .*needs HR 106x80"):
        load_folder(tmp_path, scale=2)
    assert load_folder(tmp_path / "high", scale=2).n_images == 2  # the HR folder alone is fine
    with pytest.raises(InputError, match="paired training needs"):
        load_folder(tmp_path / "high", scale=2, hr_only=False)


def test_hr_only_mode_on_a_paired_folder_uses_its_hr_images(tmp_path):
    hr = data.chelsea()[:120, :160]
    _png(tmp_path / "hr" / "a.png", hr)
    _png(tmp_path / "lr" / "a.png", metrics.bicubic_downscale(hr, 2))
    ds = load_folder(tmp_path, scale=2, hr_only=True)
    assert not ds.paired and ds.items[0].hr.path.parent.name == "hr"


def test_mixed_channel_counts_and_luminance(photos):
    _png(photos / "camera.png", data.camera()[:100, :100])
    ds = load_folder(photos, scale=2)
    with pytest.raises(InputError, match=r"mixed channel counts: 3 RGB .* and 1 gray \(camera\.png\)"):
        folders.resolve_channels(ds)
    assert folders.resolve_channels(ds, 1) == 1  # gray model: RGB images train on their luminance
    with pytest.raises(InputError, match="3-channel .* needs RGB images; these are gray: camera.png"):
        folders.resolve_channels(ds, 3)


def test_images_smaller_than_the_patch_are_listed(photos):
    ds = load_folder(photos, scale=2)
    folders.check_patch(ds, 96, 2)
    with pytest.raises(InputError, match=r"2 image\(s\) smaller than the patch of 128 pixels: chelsea\.png \(160x120"):
        folders.check_patch(ds, 128, 2)


def test_stacks_are_slices_and_multichannel_is_split(tmp_path):
    stack = (np.random.default_rng(0).random((5, 40, 50)) * 4000).astype(np.uint16)
    tifffile.imwrite(tmp_path / "zstack.tif", stack, imagej=True, metadata={"axes": "ZYX"})
    two = np.zeros((2, 40, 50), np.uint16)
    tifffile.imwrite(tmp_path / "twochannel.tif", two, imagej=True, metadata={"axes": "CYX"})
    ds = load_folder(tmp_path, scale=2)
    by = {it.name: it.hr for it in ds.items}
    assert by["zstack.tif"].slices == 5 and by["zstack.tif"].channels == 1
    assert by["twochannel.tif"].slices == 2 and by["twochannel.tif"].channels == 1
    assert ds.n_images == 7 and folders.choose_normalization(ds) == dict(folders.PERCENTILES)
    rgba = np.zeros((10, 12, 4), np.uint8)
    assert folders.to_slices(rgba).shape == (1, 10, 12, 3)


def test_validation_split_is_by_file_and_reproducible(tmp_path):
    for i in range(10):
        _png(tmp_path / f"img{i}.png", data.camera()[i * 10 : i * 10 + 64, :64])
    ds = load_folder(tmp_path, scale=2)
    train, val = folders.split(ds, 0.2, seed=3)
    assert len(val) == 2 and len(train) == 8
    assert not {it.name for it in train} & {it.name for it in val}
    assert [it.name for it in folders.split(ds, 0.2, seed=3)[1]] == [it.name for it in val]
    assert folders.split(ds, 0.0, seed=3) == (ds.items, [])


def test_single_stack_is_split_by_slice_block(tmp_path):
    tifffile.imwrite(tmp_path / "s.tif", np.zeros((10, 32, 32), np.uint16), imagej=True, metadata={"axes": "ZYX"})
    ds = load_folder(tmp_path, scale=2)
    train, val = folders.split(ds, 0.2, seed=0)
    assert train[0].slices == tuple(range(8)) and val[0].slices == (8, 9)


@pytest.mark.parametrize("kind,blur", [("bicubic", 0.0), ("area", 0.0), ("bicubic", 1.2)])
def test_patch_with_margin_equals_the_whole_degraded_image(kind, blur):
    """The LR of a patch (degraded with its margin of context) is the same region of the whole image's LR."""
    img = data.astronaut()[:200, :200].astype(np.float32) / 255
    deg = Degradation(2, kind, blur=blur)
    m = margin(deg)
    assert m % 2 == 0
    whole = degrade(img, deg, np.random.default_rng(0))
    y, x, p = 60, 80, 48
    window = img[y - m : y + p + m, x - m : x + p + m]
    lr = degrade(window, deg, np.random.default_rng(0))[m // 2 : m // 2 + p // 2, m // 2 : m // 2 + p // 2]
    assert np.abs(lr - whole[y // 2 : (y + p) // 2, x // 2 : (x + p) // 2]).max() < 2e-3


def test_noise_and_jpeg_degradations_change_the_lr_by_the_expected_amount():
    img = np.full((64, 64, 1), 0.5, np.float32)
    rng = np.random.default_rng(0)
    clean = degrade(img, Degradation(2), rng)
    noisy = degrade(img, Degradation(2, noise=0.1), rng)
    assert noisy.shape == clean.shape == (32, 32, 1)
    assert 0.0 < (noisy - clean).std() <= 0.1
    shot = degrade(img, Degradation(2, poisson=50), rng)
    assert (shot - clean).std() == pytest.approx(np.sqrt(0.5 * 50) / 50, rel=0.3)
    photo = data.astronaut()[:64, :64].astype(np.float32) / 255
    jpg = degrade(photo, Degradation(2, jpeg=10), rng)
    assert 0.005 < np.abs(jpg - degrade(photo, Degradation(2), rng)).mean() < 0.1


def test_sampler_makes_aligned_augmented_patch_pairs(photos):
    ds = load_folder(photos, scale=2)
    cache = ImageCache({"mode": "range"}, 3, max_bytes=300_000)
    sampler = PatchSampler(ds.items, cache, scale=2, hr_patch=48, degradation=Degradation(2), paired=False)
    lr, hr = sampler.batch(np.random.default_rng(0), 6)
    assert lr.shape == (6, 24, 24, 3) and hr.shape == (6, 48, 48, 3) and lr.dtype == np.float32
    assert 0.0 <= hr.min() and hr.max() <= 1.0
    for a, b in zip(lr, hr):
        # away from its border the LR is the bicubic reduction of the HR patch (same flip/turn for both)
        assert np.abs(metrics.bicubic_downscale(b, 2) - a)[3:-3, 3:-3].max() < 1e-5
    assert len(cache._data) <= 2  # the cache holds what fits, not the folder
    again = sampler.batch(np.random.default_rng(0), 6)
    assert np.array_equal(again[0], lr) and np.array_equal(again[1], hr)


def test_paired_sampler_takes_the_same_region(tmp_path):
    hr = data.chelsea()[:120, :160]
    _png(tmp_path / "hr" / "a.png", hr)
    _png(tmp_path / "lr" / "a.png", metrics.bicubic_downscale(hr, 2))
    ds = load_folder(tmp_path, scale=2)
    sampler = PatchSampler(ds.items, ImageCache({"mode": "range"}, 3), scale=2, hr_patch=32,
                           degradation=Degradation(2), paired=True, augment=False)
    lr, hrp = sampler.batch(np.random.default_rng(1), 4)
    for a, b in zip(lr, hrp):
        assert np.abs(metrics.bicubic_downscale((b * 255).round().astype(np.uint8), 2)[2:-2, 2:-2] / 255
                      - a[2:-2, 2:-2]).max() <= 3 / 255
