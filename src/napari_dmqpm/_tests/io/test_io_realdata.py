"""Real files from ../shared/data/real: Q-PHASE phase maps and IMX250MZR raw frames."""

from pathlib import Path

import numpy as np
import pytest

from napari_dmqpm.io import describe_file, inspect_file, read_acquisition

REAL = Path(__file__).resolve().parents[4].parent / "shared" / "data" / "real"
QPHASE = REAL / "vicar_qphase_iit" / "raw"
IMX = REAL / "polanalyser_imx250mzr" / "raw"

pytestmark = [
    pytest.mark.realdata,
    pytest.mark.skipif(not REAL.is_dir(), reason=f"real data folder {REAL} is absent"),
]

QPHASE_FILES = sorted(QPHASE.glob("*/*.tif")) if QPHASE.is_dir() else []
IMX_FILES = sorted(IMX.glob("*_IMX250MZR.png")) if IMX.is_dir() else []


def test_all_fifteen_qphase_maps_are_found():
    assert len(QPHASE_FILES) == 15
    assert len(IMX_FILES) == 4


@pytest.mark.parametrize("path", QPHASE_FILES, ids=lambda p: p.name)
def test_qphase_maps_read_as_phase_maps(path):
    acq = read_acquisition(path)
    assert acq.kind == "phase-map" and acq.angles is None
    assert acq.phase.shape == (1, 600, 600) and acq.phase.dtype == np.float32
    assert np.isfinite(acq.phase).all()
    # the background sits near 0, cells are positive (values about -2..5)
    assert abs(float(np.median(acq.phase))) < 0.5 and float(acq.phase.max()) > 1.0
    if path.name == "qpi15.tif":  # the only one with calibration tags (ImageJ unit=um)
        assert acq.pixel_size_um == pytest.approx(0.627, abs=5e-4)
        assert "ImageJ" in acq.metadata["pixel_size_source"]
    else:
        assert acq.pixel_size_um is None


def test_qphase_units_convert_with_the_wavelength():
    path = QPHASE / "data" / "qpi15.tif"
    as_read = read_acquisition(path)
    in_rad = read_acquisition(path, phase_unit="pg_per_um2", wavelength_um=0.65)
    np.testing.assert_allclose(in_rad.phase, as_read.phase * (2 * np.pi * 0.18 / 0.65), rtol=1e-5)


@pytest.mark.parametrize("path", IMX_FILES, ids=lambda p: p.name)
def test_imx250mzr_frames_read_as_raw_mosaics(path):
    info = inspect_file(path)
    assert (info.kind, info.shape, info.dtype) == ("raw-mosaic", (2048, 2448), "uint8")
    acq = read_acquisition(path)
    assert acq.kind == "raw-mosaic"
    assert acq.angles.shape == (1, 4, 1024, 1224)
    assert acq.phase.shape == (1, 1024, 1224) and np.isfinite(acq.phase).all()
    assert "(4, 1024, 1224)" in describe_file(path)


def test_polarizer_discs_show_the_expected_angles():
    """Four linear polarizers in front of the sky, at 90, 45, 0 and 135 degrees from left to
    right: each disc is brightest in that channel, which checks the mosaic layout."""
    angles = read_acquisition(IMX / "polarizer_IMX250MZR.png", background=None).angles[0]
    brightest = []
    for col in (190, 500, 790, 1060):  # disc centres, row about 550 after demosaicing
        patch = angles[:, 530:570, col - 20 : col + 20].mean(axis=(1, 2))
        brightest.append(int(np.argmax(patch)))
        dolp = np.hypot(patch[0] - patch[2], patch[1] - patch[3]) / (patch.sum() / 2)
        assert dolp > 0.3  # strongly polarized
    assert brightest == [2, 1, 0, 3]  # 90, 45, 0, 135 degrees
