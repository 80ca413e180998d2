"""The backend layer: export cache, auto selection, the reference check and its fallback."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from napari_dmqpm.inference import InferenceConfig, backends, predict_probabilities
from napari_dmqpm.inference.backends import (
    BackendNotInstalledError,
    BackendWarning,
    clear_engine_cache,
    engine_for,
    resolve_backend,
)
from napari_dmqpm.inference.backends import export as export_module
from napari_dmqpm.inference.backends.export import (
    ensure_export,
    export_key,
    exports_dir,
    min_side,
    read_record,
)
from napari_dmqpm.model import save_checkpoint
from napari_dmqpm.model.registry import load_model

CPU = torch.device("cpu")
KEEP_AUTO_BACKEND = True  # these tests choose the runtimes themselves (conftest.py)


@pytest.fixture(autouse=True)
def _fresh_engines():
    clear_engine_cache()
    yield
    clear_engine_cache()


def _installed(monkeypatch, *names):
    monkeypatch.setattr(backends, "is_installed", lambda b: b == "torch" or b in names)
    monkeypatch.setattr(backends, "require", lambda b: None)


@pytest.mark.parametrize(
    ("installed", "device", "expected"),
    [
        (("openvino", "onnxruntime"), "cpu", "openvino"),
        (("onnxruntime",), "cpu", "onnxruntime"),
        ((), "cpu", "torch"),
        (("openvino", "onnxruntime"), "cuda", "torch"),
        (("openvino", "onnxruntime"), "mps", "torch"),
    ],
)
def test_auto_picks_openvino_then_onnxruntime_on_cpu_and_torch_on_accelerators(
    monkeypatch, installed, device, expected
):
    _installed(monkeypatch, *installed)
    assert resolve_backend("auto", device) == expected
    assert resolve_backend("torch", device) == "torch"


def test_an_explicit_backend_that_is_missing_names_the_package_and_the_pip_command(monkeypatch):
    monkeypatch.setattr(backends.runtimes.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(BackendNotInstalledError, match=r"pip install openvino onnx"):
        resolve_backend("openvino", "cpu")
    with pytest.raises(BackendNotInstalledError, match=r"pip install onnxruntime onnx"):
        resolve_backend("onnxruntime", "cpu")
    assert resolve_backend("auto", "cpu") == "torch"  # auto never raises for a missing runtime


def test_an_explicit_runtime_backend_on_an_accelerator_is_refused(monkeypatch):
    _installed(monkeypatch, "onnxruntime")
    with pytest.raises(ValueError, match="runs on the CPU.*device='cpu'"):
        resolve_backend("onnxruntime", "cuda")


def test_auto_runs_a_network_in_memory_on_torch_without_exporting(models_dir, helpers):
    net = helpers.tiny_net()
    engine = engine_for(net, net, CPU, "auto")
    assert (engine.backend, engine.precision, engine.network) == ("torch", "float32", net)
    assert not exports_dir().exists()


def test_the_export_name_holds_the_weights_sha256_and_changes_with_the_checkpoint(
    models_dir, helpers
):
    helpers.save_tiny(models_dir / "mine", seed=0)
    first = export_key(load_model("mine", device="cpu"))
    assert first.weights_sha256 in first.onnx_path.name
    assert first.onnx_path.parent == models_dir / ".exports"
    # fine-tuned again: other weights in the same folder
    save_checkpoint(models_dir / "mine", helpers.tiny_net(seed=1), overwrite=True)
    second = export_key(load_model("mine", device="cpu"))
    assert second.weights_sha256 != first.weights_sha256
    assert second.onnx_path != first.onnx_path
    net = helpers.tiny_net(seed=0)
    in_memory = export_key(net)
    with torch.no_grad():
        next(net.parameters()).add_(1.0)
    assert export_key(net).weights_sha256 != in_memory.weights_sha256


def test_an_export_is_written_once_and_a_stale_or_corrupt_one_is_made_again(
    models_dir, helpers, monkeypatch
):
    pytest.importorskip("onnx")
    net = helpers.tiny_net()
    key = export_key(net)
    record = ensure_export(net, key)
    assert key.onnx_path.is_file() and read_record(key) == record
    assert [p.name for p in exports_dir().iterdir() if p.suffix == ".part"] == []
    calls = []
    real_export = export_module.export_onnx
    monkeypatch.setattr(export_module, "export_onnx", lambda *a: (calls.append(a), real_export(*a)))
    ensure_export(net, key)
    assert calls == []  # reused
    key.onnx_path.write_bytes(key.onnx_path.read_bytes()[:1000])  # truncated
    assert read_record(key) is None
    ensure_export(net, key)
    assert len(calls) == 1 and read_record(key) is not None
    stale = json.loads(key.record_path.read_text())
    stale["weights_sha256"] = "0" * 64
    key.record_path.write_text(json.dumps(stale))
    assert read_record(key) is None
    key.record_path.write_text("{not json")
    assert read_record(key) is None


def _tiny_loaded(models_dir, helpers, name="mine", seed=0):
    helpers.save_tiny(models_dir / name, seed=seed)
    return load_model(name, device="cpu")


def _field(shape, seed=3):
    rng = np.random.default_rng(seed)
    angles = rng.uniform(500.0, 3000.0, (4, *shape)).astype(np.float32)
    phase = rng.normal(0.0, 1.0, shape).astype(np.float32)
    return angles, phase


def test_onnxruntime_gives_torchs_probabilities_and_labels_at_sizes_that_pad_the_windows(
    models_dir, helpers, monkeypatch
):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from napari_dmqpm.inference import probabilities_to_labels

    model = _tiny_loaded(models_dir, helpers)
    assert min_side(model.network) == 16
    engine_for(model, model.network, CPU, "onnxruntime")  # exports and checks
    calls = []
    run = backends.SessionNetwork.__call__
    monkeypatch.setattr(
        backends.SessionNetwork, "__call__", lambda *a: (calls.append(a[1].shape), run(*a))[1]
    )
    # 52 // 2 = 26 and 68 // 2 = 34 are not multiples of the 8-pixel window
    for shape in ((52, 68), (40, 96)):
        angles, phase = _field(shape)
        results = {
            name: predict_probabilities(
                model, angles=angles, phase=phase,
                config=InferenceConfig(backend=name, diameter_px=None),
            )
            for name in ("torch", "onnxruntime")
        }  # fmt: skip
        want, got = results["torch"], results["onnxruntime"]
        assert (got.backend, got.precision) == ("onnxruntime", "float32")
        assert (want.backend, want.precision) == ("torch", "float32")
        np.testing.assert_allclose(got.classes, want.classes, atol=1e-4)
        np.testing.assert_array_equal(probabilities_to_labels(got), probabilities_to_labels(want))
    assert calls == [(1, 4, 52, 68), (1, 4, 40, 96)]  # the session ran the tiles
    record = json.loads(export_key(model).record_path.read_text())
    assert [r["passed"] for r in record["checks"].values()] == [True]


def _replace_export(model, other):
    """Put ``other``'s export, with a valid record, where ``model``'s export goes."""
    key = export_key(model)
    export_module.export_onnx(other, key.onnx_path)
    record = {"weights_sha256": key.weights_sha256, "checks": {}}
    record["onnx_sha256"] = export_module.file_sha256(key.onnx_path)
    export_module.write_record(key, record)
    return key


def test_an_export_that_fails_its_check_warns_and_the_model_runs_on_torch(
    models_dir, helpers, monkeypatch
):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    model = _tiny_loaded(models_dir, helpers)
    key = _replace_export(model, helpers.tiny_net(seed=7))  # other weights under its name
    angles, phase = _field((48, 64))
    config = InferenceConfig(backend="onnxruntime", diameter_px=None)
    with pytest.warns(BackendWarning, match="runs on torch instead of onnxruntime"):
        got = predict_probabilities(model, angles=angles, phase=phase, config=config)
    want = predict_probabilities(
        model, angles=angles, phase=phase, config=config.replace(backend="torch")
    )
    assert (got.backend, got.precision) == ("torch", "float32")
    np.testing.assert_array_equal(got.classes, want.classes)
    record = read_record(key)
    assert record is not None and [r["passed"] for r in record["checks"].values()] == [False]
    # the outcome is kept with the export: a new process neither checks again nor uses it
    clear_engine_cache()
    monkeypatch.setattr(backends, "compare", lambda *a, **k: pytest.fail("checked again"))
    with pytest.warns(BackendWarning):
        assert engine_for(model, model.network, CPU, "onnxruntime").backend == "torch"


def test_sessions_use_torchs_thread_count(models_dir, helpers, monkeypatch):
    onnxruntime = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    net = helpers.tiny_net()
    key = export_key(net)
    ensure_export(net, key)
    seen = []
    real = onnxruntime.InferenceSession

    def spy(path, options, **kwargs):
        seen.append(options.intra_op_num_threads)
        return real(path, options, **kwargs)

    monkeypatch.setattr(onnxruntime, "InferenceSession", spy)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        backends.open_session("onnxruntime", key.onnx_path)
    finally:
        torch.set_num_threads(before)
    assert seen == [1]


def test_a_runtime_failing_on_a_tile_warns_and_torch_finishes_the_work(helpers):
    net = helpers.tiny_net()

    def broken(feeds):
        raise RuntimeError("boom")

    runner = backends.SessionNetwork(broken, ("angles", "phase"), net)
    angles, phase = (torch.from_numpy(a) for a in _field((32, 48)))
    with torch.inference_mode():
        want = net(angles[None], phase[None, None])
        with pytest.warns(BackendWarning, match="boom"):
            got = runner(angles[None], phase[None, None])
        again = runner(angles[None], phase[None, None])  # no second warning (errors are on)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(again, want)


def test_segment_file_and_the_layer_record_say_which_backend_and_precision_ran(
    models_dir, helpers, tmp_path
):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from napari_dmqpm.inference import PostprocessConfig, segment_file
    from napari_dmqpm.io import write_stack
    from napari_dmqpm.simulation import SimulationConfig, simulate_field

    model = _tiny_loaded(models_dir, helpers)
    path = tmp_path / "cells.ome.tif"
    write_stack(path, simulate_field(SimulationConfig(shape=(48, 64)), rng=0).to_acquisition())
    for backend in ("onnxruntime", "torch"):
        out = tmp_path / backend
        out.mkdir()
        config = InferenceConfig(backend=backend, diameter_px=None)
        result = segment_file(path, out_dir=out, model=model, config=config)
        assert (result.backend, result.precision) == (backend, "float32")
    pytest.importorskip("napari")
    from napari_dmqpm._napari._widgets._outputs import segmentation_record

    record = segmentation_record(
        model,
        config=InferenceConfig(backend="onnxruntime"),
        postprocess=PostprocessConfig(),
        frames=[0],
        inputs=["phase"],
    )
    assert (record["backend"], record["precision"]) == ("onnxruntime", "float32")
    # an export that fails its check: the record says torch, not what the config asked for
    clear_engine_cache()
    _replace_export(model, helpers.tiny_net(seed=7))
    with pytest.warns(BackendWarning):
        record = segmentation_record(
            model,
            config=InferenceConfig(backend="onnxruntime"),
            postprocess=PostprocessConfig(),
            frames=[0],
            inputs=["phase"],
        )
    assert (record["backend"], record["precision"]) == ("torch", "float32")


def test_only_the_newest_exports_of_a_model_name_are_kept(models_dir, helpers):
    pytest.importorskip("onnx")
    folder = exports_dir()
    folder.mkdir()
    old = []
    for index in range(5):  # earlier exports of "network" (and one of another name)
        path = folder / f"network-{index:064d}-abcdefabcdef-opset17.onnx"
        path.write_bytes(b"old")
        path.with_suffix(".json").write_text("{}")
        os.utime(path, ns=(index * 10**9, index * 10**9))
        old.append(path)
    other = folder / "network-x-0000-abcdefabcdef-opset17.onnx"  # the model "network-x"
    other.write_bytes(b"other")
    os.utime(other, ns=(0, 0))  # the oldest: removed if taken for one of "network"'s
    net = helpers.tiny_net()
    ensure_export(net, export_key(net))
    kept = sorted(p.name for p in folder.glob("network-*.onnx"))
    newest = [p.name for p in old[-(export_module.KEEP_PER_NAME - 1) :]]
    assert kept == sorted([*newest, export_key(net).onnx_path.name, other.name])
    assert not old[0].with_suffix(".json").exists()


def test_first_use_says_what_a_first_run_does_and_engine_for_logs_it_once(
    models_dir, helpers, caplog
):
    import logging
    import warnings

    pytest.importorskip("onnxruntime")
    model = _tiny_loaded(models_dir, helpers)
    note = backends.first_use(model, "onnxruntime")
    assert note == (
        "preparing onnxruntime for model 'mine': its first run on this machine exports it to "
        "ONNX and checks it against torch (10-30 s, once)"
    )
    with caplog.at_level(logging.INFO, logger="napari_dmqpm.inference.backends"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BackendWarning)  # a tiny net may fail its check
            engine_for(model, model.network, CPU, "onnxruntime")
            engine_for(model, model.network, CPU, "onnxruntime")  # the cached engine
    logged = [r.getMessage() for r in caplog.records if r.name == backends.__name__]
    assert logged == [note]
    assert backends.first_use(model, "onnxruntime") is None  # this session has its engine
    clear_engine_cache()
    assert backends.first_use(model, "onnxruntime") is None  # a new one finds the check done
    assert backends.first_use(model, "torch") is None
    assert backends.first_use(helpers.tiny_net(), "onnxruntime") is None  # in memory: torch
