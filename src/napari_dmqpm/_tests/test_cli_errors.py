"""A user's error is one line; a bug shows its traceback (#15 item 5)."""

from __future__ import annotations

import pytest
import torch

import napari_dmqpm.io
from napari_dmqpm.cli import main
from napari_dmqpm.inference.backends.runtimes import BackendNotInstalledError
from napari_dmqpm.inference.batch import SchedulerConnectError
from napari_dmqpm.model.device import DeviceUnavailableError, resolve_device


def _raising(error):
    def describe_file(*args, **kwargs):
        raise error

    return describe_file


@pytest.mark.parametrize(
    "error",
    [
        ValueError("x.tif: not a TIFF file"),
        FileNotFoundError(2, "No such file or directory", "x.tif"),
        MemoryError(),
        torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        SchedulerConnectError("could not reach the dask scheduler at 'tcp://a:1'"),
        BackendNotInstalledError("backend 'openvino' is not installed: pip install openvino"),
        DeviceUnavailableError("device='cuda' was requested but no CUDA GPU is available"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_an_error_of_the_input_or_the_machine_is_one_line(error, monkeypatch, capsys):
    monkeypatch.setattr(napari_dmqpm.io, "describe_file", _raising(error))
    assert main(["info", "x.tif"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dmqpm info: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "error",
    [RuntimeError("mat1 and mat2 shapes cannot be multiplied"), TypeError("'NoneType'"),
     KeyError("frame")],
    ids=lambda error: type(error).__name__,
)  # fmt: skip
def test_a_bug_shows_its_traceback_and_leaves_no_empty_out_folder(error, monkeypatch, tmp_path):
    from napari_dmqpm.inference import batch

    def broken(*args, **kwargs):
        raise error

    monkeypatch.setattr(batch, "iter_segment_files", broken)
    out = tmp_path / "new" / "out"
    with pytest.raises(type(error)):
        main(["segment", str(tmp_path / "a.tif"), "--out", str(out)])
    assert not (tmp_path / "new").exists()


def test_debug_shows_the_traceback_of_a_user_error_too(monkeypatch):
    monkeypatch.setattr(napari_dmqpm.io, "describe_file", _raising(ValueError("bad")))
    with pytest.raises(ValueError, match="bad"):
        main(["--debug", "info", "x.tif"])


def test_an_unavailable_device_is_its_own_error_type():
    if torch.cuda.device_count() > 8:
        pytest.skip("a machine with more than 8 GPUs")
    with pytest.raises(DeviceUnavailableError, match="cuda:9"):
        resolve_device("cuda:9")


def test_package_notes_show_what_a_long_step_does_as_one_line_while_the_command_runs(capsys):
    import logging

    from napari_dmqpm.cli._errors import package_notes

    log = logging.getLogger("napari_dmqpm.inference.backends")
    with package_notes("segment"):
        log.info("preparing openvino for model 'x'")
        log.debug("not for users")
    log.info("after the command")
    assert capsys.readouterr().err == "dmqpm segment: note: preparing openvino for model 'x'\n"
