"""Augmentations: image and labels stay aligned, seeded draws repeat, intensity ops behave."""

import dataclasses

import numpy as np
import pytest

from napari_dmqpm.training.augment import (
    AugmentConfig,
    SpatialParams,
    augment_intensity,
    augment_patch,
    crop_transformed,
    draw_spatial,
)

OFF = AugmentConfig(enabled=False)


def _pattern() -> tuple[np.ndarray, np.ndarray]:
    labels = np.zeros((64, 64), dtype=np.int32)
    labels[10:30, 12:24] = 1
    labels[40:52, 30:60] = 2
    labels[20:26, 40:46] = 3
    image = np.stack([labels * 10.0 + 5.0, labels * -3.0]).astype(np.float32)
    return image, labels


@pytest.mark.parametrize(
    "spatial",
    [
        SpatialParams(mirror_rows=True),
        SpatialParams(mirror_cols=True),
        SpatialParams(rotation=np.pi / 2),
        SpatialParams(rotation=0.7, scale=1.2),
        SpatialParams(scale=0.8, mirror_rows=True),
    ],
)
def test_spatial_transform_keeps_image_and_labels_aligned(spatial):
    image, labels = _pattern()
    image_patch, labels_patch = crop_transformed(
        image, labels, center=(31.5, 31.5), patch_shape=(48, 48), spatial=spatial
    )
    assert image_patch.shape == (2, 48, 48) and labels_patch.shape == (48, 48)
    assert labels_patch.dtype == labels.dtype
    # away from label edges (where linear interpolation mixes), the image equals labels * 10 + 5
    from scipy import ndimage

    inner = ndimage.minimum_filter(labels_patch, 3) == ndimage.maximum_filter(labels_patch, 3)
    assert inner.mean() > 0.5
    assert np.allclose(image_patch[0][inner], labels_patch[inner] * 10.0 + 5.0, atol=1e-3)
    assert np.allclose(image_patch[1][inner], labels_patch[inner] * -3.0, atol=1e-3)


def test_quarter_turn_and_flip_match_numpy():
    image, labels = _pattern()
    _, flipped = crop_transformed(
        image,
        labels,
        center=(31.5, 31.5),
        patch_shape=(64, 64),
        spatial=SpatialParams(mirror_cols=True),
    )
    assert np.array_equal(flipped, labels[:, ::-1])
    _, turned = crop_transformed(
        image,
        labels,
        center=(31.5, 31.5),
        patch_shape=(64, 64),
        spatial=SpatialParams(rotation=np.pi / 2),
    )
    assert np.array_equal(turned, np.rot90(labels, k=-1)) or np.array_equal(
        turned, np.rot90(labels)
    )


def test_plain_crop_pads_by_reflection_outside_the_image():
    image, labels = _pattern()
    image_patch, labels_patch = crop_transformed(
        image, labels, center=(0.0, 0.0), patch_shape=(32, 32)
    )
    assert image_patch.shape == (2, 32, 32)
    assert np.array_equal(labels_patch[16:, 16:], labels[:16, :16])


def test_augmentation_is_deterministic_with_a_seed_and_leaves_input_alone():
    image, labels = _pattern()
    before = image.copy()
    config = dataclasses.replace(AugmentConfig(), p_rotation=1.0, p_noise=1.0, p_gamma=1.0)
    kwargs = dict(center=(30.0, 30.0), patch_shape=(32, 32), config=config)
    a = augment_patch(image, labels, rng=np.random.default_rng(3), **kwargs)
    b = augment_patch(image, labels, rng=np.random.default_rng(3), **kwargs)
    c = augment_patch(image, labels, rng=np.random.default_rng(4), **kwargs)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    assert np.array_equal(image, before)


def test_default_probabilities_are_nnunets():
    config = AugmentConfig()
    assert (config.p_rotation, config.p_scaling, config.p_noise, config.p_blur) == (
        0.2,
        0.2,
        0.1,
        0.2,
    )
    assert (config.p_brightness, config.p_contrast, config.p_low_resolution) == (0.15, 0.15, 0.25)
    assert (config.p_gamma_inverted, config.p_gamma, config.p_mirror) == (0.1, 0.3, 0.5)
    rng = np.random.default_rng(0)
    draws = [draw_spatial(config, rng) for _ in range(4000)]
    assert np.mean([d.rotation != 0 for d in draws]) == pytest.approx(0.2, abs=0.03)
    assert np.mean([d.mirror_cols for d in draws]) == pytest.approx(0.5, abs=0.03)
    assert AugmentConfig.from_dict(config.to_dict()) == config


def test_intensity_transforms_share_parameters_within_a_group():
    image = np.random.default_rng(1).uniform(1, 2, (5, 32, 32)).astype(np.float32)
    only_brightness = dataclasses.replace(
        OFF,
        enabled=True,
        p_rotation=0,
        p_scaling=0,
        p_noise=0,
        p_blur=0,
        p_contrast=0,
        p_low_resolution=0,
        p_gamma_inverted=0,
        p_gamma=0,
        p_brightness=1.0,
    )
    out = augment_intensity(
        image,
        config=only_brightness,
        rng=np.random.default_rng(0),
        channel_groups=[[0, 1, 2, 3], [4]],
    )
    ratios = (out / image).reshape(5, -1).mean(axis=1)
    assert np.allclose(ratios[:4], ratios[0], rtol=1e-5)
    assert not np.isclose(ratios[4], ratios[0])
    assert np.array_equal(augment_intensity(image, config=OFF, rng=np.random.default_rng(0)), image)


def test_gamma_and_contrast_preserve_range_and_stats():
    image = np.random.default_rng(2).uniform(-1, 3, (1, 32, 32)).astype(np.float32)
    gamma_only = dataclasses.replace(
        AugmentConfig(),
        p_noise=0,
        p_blur=0,
        p_brightness=0,
        p_contrast=1.0,
        p_low_resolution=0,
        p_gamma_inverted=0,
        p_gamma=1.0,
    )
    out = augment_intensity(image, config=gamma_only, rng=np.random.default_rng(5))
    assert out.mean() == pytest.approx(image.mean(), abs=1e-3)
    assert np.isfinite(out).all()


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="p_noise"):
        AugmentConfig(p_noise=1.5)
    with pytest.raises(ValueError, match="scaling"):
        AugmentConfig(scaling=(1.4, 0.7))
    with pytest.raises(ValueError, match="unknown"):
        AugmentConfig.from_dict({"p_warp": 0.1})
