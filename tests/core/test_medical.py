"""NIfTI volumes and DICOM series keep where they are in the scanner: read, upscaled in-plane (and along Z on
request), written as NIfTI or TIFF with the geometry updated so that the output's voxel grid covers exactly
the input's. The files are written here with nibabel and pydicom; corners are computed from the affine
definitions (NIfTI sform, DICOM position/orientation/spacing), not from our code. Affine values are chosen
exactly representable in float32, the precision NIfTI stores them in, so corners can agree to 1e-9."""

import re
import sys

import numpy as np
import pytest

from napari_superres.cli import main
from napari_superres.engine.files import upscale_path
from napari_superres.errors import SuperResError
from napari_superres.io import read_image

nib = pytest.importorskip("nibabel")
pydicom = pytest.importorskip("pydicom")

SFORM = np.array([[0.75, 0.25, 0.0, -40.5], [-0.25, 0.75, 0.125, 20.25], [0.0, 0.0, 2.5, -10.0], [0, 0, 0, 1.0]])


def grid_corners(affine, shape_ijk):
    """World coordinates of the 8 outer corners of a voxel grid (voxel centres at integer indices)."""
    ends = [(-0.5, n - 0.5) for n in shape_ijk]
    pts = np.array([(i, j, k, 1.0) for i in ends[0] for j in ends[1] for k in ends[2]])
    return (np.asarray(affine, float) @ pts.T).T[:, :3]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    import keras

    inp = keras.Input((None, None, 1))
    path = tmp_path_factory.mktemp("models") / "nearest_x2.keras"
    keras.Model(inp, keras.layers.UpSampling2D(2)(inp)).save(path)
    return path


def write_nifti(path, shape=(20, 24, 6)):
    rng = np.random.default_rng(0)
    data = rng.integers(-500, 1500, size=shape).astype(np.int16)
    img = nib.Nifti1Image(data, SFORM)
    img.header.set_sform(SFORM, code=2)  # aligned to another scan
    img.header.set_qform(np.diag([0.5, 0.75, 2.5, 1.0]) @ np.eye(4), code=1)
    img.header.set_slope_inter(0.5, -100.0)
    img.header.set_xyzt_units("mm", "sec")
    img.header["descrip"] = b"test volume"
    nib.save(img, str(path))
    return data


def nearest_x2_ij(a):
    return np.repeat(np.repeat(a, 2, axis=0), 2, axis=1)


# ------------------------------------------------------------------------------------------- NIfTI


@pytest.mark.parametrize("name", ["vol.nii", "vol.nii.gz"])
def test_nifti_upscaled_in_plane_overlays_the_input_in_scanner_coordinates(tmp_path, nearest_gray, name):
    raw = write_nifti(tmp_path / name)
    data, meta = read_image(tmp_path / name)
    assert meta["axes"] == "ZYX" and data.shape == (6, 24, 20) and data.dtype == np.int16
    assert meta["pixel_size"] == {"X": 0.5, "Y": 0.75, "Z": 2.5} and meta["unit"] == "mm"

    out_path = upscale_path(tmp_path / name, tmp_path / ("x2_" + name), nearest_gray)
    src, out = nib.load(str(tmp_path / name)), nib.load(str(out_path))
    assert out.shape == (40, 48, 6) and out.get_data_dtype() == np.int16
    np.testing.assert_allclose(grid_corners(out.get_sform(), out.shape), grid_corners(src.get_sform(), src.shape), atol=1e-9)
    # the qform is stored as a float32 quaternion: it agrees to float32 precision
    np.testing.assert_allclose(grid_corners(out.get_qform(), out.shape), grid_corners(src.get_qform(), src.shape), atol=1e-4)
    hdr = out.header
    assert (int(hdr["sform_code"]), int(hdr["qform_code"])) == (2, 1)
    assert hdr.get_zooms() == pytest.approx((0.25, 0.375, 2.5))
    assert hdr["descrip"].tobytes().rstrip(b"\0") == b"test volume" and hdr.get_xyzt_units() == ("mm", "sec")
    # the stored values are the nearest-neighbour upscale of the input's, with the same scaling
    np.testing.assert_array_equal(np.asarray(out.dataobj.get_unscaled()), nearest_x2_ij(raw))
    np.testing.assert_allclose(out.get_fdata(), nearest_x2_ij(src.get_fdata()))


def test_nifti_z_on_request_through_the_cli(tmp_path, model_file, capsys):
    write_nifti(tmp_path / "vol.nii.gz")
    rc = main([
        "upscale", str(tmp_path / "vol.nii.gz"), "-m", str(model_file), "-o", str(tmp_path / "iso.nii.gz"),
        "--z-factor", "2", "--z-method", "linear", "-q",
    ])
    assert rc == 0, capsys.readouterr().err
    src, out = nib.load(str(tmp_path / "vol.nii.gz")), nib.load(str(tmp_path / "iso.nii.gz"))
    assert out.shape == (40, 48, 12)
    assert out.header.get_zooms() == pytest.approx((0.25, 0.375, 1.25))
    np.testing.assert_allclose(grid_corners(out.affine, out.shape), grid_corners(src.affine, src.shape), atol=1e-9)
    # linear in Z, centres aligned: output slice 2m lies a quarter of a slice below input slice m
    fz, v = out.get_fdata()[::2, ::2], src.get_fdata()
    np.testing.assert_allclose(fz[..., 2::2], 0.75 * v[..., 1:] + 0.25 * v[..., :-1], atol=0.26)


def test_nifti_to_tiff_carries_the_voxel_size(tmp_path, nearest_gray):
    write_nifti(tmp_path / "vol.nii")
    out, meta = read_image(upscale_path(tmp_path / "vol.nii", tmp_path / "vol_x2.tif", nearest_gray))
    assert out.shape == (6, 48, 40) and meta["axes"] == "ZYX"
    assert meta["pixel_size"] == pytest.approx({"Z": 2.5, "Y": 0.375, "X": 0.25})


@pytest.fixture
def predict_calls(monkeypatch):
    """The batch shapes every loaded model is called on from now on."""
    from napari_superres.models.loading import SRModel

    calls, real_predict = [], SRModel.predict
    monkeypatch.setattr(SRModel, "predict", lambda self, batch: calls.append(batch.shape) or real_predict(self, batch))
    return calls


def write_tiff_input(path, axes):
    """A small TIFF with a channel axis: an RGB photo (YXC, known from the file) or a CZYX stack."""
    import tifffile

    rng = np.random.default_rng(1)
    if axes == "YXC":
        tifffile.imwrite(path, rng.integers(0, 256, (12, 16, 3), dtype=np.uint8), photometric="rgb")
    else:
        tifffile.imwrite(path, rng.integers(0, 4000, (2, 3, 12, 16), dtype=np.uint16))
    return path


NIFTI_AXES_REFUSED = "NIfTI holds YX, ZYX or TZYX data, not .*{}"


@pytest.mark.parametrize("axes", ["YXC", "CZYX"])
def test_nifti_output_with_a_channel_axis_is_refused_before_the_model_loads(tmp_path, model_file, axes, monkeypatch,
                                                                          capsys):
    from napari_superres.models import loading

    loads = []
    real_load = loading.load_model
    monkeypatch.setattr(loading, "load_model", lambda *a, **k: loads.append(a) or real_load(*a, **k))
    src, out = write_tiff_input(tmp_path / "in.tif", axes), tmp_path / "out.nii"
    given = [] if axes == "YXC" else ["--axes", axes]  # an RGB TIFF says YXC itself
    rc = main(["upscale", str(src), "-m", str(model_file), "-o", str(out), *given, "-q"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert rc == 2 and len(err) == 1 and re.search(NIFTI_AXES_REFUSED.format(axes), err[0])
    assert loads == [] and not out.exists()

    rc = main(["upscale", str(src), "-m", str(model_file), "-o", str(tmp_path / "out.tif"), *given, "-q"])
    assert rc == 0 and len(loads) == 1  # the same input to a TIFF: the model loads and the file is written
    assert read_image(tmp_path / "out.tif")[0].shape[-3:] == ((24, 32, 3) if axes == "YXC" else (3, 24, 32))


@pytest.mark.parametrize("axes", ["YXC", "CZYX"])
@pytest.mark.parametrize("name", ["out.nii", "out.nii.gz"])
def test_upscale_path_refuses_nifti_with_a_channel_axis_before_the_model_runs(tmp_path, nearest_gray, predict_calls,
                                                                             axes, name):
    src = write_tiff_input(tmp_path / "in.tif", axes)
    given = {} if axes == "YXC" else {"axes": axes}
    with pytest.raises(SuperResError, match=NIFTI_AXES_REFUSED.format(axes)):
        upscale_path(src, tmp_path / name, nearest_gray, **given)
    assert predict_calls == [] and list(tmp_path.iterdir()) == [src]

    upscale_path(src, tmp_path / "out.tif", nearest_gray, **given)  # the same run to a TIFF calls the model
    assert predict_calls


def test_upscale_path_refuses_an_existing_output_before_the_model_runs(tmp_path, nearest_gray, predict_calls):
    write_nifti(tmp_path / "vol.nii")
    (tmp_path / "x2.nii").write_bytes(b"kept")
    with pytest.raises(SuperResError, match="output exists"):
        upscale_path(tmp_path / "vol.nii", tmp_path / "x2.nii", nearest_gray)
    assert predict_calls == [] and (tmp_path / "x2.nii").read_bytes() == b"kept"
    upscale_path(tmp_path / "vol.nii", tmp_path / "x2.nii", nearest_gray, overwrite=True)
    assert predict_calls and nib.load(str(tmp_path / "x2.nii")).shape == (40, 48, 6)


# ------------------------------------------------------------------------------------------- DICOM

ROW_DIR, COL_DIR = (1.0, 0.0, 0.0), (0.0, 0.0, -1.0)  # coronal: slices step along +y (the normal)
ORIGIN = np.array([-20.25, 10.5, 30.5])
STEP = 2.5


def write_series(folder, n=5, rows=12, cols=16, positions=None, series_uid=None):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    folder.mkdir(exist_ok=True)
    series_uid = series_uid or generate_uid()
    positions = positions if positions is not None else [ORIGIN + [0, STEP * k, 0] for k in range(n)]
    slices = []
    for k, pos in enumerate(positions):
        raw = (np.arange(rows * cols, dtype=np.uint16).reshape(rows, cols) + 1000 + 100 * k).astype(np.uint16)
        slices.append(raw)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.SeriesInstanceUID, ds.StudyInstanceUID, ds.Modality = series_uid, generate_uid(), "CT"
        ds.InstanceNumber = (3 * k) % n + 1  # not the slice order
        ds.Rows, ds.Columns = rows, cols
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.PixelSpacing = [0.5, 0.75]  # between rows, between columns
        ds.ImageOrientationPatient = list(ROW_DIR + COL_DIR)
        ds.ImagePositionPatient = [float(v) for v in pos]
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        ds.PixelData = raw.tobytes()
        name = f"IM{(7 * k) % n:04d}"  # file names not in slice order either
        ds.save_as(str(folder / name), enforce_file_format=True)
    return np.stack(slices)


def dicom_corners_ras(shape_zyx):
    """Outer corners of the series' voxel grid in RAS, from DICOM's definition (LPS, x and y negated)."""
    nz, ny, nx = shape_zyx
    row, col, normal = np.array(ROW_DIR), np.array(COL_DIR), np.array([0.0, 1.0, 0.0])
    pts = []
    for c in (-0.5, nx - 0.5):  # in grid_corners' order: i (column), j (row), k (slice)
        for r in (-0.5, ny - 0.5):
            for s in (-0.5, nz - 0.5):
                pts.append(ORIGIN + c * 0.75 * row + r * 0.5 * col + s * STEP * normal)
    return np.array(pts) * [-1, -1, 1]


def test_dicom_series_is_read_in_slice_order_with_rescale_and_geometry(tmp_path):
    raw = write_series(tmp_path / "ct")
    data, meta = read_image(tmp_path / "ct")
    assert data.shape == (5, 12, 16) and data.dtype == np.int16
    np.testing.assert_array_equal(data, raw.astype(np.int32) - 1024)  # ordered along the normal, in HU
    assert meta["pixel_size"] == {"Z": 2.5, "Y": 0.5, "X": 0.75} and meta["unit"] == "mm"


def test_dicom_series_to_nifti_overlays_the_series(tmp_path, model_file, capsys):
    raw = write_series(tmp_path / "ct")
    rc = main(["upscale", str(tmp_path / "ct"), "-m", str(model_file), "-o", str(tmp_path / "out"), "-q"])
    assert rc == 0, capsys.readouterr().err
    out = nib.load(str(tmp_path / "out" / "ct.nii.gz"))  # a series folder becomes NAME.nii.gz
    assert out.shape == (32, 24, 5)
    ours = grid_corners(out.affine, out.shape)
    np.testing.assert_allclose(ours, dicom_corners_ras(raw.shape), atol=1e-9)
    hu = np.asarray(out.dataobj).transpose(2, 1, 0)  # back to slice, row, column
    np.testing.assert_array_equal(hu, np.repeat(np.repeat(raw.astype(np.int32) - 1024, 2, 1), 2, 2))


def test_dicom_series_to_tiff_carries_the_spacing(tmp_path, nearest_gray):
    write_series(tmp_path / "ct")
    out, meta = read_image(upscale_path(tmp_path / "ct", tmp_path / "ct.tif", nearest_gray))
    assert out.shape == (5, 24, 32) and meta["pixel_size"] == pytest.approx({"Z": 2.5, "Y": 0.25, "X": 0.375})


@pytest.mark.parametrize(
    "case, words",
    [
        ("two series", "holds 2 DICOM series"),
        ("gap", "not evenly spaced"),
    ],
)
def test_dicom_folders_that_are_not_one_clean_series_are_refused(tmp_path, case, words):
    if case == "two series":
        write_series(tmp_path / "ct", n=3)
        write_series(tmp_path / "other", n=2)
        for f in (tmp_path / "other").iterdir():
            f.rename(tmp_path / "ct" / ("B" + f.name))
    else:
        write_series(tmp_path / "ct", positions=[ORIGIN + [0, d, 0] for d in (0, 2.5, 5.0, 10.0)])
    with pytest.raises(SuperResError, match=words):
        read_image(tmp_path / "ct")


def test_writing_dicom_is_refused_in_one_line(tmp_path, model_file, capsys):
    write_series(tmp_path / "ct")
    rc = main(["upscale", str(tmp_path / "ct"), "-m", str(model_file), "-o", str(tmp_path / "out.dcm")])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert rc == 2 and len(err) == 1 and "writing DICOM is not supported" in err[0]
    assert not (tmp_path / "out.dcm").exists()


# ------------------------------------------------------------------------------------------- missing extra


def test_a_missing_medical_package_names_the_extra(tmp_path, monkeypatch, capsys):
    from importlib.metadata import packages_distributions

    write_nifti(tmp_path / "vol.nii.gz")
    monkeypatch.setitem(sys.modules, "nibabel", None)  # as if not installed
    rc = main(["upscale", str(tmp_path / "vol.nii.gz"), "-m", "any-model", "-o", str(tmp_path / "out.nii.gz")])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    dist = (packages_distributions().get("napari_superres") or ["napari-superres"])[0]
    assert rc == 2 and len(err) == 1
    assert f'pip install "{dist}[medical]"' in err[0] and "nibabel" in err[0]
