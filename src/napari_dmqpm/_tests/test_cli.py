"""The `dmqpm` command line, end to end in-process (the same core functions as the API)."""

import re

import numpy as np
import pytest
import tifffile

from napari_dmqpm.cli import main
from napari_dmqpm.io import read_acquisition


def test_simulate_writes_stacks_and_labels_that_read_back(tmp_path, capsys):
    out = tmp_path / "sim"
    assert (
        main(
            [
                "simulate",
                "--out",
                str(out),
                "--n",
                "2",
                "--seed",
                "3",
                "--size",
                "64",
                "96",
                "--density",
                "dense",
            ]
        )
        == 0
    )
    assert "wrote 5 files" in capsys.readouterr().out
    acquisition = read_acquisition(out / "sim_0001.tif")
    assert acquisition.kind == "ssqpm-stack"
    assert acquisition.angles.shape == (1, 4, 64, 96)
    labels = tifffile.imread(out / "sim_0001_labels.tif")
    assert labels.shape == (64, 96) and labels.max() > 0


def test_simulate_is_seeded(tmp_path):
    for name in ("a", "b"):
        main(
            [
                "simulate",
                "--out",
                str(tmp_path / name),
                "--n",
                "1",
                "--seed",
                "7",
                "--size",
                "48",
                "48",
            ]
        )
    first = tifffile.imread(tmp_path / "a" / "sim_0000.tif")
    np.testing.assert_array_equal(first, tifffile.imread(tmp_path / "b" / "sim_0000.tif"))


def test_simulate_refuses_to_overwrite_without_flag(tmp_path, capsys):
    args = ["simulate", "--out", str(tmp_path), "--n", "1", "--size", "32", "32"]
    assert main(args) == 0
    before = (tmp_path / "sim_0000.tif").read_bytes()
    assert main([*args, "--seed", "9"]) == 2
    assert "refusing to write over" in capsys.readouterr().err
    assert (tmp_path / "sim_0000.tif").read_bytes() == before
    assert main([*args, "--seed", "9", "--overwrite"]) == 0
    assert (tmp_path / "sim_0000.tif").read_bytes() != before


def test_info_describes_each_file_and_honours_kind(tmp_path, capsys):
    main(["simulate", "--out", str(tmp_path), "--n", "1", "--size", "32", "32"])
    capsys.readouterr()
    assert main(["info", str(tmp_path / "sim_0000.tif")]) == 0
    text = capsys.readouterr().out
    assert "ssqpm-stack" in text and "0.627" in text
    phase = tmp_path / "phase.tif"
    tifffile.imwrite(phase, np.zeros((16, 16), np.float32))
    assert main(["info", str(phase), "--phase-unit", "opd_nm", "--wavelength-um", "0.65"]) == 0
    assert "phase-map" in capsys.readouterr().out


def test_info_on_a_foreign_file_is_one_clear_line(tmp_path, capsys):
    text_file = tmp_path / "notes.txt"
    text_file.write_text("not an image")
    assert main(["info", str(text_file)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dmqpm info: error:") and "notes.txt" in err
    assert "Traceback" not in err


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert "napari-dmqpm" in capsys.readouterr().out


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


def test_segment_writes_labels_and_table_per_input(tmp_path, tiny_checkpoint, capsys):
    data = tmp_path / "data"
    main(["simulate", "--out", str(data), "--n", "2", "--size", "40", "48", "--frames", "2"])
    out = tmp_path / "out" / "nested"  # created on demand
    inputs = [str(data / "sim_0000.tif"), str(data / "sim_0001.tif")]
    assert main(["segment", *inputs, "--out", str(out), "--model", str(tiny_checkpoint)]) == 0
    assert capsys.readouterr().out.count("cells in 2 frame(s)") == 2
    labels = tifffile.imread(out / "sim_0001_labels.tif")
    assert labels.shape == (2, 40, 48) and labels.dtype in (np.uint16, np.uint32)
    header = (out / "sim_0001_cells.csv").read_text().splitlines()[0]
    assert header.startswith("frame,label,area_px,area_um2") and "dry_mass_pg" in header


def test_segment_prints_the_estimated_or_given_cell_diameter(tmp_path, capsys):
    from napari_dmqpm.simulation import SimulationConfig, simulate_field

    # cells twice the shipped model's trained size (23 px): "auto" must find about 46 px
    field = simulate_field(
        SimulationConfig(shape=(448, 448), density="dense", pixel_size_um=0.627 * 28.5 / 46),
        rng=3,
    )
    phase = tmp_path / "cells.tif"
    tifffile.imwrite(phase, field.phase)
    args = ["segment", str(phase), "--kind", "phase-map", "--model", "phase-only"]
    assert main([*args, "--out", str(tmp_path / "auto")]) == 0
    line = capsys.readouterr().out
    estimated = float(re.search(r"cell diameter ([\d.]+) px \(estimated\)", line).group(1))
    assert 38 < estimated < 56
    table = (tmp_path / "auto" / "cells_cells.csv").read_text().splitlines()
    assert "cell_diameter_px" in table[0].split(",")
    assert main([*args, "--out", str(tmp_path / "given"), "--diameter", "30"]) == 0
    assert "cell diameter 30.0 px (given)" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--out", str(tmp_path / "bad"), "--diameter", "big"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--diameter" in err and "'auto' or a cell diameter in pixels" in err
    assert not (tmp_path / "bad").exists()


def test_segment_never_overwrites_and_names_the_model_mismatch(tmp_path, tiny_checkpoint, capsys):
    data = tmp_path / "data"
    main(["simulate", "--out", str(data), "--n", "1", "--size", "32", "32"])
    args = [
        "segment",
        str(data / "sim_0000.tif"),
        "--out",
        str(tmp_path / "out"),
        "--model",
        str(tiny_checkpoint),
    ]
    assert main(args) == 0
    before = (tmp_path / "out" / "sim_0000_labels.tif").read_bytes()
    assert main(args) == 2
    assert "sim_0000" in capsys.readouterr().err
    assert (tmp_path / "out" / "sim_0000_labels.tif").read_bytes() == before

    phase_map = tmp_path / "phase.tif"
    tifffile.imwrite(phase_map, np.zeros((32, 32), np.float32))
    assert (
        main(
            [
                "segment",
                str(phase_map),
                "--out",
                str(tmp_path / "o2"),
                "--model",
                str(tiny_checkpoint),
            ]
        )
        == 2
    )
    assert "needs the four angle images" in capsys.readouterr().err
    assert not any((tmp_path / "o2").iterdir())


def test_evaluate_reports_perfect_scores_for_identical_folders(tmp_path, capsys):
    main(
        [
            "simulate",
            "--out",
            str(tmp_path / "a"),
            "--n",
            "2",
            "--size",
            "48",
            "48",
            "--density",
            "dense",
        ]
    )
    capsys.readouterr()
    truth = tmp_path / "a"
    assert main(["evaluate", "--pred", str(truth), "--truth", str(truth), "--summary"]) == 0
    text = capsys.readouterr().out
    assert "1.000" in text and "|" in text


def _tiny_phase_checkpoint(folder):
    import torch

    from napari_dmqpm.model import THREE_CLASS, DMQPMNet, ModelConfig, save_checkpoint

    torch.manual_seed(0)
    config = ModelConfig(
        inputs="phase", fusion="early", features=(4, 8, 16), strides=(1, 2, 2), heads=(THREE_CLASS,)
    )
    save_checkpoint(folder, DMQPMNet(config).eval())
    return folder


def test_finetune_on_one_corrected_image_and_install_it(tmp_path, monkeypatch, capsys):
    from napari_dmqpm.model.registry import MODELS_ENV, clear_model_cache, list_models

    monkeypatch.setenv(MODELS_ENV, str(tmp_path / "user_models"))
    clear_model_cache()
    base = _tiny_phase_checkpoint(tmp_path / "base")
    main(
        [
            "simulate",
            "--out",
            str(tmp_path / "d"),
            "--n",
            "1",
            "--size",
            "96",
            "96",
            "--density",
            "dense",
        ]
    )
    capsys.readouterr()
    args = [
        "finetune",
        "--image",
        str(tmp_path / "d" / "sim_0000.tif"),
        "--labels",
        str(tmp_path / "d" / "sim_0000_labels.tif"),
        "--out",
        str(tmp_path / "run"),
        "--model",
        str(base),
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--name",
        "my-cells",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "validation Dice" in out and "installed as 'my-cells'" in out
    assert (tmp_path / "run" / "best" / "model.safetensors").is_file()
    assert "my-cells" in [info.name for info in list_models()]


def test_finetune_rejects_labels_of_another_size_before_training(tmp_path, capsys):
    base = _tiny_phase_checkpoint(tmp_path / "base")
    main(["simulate", "--out", str(tmp_path / "d"), "--n", "1", "--size", "32", "32"])
    labels = tmp_path / "wrong_labels.tif"
    tifffile.imwrite(labels, np.zeros((16, 16), np.uint16))
    args = [
        "finetune",
        "--image",
        str(tmp_path / "d" / "sim_0000.tif"),
        "--labels",
        str(labels),
        "--out",
        str(tmp_path / "run"),
        "--model",
        str(base),
    ]
    assert main(args) == 2
    assert "do not match the frames" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
