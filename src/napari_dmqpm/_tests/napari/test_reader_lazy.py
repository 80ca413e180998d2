"""The reader on a large time-lapse: dask layers, styled from frame 0, nothing else read."""

from __future__ import annotations

import dask.array as da
import numpy as np
import tifffile

from napari_dmqpm._napari._layers import robust_contrast_limits
from napari_dmqpm._napari._reader import read_paths
from napari_dmqpm.io import lazy as lazy_module
from napari_dmqpm.io import read_acquisition
from napari_dmqpm.phase import synthesize_angles


def movie(n_frames, shape=(24, 32)):
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    frames = []
    for t in range(n_frames):
        phase = (1.0 + 0.1 * t) * np.exp(-((rows - 12) ** 2 + (cols - 10 - t) ** 2) / 30.0)
        frames.append(np.concatenate([synthesize_angles(phase + 0.3 * cols), phase[None]]))
    return np.stack(frames).astype(np.float32)


def test_a_large_time_lapse_opens_as_dask_layers_reading_frame_zero_only(tmp_path, monkeypatch):
    data = movie(12)
    path = tmp_path / "big.tif"
    tifffile.imwrite(
        path, data, imagej=True, metadata={"axes": "TCYX", "unit": "um"}, resolution=(2.0, 2.0)
    )
    monkeypatch.setattr(lazy_module, "LAZY_THRESHOLD_BYTES", data.nbytes // 4)
    frames_read = []
    real = lazy_module.PlaneReader.read

    def read(self, planes, rows=slice(None)):
        frames_read.extend(int(p) // 5 for p in np.ravel(planes))
        return real(self, planes, rows)

    monkeypatch.setattr(lazy_module.PlaneReader, "read", read)
    (angles, angles_meta, _), (phase, phase_meta, _) = read_paths(str(path))
    assert set(frames_read) == {0}
    assert isinstance(angles, da.Array) and angles.shape == (4, 12, 24, 32)
    assert isinstance(phase, da.Array) and phase.shape == (12, 24, 32)
    assert phase_meta["contrast_limits"] == robust_contrast_limits(data[0, 4])
    assert angles_meta["contrast_limits"] == robust_contrast_limits(data[0, :4])
    assert phase_meta["metadata"]["n_frames"] == 12 and phase_meta["scale"] == (1.0, 0.5, 0.5)
    assert phase_meta["axis_labels"] == ("t", "y", "x")
    frames_read.clear()
    np.testing.assert_array_equal(np.asarray(phase[9]), data[9, 4])
    np.testing.assert_array_equal(np.asarray(angles[2, 5]), data[5, 2])
    assert set(frames_read) == {9, 5}


def test_a_small_file_still_gives_numpy_layers(tmp_path):
    data = movie(2)
    path = tmp_path / "small.tif"
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": "TCYX"})
    layers = read_paths(str(path))
    assert all(isinstance(layer[0], np.ndarray) for layer in layers)
    assert not read_acquisition(path).is_lazy and read_acquisition(path, lazy=True).is_lazy
