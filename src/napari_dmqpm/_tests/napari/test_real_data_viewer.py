"""Measured files through the viewer: Q-PHASE phase maps and IMX250MZR raw frames.

The data live in ``<repo>/../shared/data/real`` (not in the repository); these tests are
skipped, with the reason, where that folder is absent.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("napari")
pytestmark = [pytest.mark.gui, pytest.mark.realdata]

PLUGIN = "napari-dmqpm"


def test_qphase_map_with_imagej_pixel_size(make_napari_viewer, real_data_dir):
    path = real_data_dir / "vicar_qphase_iit" / "raw" / "data" / "qpi15.tif"
    viewer = make_napari_viewer()
    (phase,) = viewer.open(str(path), plugin=PLUGIN)
    assert phase.name == "qpi15 phase" and phase.data.shape == (600, 600)
    assert phase.metadata["kind"] == "phase-map"
    assert tuple(phase.scale) == pytest.approx((0.627, 0.627), rel=1e-3)
    assert [str(u) for u in phase.units] == ["micrometer", "micrometer"]
    low, high = phase.contrast_limits
    assert np.isfinite(phase.data).all() and low < high


def test_dense_qphase_map_without_pixel_size_is_in_pixels(make_napari_viewer, real_data_dir):
    path = real_data_dir / "vicar_qphase_iit" / "raw" / "data_dense" / "img_001.tif"
    viewer = make_napari_viewer()
    (phase,) = viewer.open(str(path), plugin=PLUGIN)
    assert phase.data.shape == (600, 600)
    assert tuple(phase.scale) == (1.0, 1.0)
    assert [str(u) for u in phase.units] == ["pixel", "pixel"]


@pytest.mark.parametrize("scene", ["camera", "carps", "fruits", "polarizer"])
def test_imx250mzr_raw_frames_are_demosaiced_into_angles_and_phase(
    make_napari_viewer, real_data_dir, scene
):
    path = real_data_dir / "polanalyser_imx250mzr" / "raw" / f"{scene}_IMX250MZR.png"
    viewer = make_napari_viewer()
    angles, phase = viewer.open(str(path), plugin=PLUGIN)
    assert (angles.name, phase.name) == (f"{scene}_IMX250MZR angles", f"{scene}_IMX250MZR phase")
    assert angles.data.shape == (4, 1024, 1224) and phase.data.shape == (1024, 1224)
    assert angles.metadata["kind"] == "raw-mosaic"
    assert angles.axis_labels == ("angle", "y", "x")
    # the four polarizer images of a real scene differ, but not wildly
    means = angles.data.reshape(4, -1).mean(axis=1)
    assert np.ptp(means) > 0 and means.min() > 0.2 * means.max()
