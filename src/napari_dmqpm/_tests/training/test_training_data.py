"""Data sources, the split that works with one image, and the patch stream."""

import dataclasses

import numpy as np
import pytest
import tifffile

from napari_dmqpm.training.augment import AugmentConfig
from napari_dmqpm.training.data import (
    Sample,
    label_pairs,
    read_folder,
    samples_from_arrays,
    split_samples,
)
from napari_dmqpm.training.patches import PatchDataset, is_foreground_slot
from napari_dmqpm.training.targets import TargetConfig


def _image(rows=96, cols=80, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.zeros((rows, cols), dtype=np.int32)
    labels[10:30, 10:30] = 1
    labels[50:70, 40:60] = 2
    phase = (labels > 0) * 2.0 + rng.normal(0, 0.05, (rows, cols))
    angles = rng.uniform(100, 200, (4, rows, cols))
    return phase.astype(np.float32), labels, angles.astype(np.float32)


def test_samples_from_arrays_accepts_frames_and_drops_empty_ones():
    phase, labels, angles = _image()
    samples = samples_from_arrays(
        np.stack([phase, phase]), np.stack([labels, 0 * labels]), angles=np.stack([angles, angles])
    )
    assert len(samples) == 1 and samples[0].angles.shape == (4, 96, 80)
    mixed = samples_from_arrays([phase, phase[:50]], [labels, labels[:50]])
    assert [s.shape for s in mixed] == [(96, 80), (50, 80)]
    with pytest.raises(ValueError, match="empty"):
        samples_from_arrays(phase, 0 * labels)
    with pytest.raises(ValueError, match="labels must have the phase's shape"):
        samples_from_arrays(phase, labels[:10])
    with pytest.raises(ValueError, match="one frame per phase frame"):
        samples_from_arrays(np.stack([phase, phase]), labels[None])


def test_split_one_image_into_disjoint_train_and_validation_strips():
    phase, labels, angles = _image()
    train, val = split_samples([Sample(phase, labels, angles)], val_fraction=0.25)
    assert train[0].shape == (72, 80) and val[0].shape == (24, 80)
    assert np.array_equal(np.concatenate([train[0].phase, val[0].phase]), phase)
    assert val[0].angles.shape == (4, 24, 80)
    many = [Sample(phase, labels, name=str(i)) for i in range(10)]
    train, val = split_samples(many, val_fraction=0.2, rng=0)
    assert len(train) == 8 and len(val) == 2
    assert {s.name for s in train}.isdisjoint({s.name for s in val})


def test_read_folder_pairs_images_with_labels(tmp_path):
    phase, labels, _ = _image()
    tifffile.imwrite(tmp_path / "a.tif", phase)
    tifffile.imwrite(tmp_path / "a_labels.tif", labels.astype(np.uint16))
    samples = read_folder(tmp_path, kind="phase-map")
    assert len(samples) == 1 and samples[0].angles is None and samples[0].name == "a"
    assert np.array_equal(samples[0].labels, labels)
    tifffile.imwrite(tmp_path / "b.tif", phase)
    with pytest.raises(ValueError, match="b.tif"):
        label_pairs(tmp_path)
    with pytest.raises(FileNotFoundError):
        label_pairs(tmp_path / "missing")


def test_patch_stream_is_seeded_oversamples_foreground_and_aligns_targets():
    phase, labels, angles = _image(rows=200, cols=200)
    labels[:] = 0
    labels[150:170, 150:170] = 5  # one small cell: random centres rarely hit it
    phase = (labels > 0) * 2.0 + phase * 0.0
    sample = Sample(phase, labels, angles)
    kwargs = dict(
        n_patches=30,
        patch_shape=(32, 32),
        batch_size=3,
        seed=1,
        augment=AugmentConfig(enabled=False),
        targets=TargetConfig(distance=True),
    )
    items = list(PatchDataset([sample], epoch=0, **kwargs))
    again = list(PatchDataset([sample], epoch=0, **kwargs))
    other = list(PatchDataset([sample], epoch=1, **kwargs))
    assert len(items) == 30
    assert all(np.array_equal(a["phase"], b["phase"]) for a, b in zip(items, again, strict=True))
    assert not all(
        np.array_equal(a["phase"], b["phase"]) for a, b in zip(items, other, strict=True)
    )
    first = items[0]
    assert first["angles"].shape == (4, 32, 32) and first["phase"].shape == (1, 32, 32)
    assert first["classes"].dtype == np.int64 and first["distance"].dtype == np.float32
    for index, item in enumerate(items):
        if is_foreground_slot(index, batch_size=3, fraction=0.33):
            assert (item["classes"] > 0).any()
        # without augmentation, the phase is high exactly where the targets say "cell"
        cell = item["classes"] > 0
        assert np.all((item["phase"][0] > 1.0) == cell)


def _widest_cell(items) -> float:
    from skimage.measure import label

    from napari_dmqpm.inference.diameter import cell_diameters

    return max(
        float(cell_diameters(label(item["classes"] > 0), exclude_border=False).max())
        for item in items
    )


def test_scale_augmentation_by_cell_size_shows_cells_at_the_drawn_diameter():
    """p_diameter=1 with a fixed target: the patches' cells are that wide, not the image's."""
    labels = np.zeros((240, 240), dtype=np.int32)
    corners = [(r, c) for r in range(10, 230, 30) for c in range(10, 230, 30)]
    for index, (row, col) in enumerate(corners):
        labels[row : row + 16, col : col + 16] = index + 1  # 18 px equivalent diameter
    sample = Sample((labels > 0).astype(np.float32), labels, None)
    target = 54.0
    augment = AugmentConfig(
        p_rotation=0.0, p_scaling=0.0, p_mirror=0.0, p_diameter=1.0, diameter_px=(target, target)
    )
    kwargs = dict(
        n_patches=10,
        patch_shape=(128, 128),
        batch_size=2,
        seed=0,
        epoch=0,
        targets=TargetConfig(distance=False),
    )
    zoomed = list(PatchDataset([sample], augment=augment, **kwargs))
    assert 0.85 * target < _widest_cell(zoomed) < 1.15 * target
    plain = dataclasses.replace(augment, p_diameter=0.0)
    assert _widest_cell(PatchDataset([sample], augment=plain, **kwargs)) < 20.0


@pytest.mark.parametrize("dtype", [np.uint32, np.int64, np.uint64])
def test_label_ids_above_int32_stay_cells(dtype):
    """A plain int32 cast wrapped 2**31 to a negative id and 2**32 to background."""
    labels = np.zeros((8, 8), dtype)
    labels[:4, :4], labels[4:, 4:] = 2**31, 2**32 if dtype != np.uint32 else 2**32 - 1
    labels[:2, 6:] = 5
    sample = Sample(np.zeros((8, 8), np.float32), labels)
    assert sample.labels.dtype == np.int32
    assert sorted(np.unique(sample.labels).tolist()) == [0, 1, 2, 3]
    assert np.array_equal(sample.labels > 0, labels > 0)


def test_negative_labels_are_refused_with_the_image_name():
    labels = np.zeros((8, 8), np.int16)
    labels[2:4, 2:4] = -3
    with pytest.raises(ValueError, match="labels of cells_01 hold negative values"):
        Sample(np.zeros((8, 8), np.float32), labels, name="cells_01")
