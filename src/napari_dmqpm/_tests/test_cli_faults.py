"""Hostile inputs and faults give one line naming the file, the flag and the problem (issue 18).

Each case runs ``dmqpm`` in process and checks the exit status, that stderr is one line
(no traceback) and what that line says; none trains a model or reads a whole file first.
"""

from __future__ import annotations

import errno
import tempfile

import numpy as np
import pytest
import tifffile

from napari_dmqpm.cli import main


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


@pytest.fixture
def user_models(tmp_path, monkeypatch):
    from napari_dmqpm.model.registry import MODELS_ENV, clear_model_cache

    monkeypatch.setenv(MODELS_ENV, str(tmp_path / "user_models"))
    clear_model_cache()
    yield tmp_path / "user_models"
    clear_model_cache()


@pytest.fixture
def finetune_args(tmp_path):
    """A tiny phase map with labels and a tiny phase-only base model."""
    import torch

    from napari_dmqpm.model import DMQPMNet, ModelConfig, save_checkpoint

    phase = np.zeros((64, 64), np.float32)
    labels = np.zeros((64, 64), np.uint16)
    phase[10:30, 10:30], labels[10:30, 10:30] = 1.0, 1
    tifffile.imwrite(tmp_path / "cells.tif", phase)
    tifffile.imwrite(tmp_path / "cells_labels.tif", labels)
    torch.manual_seed(0)
    config = ModelConfig(inputs="phase", fusion="early", features=(4, 8, 16, 32, 32))
    base = save_checkpoint(tmp_path / "base", DMQPMNet(config), extra={"postprocessing": {}})
    return ["finetune", "--image", str(tmp_path / "cells.tif"), "--labels",
            str(tmp_path / "cells_labels.tif"), "--out", str(tmp_path / "run"),
            "--model", str(base), "--epochs", "1", "--device", "cpu"]  # fmt: skip


# --- item 8: a --name that cannot be installed is refused before training ---


def test_an_existing_name_is_refused_before_training(tmp_path, user_models, finetune_args, capsys):
    (user_models / "mine").mkdir(parents=True)
    assert main([*finetune_args, "--name", "mine"]) == 2
    err = _one_line(capsys)
    assert "a user model named 'mine' exists" in err and "choose another --name" in err
    assert "overwrite=True" not in err
    assert not (tmp_path / "run").exists()  # nothing trained


def test_a_user_models_folder_that_cannot_be_written_is_refused_before_training(
    tmp_path, monkeypatch, finetune_args, capsys
):
    from napari_dmqpm.model.registry import MODELS_ENV

    (tmp_path / "a_file").write_text("")
    monkeypatch.setenv(MODELS_ENV, str(tmp_path / "a_file" / "models"))
    assert main([*finetune_args, "--name", "mine"]) == 2
    err = _one_line(capsys)
    assert f"cannot install a user model in {tmp_path / 'a_file' / 'models'}" in err
    assert MODELS_ENV in err and not (tmp_path / "run").exists()


def test_a_read_only_user_models_folder_is_refused_before_training(
    tmp_path, user_models, monkeypatch, finetune_args, capsys
):
    def read_only(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    assert main([*finetune_args, "--name", "mine"]) == 2
    err = _one_line(capsys)
    assert f"cannot install a user model in {user_models} (Permission denied)" in err
    assert not (tmp_path / "run").exists()


def test_an_invalid_name_names_the_flag(finetune_args, user_models, capsys):
    assert main([*finetune_args, "--name", "../x"]) == 2
    assert "--name must be 1-100 letters" in _one_line(capsys)


# --- item 7: faults of the machine and hostile files, one line each ---


def _full_disk(monkeypatch, after_bytes=100):
    """Writes through tifffile fail with ENOSPC after a few bytes, as on a full disk."""

    def write(self, *args, **kwargs):
        self._fh.write(b"\0" * after_bytes)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tifffile.TiffWriter, "write", write)


def _no_partial_files(folder):
    return [p.name for p in folder.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]


def test_a_full_disk_in_simulate_is_one_line_naming_the_file(tmp_path, monkeypatch, capsys):
    _full_disk(monkeypatch)
    out = tmp_path / "sim"
    assert main(["simulate", "--out", str(out), "--n", "1", "--size", "32", "32"]) == 2
    err = _one_line(capsys)
    assert f"{out / 'sim_0000.tif'}: No space left on device" in err
    assert not out.exists() or not _no_partial_files(out)


def test_a_full_disk_in_segment_is_one_line_naming_the_file(tmp_path, monkeypatch, capsys):
    phase = tmp_path / "cells.tif"
    tifffile.imwrite(phase, np.zeros((64, 64), np.float32))
    _full_disk(monkeypatch)
    out = tmp_path / "out"
    args = ["segment", str(phase), "--out", str(out), "--model", "phase-only", "--device",
            "cpu", "--diameter", "20", "--phase-unit", "rad"]  # fmt: skip
    assert main(args) == 2
    err = _one_line(capsys)
    assert "No space left on device" in err and str(out / "cells_labels.tif") in err
    assert not _no_partial_files(out)


def _short_write(monkeypatch, free_bytes):
    """numpy's tofile on a full disk: a short write without an errno, as tifffile raises it."""
    import os
    import types

    def write(self, *args, **kwargs):
        self._fh.write(b"\0" * 100)
        raise OSError("327680 requested and 100 written")

    monkeypatch.setattr(tifffile.TiffWriter, "write", write)
    room = types.SimpleNamespace(f_bavail=free_bytes // 4096, f_frsize=4096)
    monkeypatch.setattr(os, "statvfs", lambda path: room)


@pytest.mark.parametrize("command", ["simulate", "segment"])
def test_a_short_write_on_a_full_disk_is_one_line_naming_the_file(
    tmp_path, monkeypatch, capsys, command
):
    phase = tmp_path / "cells.tif"
    tifffile.imwrite(phase, np.zeros((64, 64), np.float32))
    _short_write(monkeypatch, free_bytes=0)
    out = tmp_path / "out"
    args = {"simulate": ["simulate", "--out", str(out), "--n", "1", "--size", "32", "32"],
            "segment": ["segment", str(phase), "--out", str(out), "--model", "phase-only",
                        "--device", "cpu", "--diameter", "20", "--phase-unit", "rad"]}  # fmt: skip
    assert main(args[command]) == 2
    err = _one_line(capsys)
    target = out / ("sim_0000.tif" if command == "simulate" else "cells_labels.tif")
    assert err.endswith(
        f"error: {target}: No space left on device (100 of 327680 bytes of a write stored)"
    )
    assert not out.exists() or not _no_partial_files(out)


def test_a_short_write_with_room_left_is_named_as_such(tmp_path, monkeypatch, capsys):
    _short_write(monkeypatch, free_bytes=2**30)
    out = tmp_path / "sim"
    assert main(["simulate", "--out", str(out), "--n", "1", "--size", "32", "32"]) == 2
    assert _one_line(capsys).endswith(
        f"error: {out / 'sim_0000.tif'}: short write: 100 of 327680 bytes of a write stored"
    )


def test_a_read_only_output_folder_is_one_line_naming_the_file(tmp_path, monkeypatch, capsys):
    def read_only(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    out = tmp_path / "sim"
    assert main(["simulate", "--out", str(out), "--n", "1", "--size", "32", "32"]) == 2
    assert _one_line(capsys).endswith(f"error: {out / 'sim_0000.tif'}: Permission denied")


@pytest.mark.parametrize("exists", [True, False])
@pytest.mark.parametrize("command", ["segment", "simulate", "train", "finetune"])
def test_an_out_folder_that_cannot_be_written_is_refused_before_any_work(
    tmp_path, monkeypatch, capsys, finetune_args, command, exists
):
    import os

    folder = tmp_path / "ro"
    folder.mkdir()
    out = folder if exists else folder / "new"
    phase = tmp_path / "cells.tif"
    tifffile.imwrite(phase, np.zeros((32, 32), np.float32))
    args = {
        "segment": ["segment", str(phase), "--out", str(out), "--model", "phase-only"],
        "simulate": ["simulate", "--out", str(out), "--size", "32", "32"],
        "train": ["train", "--out", str(out), "--epochs", "1"],
        "finetune": [*finetune_args[:-8], "--out", str(out), *finetune_args[-6:]],
    }[command]
    access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **k: path != folder and access(path, mode))
    assert main(args) == 2
    what = "cannot write in it" if exists else f"cannot make it in {folder}"
    assert _one_line(capsys) == (
        f"dmqpm {command}: error: --out {out}: {what} (a read-only file system or no permission)"
    )
    assert sorted(folder.iterdir()) == []


def test_a_full_disk_while_saving_a_checkpoint_is_one_line_naming_the_file(
    tmp_path, monkeypatch, capsys, finetune_args
):
    import safetensors.torch

    def full(*args, **kwargs):
        raise safetensors.SafetensorError(
            "Error while serializing: I/O error: No space left on device (os error 28)"
        )

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    assert main(finetune_args) == 2
    assert _one_line(capsys) == (
        f"dmqpm finetune: error: {tmp_path / 'run' / 'best' / 'model.safetensors'}: "
        "No space left on device"
    )


def test_a_full_disk_while_saving_the_training_state_is_one_line_naming_the_file(
    tmp_path, monkeypatch, capsys, finetune_args
):
    import os
    import types

    import torch

    def full(*args, **kwargs):  # what torch's writer says on a full disk
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534")

    monkeypatch.setattr(torch, "save", full)
    monkeypatch.setattr(os, "statvfs", lambda path: types.SimpleNamespace(f_bavail=0, f_frsize=1))
    assert main(finetune_args) == 2
    assert _one_line(capsys) == (
        f"dmqpm finetune: error: {tmp_path / 'run' / 'last' / 'state.pt'}: No space left on device"
    )


def test_debug_shows_the_traceback(tmp_path, monkeypatch):
    _full_disk(monkeypatch)
    with pytest.raises(OSError, match="No space left"):
        main(["--debug", "simulate", "--out", str(tmp_path / "s"), "--size", "32", "32"])


def test_a_field_larger_than_the_memory_is_refused_before_any_work(tmp_path, capsys):
    out = tmp_path / "sim"
    assert main(["simulate", "--out", str(out), "--size", "100000", "100000"]) == 2
    err = _one_line(capsys)
    assert "--size (100000, 100000) with --frames 1 needs about 1415.6 GiB" in err
    assert "choose a smaller shape" in err and not out.exists()


@pytest.fixture
def tiny_model(tmp_path):
    import torch

    from napari_dmqpm.model import DMQPMNet, ModelConfig, save_checkpoint

    torch.manual_seed(0)
    config = ModelConfig(inputs="phase", fusion="early", features=(4, 8, 16, 32, 32))
    extra = {"postprocessing": {}, "cell_diameter_px": 20.0}  # --diameter 20: no resampling
    return save_checkpoint(tmp_path / "model", DMQPMNet(config), extra=extra)


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [("model", "big", "'model' must be a JSON object; got \"big\""),
     ("sha256", ["a"], "'sha256' must be 64 hexadecimal digits; got [\"a\"]")],
)  # fmt: skip
def test_a_checkpoint_config_of_wrong_types_is_one_line(
    tmp_path, tiny_model, capsys, key, value, words
):
    import json

    content = json.loads((tiny_model / "config.json").read_text())
    (tiny_model / "config.json").write_text(json.dumps({**content, key: value}))
    phase = tmp_path / "cells.tif"
    tifffile.imwrite(phase, np.zeros((32, 32), np.float32))
    args = ["segment", str(phase), "--out", str(tmp_path / "out"), "--model", str(tiny_model),
            "--device", "cpu", "--diameter", "20", "--phase-unit", "rad"]  # fmt: skip
    assert main(args) == 2
    assert f"config.json in {tiny_model}: {words}" in _one_line(capsys)


@pytest.mark.parametrize(
    ("content", "words"),
    [('{"augment": 5}', "'augment' must be a JSON object; got 5"),
     ('{"learning_rate": "fast"}', "'learning_rate' must be a JSON number; got \"fast\""),
     ('{"amp": 1, "simulator": null}', "'amp' must be a JSON true or false; got 1"),
     ("[1]", "a training config is a JSON object; got list"),
     ("{", "not a JSON training config")],
)  # fmt: skip
def test_a_training_config_of_wrong_types_is_one_line(tmp_path, capsys, content, words):
    (tmp_path / "config.json").write_text(content)
    args = ["train", "--out", str(tmp_path / "run"), "--config", str(tmp_path / "config.json")]
    assert main(args) == 2
    assert f"error: {tmp_path / 'config.json'}: {words}" in _one_line(capsys)
    assert not (tmp_path / "run").exists()


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))  # would create the marker file when unpickled


def test_a_malicious_state_pt_is_not_a_trusted_checkpoint(tmp_path):
    import torch

    from napari_dmqpm.training.state import _load_state

    marker = tmp_path / "pwned"
    torch.save({"epoch": 1, "payload": _Exploit(marker)}, tmp_path / "state.pt")
    with pytest.raises(ValueError) as caught:
        _load_state(tmp_path / "state.pt")
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'state.pt'}: not a trusted checkpoint")
    assert "weights_only" not in message and "\n" not in message
    assert not marker.exists()


class _ClosedPipe:
    def write(self, text):
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    def flush(self):
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")


def test_a_closed_pipe_ends_info_quietly(tmp_path, monkeypatch, capsys):
    path = tmp_path / "p.tif"
    tifffile.imwrite(path, np.zeros((16, 16), np.float32))
    monkeypatch.setattr("sys.stdout", _ClosedPipe())
    assert main(["info", str(path), str(path)]) == 141
    assert capsys.readouterr().err == ""


# --- item 5: SIGTERM like Ctrl+C; temporaries of killed runs ---


def test_sigterm_mid_write_stops_like_ctrl_c_and_leaves_no_partial_file(
    tmp_path, monkeypatch, capsys
):
    import os
    import signal
    import time

    ignored = []  # without the CLI's handler, this one keeps pytest alive (the test fails)
    handler = lambda *args: ignored.append(args)  # noqa: E731
    previous = signal.signal(signal.SIGTERM, handler)

    def write(self, *args, **kwargs):
        self._fh.write(b"\0" * 1000)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.5)

    monkeypatch.setattr(tifffile.TiffWriter, "write", write)
    out = tmp_path / "sim"
    try:
        status = main(["simulate", "--out", str(out), "--n", "1", "--size", "32", "32"])
        assert signal.getsignal(signal.SIGTERM) is handler  # the CLI put it back
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert status == 143 and not ignored
    assert _one_line(capsys) == "dmqpm simulate: terminated (SIGTERM)"
    assert not out.exists() or list(out.iterdir()) == []


def test_temporaries_of_a_killed_run_are_removed_or_named(tmp_path, capsys):
    import os
    import time

    out = tmp_path / "sim"
    out.mkdir()
    stale, fresh = out / ".sim_0000.tif.k2j4_x9a.tmp", out / ".old_cells.csv.abcdefgh.tmp"
    mine = out / ".notes.tmp"
    for path in (stale, fresh, mine):
        path.write_bytes(b"\0" * 2048)
    hours_ago = time.time() - 7200
    os.utime(stale, (hours_ago, hours_ago))
    os.utime(mine, (hours_ago, hours_ago))
    assert main(["simulate", "--out", str(out), "--n", "1", "--size", "32", "32"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert f"dmqpm simulate: removed {stale} (2.0 KiB), left by an interrupted run" in err
    assert any(line.startswith(f"dmqpm simulate: {fresh} (2.0 KiB) is recent") for line in err)
    assert not stale.exists() and fresh.exists() and mine.exists()


# --- item 10: messages that name the file and the problem; a batch goes on ---


def test_a_batch_goes_on_past_a_failing_file_and_reports_it_at_the_end(
    tmp_path, tiny_model, capsys
):
    good, bad, other = tmp_path / "a.tif", tmp_path / "b.tif", tmp_path / "c.tif"
    tifffile.imwrite(good, np.zeros((32, 32), np.float32))
    tifffile.imwrite(other, np.zeros((32, 32), np.float32))
    bad.write_bytes(b"II*\x00" + b"\xff" * 200)
    out = tmp_path / "out"
    args = ["segment", str(good), str(bad), str(other), "--out", str(out), "--model",
            str(tiny_model), "--device", "cpu", "--diameter", "20",
            "--phase-unit", "rad"]  # fmt: skip
    assert main(args) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert "Traceback" not in captured.err and len(err) == 2, err
    assert err[0].startswith(f"dmqpm segment: error: {bad}: ")
    assert err[1] == f"dmqpm segment: 1 of 3 inputs failed (nothing written for them): {bad}"
    assert f"{good}: " in captured.out and f"{other}: " in captured.out
    assert sorted(p.name for p in out.iterdir()) == [
        "a_cells.csv", "a_frames.csv", "a_labels.tif", "c_cells.csv", "c_frames.csv",
        "c_labels.tif"]  # fmt: skip


def test_a_background_fit_failing_mid_batch_names_the_file_and_the_batch_goes_on(
    tmp_path, tiny_model, monkeypatch, capsys
):
    from napari_dmqpm.inference import segment as segment_module

    measure, calls = segment_module.measure_cells, []

    def measure_or_fail(*args, **kwargs):  # the second file's frame: the fit fails
        calls.append(1)
        if len(calls) == 2:
            raise ValueError("too few background pixels to fit a background surface")
        return measure(*args, **kwargs)

    monkeypatch.setattr(segment_module, "measure_cells", measure_or_fail)
    paths = [tmp_path / f"{name}.tif" for name in "abc"]
    for path in paths:
        tifffile.imwrite(path, np.random.default_rng(0).normal(0, 0.3, (32, 32)).astype("f4"))
    out = tmp_path / "out"
    args = ["segment", *map(str, paths), "--out", str(out), "--model", str(tiny_model),
            "--device", "cpu", "--diameter", "20", "--phase-unit", "rad"]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"dmqpm segment: error: {paths[1]}: too few background pixels to fit a background surface",
        f"dmqpm segment: 1 of 3 inputs failed (nothing written for them): {paths[1]}",
    ]
    assert sorted(p.name for p in out.iterdir() if p.name.startswith("b")) == []
    assert (out / "c_frames.csv").exists()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["simulate", "--out", "{tmp}/file"], "--out {tmp}/file is a file, not a folder"),
        (["simulate", "--out", "{tmp}/file/x"], "--out {tmp}/file/x lies in {tmp}/file, a file"),
        (["info", "{tmp}/loop"], "{tmp}/loop: cannot be opened (Too many levels of symbolic"),
        (["info", "{tmp}/broken"], "{tmp}/broken: a broken symbolic link (its target"),
        (["segment", "{tmp}/file", "--out", "{tmp}/o", "--model", ""],
         "--model must be a model name or a checkpoint folder; got ''"),
        (["finetune", "--image", "{tmp}/file", "--labels", "{tmp}/file", "--out", "{tmp}/o",
          "--model", ""], "--model must be a model name or a checkpoint folder; got ''"),
        (["evaluate", "--pred", "{tmp}/p", "--truth", "{tmp}/t"],
         "{tmp}/p/x_labels.tif: cannot read it as a labels TIFF (TiffFileError"),
        (["evaluate", "--pred", "{tmp}/nowhere", "--truth", "{tmp}/t"],
         "--pred is not a folder: '{tmp}/nowhere'"),
    ],
)  # fmt: skip
def test_messages_name_the_file_and_the_problem(tmp_path, capsys, args, words):
    import os

    (tmp_path / "file").write_text("not a folder")
    os.symlink(tmp_path / "loop2", tmp_path / "loop")
    os.symlink(tmp_path / "loop", tmp_path / "loop2")
    os.symlink(tmp_path / "nowhere", tmp_path / "broken")
    for folder in ("p", "t"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "x_labels.tif").write_bytes(b"junk")
    assert main([arg.format(tmp=tmp_path) for arg in args]) == 2
    assert words.format(tmp=tmp_path) in _one_line(capsys)


@pytest.mark.parametrize(
    ("labels", "words"),
    [(np.full((64, 64), -5, np.int32), "labels hold negative values (min -5)"),
     (np.full((64, 64), 1.5, np.float32), "labels must be integers (one ID per cell); got float32"),
     (None, "cannot read it as a labels TIFF (TiffFileError")],
)  # fmt: skip
def test_finetune_labels_that_are_not_labels_name_the_file(
    tmp_path, finetune_args, capsys, labels, words
):
    path = tmp_path / "cells_labels.tif"
    if labels is None:
        path.write_bytes(b"junk")
    else:
        tifffile.imwrite(path, labels)
    assert main(finetune_args) == 2
    assert f"error: {path}: {words}" in _one_line(capsys)
    assert not (tmp_path / "run").exists()  # nothing trained


def test_finetune_refuses_labels_without_cells_before_training(tmp_path, finetune_args, capsys):
    tifffile.imwrite(tmp_path / "cells_labels.tif", np.zeros((64, 64), np.uint32))
    assert main(finetune_args) == 2
    assert _one_line(capsys) == (
        "dmqpm finetune: error: labels are empty (all 0): paint or correct some cells before "
        "training"
    )
    assert not (tmp_path / "run" / "best").exists()  # nothing trained


# --- item 4: what a read ignores is said, in one line ---


@pytest.mark.filterwarnings("default::UserWarning")  # shown, as outside the tests
@pytest.mark.parametrize("debug", [False, True])
def test_what_a_read_ignores_is_one_warning_line(tmp_path, tiny_model, capsys, debug):
    path = tmp_path / "two_series.tif"
    with tifffile.TiffWriter(path) as tif:
        tif.write(np.zeros((32, 32), np.float32))
        tif.write(np.ones((16, 16), np.uint8))
    args = ["segment", str(path), "--out", str(tmp_path / "out"), "--model", str(tiny_model),
            "--device", "cpu", "--diameter", "20", "--phase-unit", "rad"]  # fmt: skip
    assert main(["--debug", *args] if debug else args) == 0
    err = capsys.readouterr().err.strip().splitlines()
    said = f"{path}: reads series 0 (1 of 2 pages); the other 1 series, 1 page ignored"
    if debug:  # Python's own form (here pytest records it)
        assert not any(line.startswith("dmqpm segment: warning:") for line in err), err
    else:
        assert err == [f"dmqpm segment: warning: {said}"]


# --- item 9: bounds on workers and on the network a config asks for ---


def test_workers_are_capped_by_cores_and_memory_and_it_is_said(
    tmp_path, tiny_model, monkeypatch, capsys
):
    from napari_dmqpm.inference import batch
    from napari_dmqpm.io import limits

    monkeypatch.setattr(batch, "_n_cores", lambda: 2)
    monkeypatch.setattr(limits, "available_memory", lambda: 8 * 2**30)
    assert batch.cap_workers(12) == (2, "workers=12 lowered to 2: 2 cores")
    assert batch.cap_workers(2, n_tasks=1) == (1, None)
    monkeypatch.setattr(limits, "available_memory", lambda: 600 * 2**20)
    n_workers, note = batch.cap_workers(12)
    assert n_workers == 1 and note == (
        "workers=12 lowered to 1: 2 cores and the memory available (600.0 MiB) at about "
        "512.0 MiB per worker"
    )
    phase = tmp_path / "cells.tif"
    tifffile.imwrite(phase, np.zeros((32, 32), np.float32))
    args = ["segment", str(phase), "--out", str(tmp_path / "out"), "--model", str(tiny_model),
            "--device", "cpu", "--diameter", "20", "--phase-unit", "rad",
            "--workers", "12"]  # fmt: skip
    assert main(args) == 0  # one worker: in this process, without dask.distributed
    assert "dmqpm segment: --workers 12 lowered to 1: 2 cores" in capsys.readouterr().err


def test_a_config_asking_for_a_huge_network_is_counted_without_allocating(
    tmp_path, tiny_model, capsys
):
    import json
    import time

    from napari_dmqpm.model import ModelConfig
    from napari_dmqpm.model.checkpoint import count_values

    huge = ModelConfig(inputs="phase", fusion="early", features=(2048, 4096, 8192, 16384, 32768))
    started = time.perf_counter()
    assert count_values(huge) > 3 * 10**10  # > 120 GB as float32
    assert time.perf_counter() - started < 5.0
    content = json.loads((tiny_model / "config.json").read_text())
    content["model"]["features"] = [4, 8, 16, 32, 64]
    (tiny_model / "config.json").write_text(json.dumps(content))
    phase = tmp_path / "cells.tif"
    tifffile.imwrite(phase, np.zeros((32, 32), np.float32))
    assert main(["segment", str(phase), "--out", str(tmp_path / "o"), "--model",
                 str(tiny_model), "--device", "cpu", "--phase-unit", "rad"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert f"config.json in {tiny_model} does not match model.safetensors: the config " in err
    assert "describes a network of 1" in err and "Traceback" not in err


def test_training_a_network_larger_than_the_memory_is_refused_before_any_work(tmp_path, capsys):
    import json

    model = {"inputs": "phase", "fusion": "early", "features": [2048, 4096, 8192, 16384, 32768]}
    (tmp_path / "big.json").write_text(json.dumps({"model": model}))
    args = ["train", "--out", str(tmp_path / "run"), "--config", str(tmp_path / "big.json")]
    assert main(args) == 2
    err = _one_line(capsys)
    assert "model features=[2048, 4096, 8192, 16384, 32768] make a network of" in err
    assert "training it needs about" in err and not (tmp_path / "run").exists()


# --- item 3: a --scheduler address that is not a dask scheduler ---


@pytest.fixture
def fake_server():
    """A local TCP server that sends ``reply`` to each connection (None: never answers)."""
    import socket
    import threading

    servers = []

    def start(reply):
        server = socket.create_server(("127.0.0.1", 0))
        held = []

        def serve():
            while True:
                try:
                    connection, _ = server.accept()
                except OSError:
                    return
                held.append(connection)
                if reply is not None:
                    connection.sendall(reply)

        threading.Thread(target=serve, daemon=True).start()
        servers.append((server, held))
        return f"tcp://127.0.0.1:{server.getsockname()[1]}"

    yield start
    for server, held in servers:
        server.close()
        for connection in held:
            connection.close()


@pytest.mark.parametrize(
    ("reply", "words"),
    [(b"SSH-2.0-OpenSSH_9.6\r\n", "is not a dask scheduler: it sent b'SSH-2.0-'"),
     (None, "accepted the connection but sent no dask handshake within 1 s"),
     (b"", "accepted the connection but sent no dask handshake within 1 s")],
)  # fmt: skip
def test_an_address_that_is_not_a_dask_scheduler_fails_within_the_timeout(
    tmp_path, fake_server, capsys, reply, words
):
    import time

    pytest.importorskip("distributed")
    address = fake_server(reply)
    phase = tmp_path / "cells.tif"
    tifffile.imwrite(phase, np.zeros((32, 32), np.float32))
    args = ["segment", str(phase), "--out", str(tmp_path / "out"), "--model", "phase-only",
            "--scheduler", address, "--connect-timeout", "1"]  # fmt: skip
    started = time.monotonic()
    assert main(args) == 2
    assert time.monotonic() - started < 5.0
    err = _one_line(capsys)
    assert f"dask scheduler at '{address}'" in err and words in err


def test_a_real_scheduler_passes_the_probe():
    distributed = pytest.importorskip("distributed")
    from napari_dmqpm.inference.scheduler_probe import probe_scheduler

    with distributed.LocalCluster(n_workers=0, processes=False, dashboard_address=None) as cluster:
        probe_scheduler(cluster.scheduler_address, 5.0)


# --- item 11: featureless inputs give no cells ---


def test_only_constant_inputs_are_featureless():
    from napari_dmqpm.inference.segment import _featureless
    from napari_dmqpm.io import acquisition_from_arrays

    flat = np.full((4, 32, 32), 100.0, np.float32)
    cells = flat.copy()
    cells[:, 10:14, 10:14] += np.arange(4)[:, None, None] * 5.0  # one small object, in angles
    both = "the phase (0 rad) and the four angle images are constant"
    for angles, expected in ((flat, both), (cells, None)):
        acquisition = acquisition_from_arrays(angles=angles, phase=np.zeros((32, 32), np.float32))
        assert _featureless(acquisition, 0, "both") == expected
        # the phase alone is flat
        assert _featureless(acquisition, 0, "phase") == "the phase is constant (0 rad)"
    phase = np.zeros((32, 32), np.float32)
    phase[5, 5] = 0.01
    assert _featureless(acquisition_from_arrays(phase=phase), 0, "phase") is None


def _frames_csv(path):
    import csv

    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_frames_without_cells_are_said_in_the_frames_table_and_the_output(
    tmp_path, tiny_model, capsys
):
    phase = np.zeros((4, 64, 64), np.float32)
    phase[1] = 1.0  # a flat frame at 1 rad
    phase[2, 20:40, 20:40] = 1.5  # a frame with something in it
    phase[3] = np.random.default_rng(0).normal(0.0, 0.2, (64, 64))
    path = tmp_path / "lapse.tif"
    tifffile.imwrite(path, phase, photometric="minisblack")
    out = tmp_path / "out"
    args = ["segment", str(path), "--out", str(out), "--model", str(tiny_model), "--device",
            "cpu", "--diameter", "20", "--kind", "phase-map", "--phase-unit", "rad"]  # fmt: skip
    assert main(args) == 0
    labels = tifffile.imread(out / "lapse_labels.tif")
    rows = _frames_csv(out / "lapse_frames.csv")
    assert [row["frame"] for row in rows] == ["0", "1", "2", "3"]
    assert rows[0] == {"frame": "0", "n_cells": "0", "status": "featureless",
                       "reason": "the phase is constant (0 rad)"}  # fmt: skip
    assert rows[1]["status"] == "featureless" and rows[1]["reason"].endswith("(1 rad)")
    assert not labels[:2].any()
    for t in (2, 3):  # as many cells as the labels hold; 'empty' exactly when none
        n_cells = len(np.unique(labels[t])) - 1
        assert rows[t]["n_cells"] == str(n_cells)
        assert rows[t]["status"] == ("ok" if n_cells else "empty")
        assert rows[t]["reason"] == ("" if n_cells else "the model found no cells")
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith(f"{path}: ") and str(out / "lapse_frames.csv") in line
    assert "; no cells in " in line and "featureless: frames 0, 1 (" in line


def test_the_frames_table_is_written_with_the_others_or_not_at_all(tmp_path, tiny_model):
    from napari_dmqpm.inference import segment_file

    path = tmp_path / "flat.tif"
    tifffile.imwrite(path, np.zeros((64, 64), np.float32))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "flat_frames.csv").write_text("mine")
    with pytest.raises(FileExistsError, match="flat_frames.csv"):
        segment_file(path, out_dir=tmp_path / "out", model=tiny_model)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["flat_frames.csv"]
    (tmp_path / "out2").mkdir()
    result = segment_file(path, out_dir=tmp_path / "out2", model=tiny_model)
    assert result.frames_path == tmp_path / "out2" / "flat_frames.csv"
    assert [s.status for s in result.frames] == ["featureless"] and result.n_cells == 0
    assert result.frames_path.read_text() == (
        "frame,n_cells,status,reason\n0,0,featureless,the phase is constant (0 rad)\n"
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("data", "kind"),
    [(np.zeros((5, 64, 64), np.float32), "ssqpm-stack"),
     (np.full((64, 64), 1000, np.uint16), "raw-mosaic"),
     (np.zeros((64, 64), np.uint16), "raw-mosaic")],
)  # fmt: skip
def test_an_all_zero_stack_or_a_featureless_raw_frame_gives_no_cells(tmp_path, capsys, data, kind):
    path = tmp_path / "flat.tif"
    tifffile.imwrite(path, data, photometric="minisblack")
    args = ["segment", str(path), "--out", str(tmp_path / "out"), "--kind", kind,
            "--device", "cpu"]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert f"{path}: 0 cells in 1 frame(s) with dmqpm-fast" in printed
    assert "no cells in 1 of 1 frame(s): featureless: frame 0 (" in printed
    table = (tmp_path / "out" / "flat_cells.csv").read_text().splitlines()
    assert len(table) == 1  # the header only
    (row,) = _frames_csv(tmp_path / "out" / "flat_frames.csv")
    assert row["status"] == "featureless" and row["n_cells"] == "0"


def test_info_piped_into_a_reader_that_stops_early_ends_quietly(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "p.tif"
    tifffile.imwrite(path, np.zeros((16, 16), np.float32))
    command = [sys.executable, "-m", "napari_dmqpm.cli", "info", *[str(path)] * 400]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        first = process.stdout.readline()  # `| head -1`
        process.stdout.close()
        err = process.stderr.read().decode()
        status = process.wait(timeout=60)
    assert first.decode().strip() == str(path)
    assert status in (0, 141) and "Traceback" not in err and "BrokenPipe" not in err, err
