"""The demo behind ``make demo``: headless run (no display needed) and the windowed viewer."""

from __future__ import annotations

import datetime as dt

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
        assert segmented == ["timelapse_cells.csv", "timelapse_labels.tif"]
        assert tifffile.imread(folder / "segmentation" / "timelapse_labels.tif").shape == (
            8,
            256,
            256,
        )
        assert "vs ground truth Dice" in printed


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
