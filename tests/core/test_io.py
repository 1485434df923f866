"""Reading and writing images and stacks: every format round-trips, metadata from other tools is understood,
bad files give one clear line, and a failed write leaves nothing behind."""

import struct
import zlib

import numpy as np
import pytest
import tifffile
from PIL import Image

from napari_superres.errors import InputError, OutputError
from napari_superres.io import images
from napari_superres.io import IMAGE_SUFFIXES, list_images, read_image, write_image


def _rng_image(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.random(shape).astype(dtype)
    return rng.integers(0, np.iinfo(dtype).max, size=shape, endpoint=True).astype(dtype)


def _files(folder):
    return sorted(p.name for p in folder.iterdir())


# ------------------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize(
    "name, shape, dtype",
    [
        ("gray.png", (40, 50), np.uint8),
        ("rgb.png", (40, 50, 3), np.uint8),
        ("rgba.png", (40, 50, 4), np.uint8),
        ("gray16.png", (40, 50), np.uint16),
        ("stack.tif", (3, 40, 50), np.uint16),
        ("rgb.tif", (40, 50, 3), np.uint8),
        ("float.tif", (2, 3, 40, 50), np.float32),
        ("int16.tif", (40, 50), np.int16),
        ("stack.npy", (3, 40, 50), np.float64),
        ("stack.zarr", (3, 40, 50), np.uint16),
        ("rgb.zarr", (40, 50, 3), np.uint8),
    ],
)
def test_lossless_formats_round_trip_exactly(tmp_path, name, shape, dtype):
    data = _rng_image(shape, dtype)
    write_image(tmp_path / name, data)
    back, meta = read_image(tmp_path / name)
    assert back.dtype == data.dtype and back.shape == data.shape
    np.testing.assert_array_equal(back, data)
    assert meta["format"] == name.rsplit(".", 1)[1]


def test_jpeg_round_trip_is_close(tmp_path, astronaut):
    write_image(tmp_path / "a.jpg", astronaut)
    back, meta = read_image(tmp_path / "a.jpg")
    assert back.shape == astronaut.shape and back.dtype == np.uint8 and meta["axes"] == "YXC"
    # quality 95 without chroma subsampling: small, unbiased error
    diff = back.astype(float) - astronaut
    assert np.abs(diff).mean() < 3 and abs(diff.mean()) < 0.5


def test_png_reader_reports_colour_axes(tmp_path, astronaut, camera):
    write_image(tmp_path / "c.png", camera)
    write_image(tmp_path / "a.png", astronaut)
    assert read_image(tmp_path / "c.png")[1]["axes"] == "YX"
    assert read_image(tmp_path / "a.png")[1]["axes"] == "YXC"


def test_palette_and_gray_alpha_pngs_become_rgb_or_rgba(tmp_path, astronaut):
    Image.fromarray(astronaut).convert("P").save(tmp_path / "p.png")
    Image.fromarray(astronaut[..., 0]).convert("LA").save(tmp_path / "la.png")
    assert read_image(tmp_path / "p.png")[0].shape == astronaut.shape
    assert read_image(tmp_path / "la.png")[0].shape == astronaut.shape[:2] + (4,)


def test_tiff_keeps_axes_and_pixel_sizes_through_our_own_files(tmp_path):
    data = _rng_image((4, 30, 40), np.uint16)
    meta = {"axes": "ZYX", "pixel_size": {"Z": 2.0, "Y": 0.5, "X": 0.25}, "unit": "µm"}
    write_image(tmp_path / "s.tif", data, meta=meta)
    _, back = read_image(tmp_path / "s.tif")
    assert back["axes"] == "ZYX"
    assert back["pixel_size"] == {"Z": 2.0, "Y": 0.5, "X": 0.25} and back["unit"] == "µm"
    with tifffile.TiffFile(tmp_path / "s.tif") as tif:  # a standard OME-TIFF that other tools read
        assert tif.is_ome and tif.series[0].axes == "ZYX"


def test_channels_last_non_rgb_tiff_keeps_its_axes(tmp_path):
    data = _rng_image((30, 40, 2), np.float32)
    write_image(tmp_path / "c.tif", data, meta={"axes": "YXC"})
    back, meta = read_image(tmp_path / "c.tif")
    np.testing.assert_array_equal(back, data)
    assert meta["axes"] == "YXC"


def test_imagej_tiff_axes_and_calibration(tmp_path):
    data = _rng_image((5, 20, 30), np.uint16)
    tifffile.imwrite(
        tmp_path / "ij.tif",
        data,
        imagej=True,
        resolution=(1 / 0.2, 1 / 0.2),
        metadata={"axes": "ZYX", "spacing": 1.5, "unit": "um"},
    )
    back, meta = read_image(tmp_path / "ij.tif")
    np.testing.assert_array_equal(back, data)
    assert meta["axes"] == "ZYX" and meta["unit"] == "um"
    assert meta["pixel_size"]["Z"] == 1.5
    assert meta["pixel_size"]["X"] == pytest.approx(0.2) and meta["pixel_size"]["Y"] == pytest.approx(0.2)


def test_plain_tiff_stack_has_no_guessed_axes(tmp_path):
    tifffile.imwrite(tmp_path / "q.tif", _rng_image((5, 20, 30), np.uint16))
    assert "axes" not in read_image(tmp_path / "q.tif")[1]


def test_ome_zarr_from_another_tool_reads_level_zero_with_pixel_sizes(tmp_path):
    import zarr

    # the layout ome-zarr-py writes (NGFF 0.4, Zarr format 2): a pyramid with a scale per level
    root = zarr.open_group(str(tmp_path / "img.zarr"), mode="w", zarr_format=2)
    full = _rng_image((3, 32, 48), np.uint16)
    root.create_array("0", shape=full.shape, dtype=full.dtype, chunks=(1, 16, 16))[...] = full
    root.create_array("1", shape=(3, 16, 24), dtype=full.dtype)[...] = full[:, ::2, ::2]
    axes = [{"name": "z", "type": "space", "unit": "micrometer"}] + [
        {"name": n, "type": "space", "unit": "micrometer"} for n in "yx"
    ]
    root.attrs["multiscales"] = [
        {
            "version": "0.4",
            "axes": axes,
            "datasets": [
                {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [2.0, 0.5, 0.5]}]},
                {"path": "1", "coordinateTransformations": [{"type": "scale", "scale": [2.0, 1.0, 1.0]}]},
            ],
        }
    ]
    back, meta = read_image(tmp_path / "img.zarr")
    np.testing.assert_array_equal(back, full)
    assert meta["axes"] == "ZYX"
    assert meta["pixel_size"] == {"Z": 2.0, "Y": 0.5, "X": 0.5} and meta["unit"] == "µm"


def test_zarr_we_write_is_ome_zarr_with_pixel_sizes(tmp_path):
    import zarr

    data = _rng_image((2, 20, 30), np.uint16)
    write_image(tmp_path / "o.zarr", data, meta={"axes": "ZYX", "pixel_size": {"Y": 0.5, "X": 0.5}, "unit": "µm"})
    ms = zarr.open_group(str(tmp_path / "o.zarr"), mode="r").attrs["ome"]["multiscales"][0]
    assert [a["name"] for a in ms["axes"]] == ["z", "y", "x"]
    assert ms["datasets"][0]["coordinateTransformations"][0]["scale"] == [1.0, 0.5, 0.5]
    _, meta = read_image(tmp_path / "o.zarr")
    assert meta["axes"] == "ZYX" and meta["pixel_size"]["X"] == 0.5


def test_big_stacks_are_written_as_bigtiff(tmp_path, monkeypatch):
    # the real threshold is 2 GB; the decision is the same for a smaller one
    monkeypatch.setattr(images, "BIGTIFF_BYTES", 1000)
    write_image(tmp_path / "big.tif", _rng_image((2, 30, 40), np.uint16))
    write_image(tmp_path / "small.tif", _rng_image((10, 10), np.uint8))
    with tifffile.TiffFile(tmp_path / "big.tif") as big, tifffile.TiffFile(tmp_path / "small.tif") as small:
        assert big.is_bigtiff and not small.is_bigtiff


# ------------------------------------------------------------------------------------------- bad inputs


def _png16_rgb(path, h=4, w=5):
    """A valid 16-bit RGB PNG, built by hand (Pillow cannot write one)."""

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    rows = b"".join(b"\x00" + np.arange(w * 3, dtype=">u2").tobytes() for _ in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)


def _truncated_tiff(path):
    tifffile.imwrite(path, _rng_image((4, 64, 64), np.uint16))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _truncated_png(path):
    Image.fromarray(_rng_image((64, 64, 3), np.uint8)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(
    "name, make, expected",
    [
        ("missing.png", None, "input not found"),
        ("empty.png", lambda p: p.write_bytes(b""), "empty file"),
        ("garbage.png", lambda p: p.write_bytes(b"not an image at all" * 10), "cannot read"),
        ("garbage.jpg", lambda p: p.write_bytes(b"\xff\xd8\xff" + b"\x00" * 50), "cannot read"),
        ("truncated.png", _truncated_png, "cannot read"),
        ("truncated.tif", _truncated_tiff, "cannot read"),
        ("garbage.tif", lambda p: p.write_bytes(b"II*\x00" + b"\x07" * 100), "cannot read"),
        ("objects.npy", lambda p: np.save(p, np.array([{"a": 1}], dtype=object)), "Python objects"),
        ("garbage.npy", lambda p: p.write_bytes(b"\x93NUMPY garbage" * 5), "cannot read"),
        ("notes.txt", lambda p: p.write_text("hello"), "unsupported image format"),
        ("deep16.png", _png16_rgb, "16-bit colour PNG"),
        ("folder.png", lambda p: p.mkdir(), "found a folder"),
        ("nozarr.zarr", lambda p: p.write_text("x"), "not a Zarr folder"),
        ("empty.zarr", lambda p: p.mkdir(), "cannot"),
    ],
)
def test_bad_inputs_give_one_line_naming_the_file(tmp_path, name, make, expected):
    path = tmp_path / name
    if make is not None:
        make(path)
    with pytest.raises(InputError) as info:
        read_image(path)
    message = str(info.value)
    assert expected in message and name in message and "\n" not in message


def test_corrupt_tiff_prints_nothing_besides_the_error(tmp_path, capfd):
    _truncated_tiff(tmp_path / "t.tif")
    with pytest.raises(InputError):
        read_image(tmp_path / "t.tif")
    out, err = capfd.readouterr()
    assert out == "" and err == ""


# ------------------------------------------------------------------------------------------- writing


def test_existing_output_is_refused_and_kept(tmp_path):
    target = tmp_path / "out.png"
    write_image(target, np.zeros((8, 8), np.uint8))
    before = target.read_bytes()
    with pytest.raises(OutputError, match="exists"):
        write_image(target, np.full((8, 8), 255, np.uint8))
    assert target.read_bytes() == before
    write_image(target, np.full((8, 8), 255, np.uint8), overwrite=True)
    assert read_image(target)[0].min() == 255
    assert _files(tmp_path) == ["out.png"]


def test_existing_zarr_is_replaced_whole_with_overwrite(tmp_path):
    write_image(tmp_path / "z.zarr", _rng_image((4, 20, 20), np.uint8))
    new = _rng_image((2, 10, 10), np.uint8, seed=3)
    write_image(tmp_path / "z.zarr", new, overwrite=True)
    np.testing.assert_array_equal(read_image(tmp_path / "z.zarr")[0], new)
    assert _files(tmp_path) == ["z.zarr"]


@pytest.mark.parametrize(
    "name, shape, dtype, expected",
    [
        ("stack.png", (3, 20, 20), np.uint8, "PNG holds only"),
        ("float.png", (20, 20), np.float32, "PNG holds only"),
        ("rgb16.png", (20, 20, 3), np.uint16, "PNG holds only"),
        ("rgba.jpg", (20, 20, 4), np.uint8, "JPG holds only"),
        ("gray16.jpg", (20, 20), np.uint16, "JPG holds only"),
        ("long.jpg", (8, 70000), np.uint8, "at most 65535 pixels"),
        ("out.bmp", (20, 20), np.uint8, "unsupported output format"),
        ("noext", (20, 20), np.uint8, "unsupported output format"),
        ("empty.tif", (0, 20), np.uint8, "empty"),
        ("mask.tif", (20, 20), np.bool_, "cannot write bool"),
    ],
)
def test_formats_refuse_what_they_cannot_hold_and_write_nothing(tmp_path, name, shape, dtype, expected):
    with pytest.raises(OutputError, match=expected):
        write_image(tmp_path / name, np.zeros(shape, dtype))
    assert _files(tmp_path) == []


def test_missing_and_unwritable_folders(tmp_path):
    with pytest.raises(OutputError, match="does not exist"):
        write_image(tmp_path / "nope" / "a.tif", np.zeros((4, 4), np.uint8))
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="not a folder"):
        write_image(tmp_path / "file" / "a.tif", np.zeros((4, 4), np.uint8))
    # /sys refuses new files even for root, for whom a read-only permission bit means nothing
    with pytest.raises(OutputError, match="not writable"):
        write_image("/sys/a.tif", np.zeros((4, 4), np.uint8))


def test_a_failed_write_leaves_neither_output_nor_temporary(tmp_path, monkeypatch):
    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "save", disk_full)
    with pytest.raises(OutputError, match="No space left"):
        write_image(tmp_path / "a.npy", np.zeros((4, 4), np.uint8))
    assert _files(tmp_path) == []


def test_written_files_get_the_usual_permissions(tmp_path):
    write_image(tmp_path / "a.png", np.zeros((4, 4), np.uint8))
    mode = (tmp_path / "a.png").stat().st_mode & 0o777
    assert mode & 0o044  # readable by others (umask permitting), not owner-only as temporary files are


# ------------------------------------------------------------------------------------------- folders


def test_list_images_sorted_filtered_and_without_temporaries(tmp_path):
    for name in ("b.png", "a.TIF", "c.npy", "notes.txt", ".a.png.xyz.part", "d.jpeg"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "e.zarr").mkdir()
    (tmp_path / "sub").mkdir()
    assert [p.name for p in list_images(tmp_path)] == ["a.TIF", "b.png", "c.npy", "d.jpeg", "e.zarr"]
    assert set(IMAGE_SUFFIXES) >= {".tif", ".tiff", ".png", ".jpg", ".jpeg", ".npy", ".zarr"}
    with pytest.raises(InputError, match="not a folder"):
        list_images(tmp_path / "b.png")
