"""`dmqpm segment DIR/*.tif` after `dmqpm simulate`: the ground-truth labels are skipped."""

import logging

import pytest

from napari_dmqpm.cli import main


@pytest.fixture
def tiny_checkpoint(tmp_path):
    """A tiny untrained DM-QPMNet saved as a checkpoint folder (no shipped weights needed)."""
    import torch

    from napari_dmqpm.model import THREE_CLASS, DMQPMNet, ModelConfig, save_checkpoint

    torch.manual_seed(0)
    config = ModelConfig(
        features=(4, 8, 16), strides=(1, 2, 2), fusion_stage=1, n_heads=2, heads=(THREE_CLASS,)
    )
    folder = tmp_path / "tiny"
    save_checkpoint(folder, DMQPMNet(config).eval())
    return folder


@pytest.fixture
def simulated(tmp_path, capsys):
    """A `dmqpm simulate` folder of two tiny fields: two stacks and their two label files."""
    data = tmp_path / "data"
    assert main(["simulate", "--out", str(data), "--n", "2", "--size", "32", "40"]) == 0
    capsys.readouterr()
    return data


def test_segment_of_a_simulate_folder_skips_the_label_files(
    simulated, tmp_path, tiny_checkpoint, capsys, caplog
):
    inputs = sorted(str(p) for p in simulated.glob("*.tif"))  # what the shell gives for *.tif
    assert len(inputs) == 4
    out = tmp_path / "out"
    args = ["segment", *inputs, "--out", str(out), "--model", str(tiny_checkpoint)]
    with caplog.at_level(logging.WARNING):
        assert main(args) == 0
    skipped = [r.getMessage() for r in caplog.records if "is a labels image" in r.getMessage()]
    expected = [str(simulated / f"sim_000{i}_labels.tif") for i in (0, 1)]
    assert [message.split(": ")[0] for message in skipped] == expected
    assert all(": is a labels image, skipped (" in message for message in skipped)
    printed = capsys.readouterr().out.splitlines()
    assert [line.split(": ")[0] for line in printed] == [
        str(simulated / "sim_0000.tif"),
        str(simulated / "sim_0001.tif"),
    ]
    assert sorted(p.name for p in out.iterdir()) == [
        "sim_0000_cells.csv",
        "sim_0000_frames.csv",
        "sim_0000_labels.tif",
        "sim_0001_cells.csv",
        "sim_0001_frames.csv",
        "sim_0001_labels.tif",
    ]


def test_segment_of_label_files_only_is_one_clear_error(simulated, tmp_path, capsys):
    labels = [str(simulated / "sim_0000_labels.tif"), str(simulated / "sim_0001_labels.tif")]
    assert main(["segment", *labels, "--out", str(tmp_path / "out"), "--model", "x"]) == 2
    assert "nothing to segment: all 2 inputs are labels images" in capsys.readouterr().err


def test_info_says_a_label_file_is_a_labels_image(simulated, capsys):
    assert main(["info", str(simulated / "sim_0000_labels.tif")]) == 0
    text = capsys.readouterr().out
    assert "kind:        labels  [tagged dmqpm_content=labels" in text
    assert "Labels layer (32, 40)" in text and "0.627" in text
