"""GeoTIFF scenes keep their place on the map: georeferencing read and rewritten for the new pixel size (area and
point rasters, tiepoint or transformation), nodata kept without bleeding, bands each or as RGB, tiled and
out-of-core outputs. Scenes are written here with tifffile's own GeoTIFF tags; the outputs are read back with
tifffile's GeoKey decoder, and their corners are computed from the GeoTIFF definition, not from our code."""

import numpy as np
import pytest
import tifffile

from napari_superres.cli import main
from napari_superres.engine.files import upscale_path
from napari_superres.io import read_image

UTM33N = 32633
STATS_XML = (
    '<GDALMetadata><Item name="STATISTICS_MEAN" sample="0">2000</Item>'
    '<Item name="DESCRIPTION" sample="0" role="description">blue</Item></GDALMetadata>'
)


def geokeys(raster_type):
    # version 1.1.0, 4 keys: model type projected, raster type, citation (in the ASCII params), projected CRS
    return (1, 1, 0, 4, 1024, 0, 1, 1, 1025, 0, 1, raster_type, 1026, 34737, 7, 0, 3072, 0, 1, UTM33N)


def write_scene(path, data, *, raster_type=1, mapping="tiepoint", nodata=None, planar="separate", metadata=None,
                photometric="minisblack"):
    tags = [(34735, "H", 20, geokeys(raster_type), True), (34737, "s", 0, "UTM 33|", True)]
    if mapping == "tiepoint":
        tags += [(33550, "d", 3, (30.0, 30.0, 0.0), True), (33922, "d", 6, (0, 0, 0, 500010.0, 4499990.0, 0), True)]
    else:  # a rotated grid: only a transformation can say that
        m = (24.0, 18.0, 0, 500010.0, 18.0, -24.0, 0, 4499990.0, 0, 0, 0, 0, 0, 0, 0, 1)
        tags += [(34264, "d", 16, m, True)]
    if nodata is not None:
        tags.append((42113, "s", 0, str(nodata), True))
    if metadata:
        tags.append((42112, "s", 0, metadata, True))
    kw = {"planarconfig": planar} if data.ndim == 3 else {}
    tifffile.imwrite(path, data, photometric=photometric, extratags=tags, **kw)
    return path


class PageInfo:
    """What a test checks of a file's first page, read while the file is open."""

    def __init__(self, tif):
        page = tif.pages.first
        self.shape, self.dtype, self.planarconfig = page.shape, page.dtype, page.planarconfig
        self.is_tiled, self.tilewidth, self.is_bigtiff = page.is_tiled, page.tilewidth, tif.is_bigtiff
        self.tags = {code: page.tags[code].value for code in (42112, 42113) if code in page.tags}


def geo_of(path):
    with tifffile.TiffFile(path) as tif:
        return tif.pages.first.geotiff_tags, PageInfo(tif)


def corners(geo, height, width):
    """Map coordinates of the raster's four outer corners, from the GeoTIFF definition."""
    c = 0.5 if int(geo["GTRasterTypeGeoKey"]) == 2 else 0.0  # PixelIsPoint: raster (0, 0) is a pixel centre
    pts = np.array([(-c, -c), (width - c, -c), (-c, height - c), (width - c, height - c)])
    if "ModelTransformation" in geo:
        m = np.array(geo["ModelTransformation"], float).reshape(4, 4)
        return np.array([(m @ [i, j, 0, 1])[:2] for i, j in pts])
    i0, j0, _, x0, y0, _ = geo["ModelTiepoint"][:6]
    sx, sy = geo["ModelPixelScale"][:2]
    return np.array([(x0 + (i - i0) * sx, y0 - (j - j0) * sy) for i, j in pts])


def centre(geo, row, col):
    return corners_at(geo, row + 0.5, col + 0.5)


def corners_at(geo, row, col):
    """Map coordinates of the area-convention raster point (row, col)."""
    c = 0.5 if int(geo["GTRasterTypeGeoKey"]) == 2 else 0.0
    i, j = col - c, row - c
    if "ModelTransformation" in geo:
        m = np.array(geo["ModelTransformation"], float).reshape(4, 4)
        return (m @ [i, j, 0, 1])[:2]
    i0, j0, _, x0, y0, _ = geo["ModelTiepoint"][:6]
    sx, sy = geo["ModelPixelScale"][:2]
    return np.array([x0 + (i - i0) * sx, y0 - (j - j0) * sy])


def nearest_x2(a, y, x):
    return np.repeat(np.repeat(a, 2, axis=y), 2, axis=x)


@pytest.fixture
def bands4():
    rng = np.random.default_rng(3)
    return rng.integers(1000, 4000, size=(4, 37, 45)).astype(np.uint16)


# ------------------------------------------------------------------------------------------- georeferencing


@pytest.mark.parametrize("raster_type", [1, 2], ids=["PixelIsArea", "PixelIsPoint"])
@pytest.mark.parametrize("mapping", ["tiepoint", "transformation"])
def test_output_lies_exactly_over_the_input_on_the_map(tmp_path, bands4, nearest_gray, raster_type, mapping):
    src = write_scene(tmp_path / "scene.tif", bands4, raster_type=raster_type, mapping=mapping, metadata=STATS_XML)
    dst = upscale_path(src, tmp_path / "scene_x2.tif", nearest_gray)

    geo_in, page_in = geo_of(src)
    geo_out, page_out = geo_of(dst)
    assert page_out.shape == (4, 74, 90) and page_out.planarconfig == page_in.planarconfig  # bands stay planar
    np.testing.assert_allclose(corners(geo_out, 74, 90), corners(geo_in, 37, 45), rtol=0, atol=1e-9)
    # each input pixel's centre is the centre of the 2 x 2 output pixels it became
    for r, c in [(0, 0), (36, 44), (10, 20)]:
        block = [centre(geo_out, 2 * r + dr, 2 * c + dc) for dr in (0, 1) for dc in (0, 1)]
        np.testing.assert_allclose(np.mean(block, axis=0), centre(geo_in, r, c), rtol=0, atol=1e-9)
    # the CRS and everything else about the scene carried over as it was
    for key in ("GTModelTypeGeoKey", "GTRasterTypeGeoKey", "GTCitationGeoKey", "ProjectedCSTypeGeoKey"):
        assert geo_out[key] == geo_in[key]
    if mapping == "tiepoint":
        assert geo_out["ModelPixelScale"][:2] == [15.0, 15.0]
    out_meta = page_out.tags[42112]
    assert "STATISTICS_MEAN" not in out_meta and "blue" in out_meta  # stale statistics dropped, the rest kept
    np.testing.assert_array_equal(tifffile.imread(dst), nearest_x2(bands4, 1, 2))


def test_the_cli_keeps_the_georeferencing_of_a_4_band_uint16_scene(tmp_path, bands4, capsys):
    """The issue's case: `upscale scene.tif -m MODEL -o scene_x2.tif --axes CYX` used to drop every geo tag."""
    import keras

    inp = keras.Input((None, None, 1))
    model_path = tmp_path / "nearest_x2.keras"
    keras.Model(inp, keras.layers.UpSampling2D(2)(inp)).save(model_path)
    src = write_scene(tmp_path / "scene.tif", bands4, nodata=0)
    rc = main(["upscale", str(src), "-m", str(model_path), "-o", str(tmp_path / "scene_x2.tif"), "--axes", "CYX", "-q"])
    assert rc == 0, capsys.readouterr().err
    geo_in, _ = geo_of(src)
    geo_out, page = geo_of(tmp_path / "scene_x2.tif")
    assert page.dtype == np.uint16 and page.shape == (4, 74, 90)
    np.testing.assert_allclose(corners(geo_out, 74, 90), corners(geo_in, 37, 45), rtol=0, atol=1e-9)
    assert geo_out["ProjectedCSTypeGeoKey"] == geo_in["ProjectedCSTypeGeoKey"]
    assert page.tags[42113] == "0"
    # out of core (--chunk), the same file
    rc = main(["upscale", str(src), "-m", str(model_path), "-o", str(tmp_path / "ooc.tif"), "--chunk", "32", "-q"])
    assert rc == 0, capsys.readouterr().err
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "ooc.tif"), tifffile.imread(tmp_path / "scene_x2.tif"))
    assert geo_of(tmp_path / "ooc.tif")[0] == geo_out


# ------------------------------------------------------------------------------------------- nodata


def _scene_with_hole(dtype=np.int16, nodata=-9999):
    y, x = np.mgrid[0:48, 0:56]
    data = (2000 + 600 * np.sin(x / 5.0) + 400 * np.cos(y / 4.0)).astype(dtype)
    data[16:30, 20:34] = nodata
    data[:, :4] = nodata  # a nodata edge, as outside a scene's footprint
    return data


def test_nodata_stays_nodata_and_does_not_bleed_into_its_neighbours(tmp_path, gray_model):
    from napari_superres.engine.api import upscale

    data = _scene_with_hole()
    src = write_scene(tmp_path / "dem.tif", data, nodata=-9999)
    out = tifffile.imread(upscale_path(src, tmp_path / "dem_x2.tif", gray_model))

    hole = nearest_x2(data == -9999, 0, 1)
    assert (out[hole] == -9999).all()  # every output pixel over input nodata is nodata...
    assert not (out[~hole] == -9999).any()  # ...and no other
    valid = data[data != -9999]
    near = out[~hole]
    # valid pixels next to the hole stay within the data's range (a -9999 fed to the model would pull them down)
    assert near.min() >= valid.min() - 200 and near.max() <= valid.max() + 200
    raw = upscale(data, gray_model)  # the control: nodata fed to the model as a value
    assert raw[~hole].min() < valid.min() - 200


def test_nan_nodata_in_a_float_scene(tmp_path, gray_model):
    data = _scene_with_hole(np.float32, np.nan) / np.float32(4000)
    src = write_scene(tmp_path / "refl.tif", data, nodata="nan")
    out = tifffile.imread(upscale_path(src, tmp_path / "refl_x2.tif", gray_model))
    hole = nearest_x2(np.isnan(data), 0, 1)
    assert np.isnan(out[hole]).all() and np.isfinite(out[~hole]).all()


# ------------------------------------------------------------------------------------------- bands


@pytest.fixture(scope="module")
def swap_rb(tmp_path_factory):
    """Nearest x2, then output R = input B and B = R: shows which bands went through together as colours."""
    import keras

    from napari_superres.models.loading import load_model

    inp = keras.Input((None, None, 3))
    conv = keras.layers.Conv2D(3, 1, use_bias=False)
    model = keras.Model(inp, conv(keras.layers.UpSampling2D(2)(inp)))
    swap = np.zeros((1, 1, 3, 3), np.float32)
    swap[0, 0, 2, 0] = swap[0, 0, 1, 1] = swap[0, 0, 0, 2] = 1
    conv.set_weights([swap])
    return load_model(model)


def test_bands_each_on_their_own_by_default(tmp_path, bands4, swap_rb):
    src = write_scene(tmp_path / "scene.tif", bands4)
    out = tifffile.imread(upscale_path(src, tmp_path / "each.tif", swap_rb))
    np.testing.assert_array_equal(out, nearest_x2(bands4, 1, 2))  # a gray band fed as 3 equal channels: no mixing


def test_bands_as_rgb_when_the_user_names_them(tmp_path, bands4, swap_rb):
    src = write_scene(tmp_path / "scene.tif", bands4)
    out = tifffile.imread(upscale_path(src, tmp_path / "rgb.tif", swap_rb, bands=(2, 1, 0)))  # --bands 3,2,1
    up = nearest_x2(bands4, 1, 2)
    # bands 3, 2, 1 went in as R, G, B: the model's R<->B swap moved band 1 into band 3 and back
    np.testing.assert_array_equal(out[2], up[0])
    np.testing.assert_array_equal(out[0], up[2])
    np.testing.assert_array_equal(out[1], up[1])
    np.testing.assert_array_equal(out[3], up[3])  # the fourth band on its own


def test_a_file_marked_rgb_goes_through_as_rgb_by_default(tmp_path, swap_rb):
    rgb = np.random.default_rng(1).integers(0, 255, (30, 40, 3)).astype(np.uint8)
    src = write_scene(tmp_path / "ortho.tif", rgb, planar="contig", photometric="rgb")
    out = tifffile.imread(upscale_path(src, tmp_path / "ortho_x2.tif", swap_rb))
    np.testing.assert_array_equal(out, nearest_x2(rgb, 0, 1)[..., ::-1])


def test_cli_bands_option_is_checked(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["upscale", "x.tif", "-m", "m", "-o", "y.tif", "--bands", "3,3,1"])
    assert "three different band numbers" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------- large scenes


@pytest.mark.parametrize("layout", ["separate", "contig", "gray"])
def test_large_scenes_are_written_tiled_and_out_of_core_equals_in_memory(tmp_path, nearest_gray, layout):
    from napari_superres.engine.chunked import upscale_file

    rng = np.random.default_rng(5)
    shape = {"separate": (3, 300, 280), "contig": (300, 280, 3), "gray": (300, 280)}[layout]
    data = rng.integers(1, 60000, size=shape).astype(np.uint16)
    y = data.ndim - 3 if layout == "contig" else data.ndim - 2
    data[(slice(None),) * y + (slice(100, 140), slice(50, 90))] = 0
    src = write_scene(tmp_path / "big.tif", data, nodata=0, raster_type=2, planar=layout)
    in_memory = upscale_path(src, tmp_path / "mem.tif", nearest_gray)
    ooc = upscale_file(src, tmp_path / "ooc.tif", nearest_gray, chunk=64, quiet=True)

    geo_in, _ = geo_of(src)
    for path in (in_memory, ooc):
        geo_out, page = geo_of(path)
        assert page.is_tiled and page.tilewidth == 256 and page.shape == nearest_x2(data, y, y + 1).shape
        assert page.planarconfig == geo_of(src)[1].planarconfig
        np.testing.assert_allclose(corners(geo_out, 600, 560), corners(geo_in, 300, 280), rtol=0, atol=1e-9)
        assert page.tags[42113] == "0"
    assert geo_of(ooc)[1].is_bigtiff
    np.testing.assert_array_equal(tifffile.imread(ooc), tifffile.imread(in_memory))
    np.testing.assert_array_equal(tifffile.imread(ooc), nearest_x2(data, y, y + 1))
    assert read_image(ooc)[1]["geotiff"].nodata == 0


def test_out_of_core_nodata_fill_with_a_real_model(tmp_path, gray_model):
    from napari_superres.engine.chunked import upscale_file

    data = _scene_with_hole()
    src = write_scene(tmp_path / "dem.tif", data, nodata=-9999)
    out = tifffile.imread(upscale_file(src, tmp_path / "dem_ooc.tif", gray_model, chunk=24, quiet=True))
    mem = tifffile.imread(upscale_path(src, tmp_path / "dem_mem.tif", gray_model))
    hole = nearest_x2(data == -9999, 0, 1)
    assert (out[hole] == -9999).all() and not (out[~hole] == -9999).any()
    valid = data[data != -9999]
    assert out[~hole].min() >= valid.min() - 200  # no dark halo: the fill happens block by block too
    # away from nodata both paths run the same windows on the same values
    from scipy.ndimage import binary_dilation

    far = ~binary_dilation(hole, iterations=24)
    assert np.abs(out[far].astype(int) - mem[far]).max() <= 1
