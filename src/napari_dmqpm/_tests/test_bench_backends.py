"""benchmarks/bench_backends.py forces one backend on every network of the path, then lets go."""

from __future__ import annotations

import numpy as np
import pytest

import napari_dmqpm.inference.predict as predict_module
from napari_dmqpm.inference import InferenceConfig, predict_probabilities
from napari_dmqpm.model import DMQPMNet, ModelConfig

#: The script under test (the ``bench`` fixture of conftest imports it).
BENCHMARK = "bench_backends"


def test_torch_is_always_a_contender_and_comes_first(bench):
    assert bench.contenders()[0] == ("torch", "float32")


def test_forcing_runs_the_contender_and_restores_the_choice(bench, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    monkeypatch.setenv("NAPARI_DMQPM_MODELS", str(tmp_path))
    net = DMQPMNet(ModelConfig(features=(4, 8, 16), strides=(1, 2, 2), n_heads=2, fusion_stage=1))
    rng = np.random.default_rng(0)
    angles = rng.uniform(500, 3000, (4, 32, 48)).astype(np.float32)
    phase = rng.normal(size=(32, 48)).astype(np.float32)
    config = InferenceConfig(diameter_px=None)  # auto: torch for a network in memory
    original = predict_module.engine_for
    with bench.forcing(("onnxruntime", "float32")):
        forced = predict_probabilities(net.eval(), angles=angles, phase=phase, config=config)
    assert predict_module.engine_for is original
    plain = predict_probabilities(net, angles=angles, phase=phase, config=config)
    assert (forced.backend, plain.backend) == ("onnxruntime", "torch")
    np.testing.assert_allclose(forced.classes, plain.classes, atol=1e-4)


def test_the_camera_frame_is_the_acquisitions_first_frame_as_a_raw_mosaic(bench, tmp_path):
    import tifffile

    from napari_dmqpm.io import read_acquisition
    from napari_dmqpm.simulation import SimulationConfig, simulate_field

    acquisition = simulate_field(SimulationConfig(shape=(48, 64)), rng=4).to_acquisition()
    raw = bench.camera_mosaic(acquisition)
    assert raw.shape == (96, 128) and raw.dtype == np.uint16
    tifffile.imwrite(tmp_path / "frame.tif", raw)
    read = read_acquisition(tmp_path / "frame.tif")
    assert read.frame_shape == (48, 64) and read.angles is not None
    np.testing.assert_allclose(  # each angle back in its place, to the 12-bit rounding
        np.asarray(read.angles[0]), np.asarray(acquisition.angles[0]), atol=0.5
    )
