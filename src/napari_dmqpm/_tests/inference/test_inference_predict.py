import dataclasses

import numpy as np
import pytest
import torch

from napari_dmqpm.inference import (
    InferenceConfig,
    Probabilities,
    count_tiles,
    predict_probabilities,
    resize,
    resolve_scale,
)
from napari_dmqpm.model import DMQPMNet, HeadConfig
from napari_dmqpm.model.registry import load_model


def softmax_of(net, phase):
    with torch.inference_mode():
        logits = net(None, torch.from_numpy(phase[None, None].astype(np.float32)))
    return torch.softmax(logits[0, :3], dim=0).numpy()


@pytest.fixture
def phase():
    return np.random.default_rng(0).normal(size=(50, 70)).astype(np.float32)


def test_probabilities_of_a_pixelwise_model_equal_its_softmax(helpers, phase):
    net = helpers.PixelNet()
    # the phase as given (the background-offset removal has a test of its own)
    config = InferenceConfig(tile_size=32, phase_offset=False)
    probs = predict_probabilities(net, phase=phase, config=config)
    assert isinstance(probs, Probabilities)
    assert probs.classes.shape == (3, 50, 70) and probs.classes.dtype == np.float32
    assert probs.class_names == ("background", "interior", "boundary")
    assert probs.distance is None and probs.scale == 1.0
    np.testing.assert_allclose(probs.classes, softmax_of(net, phase), atol=1e-5)
    np.testing.assert_allclose(probs.classes.sum(axis=0), 1.0, atol=1e-5)
    np.testing.assert_allclose(probs.foreground, 1.0 - probs.classes[0])
    np.testing.assert_allclose(probs.interior, probs.classes[1])


def test_a_distance_head_comes_back_in_zero_one(helpers, phase):
    probs = predict_probabilities(
        helpers.PixelNet(distance=True), phase=phase, config=InferenceConfig(tile_size=32)
    )
    assert probs.distance.shape == (50, 70)
    assert probs.distance.min() >= 0 and probs.distance.max() <= 1
    stacked, names = probs.stacked()
    assert stacked.shape == (4, 50, 70) and names[-1] == "distance"


def test_a_sigmoid_foreground_head_becomes_two_classes(helpers, phase):
    net = helpers.PixelNet()
    head = HeadConfig(name="foreground", kind="sigmoid", channels=("foreground",))
    net.config = dataclasses.replace(net.config, heads=(head,))
    net.conv = torch.nn.Conv2d(1, 1, 1)
    probs = predict_probabilities(net, phase=phase, config=InferenceConfig(tile_size=32))
    assert probs.class_names == ("background", "foreground")
    np.testing.assert_allclose(probs.interior, probs.foreground)


def test_a_dual_model_needs_the_angles(helpers, phase):
    with pytest.raises(ValueError, match="needs the four angle images"):
        predict_probabilities(helpers.tiny_net(inputs="both"), phase=phase)


def test_a_dual_model_runs_on_angles_and_phase(helpers, phase):
    angles = np.random.default_rng(1).uniform(0, 1, size=(4, 50, 70)).astype(np.float32)
    probs = predict_probabilities(
        helpers.tiny_net(inputs="both"),
        angles=angles,
        phase=phase,
        config=InferenceConfig(tile_size=32, batch_size=2, tta=True),
    )
    assert probs.shape == (50, 70)
    np.testing.assert_allclose(probs.classes.sum(axis=0), 1.0, atol=1e-5)


def test_a_strided_stem_model_predicts_at_the_input_size_tiled_and_whole(helpers, phase):
    torch.manual_seed(0)
    config = dataclasses.replace(helpers.tiny_config(inputs="both"), strides=(2, 2, 2))
    net = DMQPMNet(config).eval()
    angles = np.random.default_rng(1).uniform(0, 1, size=(4, 50, 70)).astype(np.float32)
    whole = predict_probabilities(net, angles=angles, phase=phase)
    tiled = predict_probabilities(
        net, angles=angles, phase=phase, config=InferenceConfig(tile_size=32, whole_frame_px=0)
    )
    for probs in (whole, tiled):  # divisor 8: 50 x 70 is padded, then cropped back
        assert probs.shape == (50, 70)
        np.testing.assert_allclose(probs.classes.sum(axis=0), 1.0, atol=1e-5)


def test_unused_inputs_are_ignored_and_inputs_not_modified(helpers, phase):
    angles = np.ones((4, 50, 70), np.float32)
    before = phase.copy()
    config = InferenceConfig(tile_size=32, phase_offset=False)  # compared with the raw softmax
    probs = predict_probabilities(helpers.PixelNet(), angles=angles, phase=phase, config=config)
    np.testing.assert_allclose(probs.classes, softmax_of(helpers.PixelNet(), phase), atol=1e-5)
    np.testing.assert_array_equal(phase, before)


def test_nan_input_is_refused_with_the_count(helpers, phase):
    phase = phase.copy()
    phase[3, :5] = np.nan
    with pytest.raises(ValueError, match="5 NaN or infinite"):
        predict_probabilities(helpers.PixelNet(), phase=phase)


def test_tile_size_must_fit_the_divisor(helpers, phase):
    with pytest.raises(ValueError, match="multiple of the model's divisor 4"):
        predict_probabilities(helpers.PixelNet(), phase=phase, config=InferenceConfig(tile_size=30))


def test_diameter_needs_a_model_that_states_its_trained_diameter(helpers, phase):
    with pytest.raises(ValueError, match="cell_diameter_px"):
        predict_probabilities(
            helpers.PixelNet(), phase=phase, config=InferenceConfig(diameter_px=40.0)
        )


def test_resampling_to_the_trained_diameter_returns_the_input_size(helpers, models_dir):
    helpers.save_tiny(models_dir / "tiny", inputs="phase", cell_diameter_px=20.0)
    model = load_model("tiny", device="cpu")
    rows, cols = np.mgrid[0:90, 0:130]
    phase = np.sin(rows / 9.0) * np.cos(cols / 11.0)  # smooth, so resampling loses little
    config = InferenceConfig(tile_size=32, diameter_px=40.0)
    assert resolve_scale(model, config=config) == 0.5
    assert count_tiles(model, (90, 130), config=config) == count_tiles(
        model, (45, 65), config=config.replace(diameter_px=None)
    )
    probs = predict_probabilities(model, phase=phase, config=config)
    assert probs.shape == (90, 130) and probs.scale == 0.5
    np.testing.assert_allclose(probs.classes.sum(axis=0), 1.0, atol=1e-5)


def test_resampling_by_pixel_size(helpers, models_dir):
    helpers.save_tiny(models_dir / "tiny", inputs="phase", pixel_size_um=0.6)
    model = load_model("tiny", device="cpu")
    config = InferenceConfig(tile_size=32)
    assert resolve_scale(model, config=config, pixel_size_um=0.3) == pytest.approx(0.5)
    assert resolve_scale(model, config=config.replace(use_pixel_size=False), pixel_size_um=0.3) == 1
    assert resolve_scale(model, config=config, pixel_size_um=None) == 1
    with pytest.raises(ValueError, match="outside"):
        resolve_scale(model, config=config, pixel_size_um=0.01)


def test_resize_is_bilinear_and_keeps_constants():
    image = np.full((2, 10, 12), 3.0, np.float32)
    assert resize(image, (10, 12)) is image
    np.testing.assert_allclose(resize(image, (25, 7)), 3.0, atol=1e-6)
    ramp = np.tile(np.arange(8, dtype=np.float32), (1, 4, 1))
    assert resize(ramp, (4, 16)).shape == (1, 4, 16)


@pytest.mark.parametrize("shape", [(8, 8), (3, 40), (17, 1)])
def test_frames_much_smaller_than_the_network_divisor_are_padded_not_refused(shape):
    # a 5-stage network (divisor 16): its deepest stage must still see more than one pixel
    from napari_dmqpm.model import THREE_CLASS, DMQPMNet, ModelConfig

    torch.manual_seed(0)
    config = ModelConfig(
        inputs="phase", fusion="early", features=(4, 8, 16, 32, 32), heads=(THREE_CLASS,)
    )
    net = DMQPMNet(config).eval()
    phase = np.random.default_rng(0).random(shape, dtype=np.float32)
    probs = predict_probabilities(net, phase=phase, config=InferenceConfig(device="cpu"))
    assert probs.shape == shape


def test_a_frame_up_to_whole_frame_px_is_one_tile_and_larger_ones_are_tiled(helpers, phase):
    net = helpers.tiny_net(inputs="phase")
    whole = InferenceConfig(tile_size=16, device="cpu")
    tiled = whole.replace(whole_frame_px=0)
    assert count_tiles(net, phase.shape, config=whole) == 1
    assert count_tiles(net, phase.shape, config=tiled) > 1
    assert whole.frame_tile_size((50, 70), 4) == 72 and tiled.frame_tile_size((50, 70), 4) == 16
    a = predict_probabilities(net, phase=phase, config=whole)
    b = predict_probabilities(net, phase=phase, config=tiled)
    assert a.classes.shape == b.classes.shape == (3, *phase.shape)


def test_a_background_offset_does_not_reach_the_network(helpers):
    """A foreign offset (or a constant frame) is removed: the network sees the map at 0."""
    field = np.zeros((48, 64), np.float32)
    field[10:30, 12:40] = 1.5  # a "cell" on a zero background
    net, config = helpers.PixelNet(), InferenceConfig(tile_size=32)
    plain = predict_probabilities(net, phase=field, config=config)
    shifted = predict_probabilities(net, phase=field + 0.7, config=config)
    np.testing.assert_allclose(shifted.classes, plain.classes, atol=1e-5)
    raw = predict_probabilities(net, phase=field + 0.7, config=config.replace(phase_offset=False))
    assert np.abs(raw.classes - plain.classes).max() > 1e-3
    from napari_dmqpm.phase import background_level

    level = background_level(field) + 0.7  # the whole frame's, given to a window of it
    window = predict_probabilities(net, phase=field[:20] + 0.7, config=config, phase_level=level)
    np.testing.assert_allclose(window.classes, plain.classes[:, :20], atol=1e-5)


@pytest.mark.parametrize("overlap", [0.0, 0.25, 0.5])
def test_the_configured_overlap_reaches_the_tiler(helpers, overlap):
    """The tiles run are the tiles planned with ``InferenceConfig.overlap`` (not a default)."""
    net = helpers.tiny_net(inputs="phase")
    phase = np.random.default_rng(1).normal(size=(160, 224)).astype(np.float32)
    config = InferenceConfig(tile_size=64, overlap=overlap, whole_frame_px=0, device="cpu")
    expected = {0.0: 3 * 4, 0.25: 3 * 5, 0.5: 4 * 6}[overlap]
    assert count_tiles(net, phase.shape, config=config) == expected
    totals = set()
    predict_probabilities(net, phase=phase, config=config, progress=lambda d, t: totals.add(t))
    assert totals == {expected}
