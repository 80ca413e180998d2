"""The `dmqpm` command line, end to end in-process (the same core functions as the API)."""

import argparse
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
    assert not (tmp_path / "o2").exists()  # the empty folder made for it is removed again


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


# --- reproducing a widget run: thresholds, frames, pixel size (issue 14) ---


def _phase_map(path, *, scale=1.0, seed=3, shape=(128, 128)):
    """A simulated field's phase (radians x ``scale``) as a bare float TIFF: no unit, no size."""
    from napari_dmqpm.simulation import SimulationConfig, simulate_field

    field = simulate_field(SimulationConfig(shape=shape, density="dense"), rng=seed)
    tifffile.imwrite(path, (field.phase * scale).astype(np.float32))
    return path


def _rows(csv_path):
    import csv

    with open(csv_path, encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


_PHASE_ONLY = ["--model", "phase-only", "--device", "cpu", "--diameter", "20"]


def test_pixel_size_fills_the_areas_in_um2_and_the_dry_mass(tmp_path, capsys):
    phase = _phase_map(tmp_path / "cells.tif")
    args = ["segment", str(phase), *_PHASE_ONLY, "--phase-unit", "rad"]
    assert main([*args, "--out", str(tmp_path / "bare")]) == 0
    bare = _rows(tmp_path / "bare" / "cells_cells.csv")
    assert bare and all(row["area_um2"] == "" and row["dry_mass_pg"] == "" for row in bare)
    given = [*args, "--pixel-size-um", "0.5", "--wavelength-um", "0.65"]
    assert main([*given, "--out", str(tmp_path / "sized")]) == 0
    sized = _rows(tmp_path / "sized" / "cells_cells.csv")
    assert [row["label"] for row in sized] == [row["label"] for row in bare]  # same cells
    for row in sized:
        assert float(row["area_um2"]) == pytest.approx(float(row["area_px"]) * 0.25)
        expected = 0.65 / (2 * np.pi * 0.18) * float(row["integrated_phase_rad_px"]) * 0.25
        assert float(row["dry_mass_pg"]) == pytest.approx(expected, rel=1e-5)
    from napari_dmqpm.io import inspect_file

    labels = inspect_file(tmp_path / "sized" / "cells_labels.tif")
    assert labels.pixel_size_um == pytest.approx(0.5)  # for Fiji, too
    capsys.readouterr()
    assert main(["info", str(phase), "--pixel-size-um", "0.5"]) == 0
    assert "pixel size:  0.5 µm (given; overrides the file)" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main([*args, "--out", str(tmp_path / "bad"), "--pixel-size-um", "0"])
    assert "--pixel-size-um" in capsys.readouterr().err and not (tmp_path / "bad").exists()


def test_thresholds_default_to_the_models_own_and_change_the_labels(tmp_path):
    from napari_dmqpm.model.registry import find_model

    phase = _phase_map(tmp_path / "cells.tif")
    own = find_model("phase-only").postprocessing
    args = ["segment", str(phase), *_PHASE_ONLY, "--phase-unit", "rad"]

    def labels(name, *extra):
        assert main([*args, "--out", str(tmp_path / name), *extra]) == 0
        return tifffile.imread(tmp_path / name / "cells_labels.tif")

    default = labels("default")
    stated = [
        *("--foreground-threshold", str(own["foreground_threshold"])),
        *("--seed-threshold", str(own["seed_threshold"])),
        *("--min-cell-area", str(own["min_cell_area_px"])),
    ]
    np.testing.assert_array_equal(labels("stated", *stated), default)
    assert not np.array_equal(labels("fg", "--foreground-threshold", "0.3"), default)
    assert not np.array_equal(labels("seed", "--seed-threshold", "0.9"), default)
    large = labels("area", "--min-cell-area", "100000")
    assert large.max() == 0  # every cell is smaller


def test_thresholds_without_a_model_need_inputs_of_one_default_model(tmp_path, capsys):
    phase = _phase_map(tmp_path / "cells.tif", shape=(64, 64))
    main(["simulate", "--out", str(tmp_path / "d"), "--n", "1", "--size", "64", "64"])
    capsys.readouterr()
    out = tmp_path / "out"
    args = ["segment", str(phase), str(tmp_path / "d" / "sim_0000.tif"), "--out", str(out)]
    assert main([*args, "--seed-threshold", "0.7"]) == 2
    err = capsys.readouterr().err
    assert "--seed-threshold" in err and "give --model" in err and "phase-only" in err
    assert not out.exists()


def test_frames_choose_time_points_in_order(tmp_path, tiny_checkpoint, capsys):
    data = tmp_path / "data"
    main(["simulate", "--out", str(data), "--n", "1", "--size", "40", "48", "--frames", "3"])
    lapse = str(data / "sim_0000.tif")
    args = ["segment", lapse, "--model", str(tiny_checkpoint), "--device", "cpu"]
    assert main([*args, "--out", str(tmp_path / "all")]) == 0
    assert main([*args, "--out", str(tmp_path / "some"), "--frames", "2,0"]) == 0
    every = tifffile.imread(tmp_path / "all" / "sim_0000_labels.tif")
    some = tifffile.imread(tmp_path / "some" / "sim_0000_labels.tif")
    assert some.shape == (2, 40, 48)
    np.testing.assert_array_equal(some[0], every[2])
    np.testing.assert_array_equal(some[1], every[0])
    frames = {row["frame"] for row in _rows(tmp_path / "some" / "sim_0000_cells.csv")}
    assert frames <= {"0", "2"}
    capsys.readouterr()
    assert main([*args, "--out", str(tmp_path / "late"), "--frames", "1-3"]) == 2
    err = capsys.readouterr().err
    assert "--frames must be indices in [0, 3)" in err and "frames=" not in err
    assert not (tmp_path / "late").exists()
    assert main([*args, "--out", str(tmp_path / "pool"), "--frames", "0", "--workers", "2"]) == 2
    assert "--frames segments in this process only" in capsys.readouterr().err
    for bad in ("1,1", "3-1", "a", "0,,2", "-1"):
        with pytest.raises(SystemExit):
            main([*args, "--out", str(tmp_path / "bad"), "--frames", bad])
        assert "--frames" in capsys.readouterr().err


def test_parse_frames_syntax():
    from napari_dmqpm.cli import parse_frames

    assert parse_frames("0,2,5-7") == [0, 2, 5, 6, 7]
    assert parse_frames(" 4 , 1 - 2 ") == [4, 1, 2]
    with pytest.raises(argparse.ArgumentTypeError, match="named twice"):
        parse_frames("0-3,2")
    with pytest.raises(argparse.ArgumentTypeError, match="more than"):
        parse_frames("0-100000000000")


# --- the phase unit is never silently radians (issue 14) ---


def test_a_phase_map_without_unit_is_read_as_radians_with_a_warning(tmp_path, capsys):
    phase = _phase_map(tmp_path / "cells.tif")
    args = ["segment", str(phase), *_PHASE_ONLY]
    assert main([*args, "--out", str(tmp_path / "assumed")]) == 0
    err = capsys.readouterr().err
    assert f"{phase}: phase unit not stated; assumed rad." in err
    assert "Give --phase-unit rad|opd_um|opd_nm|pg_per_um2 to silence this" in err
    assert "plausible as radians (0.1-30), but also as" in err  # a Q-PHASE map looks alike
    assert main([*args, "--out", str(tmp_path / "stated"), "--phase-unit", "rad"]) == 0
    assert "warning" not in capsys.readouterr().err
    # the values are not changed: the same table as with the unit given
    assumed = (tmp_path / "assumed" / "cells_cells.csv").read_text()
    assert assumed == (tmp_path / "stated" / "cells_cells.csv").read_text()
    capsys.readouterr()
    assert main(["info", str(phase)]) == 0
    out = capsys.readouterr().out
    assert "(unit not stated (assumed rad))" in out and "values:      reach" in out
    assert main(["info", str(phase), "--phase-unit", "rad"]) == 0
    out = capsys.readouterr().out
    assert "(radians)" in out and "values:" not in out


def test_values_that_look_like_nm_are_named_and_kept(tmp_path, capsys):
    phase = _phase_map(tmp_path / "opd.tif", scale=100.0)  # peaks of a few hundred
    assert main(["segment", str(phase), *_PHASE_ONLY, "--out", str(tmp_path / "o")]) == 0
    err = capsys.readouterr().err
    assert "phase unit not stated; assumed rad" in err
    assert "implausible as radians (0.1-30); they look like nm of optical path" in err
    assert main(["segment", str(phase), *_PHASE_ONLY, "--out", str(tmp_path / "r"),
                 "--phase-unit", "rad"]) == 0  # fmt: skip
    err = capsys.readouterr().err
    assert "--phase-unit rad, but values reach" in err and "nm of optical path" in err
    rows = _rows(tmp_path / "r" / "opd_cells.csv")
    assert rows and max(float(row["mean_phase_rad"]) for row in rows) > 30  # not rescaled
    assert main(["segment", str(phase), *_PHASE_ONLY, "--out", str(tmp_path / "nm"),
                 "--phase-unit", "opd_nm", "--wavelength-um", "0.65"]) == 0  # fmt: skip
    assert "warning" not in capsys.readouterr().err


def test_an_ssqpm_stack_is_radians_without_a_warning(tmp_path, tiny_checkpoint, capsys):
    main(["simulate", "--out", str(tmp_path / "d"), "--n", "1", "--size", "40", "40"])
    capsys.readouterr()
    stack = str(tmp_path / "d" / "sim_0000.tif")
    args = ["segment", stack, "--out", str(tmp_path / "o"), "--model", str(tiny_checkpoint)]
    assert main(args) == 0
    assert "warning" not in capsys.readouterr().err
    assert main(["info", stack]) == 0
    assert "read from channel 4 (radians)" in capsys.readouterr().out


# --- errors name the options; a failed command leaves no empty --out (issue 14) ---


def test_errors_name_the_options_not_python_keywords(tmp_path, tiny_checkpoint, capsys):
    main(["simulate", "--out", str(tmp_path / "d"), "--n", "1", "--size", "32", "32"])
    assert main(["simulate", "--out", str(tmp_path / "d"), "--n", "1", "--size", "32", "32"]) == 2
    err = capsys.readouterr().err
    assert "--overwrite" in err and "overwrite=True" not in err
    stack = str(tmp_path / "d" / "sim_0000.tif")
    args = ["segment", stack, "--out", str(tmp_path / "o"), "--model", str(tiny_checkpoint)]
    assert main(args) == 0
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "pass --overwrite to replace it" in err and "overwrite=True" not in err
    # the tiny model states no trained cell diameter
    assert main([*args, "--overwrite", "--diameter", "30"]) == 2
    err = capsys.readouterr().err
    assert "--diameter 30" in err and not re.search(r"(?<![\w'])diameter_px", err)
    phase = _phase_map(tmp_path / "map.tif", shape=(32, 32))
    assert main(["info", str(phase), "--phase-unit", "opd_nm"]) == 0
    out = capsys.readouterr().out
    assert "--wavelength-um" in out and "wavelength_um=" not in out.replace("wavelength_um=...", "")
    assert main(["segment", str(phase), "--out", str(tmp_path / "w"), "--phase-unit", "opd_nm",
                 "--model", "phase-only"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "--wavelength-um" in err and "--phase-unit 'opd_nm'" in err and "_um=" not in err


def test_cli_words_translate_keywords_of_each_command():
    from napari_dmqpm.cli import cli_words

    text = "workers must be an integer >= 1; got workers=0"
    assert cli_words(text, "segment") == "--workers must be an integer >= 1; got --workers 0"
    text = "scheduler_file must exist; got scheduler_file='x'"
    assert cli_words(text, "segment") == "--scheduler-file must exist; got --scheduler-file 'x'"
    assert cli_words("got n_frames=0", "simulate") == "got --frames 0"
    assert cli_words("labels.shape=(2, 3)", "simulate") == "labels.shape=(2, 3)"  # not ours
    text = "model folder m exists; pass overwrite=True"
    assert cli_words(text, "finetune") == "model folder m exists; choose another --name"


def test_a_failed_command_removes_the_empty_out_folders_it_made(tmp_path, capsys):
    missing = str(tmp_path / "missing.tif")
    out = tmp_path / "a" / "b" / "c"
    assert main(["segment", missing, "--out", str(out), "--model", "phase-only"]) == 2
    assert "missing.tif" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and tmp_path.is_dir()
    kept = tmp_path / "kept"  # existed before: stays, even empty
    kept.mkdir()
    assert main(["segment", missing, "--out", str(kept / "new"), "--model", "phase-only"]) == 2
    assert kept.is_dir() and not any(kept.iterdir())
    assert main(["segment", missing, "--out", str(kept), "--model", "phase-only"]) == 2
    assert kept.is_dir()
    assert main(["simulate", "--out", str(tmp_path / "sim" / "x"), "--density", "thick"]) == 2
    assert "--density" in capsys.readouterr().err
    assert not (tmp_path / "sim").exists()
    # a folder the user put a file into meanwhile is never removed
    from napari_dmqpm.cli._folders import new_folders, remove_if_empty

    made = tmp_path / "made" / "out"
    folders = new_folders(made)
    made.mkdir(parents=True)
    (made / "notes.txt").write_text("mine")
    remove_if_empty(folders)
    assert (made / "notes.txt").is_file()
