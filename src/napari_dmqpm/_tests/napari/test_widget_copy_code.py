"""Copy as code is equivalent: the copied ``dmqpm segment`` command reproduces the widget's run.

The GUI test runs the shipped phase-only model on a small simulated time-lapse, through the
real manifest, and the command in-process; the other tests check the command's words.
"""

from __future__ import annotations

import shlex

import numpy as np
import pytest
import tifffile

pytest.importorskip("napari")
pytest.importorskip("pytestqt")
pytest.importorskip("torch")

from napari_dmqpm._napari._widgets._code import (  # noqa: E402
    SegmentCall,
    frames_text,
    python_snippet,
    shell_command,
)
from napari_dmqpm.cli import main, parse_frames  # noqa: E402
from napari_dmqpm.inference import InferenceConfig, PostprocessConfig  # noqa: E402

PLUGIN = "napari-dmqpm"


@pytest.fixture
def shipped_models(tmp_path, monkeypatch):
    """The shipped models (phase-only is fast on a small image), settings in tmp_path."""
    monkeypatch.setenv("NAPARI_DMQPM_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("NAPARI_DMQPM_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv("NAPARI_DMQPM_NOTHREADS", raising=False)
    from napari_dmqpm.model.registry import find_model

    try:
        return find_model("phase-only")
    except FileNotFoundError:
        pytest.skip("this installation ships no phase-only weights")


def _shell_words(text: str, out) -> list[str]:
    """The argv of the copied command for ``cli.main``, writing into ``out``."""
    line = text.split("# shell\n", 1)[1].split("\n\n", 1)[0].strip()
    words = shlex.split(line)
    assert words[:2] == ["dmqpm", "segment"]
    words = words[1:]
    words[words.index("--out") + 1] = str(out)
    return words


def _without(words: list[str], *flags: str) -> list[str]:
    kept, skip = [], False
    for word in words:
        if skip:
            skip = False
        elif word in flags:
            skip = True
        else:
            kept.append(word)
    return kept


@pytest.mark.gui
def test_the_copied_command_writes_the_labels_of_the_widget_pixel_for_pixel(
    make_napari_viewer, qtbot, shipped_models, tmp_path
):
    from napari_dmqpm.simulation import write_dataset

    write_dataset(tmp_path / "data", n=1, seed=5, shape=(128, 128), n_frames=2, density="dense")
    path = tmp_path / "data" / "sim_0000.tif"  # an ssQPM time-lapse that states its pixel size
    viewer = make_napari_viewer()
    viewer.open(str(path), plugin=PLUGIN)
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Segment cells")
    widget.phase.select(viewer.layers[f"{path.stem} phase"])
    widget.model.setCurrentText("phase-only")
    own = PostprocessConfig.from_dict(shipped_models.postprocessing)
    assert widget.foreground.value() == pytest.approx(own.foreground_threshold)
    widget.device.setCurrentText("cpu")
    widget.diameter.setValue(20.0)  # "auto" would be the same, but slow on the CPU
    widget.scope.setCurrentText("current frame")
    viewer.dims.set_current_step(1, 1)  # world axis 1 is time (the angle axis leads)
    widget.foreground.setValue(0.45)  # all three from the model's own
    widget.seeds.setValue(0.85)
    widget.min_area.setValue(80)
    widget.run()
    qtbot.waitUntil(lambda: not widget.running, timeout=120_000)
    layer = viewer.layers[f"{path.stem} cells"]
    assert layer.data.shape == (2, 128, 128) and layer.data[1].max() > 1  # a few cells
    text = widget.copy_as_code()
    assert "--foreground-threshold 0.45 --seed-threshold 0.85 --min-cell-area 80" in text
    assert "--frames 1" in text and "--diameter 20" in text

    words = _shell_words(text, tmp_path / "cli")
    assert main(words) == 0
    written = tifffile.imread(tmp_path / "cli" / f"{path.stem}_labels.tif", squeeze=False)
    written = written.reshape(-1, 128, 128)
    assert written.shape == (1, 128, 128)  # the chosen frame only
    assert np.array_equal(written[0], layer.data[1])
    rows = (tmp_path / "cli" / f"{path.stem}_cells.csv").read_text().splitlines()[1:]
    assert len(rows) == len(layer.features) and {r.split(",")[0] for r in rows} == {"1"}

    # each threshold matters here: without it the model's own gives other labels
    for flag in ("--foreground-threshold", "--seed-threshold", "--min-cell-area"):
        out = tmp_path / flag.strip("-")
        fewer = _without(words, flag)
        fewer[fewer.index("--out") + 1] = str(out)
        assert main(fewer) == 0
        other = tifffile.imread(out / f"{path.stem}_labels.tif")
        assert not np.array_equal(other.reshape(128, 128), layer.data[1]), flag


def _call(source, **changes) -> SegmentCall:
    values = {
        "source": str(source),
        "phase_layer": "cells phase",
        "angles_layer": None,
        "pixel_size_um": None,
        "model": "phase-only",
        "config": InferenceConfig(),
        "postprocess": PostprocessConfig(),
    }
    return SegmentCall(**{**values, **changes})


def test_pixel_size_is_given_where_the_file_states_another_or_none(tmp_path):
    stated = tmp_path / "stated.tif"
    phase = np.zeros((32, 32), np.float32)
    tifffile.imwrite(stated, phase, resolution=(2.0, 2.0), resolutionunit=5)  # 0.5 µm
    bare = tmp_path / "bare.tif"
    tifffile.imwrite(bare, phase)
    mosaic = tmp_path / "raw.tif"
    tifffile.imwrite(mosaic, np.zeros((64, 64), np.uint16))
    assert "--pixel-size-um" not in shell_command(_call(stated, pixel_size_um=0.5))
    assert "--pixel-size-um 0.3 " in shell_command(_call(stated, pixel_size_um=0.3)) + " "
    assert "--pixel-size-um 0.3" in shell_command(_call(bare, pixel_size_um=0.3))
    assert "--pixel-size-um" not in shell_command(_call(bare))
    # a raw mosaic's layers have twice its pixel size (superpixel demosaicing)
    assert "--pixel-size-um 0.25" in shell_command(_call(mosaic, pixel_size_um=0.5))
    assert "pixel_size_um=0.3" in python_snippet(_call(bare, pixel_size_um=0.3))
    # a phase map states no unit: the command says which the widget used
    assert "--phase-unit rad" in shell_command(_call(bare))
    assert "--phase-unit" not in shell_command(_call(mosaic))


def test_frames_round_trip_through_the_command_syntax():
    for frames in ([0], [3, 1], [0, 1, 2, 3, 7, 9, 10, 11, 4], list(range(50))):
        assert parse_frames(frames_text(frames)) == frames
    assert frames_text([0, 2, 5, 6, 7]) == "0,2,5-7"
