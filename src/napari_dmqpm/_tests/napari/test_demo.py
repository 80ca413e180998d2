"""The demo behind ``make demo``: headless run (no display needed) and the windowed viewer."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys

import numpy as np
import pytest
import tifffile

from napari_dmqpm import demo


def test_run_folders_are_always_new(tmp_path):
    now = dt.datetime(2026, 1, 2, 3, 4, 5)
    first = demo.new_run_folder(tmp_path, now=now)
    second = demo.new_run_folder(tmp_path, now=now)
    assert first.name == "run-20260102-030405" and second.name == "run-20260102-030405-1"
    assert first.is_dir() and second.is_dir()


def test_headless_demo_writes_readable_files_and_an_overview(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert demo.main(["--out", str(tmp_path), "--sample", "timelapse"]) == 0
    (folder,) = tmp_path.iterdir()
    names = sorted(path.name for path in folder.iterdir())
    assert names == ["overview.png", "segmentation", "timelapse.tif", "timelapse_labels.tif"]
    labels = tifffile.imread(folder / "timelapse_labels.tif")
    assert labels.shape == (8, 256, 256) and labels.dtype == np.uint16 and labels.max() > 0
    printed = capsys.readouterr().out
    assert str(folder) in printed and "timelapse angles (4, 8, 256, 256)" in printed
    segmented = sorted(path.name for path in (folder / "segmentation").iterdir())
    if "segmentation skipped" in printed:  # a checkout without trained weights
        assert segmented == []
    else:
        assert segmented == ["timelapse_cells.csv", "timelapse_frames.csv", "timelapse_labels.tif"]
        assert tifffile.imread(folder / "segmentation" / "timelapse_labels.tif").shape == (
            8,
            256,
            256,
        )
        # the shipped dmqpm-default on this seeded time-lapse printed Dice 0.988, F1@0.5 0.916
        # (52 cells found for 44 true, 2026-12-06); the floors sit a little below
        scores = re.search(r"vs ground truth Dice (\d\.\d+), F1@0\.5 (\d\.\d+)", printed)
        assert scores, printed
        dice, f1 = (float(value) for value in scores.groups())
        assert dice >= 0.97 and f1 >= 0.85, printed


def test_cells_are_counted_per_frame_whether_ids_repeat_across_frames_or_not():
    tracked = np.zeros((3, 8, 8), dtype=np.uint16)
    tracked[:, 1:3, 1:3], tracked[:, 5:7, 5:7] = 1, 2  # two cells, same ids in every frame
    renumbered = tracked + np.array([0, 2, 4], dtype=np.uint16)[:, None, None] * (tracked > 0)
    assert demo.count_cells(tracked) == demo.count_cells(renumbered) == 6
    assert demo.count_cells(tracked[0]) == 2 and demo.count_cells(np.zeros((4, 4), int)) == 0
    assert demo.describe_cell_count(tracked) == "6 cells (per frame, summed over 3 frames)"
    assert demo.describe_cell_count(tracked[:1]) == demo.describe_cell_count(tracked[0])
    with pytest.raises(ValueError, match=r"labels.shape=\(8,\)"):
        demo.count_cells(np.zeros(8))


def _segment_into_the_truth(stack_path, *, out_dir, config):
    """A stand-in for segment_file whose prediction is the ground truth the demo wrote."""
    from napari_dmqpm.inference.segment import SegmentFileResult

    truth = tifffile.imread(stack_path.with_name(f"{stack_path.stem}_labels.tif"))
    frames = truth.reshape(-1, *truth.shape[-2:])
    # DM-QPMNet numbers each frame anew (1, 2, ...); the simulator keeps a cell's id
    renumbered = np.stack([np.unique(frame, return_inverse=True)[1] for frame in frames])
    labels_path, table_path = out_dir / f"{stack_path.stem}_labels.tif", out_dir / "cells.csv"
    tifffile.imwrite(labels_path, renumbered.reshape(truth.shape).astype(np.uint16))
    n_rows = sum(len(np.unique(frame)) - 1 for frame in frames)  # one CSV row per cell, frame
    table_path.write_text("frame,label\n")
    return SegmentFileResult(
        labels_path, table_path, n_frames=len(frames), n_cells=n_rows, model="truth",
        model_sha256=None,
    )  # fmt: skip


def test_headless_demo_counts_true_and_predicted_cells_alike(tmp_path, capsys, monkeypatch):
    import napari_dmqpm.inference

    monkeypatch.setattr(napari_dmqpm.inference, "segment_file", _segment_into_the_truth)
    monkeypatch.setattr(demo, "_write_overview", lambda samples, path: path)
    demo.main(["--out", str(tmp_path), "--sample", "timelapse"])
    printed = capsys.readouterr().out
    truth = re.search(r"ground truth, (\d+) cells (\(.*\))", printed)
    predicted = re.search(r"cells\.csv: (\d+) cells (\(.*\)) by truth", printed)
    assert truth and predicted, printed
    assert truth.groups() == predicted.groups()
    assert truth.group(2) == "(per frame, summed over 8 frames)"
    labels = tifffile.imread(next(tmp_path.glob("run-*/timelapse_labels.tif")))
    assert int(truth.group(1)) > len(np.unique(labels)) - 1  # the ids repeat across frames


def test_gui_without_napari_says_what_to_install(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "napari", None)  # what `import napari` fails on
    assert demo.main(["--gui"]) == 1
    printed = capsys.readouterr()
    assert "needs napari, which is not installed" in printed.err
    assert 'pip install ".[all]"' in printed.err and "Traceback" not in printed.err


def test_gui_without_a_qt_binding_says_what_to_install(capsys, monkeypatch):
    for binding in demo.QT_BINDINGS:
        monkeypatch.setitem(sys.modules, binding, None)
    assert demo.main(["--gui"]) == 1
    assert "needs a Qt binding for napari" in capsys.readouterr().err


def test_python_m_demo_gui_without_napari_exits_non_zero_without_a_traceback():
    code = (
        "import runpy, sys; sys.modules['napari'] = None; sys.argv = ['demo', '--gui']; "
        "runpy.run_module('napari_dmqpm.demo', run_name='__main__')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and 'pip install "napari[pyqt6]"' in done.stderr


def test_gui_and_out_are_exclusive_and_one_is_required():
    with pytest.raises(SystemExit):
        demo.main([])
    with pytest.raises(SystemExit):
        demo.main(["--gui", "--out", "x"])


@pytest.mark.gui
def test_demo_viewer_opens_the_sample_and_docks_every_manifest_widget(make_napari_viewer):
    pytest.importorskip("napari")
    from npe2 import PluginManager

    from napari_dmqpm._napari._demo_gui import PLUGIN_NAME, open_demo_viewer

    viewer = open_demo_viewer(samples=("sparse",), viewer=make_napari_viewer())
    assert [layer.name for layer in viewer.layers] == [
        "sparse field angles",
        "sparse field phase",
        "sparse field ground truth",
    ]
    assert viewer.canvas.overlays.scale_bar.visible
    widgets = PluginManager.instance().get_manifest(PLUGIN_NAME).contributions.widgets or []
    docked = set(viewer.window.dock_widgets)
    assert all(any(w.display_name in name for name in docked) for w in widgets)
