"""Demosaicing: the IMX250MZR layout, origin handling, odd sizes, both methods."""

import numpy as np
import pytest

from napari_dmqpm.io import demosaic
from napari_dmqpm.io.mosaic import mosaic_offsets

# per-angle constant values, in ANGLES_DEG order 0, 45, 90, 135
VALUES = {0: 10.0, 45: 20.0, 90: 30.0, 135: 40.0}


def make_mosaic(n_super_rows, n_super_cols, *, ramp=True):
    """A mosaic whose pixel = angle value + 100 * super-row + 1000 * super-col."""
    raw = np.zeros((2 * n_super_rows, 2 * n_super_cols), dtype=np.uint16)
    layout = {(0, 0): 90, (0, 1): 45, (1, 0): 135, (1, 1): 0}
    rows, cols = np.mgrid[:n_super_rows, :n_super_cols]
    extra = (100 * rows + 1000 * cols) if ramp else 0
    for (r, c), angle in layout.items():
        raw[r::2, c::2] = VALUES[angle] + extra
    return raw, extra


def test_offsets_follow_the_imx250mzr_layout():
    assert mosaic_offsets() == ((1, 1), (0, 1), (0, 0), (1, 0))


def test_superpixel_puts_each_angle_in_its_channel():
    raw, extra = make_mosaic(3, 4)
    angles = demosaic(raw)
    assert angles.shape == (4, 3, 4)
    assert angles.dtype == np.float32
    for index, angle in enumerate((0, 45, 90, 135)):
        np.testing.assert_array_equal(angles[index], VALUES[angle] + extra)


@pytest.mark.parametrize("origin", [(0, 1), (1, 0), (1, 1)])
def test_origin_skips_the_stray_row_or_column(origin):
    raw, extra = make_mosaic(3, 4)
    shifted = np.pad(raw, ((origin[0], 0), (origin[1], 0)), constant_values=9999)
    angles = demosaic(shifted, origin=origin)
    for index, angle in enumerate((0, 45, 90, 135)):
        np.testing.assert_array_equal(angles[index], VALUES[angle] + extra)
    # the wrong origin mixes the angles up
    assert not np.array_equal(demosaic(shifted, origin=(0, 0))[0], VALUES[0] + extra)


def test_odd_sizes_drop_the_last_row_and_column():
    raw, extra = make_mosaic(3, 4)
    odd = np.pad(raw, ((0, 1), (0, 1)), constant_values=9999)
    assert demosaic(odd).shape == (4, 3, 4)
    np.testing.assert_array_equal(demosaic(odd)[3], VALUES[135] + extra)
    assert demosaic(odd, method="interpolate").shape == (4, 6, 8)
    assert demosaic(odd, origin=(1, 1)).shape == (4, 3, 4)  # 7 - 1 = 6 rows, 9 - 1 = 8 cols


def test_time_axis_is_kept():
    raw, _ = make_mosaic(2, 2)
    frames = np.stack([raw, raw + 1])
    angles = demosaic(frames)
    assert angles.shape == (2, 4, 2, 2)
    np.testing.assert_array_equal(angles[1], angles[0] + 1)


def test_interpolate_is_exact_at_sampled_pixels_and_for_linear_scenes():
    n_rows, n_cols = 12, 16
    rows, cols = np.mgrid[:n_rows, :n_cols].astype(np.float64)
    scene = 3.0 * rows - 2.0 * cols + 500.0  # a linear scene, the same for every angle
    offset = {(0, 0): 30.0, (0, 1): 20.0, (1, 0): 40.0, (1, 1): 10.0}  # 90, 45, 135, 0
    raw = scene.copy()
    for (r, c), value in offset.items():
        raw[r::2, c::2] += value
    angles = demosaic(raw, method="interpolate")
    assert angles.shape == (4, n_rows, n_cols)
    for index, (r, c) in enumerate(mosaic_offsets()):
        expected = scene + offset[(r, c)]
        # at the channel's own pixels it is the raw value
        np.testing.assert_allclose(angles[index, r::2, c::2], raw[r::2, c::2], rtol=1e-6)
        # away from the one-pixel border, bilinear interpolation of a plane is exact
        np.testing.assert_allclose(angles[index, 1:-1, 1:-1], expected[1:-1, 1:-1], rtol=1e-6)


def test_interpolate_agrees_with_superpixel_on_a_flat_scene():
    raw, _ = make_mosaic(4, 5, ramp=False)
    full = demosaic(raw, method="interpolate")
    for index, angle in enumerate((0, 45, 90, 135)):
        np.testing.assert_array_equal(full[index], VALUES[angle])


def test_input_is_not_modified():
    raw, _ = make_mosaic(2, 3)
    before = raw.copy()
    demosaic(raw, method="interpolate")
    demosaic(raw)
    np.testing.assert_array_equal(raw, before)


@pytest.mark.parametrize(
    ("raw", "options", "message"),
    [
        (np.zeros(4), {}, "raw must have shape"),
        (np.zeros((1, 5)), {}, "at least one full 2x2"),
        (np.zeros((2, 2)), {"origin": (1, 0)}, "at least one full 2x2"),
        (np.zeros((4, 4), dtype=complex), {}, "real numbers"),
        (np.zeros((4, 4)), {"origin": (2, 0)}, "origin must be"),
        (np.zeros((4, 4)), {"method": "bayer"}, "method must be"),
        (np.zeros((4, 4)), {"pattern": ((0, 0), (90, 135))}, "pattern must be"),
    ],
)
def test_bad_arguments_name_the_problem(raw, options, message):
    with pytest.raises(ValueError, match=message):
        demosaic(raw, **options)


def test_custom_pattern():
    raw = np.array([[0, 45], [90, 135]], dtype=np.uint8)
    assert demosaic(raw, pattern=((0, 45), (90, 135))).ravel().tolist() == [0, 45, 90, 135]
