"""The accelerator path of predict_probabilities: batch sizing, out-of-memory, CPU fallback.

Out-of-memory is simulated on the CPU by patching the network's forward; the CPU fallback by
making the CPU count as an accelerator. Tests that need a real GPU skip without one.
"""

import numpy as np
import pytest
import torch

from napari_dmqpm.inference import InferenceConfig, OutOfDeviceMemory, predict_probabilities
from napari_dmqpm.inference import predict as predict_module
from napari_dmqpm.model import device as device_module
from napari_dmqpm.model.device import DeviceFallbackWarning

# tiled, at 50 % overlap and batches of 4 (the tile and batch counts below assume them)
CONFIG = InferenceConfig(tile_size=32, overlap=0.5, whole_frame_px=0, batch_size=4, device="cpu")


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    angles = rng.uniform(500, 3000, size=(4, 48, 60)).astype(np.float32)
    phase = rng.normal(0, 1, size=(48, 60)).astype(np.float32)
    return {"angles": angles, "phase": phase}


def fail_above(net, limit, sizes):
    """Make ``net`` raise CUDA's out-of-memory error for batches larger than ``limit``."""
    original = net.forward

    def forward(angles, phase):
        sizes.append(angles.shape[0])
        if angles.shape[0] > limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.50 GiB")
        return original(angles, phase)

    net.forward = forward


def test_out_of_memory_halves_the_batch_and_runs_the_same_tiles(helpers, frame):
    plain = predict_probabilities(helpers.tiny_net(), **frame, config=CONFIG)
    net, sizes = helpers.tiny_net(), []
    fail_above(net, 1, sizes)
    shrunk = predict_probabilities(net, **frame, config=CONFIG)
    # 48 x 60 in 32-pixel tiles at 50 % overlap: 2 x 3 tiles, batches of 4
    assert sizes == [4, 2, 1, 1, 1, 1, 1, 1]  # every tile ran once, the size kept
    np.testing.assert_allclose(shrunk.classes, plain.classes, atol=1e-5)


def test_the_cpu_fallback_equals_a_cpu_run(helpers, frame, monkeypatch):
    config = CONFIG.replace(overlap=0.25)
    plain = predict_probabilities(helpers.tiny_net(), **frame, config=config)
    net, sizes = helpers.tiny_net(), []
    fail_above(net, 0, sizes)
    monkeypatch.setattr(predict_module, "_is_accelerator", lambda device: True)
    expected = (
        r"out of memory on cpu with a single tile of \(32, 32\) pixels \(tried batches of "
        r"4, 2, 1 tiles; CUDA out of memory.*\); finishing this frame on the CPU.*tile_size=32"
    )
    with pytest.warns(DeviceFallbackWarning, match=expected):
        fallback = predict_probabilities(net, **frame, config=config)
    assert sizes == [4, 2, 1]  # then the CPU copy, without the failing forward, did the work
    np.testing.assert_array_equal(fallback.classes, plain.classes)
    assert net.forward is not None and next(net.parameters()).device.type == "cpu"


def test_without_fallback_one_tile_too_many_is_an_error(helpers, frame, monkeypatch):
    net = helpers.tiny_net()
    fail_above(net, 0, [])
    monkeypatch.setattr(predict_module, "_is_accelerator", lambda device: True)
    with pytest.raises(
        OutOfDeviceMemory,
        match=r"tile of \(32, 32\).*tile_size \(now 32\) or whole_frame_px or use",
    ):
        predict_probabilities(net, **frame, config=CONFIG.replace(cpu_fallback=False))
    monkeypatch.undo()
    with pytest.raises(
        OutOfDeviceMemory, match=r"on cpu .*\(now 32\) or whole_frame_px$"
    ):  # nowhere to go
        predict_probabilities(net, **frame, config=CONFIG)


def test_the_batch_is_sized_to_the_free_memory(helpers, frame, monkeypatch):
    net, sizes = helpers.tiny_net(), []
    fail_above(net, 99, sizes)
    tile = device_module.estimate_tile_bytes(net.config, (32, 32))
    free = (4 * tile + device_module.RESERVE_BYTES) / device_module.MEMORY_FRACTION
    monkeypatch.setattr(device_module, "free_memory_bytes", lambda device: int(free) + 1)
    predict_probabilities(net, **frame, config=CONFIG.replace(batch_size=None))
    assert sizes == [4, 2]
    sizes.clear()
    predict_probabilities(net, **frame, config=CONFIG.replace(batch_size=2))
    assert set(sizes) == {2}  # a given batch size is an upper bound


def test_torch_compile_flag(helpers, frame, monkeypatch):
    compiled = []

    def fake_compile(module, **options):
        compiled.append(options)
        return module

    monkeypatch.setattr(torch, "compile", fake_compile)
    net = helpers.tiny_net()
    eager = predict_probabilities(net, **frame, config=CONFIG)
    assert compiled == []  # off by default
    result = predict_probabilities(net, **frame, config=CONFIG.replace(torch_compile=True))
    assert compiled == [{"dynamic": False}]
    np.testing.assert_array_equal(result.classes, eager.classes)


def test_amp_dtype_choice(monkeypatch):
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    monkeypatch.setattr(predict_module, "autocast_dtype", lambda device: torch.bfloat16)
    assert predict_module._amp_dtype(InferenceConfig(), cuda) is torch.bfloat16
    assert predict_module._amp_dtype(InferenceConfig(amp="float16"), cuda) is torch.float16
    assert predict_module._amp_dtype(InferenceConfig(amp="off"), cuda) is None
    assert predict_module._amp_dtype(InferenceConfig(amp="bfloat16"), cpu) is None


def test_config_options_round_trip():
    config = InferenceConfig(batch_size=None, torch_compile=True, cpu_fallback=False)
    assert InferenceConfig.from_dict(config.to_dict()) == config
    assert InferenceConfig().batch_size is None and not InferenceConfig().torch_compile
    for name in ("torch_compile", "cpu_fallback"):
        with pytest.raises(ValueError, match=f"{name} must be True or False"):
            InferenceConfig(**{name: 1})


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_the_cpu(helpers, frame):
    cpu = predict_probabilities(helpers.tiny_net(), **frame, config=CONFIG)
    net = helpers.tiny_net().to("cuda")
    gpu = predict_probabilities(
        net, **frame, config=InferenceConfig(tile_size=32, whole_frame_px=0)
    )
    np.testing.assert_allclose(gpu.classes, cpu.classes, atol=2e-2)
    full = predict_probabilities(
        net, **frame, config=InferenceConfig(tile_size=32, whole_frame_px=0, amp="off")
    )
    np.testing.assert_allclose(full.classes, cpu.classes, atol=1e-4)


@pytest.mark.skipif(
    not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()),
    reason="needs Apple MPS",
)
def test_mps_matches_the_cpu(helpers, frame):
    cpu = predict_probabilities(helpers.tiny_net(), **frame, config=CONFIG)
    gpu = predict_probabilities(helpers.tiny_net().to("mps"), **frame, config=CONFIG)
    np.testing.assert_allclose(gpu.classes, cpu.classes, atol=1e-4)
