"""The options of ``dmqpm`` reach the core's configs, and default to what the configs do."""

from __future__ import annotations

import pytest

from napari_dmqpm.cli import main
from napari_dmqpm.inference import batch
from napari_dmqpm.inference.config import BACKEND_CHOICES


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
