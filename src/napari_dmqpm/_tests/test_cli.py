"""The `dmqpm` command line, end to end in-process (the same core functions as the API)."""

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
