"""dmqpm simulate --timelapse and dmqpm track: files, frame interval from metadata, errors."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import tifffile

from napari_dmqpm.cli import main
from napari_dmqpm.io.timing import read_frame_interval


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    status = main(
        [
            "simulate",
            "--timelapse",
            "--out",
            str(out),
            "--n",
            "1",
            "--size",
            "128",
            "128",
            "--frames",
            "5",
            "--frame-interval",
            "20",
            "--density",
            "dense",
        ]
    )
    assert status == 0
    return out


def _rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_simulate_timelapse_writes_stack_labels_true_lineage_and_ctc_truth(simulated):
    names = sorted(p.name for p in simulated.iterdir())
    assert names == [
        "dataset.json",
        "sim_0000.tif",
        "sim_0000_gt",
        "sim_0000_labels.tif",
        "sim_0000_lineage.csv",
    ]
    assert read_frame_interval(simulated / "sim_0000.tif") == pytest.approx(20.0)
    lineage = _rows(simulated / "sim_0000_lineage.csv")
    assert set(lineage[0]) >= {"track_id", "parent", "growth_rate_per_h", "doubling_time_h"}
    lines = (simulated / "sim_0000_gt" / "TRA" / "man_track.txt").read_text().splitlines()
    assert len(lines) >= len(lineage)  # tracks with gaps are split, as the CTC asks
    assert (simulated / "sim_0000_gt" / "TRA" / "man_track003.tif").is_file()


def test_track_reads_the_frame_interval_from_the_stack_and_writes_tables(
    simulated, tmp_path, capsys
):
    labels = simulated / "sim_0000_labels.tif"
    status = main(
        ["track", str(labels), "--phase", str(simulated / "sim_0000.tif"), "--out", str(tmp_path)]
    )
    assert status == 0
    said = capsys.readouterr().out
    assert "frame interval 20 min" in said and "sim_0000.tif" in said
    tracks = _rows(tmp_path / "sim_0000_tracks.csv")
    lineage = _rows(tmp_path / "sim_0000_lineage.csv")
    assert float(tracks[1]["time_h"]) in (0.0, pytest.approx(1 / 3)) and tracks[0]["dry_mass_pg"]
    assert any(row["growth_rate_pg_per_h"] != "" for row in lineage)  # cells off the edge
    assert (tmp_path / "sim_0000_ctc" / "res_track.txt").is_file()
    assert tifffile.imread(tmp_path / "sim_0000_ctc" / "mask000.tif").dtype == np.uint16


def test_track_without_any_frame_interval_says_rates_are_per_frame(simulated, tmp_path, capsys):
    assert main(["track", str(simulated / "sim_0000_labels.tif"), "--out", str(tmp_path)]) == 0
    assert "growth rates are per frame" in capsys.readouterr().out
    lineage = _rows(tmp_path / "sim_0000_lineage.csv")
    assert lineage[0]["growth_rate_pg_per_h"] == ""  # NaN: never guessed
    # an existing output is never replaced without --overwrite
    assert main(["track", str(simulated / "sim_0000_labels.tif"), "--out", str(tmp_path)]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_track_refuses_a_single_frame_naming_the_problem(tmp_path, capsys):
    from napari_dmqpm.io import write_labels

    path = write_labels(tmp_path / "one_labels.tif", np.ones((1, 16, 16), np.uint16))
    assert main(["track", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "nothing to track" in capsys.readouterr().err


def test_frame_interval_from_imagej_and_ome_metadata(tmp_path):
    data = np.zeros((3, 8, 8), np.uint16)
    tifffile.imwrite(
        tmp_path / "ij.tif",
        data,
        imagej=True,
        metadata={"axes": "TYX", "finterval": 90.0, "tunit": "sec"},
    )
    tifffile.imwrite(
        tmp_path / "ome.ome.tif",
        data,
        ome=True,
        metadata={"axes": "TYX", "TimeIncrement": 0.25, "TimeIncrementUnit": "h"},
    )
    tifffile.imwrite(tmp_path / "none.tif", data, photometric="minisblack")
    assert read_frame_interval(tmp_path / "ij.tif") == pytest.approx(1.5)
    assert read_frame_interval(tmp_path / "ome.ome.tif") == pytest.approx(15.0)
    assert read_frame_interval(tmp_path / "none.tif") is None


def test_segment_track_segments_then_links_each_time_lapse(simulated, tmp_path, capsys):
    stack = simulated / "sim_0000.tif"
    args = ["segment", str(stack), "--out", str(tmp_path), "--model", "dmqpm-fast", "--track"]
    assert main([*args, "--diameter", "28", "--device", "cpu"]) == 0
    said = capsys.readouterr().out
    assert "tracked" in said and "frame interval 20 min" in said
    for name in ("sim_0000_labels.tif", "sim_0000_tracks.csv", "sim_0000_lineage.csv"):
        assert (tmp_path / name).is_file(), name
    tracks = _rows(tmp_path / "sim_0000_tracks.csv")
    assert {int(row["frame"]) for row in tracks} == set(range(5))
    assert float(tracks[0]["dry_mass_pg"]) > 0  # from the stack's phase
    # --frames would leave gaps the linker cannot see: refused before any work
    assert main([*args, "--frames", "0,2", "--out", str(tmp_path / "x")]) == 2
    assert "--track links consecutive frames" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_track_file_takes_the_dry_mass_from_the_segmentation_table(
    simulated, tmp_path, monkeypatch
):
    # segment --track hands track_file its own <stem>_cells.csv: the input's phase is not
    # retrieved a second time, and the masses are the table's
    import napari_dmqpm.io as io_module
    from napari_dmqpm.inference import write_table_csv
    from napari_dmqpm.io import read_labels
    from napari_dmqpm.tracking.files import track_file

    labels = read_labels(simulated / "sim_0000_labels.tif").labels
    rows = [{"frame": t, "label": label, "dry_mass_pg": 10.0 * label + t}
            for t in range(labels.shape[0]) for label in np.unique(labels[t]) if label]  # fmt: skip
    table = {key: np.array([row[key] for row in rows]) for key in rows[0]}
    write_table_csv(tmp_path / "cells.csv", table)

    def refuse(*args, **kwargs):
        raise AssertionError("the phase was read again")

    monkeypatch.setattr(io_module, "read_acquisition", refuse)
    result = track_file(
        simulated / "sim_0000_labels.tif", tmp_path / "out",
        phase_path=simulated / "sim_0000.tif", table_path=tmp_path / "cells.csv",
    )  # fmt: skip
    assert result.frame_interval_min == pytest.approx(20.0)  # from the input's metadata
    cells = result.tracks.cells
    np.testing.assert_allclose(cells["dry_mass_pg"], 10.0 * cells["label"] + cells["frame"])
