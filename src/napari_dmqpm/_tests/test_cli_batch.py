"""`dmqpm segment` on a local pool and against a dask scheduler (docs/cluster.md)."""

import socket
import sys
import time

import pytest

from napari_dmqpm.cli import main


@pytest.fixture
def two_inputs(tmp_path):
    """A 2-frame time-lapse and a single frame, with a tiny untrained DM-QPMNet checkpoint."""
    import torch

    from napari_dmqpm.model import THREE_CLASS, DMQPMNet, ModelConfig, save_checkpoint
    from napari_dmqpm.simulation import write_dataset

    write_dataset(tmp_path / "lapse", n=1, seed=2, shape=(40, 48), n_frames=2)
    write_dataset(tmp_path / "one", n=1, seed=3, shape=(40, 40))
    (tmp_path / "one" / "sim_0000.tif").rename(tmp_path / "one" / "field.tif")
    torch.manual_seed(1)
    network = DMQPMNet(
        ModelConfig(
            features=(4, 8, 16), strides=(1, 2, 2), fusion_stage=1, n_heads=2, heads=(THREE_CLASS,)
        )
    ).eval()
    model = save_checkpoint(tmp_path / "tiny", network)
    inputs = [str(tmp_path / "lapse" / "sim_0000.tif"), str(tmp_path / "one" / "field.tif")]
    return inputs, ["--model", str(model), "--device", "cpu"]


def _unused_address():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{probe.getsockname()[1]}"


@pytest.mark.slow
def test_a_local_pool_writes_the_same_files_as_one_process(two_inputs, tmp_path, capsys):
    pytest.importorskip("distributed")
    inputs, model = two_inputs
    model = [*model, "--backend", "torch"]  # the pool's processes are not pinned to torch
    assert main(["segment", *inputs, "--out", str(tmp_path / "one_process"), *model]) == 0
    capsys.readouterr()
    pool = ["--workers", "2", "--torch-threads", "1"]
    assert main(["segment", *inputs, "--out", str(tmp_path / "pool"), *model, *pool]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sorted(line.split(":")[0] for line in lines) == sorted(inputs)
    assert any("cells in 2 frame(s)" in line for line in lines)
    names = sorted(path.name for path in (tmp_path / "one_process").iterdir())
    assert names == [
        "field_cells.csv",
        "field_frames.csv",
        "field_labels.tif",
        "sim_0000_cells.csv",
        "sim_0000_frames.csv",
        "sim_0000_labels.tif",
    ]
    for name in names:
        expected = (tmp_path / "one_process" / name).read_bytes()
        assert (tmp_path / "pool" / name).read_bytes() == expected, name


def test_an_unreachable_scheduler_is_one_line_naming_it(two_inputs, tmp_path, capsys):
    pytest.importorskip("distributed")
    inputs, model = two_inputs
    address = _unused_address()
    start = time.monotonic()
    args = ["segment", *inputs, "--out", str(tmp_path / "out"), *model]
    assert main([*args, "--scheduler", address, "--connect-timeout", "1"]) == 2
    assert time.monotonic() - start < 5
    err = capsys.readouterr().err
    assert err.startswith("dmqpm segment: error: could not reach the dask scheduler at")
    assert address in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()  # the empty folder made for it is removed again


def test_pool_options_are_checked_with_a_clear_line(two_inputs, tmp_path, capsys, monkeypatch):
    inputs, model = two_inputs
    args = ["segment", *inputs, "--out", str(tmp_path / "out"), *model]
    assert main([*args, "--scheduler", "tcp://127.0.0.1:1", "--workers", "2"]) == 2
    err = capsys.readouterr().err  # the option, not the Python keyword
    assert "--workers 2 sets the size of a local pool" in err and "workers=" not in err
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if it were not installed
    assert main([*args, "--workers", "2"]) == 2
    err = capsys.readouterr().err
    assert "pip install napari-dmqpm[cluster]" in err and "Traceback" not in err
    with pytest.raises(SystemExit):
        main([*args, "--scheduler", "tcp://a:1", "--scheduler-file", "s.json"])
    assert "not allowed with argument" in capsys.readouterr().err


@pytest.mark.slow
def test_a_pool_goes_on_past_a_failing_file_and_reports_it_at_the_end(two_inputs, tmp_path, capsys):
    pytest.importorskip("distributed")
    (lapse, field), model = two_inputs
    bad = tmp_path / "b.tif"
    bad.write_bytes(b"II*\x00" + b"\xff" * 200)
    out = tmp_path / "out"
    pool = ["--workers", "2", "--torch-threads", "1"]
    assert main(["segment", lapse, str(bad), field, "--out", str(out), *model, *pool]) == 2
    captured = capsys.readouterr()
    err = [line for line in captured.err.strip().splitlines() if "lowered to" not in line]
    assert "Traceback" not in captured.err and len(err) == 2, err  # (a pool capped: said)
    assert err[0].startswith(f"dmqpm segment: error: {bad}: ")
    assert err[1] == f"dmqpm segment: 1 of 3 inputs failed (nothing written for them): {bad}"
    assert f"{lapse}: " in captured.out and f"{field}: " in captured.out
    names = ["field_cells.csv", "field_frames.csv", "field_labels.tif", "sim_0000_cells.csv",
             "sim_0000_frames.csv", "sim_0000_labels.tif"]  # fmt: skip
    assert sorted(p.name for p in out.iterdir()) == names


def test_a_pool_of_only_failing_files_reports_them_without_starting(two_inputs, tmp_path, capsys):
    _, model = two_inputs
    bad = tmp_path / "b.tif"
    bad.write_bytes(b"II*\x00" + b"\xff" * 200)
    out = tmp_path / "out"
    assert main(["segment", str(bad), "--out", str(out), *model, "--workers", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    err = [line for line in err if "lowered to" not in line]  # a pool capped by the machine
    assert len(err) == 2 and err[0].startswith(f"dmqpm segment: error: {bad}: "), err
    assert err[1] == f"dmqpm segment: 1 of 1 inputs failed (nothing written for them): {bad}"
