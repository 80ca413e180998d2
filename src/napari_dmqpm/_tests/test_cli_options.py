"""The options of ``dmqpm`` reach the core's configs, and default to what the configs do."""

from __future__ import annotations

import argparse
import dataclasses
import inspect

import pytest

from napari_dmqpm.cli import main
from napari_dmqpm.inference import batch
from napari_dmqpm.inference.config import BACKEND_CHOICES, DEVICE_CHOICES, InferenceConfig


@pytest.fixture
def seen_configs(monkeypatch):
    """Replace the batch segmentation with a fake that records the InferenceConfig it gets."""
    configs = []

    def fake_iter_segment_files(inputs, *, config, **options):
        configs.append(config)
        yield from ()

    monkeypatch.setattr(batch, "iter_segment_files", fake_iter_segment_files)
    return configs


@pytest.mark.parametrize("backend", BACKEND_CHOICES)
def test_segment_backend_reaches_the_inference_config(backend, tmp_path, seen_configs):
    status = main(["segment", str(tmp_path / "a.tif"), "--out", str(tmp_path / "out"),
                   "--backend", backend])  # fmt: skip
    assert status == 0
    assert [config.backend for config in seen_configs] == [backend]


def test_segment_backend_defaults_to_the_config_default(tmp_path, seen_configs):
    assert main(["segment", str(tmp_path / "a.tif"), "--out", str(tmp_path / "out")]) == 0
    assert seen_configs[0].backend == "auto"


def test_an_unknown_backend_is_one_line_naming_the_flag_and_the_choices(tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["segment", str(tmp_path / "a.tif"), "--out", str(tmp_path), "--backend", "tvm"])
    assert stopped.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--backend" in error and "'tvm'" in error
    assert all(choice in error for choice in BACKEND_CHOICES)


def _options(command: str) -> dict:
    """Option string -> its argparse action, for one sub-command of ``dmqpm``."""
    from napari_dmqpm.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {flag: action for action in commands.choices[command]._actions
            for flag in action.option_strings}  # fmt: skip


def _default(function, name):
    return inspect.signature(function).parameters[name].default


def test_segment_defaults_and_choices_are_the_inference_config_s():
    fields = {field.name: field.default for field in dataclasses.fields(InferenceConfig)}
    options = _options("segment")
    assert options["--device"].choices == DEVICE_CHOICES
    assert options["--backend"].choices == BACKEND_CHOICES
    for flag, name in [("--device", "device"), ("--backend", "backend"), ("--tta", "tta"),
                       ("--diameter", "diameter_px"), ("--batch-size", "batch_size")]:  # fmt: skip
        assert options[flag].default == fields[name], flag
    assert f"re-checked every {fields['recheck_every']} frames" in options["--diameter"].help


def test_pool_and_reader_defaults_are_the_core_s():
    from napari_dmqpm import io
    from napari_dmqpm.io.mosaic import DEMOSAIC_METHODS

    options = _options("segment")
    for flag, name in [("--workers", "workers"), ("--retries", "retries"),
                       ("--connect-timeout", "connect_timeout"),
                       ("--alpha", "alpha_um3_per_pg")]:  # fmt: skip
        assert options[flag].default == _default(batch.iter_segment_files, name), flag
    assert options["--alpha"].default == _default(io.read_acquisition, "alpha_um3_per_pg")
    assert options["--kind"].choices == io.FILE_KINDS
    assert options["--phase-unit"].choices == io.PHASE_UNITS
    assert options["--demosaic-method"].choices == DEMOSAIC_METHODS
    assert options["--demosaic-method"].default == _default(io.read_acquisition, "demosaic_method")
    assert tuple(options["--mosaic-origin"].default) == _default(
        io.read_acquisition, "mosaic_origin"
    )


def test_train_finetune_simulate_evaluate_defaults_are_the_core_s():
    from napari_dmqpm.cli._finetune import FINETUNE_DEFAULTS
    from napari_dmqpm.cli._simulate import SIMULATE_DEFAULTS
    from napari_dmqpm.simulation.config import DENSITY_PRESETS
    from napari_dmqpm.simulation.dataset import write_dataset, write_growth_dataset
    from napari_dmqpm.training.config import DEVICES, TrainConfig
    from napari_dmqpm.training.finetune import finetune_config
    from napari_dmqpm.training.metrics import evaluate_folders

    assert _options("train")["--device"].choices == DEVICES
    assert TrainConfig().device in DEVICES
    tune = _options("finetune")
    assert tune["--device"].choices == DEVICES
    for name, value in FINETUNE_DEFAULTS.items():
        assert value == _default(finetune_config, name), name
    assert tune["--lr"].default == _default(finetune_config, "learning_rate")
    assert tune["--device"].default == _default(finetune_config, "device")
    simulate = _options("simulate")
    assert simulate["--frames"].default == _default(write_dataset, "n_frames")
    assert SIMULATE_DEFAULTS["frame_interval_min"] == _default(
        write_growth_dataset, "frame_interval_min"
    )
    assert all(name in simulate["--density"].help for name in DENSITY_PRESETS)
    assert _options("evaluate")["--iou"].default == _default(evaluate_folders, "iou_threshold")
