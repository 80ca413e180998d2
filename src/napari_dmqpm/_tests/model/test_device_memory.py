"""Accelerator memory helpers of model/device.py, on the CPU with faked CUDA/MPS queries."""

import dataclasses
import math

import pytest
import torch

from napari_dmqpm.model import DMQPMNet, ModelConfig, device
from napari_dmqpm.model.device import (
    ACTIVATION_BYTES,
    CPU_BATCH_SIZE,
    MAX_AUTO_BATCH,
    MEMORY_FRACTION,
    MEMORY_SAFETY,
    RESERVE_BYTES,
    WORKING_MAPS,
    DeviceFallbackWarning,
    DeviceMemoryError,
    ShrinkingBatch,
    batch_size_for_memory,
    choose_batch_size,
    compiled_or_eager,
    cpu_copy,
    estimate_tile_bytes,
    free_memory_bytes,
    is_out_of_memory,
)

GIB = 2**30
TINY = ModelConfig(features=(4, 8, 16), strides=(1, 2, 2), n_heads=2, fusion_stage=1)


def fake_cuda(monkeypatch, *, free, reserved=0, allocated=0):
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda dev=None: (free, 80 * GIB))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda dev=None: reserved)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda dev=None: allocated)


def test_tile_bytes_follow_the_documented_formula():
    # early fusion, 3 stages at 1, 2, 4: skips 4 + 8/4 + 16/16 = 7 maps, plus working maps,
    # 5 input channels and twice the 3 outputs
    early = dataclasses.replace(TINY, fusion="early")
    maps = 7 + WORKING_MAPS * 4 + 5 + 2 * 3
    expected = math.ceil(MEMORY_SAFETY * ACTIVATION_BYTES * 64 * 32 * maps)
    assert estimate_tile_bytes(early, (64, 32)) == expected
    # the dual encoder keeps three maps (angle, phase, merged) up to the fusion stage (1)
    dual_maps = maps + 2 * (4 + 8 / 4)
    assert estimate_tile_bytes(TINY, (64, 32)) == math.ceil(
        MEMORY_SAFETY * ACTIVATION_BYTES * 64 * 32 * dual_maps
    )


def test_tile_bytes_of_a_strided_stem_count_stage_0_at_half_resolution():
    early = dataclasses.replace(TINY, fusion="early", strides=(2, 2, 2))
    # skips 4/4 + 8/16 + 16/64, working maps at 1/4, inputs and outputs at full resolution
    maps = 4 / 4 + 8 / 16 + 16 / 64 + WORKING_MAPS * 4 / 4 + 5 + 2 * 3
    expected = math.ceil(MEMORY_SAFETY * ACTIVATION_BYTES * 64 * 32 * maps)
    assert estimate_tile_bytes(early, (64, 32)) == expected


def test_tile_bytes_grow_with_the_area_and_the_widths():
    small, large = estimate_tile_bytes(TINY, (256, 256)), estimate_tile_bytes(TINY, (512, 512))
    assert large == pytest.approx(4 * small, rel=1e-6)
    wide = dataclasses.replace(TINY, features=(8, 16, 32))
    assert estimate_tile_bytes(wide, (256, 256)) > 1.7 * small
    with pytest.raises(ValueError, match=r"tile_shape must be two positive sizes; got .*\(0, 5\)"):
        estimate_tile_bytes(TINY, (0, 5))


def test_batch_size_arithmetic():
    tile = GIB // 4
    free = 10 * GIB
    expected = int((MEMORY_FRACTION * free - RESERVE_BYTES) // tile)
    assert batch_size_for_memory(tile, free, limit=100) == expected == 30
    assert batch_size_for_memory(tile, free, limit=8) == 8
    assert batch_size_for_memory(tile, 0, limit=8) == 1  # always try one tile
    assert batch_size_for_memory(tile, free, limit=100, fraction=0.5, reserve_bytes=0) == 20
    with pytest.raises(ValueError, match="tile_bytes >= 1"):
        batch_size_for_memory(0, free, limit=4)


def test_free_memory_on_cuda_counts_the_allocator_cache(monkeypatch):
    fake_cuda(monkeypatch, free=10 * GIB, reserved=3 * GIB, allocated=1 * GIB)
    assert free_memory_bytes("cuda") == 12 * GIB
    assert free_memory_bytes(torch.device("cuda:0")) == 12 * GIB
    assert free_memory_bytes("cpu") is None


def test_free_memory_on_mps(monkeypatch):
    monkeypatch.setattr(torch.mps, "recommended_max_memory", lambda: 16 * GIB, raising=False)
    monkeypatch.setattr(torch.mps, "driver_allocated_memory", lambda: 6 * GIB, raising=False)
    assert free_memory_bytes("mps") == 10 * GIB

    def unknown():
        raise RuntimeError("MPS is not available")

    monkeypatch.setattr(torch.mps, "driver_allocated_memory", unknown)
    assert free_memory_bytes("mps") is None


def test_choose_batch_size_from_a_fake_mem_get_info(monkeypatch):
    config = ModelConfig()
    tile = estimate_tile_bytes(config, (512, 512))
    assert choose_batch_size(config, (512, 512), device="cpu") == CPU_BATCH_SIZE
    assert choose_batch_size(config, (512, 512), device="cpu", requested=7) == 7
    fake_cuda(monkeypatch, free=8 * GIB)
    expected = int((MEMORY_FRACTION * 8 * GIB - RESERVE_BYTES) // tile)
    assert 1 < expected < MAX_AUTO_BATCH
    assert choose_batch_size(config, (512, 512), device="cuda") == expected
    assert choose_batch_size(config, (512, 512), device="cuda", requested=2) == 2
    fake_cuda(monkeypatch, free=80 * GIB)
    assert choose_batch_size(config, (512, 512), device="cuda") == MAX_AUTO_BATCH
    fake_cuda(monkeypatch, free=GIB // 2)
    assert choose_batch_size(config, (512, 512), device="cuda", requested=16) == 1


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), True),
        (RuntimeError("MPS backend out of memory (MPS allocated: 17.5 GB)"), True),
        (RuntimeError("[enforce fail] DefaultCPUAllocator: can't allocate memory"), True),
        (RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED"), True),
        (MemoryError(), True),
        (RuntimeError("Given groups=1, weight of size [4, 5, 3, 3]"), False),
        (ValueError("out of memory"), False),
    ],
)
def test_is_out_of_memory(error, expected):
    assert is_out_of_memory(error) is expected


def oom_above(limit, calls, *, error=torch.OutOfMemoryError):
    def forward(x, unused):
        calls.append(x.shape[0])
        if x.shape[0] > limit:
            raise error("CUDA out of memory. Tried to allocate 1.00 GiB")
        return 2 * x

    return forward


def test_shrinking_batch_halves_and_keeps_the_size_that_works(monkeypatch):
    emptied = []
    monkeypatch.setattr(device, "empty_cache", emptied.append)
    calls = []
    run = ShrinkingBatch(oom_above(2, calls), torch.device("cpu"), 8)
    x = torch.arange(5.0).reshape(5, 1, 1, 1)
    assert torch.equal(run(x, None), 2 * x)
    assert calls == [5, 2, 2, 1]  # 5 failed, then the same samples in chunks of 2
    assert run.failed == [5] and run.batch_size == 2 and len(emptied) == 1
    calls.clear()
    assert torch.equal(run(x[:4], None), 2 * x[:4])
    assert calls == [2, 2]  # no new failure


def test_shrinking_batch_gives_up_at_one_sample():
    calls = []
    run = ShrinkingBatch(oom_above(0, calls), torch.device("cpu"), 4)
    with pytest.raises(DeviceMemoryError) as caught:
        run(torch.zeros(4, 5, 32, 48), None)
    message = str(caught.value)
    assert "out of memory on cpu with a single tile of (32, 48) pixels" in message
    assert "tried batches of 4, 2, 1 tiles" in message and "Tried to allocate" in message
    assert calls == [4, 2, 1]


def test_shrinking_batch_lets_other_errors_through():
    run = ShrinkingBatch(oom_above(0, [], error=ValueError), torch.device("cpu"), 4)
    with pytest.raises(ValueError, match="CUDA out of memory"):
        run(torch.zeros(2, 1, 4, 4), None)
    assert run.failed == []


def test_compiled_or_eager_uses_the_compiled_module(monkeypatch):
    calls = []

    def fake_compile(module, **options):
        assert options == {"dynamic": False}
        return lambda *args: calls.append(args) or module(*args) + 1

    monkeypatch.setattr(torch, "compile", fake_compile)
    forward = compiled_or_eager(lambda x: 2 * x)
    assert forward(torch.ones(1)).item() == 3 and len(calls) == 1


def test_compiled_or_eager_falls_back_once_with_a_warning(monkeypatch):
    def broken(*args):
        raise RuntimeError("InductorError: no working C++ compiler found")

    monkeypatch.setattr(torch, "compile", lambda module, **options: broken)
    forward = compiled_or_eager(lambda x: 2 * x)
    with pytest.warns(DeviceFallbackWarning, match="torch.compile failed.*C\\+\\+ compiler"):
        assert forward(torch.ones(1)).item() == 2
    assert forward(torch.ones(1)).item() == 2  # no second warning (pytest -W error)


def test_cpu_copy_keeps_weights_mode_and_random_state():
    torch.manual_seed(3)
    net = DMQPMNet(TINY).eval()
    state = torch.get_rng_state()
    clone = cpu_copy(net)
    assert torch.equal(torch.get_rng_state(), state)
    assert clone is not net and not clone.training
    for key, value in net.state_dict().items():
        assert torch.equal(clone.state_dict()[key], value)
    x = (torch.rand(1, 4, 16, 16), torch.rand(1, 1, 16, 16))
    with torch.inference_mode():
        assert torch.equal(clone(*x), net(*x))
    other = torch.nn.Conv2d(1, 1, 1).train()
    copied = cpu_copy(other)
    assert copied is not other and copied.training
    assert torch.equal(copied.weight, other.weight)
