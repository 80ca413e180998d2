"""The network-work arithmetic of benchmarks/bench_inference.py's cost-against-size table."""

from __future__ import annotations

import pytest

from napari_dmqpm.inference import InferenceConfig
from napari_dmqpm.model import DMQPMNet, ModelConfig

#: The script under test (the ``bench`` fixture of conftest imports it).
BENCHMARK = "bench_inference"
#: A tiny network with a strided stem: divisor 32, like dmqpm-fast.
MODEL = DMQPMNet(ModelConfig(features=(4, 8, 16, 32, 32), strides=(2, 2, 2, 2, 2)))


def test_a_camera_frame_is_one_tile_padded_to_the_divisor(bench):
    n_tiles, computed = bench.network_work(MODEL, (1024, 1224), InferenceConfig())
    assert n_tiles == 1 and computed == pytest.approx(1024 * 1248 / 1e6)


def test_a_frame_above_whole_frame_px_counts_its_overlapping_tiles(bench):
    # 2048 px in 512 px tiles sharing at least 25 %: 5 starts per axis (7 at 50 %)
    n_tiles, computed = bench.network_work(MODEL, (2048, 2048), InferenceConfig())
    assert n_tiles == 25 and computed == pytest.approx(25 * 512 * 512 / 1e6)
    n_tiles, _ = bench.network_work(MODEL, (2048, 2048), InferenceConfig(overlap=0.5))
    assert n_tiles == 49
