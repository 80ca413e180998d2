import numpy as np
import pytest
import torch

from napari_dmqpm.inference import (
    Cancelled,
    OutOfDeviceMemory,
    gaussian_weights,
    plan_tiles,
    predict_tiled,
    tile_starts,
)


def pixelwise(x: torch.Tensor) -> torch.Tensor:
    """Outputs that depend on each pixel alone: tiling must not change them."""
    return torch.cat([torch.sigmoid(x), torch.tanh(2 * x) * x], dim=1)


def direct(image: np.ndarray) -> np.ndarray:
    return pixelwise(torch.from_numpy(image[None].astype(np.float32)))[0].numpy()


@pytest.fixture
def image():
    return np.random.default_rng(0).normal(size=(1, 150, 230)).astype(np.float32)


@pytest.mark.parametrize("length", [64, 65, 100, 150, 1000, 1224])
@pytest.mark.parametrize("overlap", [0.0, 0.25, 0.5])
def test_tile_starts_cover_the_axis_with_the_overlap(length, overlap):
    starts = tile_starts(length, 64, overlap)
    assert starts[0] == 0 and starts[-1] == length - 64
    steps = np.diff(starts)
    assert np.all(steps > 0) and np.all(steps <= int(64 * (1 - overlap)))


def test_gaussian_weights_peak_in_the_middle_with_sigma_an_eighth():
    weights = gaussian_weights((64, 128))
    assert weights.shape == (64, 128) and weights.dtype == np.float32
    assert weights.min() > 0 and weights.max() == pytest.approx(1.0)
    np.testing.assert_allclose(weights, weights[::-1, ::-1], rtol=1e-6)
    # along the columns, sigma = 128 / 8 = 16 pixels from the centre 63.5
    row = weights[31] / weights[31].max()
    assert np.interp(63.5 + 16, np.arange(128), row) == pytest.approx(np.exp(-0.5), rel=1e-3)
    assert not weights.flags.writeable


def test_tiled_prediction_equals_the_whole_image_prediction(image):
    tiled = predict_tiled(pixelwise, [image], n_outputs=2, tile_size=64, batch_size=3)
    assert tiled.shape == (2, 150, 230) and tiled.dtype == np.float32
    # float32 blending of equal values is exact to a few ulp; torch's elementwise kernels
    # may differ by ~1e-4 relative between code paths (seen once in a full-suite run). A
    # misplaced tile or wrong weight is off by O(1).
    np.testing.assert_allclose(tiled, direct(image), rtol=2e-4, atol=1e-5)


def test_an_image_smaller_than_a_tile_is_padded_and_cropped_back():
    image = np.random.default_rng(1).normal(size=(1, 20, 37)).astype(np.float32)
    seen = []

    def forward(x):
        seen.append(tuple(x.shape))
        return pixelwise(x)

    plan = plan_tiles((20, 37), tile_size=64, divisor=16)
    assert plan.padded_shape == (32, 48) and plan.n_tiles == 1
    out = predict_tiled(forward, [image], n_outputs=2, tile_size=64, divisor=16)
    assert seen == [(1, 1, 32, 48)]
    np.testing.assert_allclose(out, direct(image), atol=1e-6)


def test_one_axis_shorter_than_a_tile_pads_only_that_axis():
    plan = plan_tiles((40, 300), tile_size=128, overlap=0.5, divisor=8)
    assert plan.padded_shape == (40, 300) and plan.tile == (40, 128)
    plan = plan_tiles((30, 300), tile_size=128, overlap=0.5, divisor=8)
    assert plan.padded_shape == (32, 300) and plan.pad == (1, 0)


def test_tile_size_must_be_a_multiple_of_the_divisor(image):
    with pytest.raises(ValueError, match="multiple of the model's divisor 16"):
        predict_tiled(pixelwise, [image], n_outputs=2, tile_size=72, divisor=16)


def test_tta_leaves_a_flip_equivariant_model_unchanged_and_runs_four_passes(image):
    calls = []

    def forward(x):
        calls.append(1)
        return pixelwise(x)

    plain = predict_tiled(pixelwise, [image], n_outputs=2, tile_size=64, batch_size=4)
    tta = predict_tiled(forward, [image], n_outputs=2, tile_size=64, batch_size=4, tta=True)
    n_batches = -(-plan_tiles((150, 230), tile_size=64).n_tiles // 4)
    assert len(calls) == 4 * n_batches
    np.testing.assert_allclose(tta, plain, atol=1e-5)


def test_tta_flips_back_a_model_that_is_not_flip_equivariant():
    image = np.zeros((1, 64, 64), np.float32)

    def top_rows(x):  # marks the first 10 rows of whatever it is given
        out = torch.zeros_like(x)
        out[:, :, :10] = 1.0
        return out

    out = predict_tiled(top_rows, [image], n_outputs=1, tile_size=64, tta=True)
    # plain and column flip mark the top rows, the row flips mark the bottom rows
    np.testing.assert_allclose(out[0, :10], 0.5)
    np.testing.assert_allclose(out[0, -10:], 0.5)
    np.testing.assert_allclose(out[0, 20:40], 0.0)


def test_two_inputs_with_none_in_between_reach_forward_in_order(image):
    def forward(a, b, c):
        assert b is None and a.shape[1] == 1 and c.shape[1] == 3
        return pixelwise(a) + c[:, :2]

    other = np.ones((3, 150, 230), np.float32)
    out = predict_tiled(forward, [image, None, other], n_outputs=2, tile_size=64)
    np.testing.assert_allclose(out, direct(image) + 1.0, atol=1e-5)


def test_progress_counts_tiles_up_to_the_total(image):
    calls = []
    predict_tiled(
        pixelwise, [image], n_outputs=2, tile_size=64, batch_size=5,
        progress=lambda done, total: calls.append((done, total)),
    )  # fmt: skip
    total = plan_tiles((150, 230), tile_size=64).n_tiles
    assert calls[0] == (0, total) and calls[-1] == (total, total)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_should_stop_cancels_within_one_batch(image):
    batches = []

    def forward(x):
        batches.append(1)
        return pixelwise(x)

    polls = iter([False, False, True])
    with pytest.raises(Cancelled):
        predict_tiled(
            forward, [image], n_outputs=2, tile_size=64, batch_size=2,
            should_stop=lambda: next(polls),
        )  # fmt: skip
    assert len(batches) == 2


def test_a_progress_callback_may_cancel(image):
    def progress(done, total):
        if done > 0:
            raise Cancelled("user pressed stop")

    with pytest.raises(Cancelled, match="user pressed stop"):
        predict_tiled(pixelwise, [image], n_outputs=2, tile_size=64, progress=progress)


@pytest.mark.parametrize(
    "error",
    [
        lambda: torch.OutOfMemoryError("CUDA out of memory (simulated)"),
        lambda: RuntimeError("MPS backend out of memory (MPS allocated: 9 GB)"),
    ],
    ids=["cuda", "mps"],
)
def test_out_of_memory_splits_the_batch(image, error):
    sizes = []

    def forward(x):
        sizes.append(x.shape[0])
        if x.shape[0] > 1:
            raise error()
        return pixelwise(x)

    out = predict_tiled(forward, [image], n_outputs=2, tile_size=64, batch_size=4)
    np.testing.assert_allclose(out, direct(image), atol=1e-5)
    assert sizes[:4] == [4, 2, 1, 1]


def test_out_of_memory_with_one_tile_says_what_to_do(image):
    def forward(x):
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    with pytest.raises(OutOfDeviceMemory, match="lower tile_size or use device='cpu'"):
        predict_tiled(forward, [image], n_outputs=2, tile_size=64, batch_size=2)


def test_other_runtime_errors_are_not_taken_for_out_of_memory(image):
    def forward(x):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        predict_tiled(forward, [image], n_outputs=2, tile_size=64, batch_size=4)


def test_inputs_are_not_modified(image):
    before = image.copy()
    predict_tiled(pixelwise, [image[:, :20, :30]], n_outputs=2, tile_size=64, tta=True)
    np.testing.assert_array_equal(image, before)


def test_mismatched_inputs_are_refused(image):
    with pytest.raises(ValueError, match="sharing"):
        predict_tiled(pixelwise, [image, np.zeros((1, 10, 10))], n_outputs=2, tile_size=64)


def test_a_real_network_in_one_tile_matches_its_direct_output(helpers):
    net = helpers.tiny_net(inputs="both")
    rng = np.random.default_rng(2)
    angles = rng.normal(size=(4, 32, 48)).astype(np.float32)
    phase = rng.normal(size=(1, 32, 48)).astype(np.float32)
    out = predict_tiled(net, [angles, phase], n_outputs=3, tile_size=64, divisor=4)
    with torch.inference_mode():
        expected = net(torch.from_numpy(angles[None]), torch.from_numpy(phase[None]))[0].numpy()
    np.testing.assert_allclose(out, expected, atol=1e-5)


BLUR = 9


def blur(x: torch.Tensor) -> torch.Tensor:
    """A 9 x 9 box blur with zero padding: like a CNN, wrong near a tile's border only."""
    weight = torch.full((x.shape[1], 1, BLUR, BLUR), 1.0 / BLUR**2)
    return torch.nn.functional.conv2d(x, weight, padding=BLUR // 2, groups=x.shape[1])


@pytest.fixture
def smooth_field():
    rows, cols = np.mgrid[0:160, 0:224].astype(np.float32)
    field = np.sin(rows / 13.0) + np.cos(cols / 17.0) + 0.5 * np.sin((rows + cols) / 23.0)
    return (field + 3.0)[None].astype(np.float32)


def test_gaussian_blending_hides_tile_borders_that_flat_blending_shows(smooth_field):
    """Tiled = whole frame within 0.01 for a model that errs near tile borders, and no seams.

    Measured (64 px tiles, 50 % overlap): Gaussian blending max error 0.0027, flat blending
    (weights of ones) 2.0; 25 % overlap 0.022, none 0.15. An off-by-one tile origin leaves a
    column without weight (nan) or shifts the outputs by the field's slope (~0.1 per pixel).
    """
    whole = blur(torch.from_numpy(smooth_field[None]))[0].numpy()
    tiled = predict_tiled(blur, [smooth_field], n_outputs=1, tile_size=64, overlap=0.5)
    error = np.abs(tiled - whole)[0]
    assert np.all(np.isfinite(tiled))
    assert error.max() < 0.01, f"max |tiled - whole| = {error.max():.4f}"
    # no seams: the tiled output is as smooth across every tile border as the whole frame
    plan = plan_tiles(smooth_field.shape[1:], tile_size=64, overlap=0.5)
    jumps = np.abs(np.diff(tiled[0], axis=1)) - np.abs(np.diff(whole[0], axis=1))
    for start in plan.col_starts[1:]:
        for col in (start - 1, start + 63):
            assert np.abs(jumps[:, col - 1 : col + 1]).max() < 0.01
    less_overlap = predict_tiled(blur, [smooth_field], n_outputs=1, tile_size=64, overlap=0.0)
    assert np.abs(less_overlap - whole).max() > 0.05  # the model's border error is real


def test_tile_starts_follow_the_overlap_exactly():
    # step = floor(tile * (1 - overlap)), then spread evenly from 0 to length - tile
    assert tile_starts(160, 64, 0.25) == (0, 48, 96)
    assert tile_starts(224, 64, 0.25) == (0, 40, 80, 120, 160)
    assert tile_starts(224, 64, 0.5) == (0, 32, 64, 96, 128, 160)
    assert tile_starts(1224, 512, 0.25) == (0, 356, 712)
    plan = plan_tiles((160, 224), tile_size=64, overlap=0.25)
    assert plan.n_tiles == 15 and plan.row_starts == (0, 48, 96)
    windows = list(plan.windows())
    assert windows[1] == (slice(0, 64), slice(40, 104)) and windows[-1][0] == slice(96, 160)


def test_the_tiler_and_inference_config_share_one_default_overlap():
    import inspect

    from napari_dmqpm.inference import InferenceConfig
    from napari_dmqpm.inference.config import DEFAULT_OVERLAP

    for function in (plan_tiles, predict_tiled):
        assert inspect.signature(function).parameters["overlap"].default == DEFAULT_OVERLAP
    assert InferenceConfig().overlap == DEFAULT_OVERLAP == 0.25
