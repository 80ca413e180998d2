"""One out-of-memory path: predict_tiled and predict_probabilities halve with ShrinkingBatch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_dmqpm.inference.tiling import OutOfDeviceMemory, plan_tiles, predict_tiled
from napari_dmqpm.model.device import DeviceMemoryError, ShrinkingBatch


def _pixelwise(x):
    return torch.cat([torch.sigmoid(x), 1 - torch.sigmoid(x)], dim=1)


def _oom_above(limit, calls):
    """A forward that records its batch sizes and runs out of memory above ``limit`` tiles."""

    def forward(x):
        calls.append(x.shape[0])
        if x.shape[0] > limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return _pixelwise(x)

    return forward


@pytest.fixture
def image():
    return np.random.default_rng(0).normal(size=(1, 150, 150)).astype(np.float32)


def test_a_batch_that_runs_out_of_memory_is_halved_and_the_size_that_works_kept(image):
    assert len(list(plan_tiles((150, 150), tile_size=64).windows())) == 9
    calls = []
    out = predict_tiled(_oom_above(2, calls), [image], n_outputs=2, tile_size=64, batch_size=8)
    plain = predict_tiled(_pixelwise, [image], n_outputs=2, tile_size=64, batch_size=8)
    np.testing.assert_allclose(out, plain, atol=1e-6)
    # 8 fails, 4 fails, then chunks of 2 for the rest of the batch (two halves each time
    # would try 4 again: 8, 4, 2, 2, 4, 2, 2); the last batch of one tile runs as it is
    assert calls == [8, 4, 2, 2, 2, 2, 1]


def test_one_tile_out_of_memory_names_the_sizes_tried_and_what_to_do(image):
    calls = []
    with pytest.raises(OutOfDeviceMemory) as caught:
        predict_tiled(_oom_above(0, calls), [image], n_outputs=2, tile_size=64, batch_size=4)
    message = str(caught.value)
    assert "single tile of (64, 64) pixels (tried batches of 4, 2, 1 tiles" in message
    assert message.endswith("lower tile_size or use device='cpu'")
    assert calls == [4, 2, 1]


def test_predict_probabilities_shrinking_batch_is_the_one_used_by_the_tiler(image):
    # predict_probabilities passes its ShrinkingBatch: the tiler does not wrap it again, and a
    # single tile's failure reaches predict_probabilities (its CPU fallback) as it is
    calls = []
    shrinking = ShrinkingBatch(_oom_above(0, calls), torch.device("cpu"), 4)
    with pytest.raises(DeviceMemoryError):
        predict_tiled(shrinking, [image], n_outputs=2, tile_size=64, batch_size=4)
    assert calls == [4, 2, 1] and shrinking.failed == [4, 2, 1]
