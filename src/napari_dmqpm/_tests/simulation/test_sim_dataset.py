import json

import numpy as np
import pytest
import tifffile

from napari_dmqpm.io import read_acquisition
from napari_dmqpm.simulation import write_dataset


def test_write_dataset_files_and_contents(tmp_path):
    written = write_dataset(tmp_path / "out", n=2, seed=3, density="0.3", shape=(48, 64))
    names = [p.name for p in written]
    assert names == [
        "sim_0000.tif",
        "sim_0000_labels.tif",
        "sim_0001.tif",
        "sim_0001_labels.tif",
        "dataset.json",
    ]
    acquisition = read_acquisition(written[0])
    assert acquisition.kind == "ssqpm-stack"
    assert acquisition.angles.shape == (1, 4, 48, 64)
    assert acquisition.pixel_size_um == pytest.approx(0.627, rel=1e-4)
    labels = tifffile.imread(written[1])
    assert labels.shape == (48, 64) and labels.max() >= 1
    manifest = json.loads(written[-1].read_text())
    assert manifest["seed"] == 3 and manifest["config"]["density"] == 0.3
    assert manifest["config"]["shape"] == [48, 64]
    assert "numpy" in manifest["versions"]


def test_same_seed_writes_identical_files(tmp_path):
    first = write_dataset(tmp_path / "a", n=1, seed=9, shape=(40, 40))
    second = write_dataset(tmp_path / "b", n=1, seed=9, shape=(40, 40))
    for one, two in zip(first, second, strict=True):
        assert one.read_bytes() == two.read_bytes(), one.name
    other = write_dataset(tmp_path / "c", n=1, seed=10, shape=(40, 40))
    assert other[0].read_bytes() != first[0].read_bytes()


def test_existing_files_are_never_written_over(tmp_path):
    write_dataset(tmp_path, n=1, seed=1, shape=(32, 32))
    before = (tmp_path / "sim_0000.tif").read_bytes()
    with pytest.raises(FileExistsError, match="sim_0000"):
        write_dataset(tmp_path, n=2, seed=2, shape=(32, 32))
    assert (tmp_path / "sim_0000.tif").read_bytes() == before
    assert not (tmp_path / "sim_0001.tif").exists()  # nothing half-written
    write_dataset(tmp_path, n=1, seed=2, shape=(32, 32), overwrite=True)
    assert (tmp_path / "sim_0000.tif").read_bytes() != before


def test_timelapse_dataset_and_argument_checks(tmp_path):
    written = write_dataset(tmp_path, n=1, seed=0, shape=(40, 40), n_frames=3)
    acquisition = read_acquisition(written[0])
    assert acquisition.is_timelapse and acquisition.angles.shape == (3, 4, 40, 40)
    assert tifffile.imread(written[1]).shape == (3, 40, 40)
    with pytest.raises(ValueError, match="n="):
        write_dataset(tmp_path / "x", n=0, seed=0)
    with pytest.raises(ValueError, match="density"):
        write_dataset(tmp_path / "x", n=1, seed=0, density="crowded")
    assert not (tmp_path / "x").exists()
    np.testing.assert_array_equal(acquisition.angles, np.rint(acquisition.angles))
