"""The "Segment cells" widget through the real manifest, under Xvfb, with tiny offline models."""

from __future__ import annotations

import time

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")
torch = pytest.importorskip("torch")

from napari_dmqpm.model import DMQPMNet, ModelConfig, save_checkpoint  # noqa: E402

pytestmark = pytest.mark.gui
PLUGIN = "napari-dmqpm"
#: Metadata of a layer whose values are stated to be radians.
RAD = {"unit": "rad"}


def make_model(folder, *, inputs="phase", seed=0, post=None, diameter=None):
    """A tiny untrained checkpoint (phase-only or both inputs), saved in ``folder``."""
    torch.manual_seed(seed)
    fusion = {"phase": "early", "both": "concat"}[inputs]
    config = ModelConfig(inputs=inputs, fusion=fusion, fusion_stage=1, features=(4, 8, 16, 32, 32))
    extra = {"postprocessing": post or {"min_cell_area_px": 10}}
    if diameter is not None:
        extra["cell_diameter_px"] = diameter
    return save_checkpoint(folder, DMQPMNet(config), extra=extra)


def dock(viewer, name="Segment cells"):
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, name)
    return widget


def run_and_wait(qtbot, widget, action=None, timeout=30_000):
    (action or widget.run)()
    qtbot.waitUntil(lambda: not widget.running, timeout=timeout)


def snapshot(viewer):
    return {layer.name: np.array(layer.data, copy=True) for layer in viewer.layers}


def test_segment_sample_data_makes_one_labels_layer_with_provenance(
    make_napari_viewer, qtbot, models, notes
):
    make_model(models / "tiny")
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "sparse")
    widget = dock(viewer)
    assert widget.phase.currentText() == "sparse field phase"
    assert widget.angles.currentText() == "sparse field angles"  # paired from the reader
    assert widget.model.currentText() == "tiny"
    widget.device.setCurrentText("cpu")
    run_and_wait(qtbot, widget)
    cells = viewer.layers["sparse field cells"]
    phase = viewer.layers["sparse field phase"]
    assert cells.data.dtype == np.uint32 and cells.data.shape == (512, 512)
    assert np.allclose(cells.scale, phase.scale) and tuple(cells.units) == tuple(phase.units)
    record = cells.metadata["segmentation"]
    assert record["model"] == "tiny" and len(record["model_sha256"]) == 64
    assert record["inference"]["device"] == "cpu" and record["device"] == "cpu"
    assert "foreground_threshold" in record["postprocess"]
    n_cells = len(np.unique(cells.data)) - 1
    assert len(cells.features) == n_cells
    assert {"label", "area_px", "dry_mass_pg", "index"} <= set(cells.features.columns)
    probability = viewer.layers["sparse field cell probability"]
    assert not probability.visible and probability.data.shape == (512, 512)
    assert widget.device_used.text() == "in use: cpu"
    assert not [n for n in notes if "ERROR" in n[0].upper()]
    # settings persist in NAPARI_DMQPM_CONFIG_DIR
    from napari_dmqpm._napari._widgets._settings import load_settings

    assert load_settings().model == "tiny" and load_settings().device == "cpu"


def test_rerun_updates_the_layer_and_ctrl_z_restores_the_painted_result(
    make_napari_viewer, qtbot, models
):
    make_model(models / "tiny", post={"min_cell_area_px": 10, "foreground_threshold": 0.3})
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "sparse")
    widget = dock(viewer)
    widget.device.setCurrentText("cpu")
    run_and_wait(qtbot, widget)
    cells = viewer.layers["sparse field cells"]
    first = np.array(cells.data, copy=True)
    cells.paint((100, 100), 77)  # a user's correction, undoable like any brush stroke
    painted = np.array(cells.data, copy=True)
    assert (painted != first).any()
    n_layers = len(viewer.layers)
    widget.foreground.setValue(0.9)
    run_and_wait(qtbot, widget)
    assert len(viewer.layers) == n_layers and viewer.layers["sparse field cells"] is cells
    assert (cells.data != painted).any()
    assert cells.metadata["segmentation"]["postprocess"]["foreground_threshold"] == 0.9
    cells.undo()
    np.testing.assert_array_equal(cells.data, painted)
    cells.undo()
    np.testing.assert_array_equal(cells.data, first)


def test_thresholds_reapply_without_running_the_network(
    make_napari_viewer, qtbot, models, monkeypatch
):
    make_model(models / "tiny", post={"min_cell_area_px": 10, "foreground_threshold": 0.3})
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "sparse")
    widget = dock(viewer)
    widget.device.setCurrentText("cpu")
    run_and_wait(qtbot, widget)
    cells = viewer.layers["sparse field cells"]
    before = np.array(cells.data, copy=True)

    def no_network(*args, **kwargs):
        raise AssertionError("the network must not run again")

    monkeypatch.setattr("napari_dmqpm.inference.segment_acquisition", no_network)
    widget.foreground.setValue(0.95)
    run_and_wait(qtbot, widget, widget.reapply_thresholds)
    assert (cells.data != before).any()
    assert cells.metadata["segmentation"]["postprocess"]["foreground_threshold"] == 0.95
    assert len(cells.features) == len(np.unique(cells.data)) - 1
    cells.undo()
    np.testing.assert_array_equal(cells.data, before)


def test_cancel_stops_within_a_second_and_changes_no_layer(make_napari_viewer, qtbot, models):
    make_model(models / "tiny")
    viewer = make_napari_viewer()
    rng = np.random.default_rng(0)
    viewer.add_image(
        rng.normal(size=(6, 1024, 1024)).astype(np.float32), name="movie phase", metadata=RAD
    )
    widget = dock(viewer)
    widget.device.setCurrentText("cpu")
    widget.scope.setCurrentText("current frame")
    run_and_wait(qtbot, widget)  # a first result, to see that cancelling keeps it
    before = snapshot(viewer)
    widget.scope.setCurrentText("all frames")
    widget.run()
    assert widget.running and not widget.run_button.isEnabled()
    qtbot.waitUntil(lambda: widget.progress_bar.value() > 0, timeout=20_000)
    asked = time.perf_counter()
    widget.cancel_button.click()
    qtbot.waitUntil(lambda: not widget.running, timeout=5_000)
    assert time.perf_counter() - asked < 1.5
    assert widget.run_button.isEnabled() and "cancelled" in widget.status.text()
    after = snapshot(viewer)
    assert after.keys() == before.keys()
    for name, data in before.items():
        np.testing.assert_array_equal(after[name], data)


def test_nothreads_runs_synchronously(make_napari_viewer, models, monkeypatch):
    make_model(models / "tiny", post={"min_cell_area_px": 10, "foreground_threshold": 0.3})
    monkeypatch.setenv("NAPARI_DMQPM_NOTHREADS", "1")
    viewer = make_napari_viewer()
    viewer.add_image(
        np.random.default_rng(1).normal(size=(64, 96)).astype(np.float32), name="a", metadata=RAD
    )
    widget = dock(viewer)
    widget.device.setCurrentText("cpu")
    widget.run()  # returns when done: no worker thread
    assert not widget.running and viewer.layers["a cells"].data.shape == (64, 96)
    assert widget.run_button.isEnabled() and not widget.cancel_button.isEnabled()


def test_time_lapse_current_frame_only_touches_that_frame(make_napari_viewer, qtbot, models):
    make_model(models / "tiny", post={"min_cell_area_px": 10, "foreground_threshold": 0.3})
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "timelapse")
    widget = dock(viewer)
    widget.device.setCurrentText("cpu")
    widget.scope.setCurrentText("current frame")
    viewer.dims.set_current_step(1, 3)  # world axis 1 is time (the angle axis leads)
    run_and_wait(qtbot, widget)
    cells = viewer.layers["time-lapse cells"]
    assert cells.data.shape == (8, 256, 256)
    touched = [t for t in range(8) if cells.data[t].any()]
    assert touched == [3]
    assert set(cells.features["frame"]) <= {3}
    assert cells.metadata["segmentation"]["frames"] == [3]


def test_copy_as_code_gives_the_command_and_a_python_call(make_napari_viewer, models, tmp_path):
    make_model(models / "tiny", diameter=24.0)
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "sparse")
    widget = dock(viewer)
    widget.tta.setChecked(True)
    widget.diameter.setValue(24.0)
    text = widget.copy_as_code()
    from qtpy.QtWidgets import QApplication

    assert QApplication.clipboard().text() == text and not widget.code.isHidden()
    assert "dmqpm segment INPUT.tif --out segmented --model tiny" in text
    assert "--diameter 24 --tta" in text
    assert "segment_acquisition(" in text and "viewer.layers['sparse field phase'].data" in text
    # the Python call runs as shown, with `viewer` in scope (as in napari's console)
    code = text.split("# Python\n", 1)[1]
    scope = {"viewer": viewer}
    exec(compile(code, "<copy-as-code>", "exec"), scope)  # noqa: S102
    assert scope["labels"][0].shape == (512, 512) and "dry_mass_pg" in scope["table"]


def test_update_and_save_the_table_after_corrections(make_napari_viewer, qtbot, models, tmp_path):
    make_model(models / "tiny", post={"min_cell_area_px": 10, "foreground_threshold": 0.3})
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "sparse")
    widget = dock(viewer)
    widget.device.setCurrentText("cpu")
    run_and_wait(qtbot, widget)
    cells = viewer.layers["sparse field cells"]
    cells.data_setitem((np.arange(5, 15), np.arange(5, 15)), 999)
    widget.update_table()
    assert 999 in set(cells.features["label"])
    path = widget.save_table(str(tmp_path / "cells.csv"))
    header = (tmp_path / "cells.csv").read_text(encoding="utf-8").splitlines()[0]
    assert path and header.startswith("frame,label,area_px")


@pytest.mark.parametrize(
    "problem", ["no layer", "too small", "needs angles", "no diameter", "output taken"]
)
def test_bad_input_is_a_notification_and_changes_nothing(
    make_napari_viewer, models, notes, problem
):
    make_model(models / ("both" if problem == "needs angles" else "tiny"), inputs="both"
               if problem == "needs angles" else "phase")  # fmt: skip
    viewer = make_napari_viewer()
    if problem == "too small":
        viewer.add_image(np.zeros((16, 16), np.float32), name="small phase", metadata=RAD)
    if problem in ("needs angles", "no diameter", "output taken"):
        viewer.add_image(np.zeros((64, 64), np.float32), name="lonely phase", metadata=RAD)
    if problem == "output taken":
        viewer.add_labels(np.zeros((32, 32), np.uint32), name="lonely cells")
    widget = dock(viewer)
    if problem == "no diameter":
        widget.diameter.setValue(30.0)
    before = snapshot(viewer)
    widget.run()
    assert not widget.running
    errors = [message for severity, message in notes if "error" in severity.lower()]
    expected = {
        "no layer": "no phase image chosen",
        "too small": "16 x 16 px is smaller than the smallest tile",
        "needs angles": "needs the four angle images",
        "no diameter": "does not state the cell diameter it was trained at",
        "output taken": "'lonely cells' exists but is not a labels layer of shape (64, 64)",
    }[problem]
    assert len(errors) == 1 and expected in errors[0], notes
    assert "Traceback" not in errors[0]
    assert widget.status.text() == errors[0]  # the whole message stays after the toast fades
    assert snapshot(viewer).keys() == before.keys()


def test_pure_parts_settings_and_code(tmp_path, monkeypatch):
    from napari_dmqpm._napari._widgets import _settings
    from napari_dmqpm._napari._widgets._code import SegmentCall, python_snippet, shell_command
    from napari_dmqpm.inference import InferenceConfig, PostprocessConfig

    monkeypatch.setenv(_settings.CONFIG_ENV, str(tmp_path / "cfg"))
    assert _settings.load_settings() == _settings.WidgetSettings()  # no file yet
    saved = _settings.WidgetSettings(model="m", device="cpu", diameter_px=20.0, tta=True)
    path = _settings.save_settings(saved)
    assert path.parent == tmp_path / "cfg" and _settings.load_settings() == saved
    path.write_text('{"device": "tpu", "diameter_px": -1, "tta": true}')
    assert _settings.load_settings() == _settings.WidgetSettings(tta=True)  # bad values dropped
    path.write_text("not json")
    assert _settings.load_settings() == _settings.WidgetSettings()
    source = tmp_path / "my cells.tif"
    source.write_bytes(b"x")
    call = SegmentCall(source=str(source), phase_layer="my cells phase", angles_layer=None,
                       pixel_size_um=0.3, model="phase-only", config=InferenceConfig(),
                       postprocess=PostprocessConfig(seed_threshold=0.7), frames=[2])  # fmt: skip
    assert shell_command(call) == (
        f"dmqpm segment '{source}' --out segmented --model phase-only --device auto "
        "--foreground-threshold 0.5 --seed-threshold 0.7 --min-cell-area 30 --frames 2 "
        "--pixel-size-um 0.3"
    )  # a file whose header cannot be read states no pixel size
    snippet = python_snippet(call)
    assert f"read_acquisition({str(source)!r}, pixel_size_um=0.3)" in snippet
    assert "frames=[2]" in snippet
    assert "PostprocessConfig(seed_threshold=0.7)" in snippet
    compile(snippet, "<snippet>", "exec")


def test_widgets_are_in_the_layers_segment_menu_and_dock_from_it(make_napari_viewer, models):
    from napari._app_model import get_app_model

    from napari_dmqpm._napari._widgets import FinetuneWidget, SegmentWidget

    viewer = make_napari_viewer()
    segment = dock(viewer)
    assert segment.phase.layer() is None
    viewer.open_sample(PLUGIN, "sparse")  # the pickers follow the layer list
    assert segment.phase.currentText() == "sparse field phase"
    assert segment.angles.currentText() == "sparse field angles"
    viewer.layers["sparse field phase"].name = "renamed phase"
    assert segment.phase.currentText() == "renamed phase"
    segment.angles.setCurrentIndex(0)  # the user picks "none (phase only)" by hand...
    segment.angles.activated.emit(0)
    viewer.add_image(np.zeros((8, 8), np.float32), name="another")
    assert segment.angles.currentText() == "none (phase only)"  # ...and it stays
    app = get_app_model()
    ids = [getattr(item, "command", None) for item in app.menus.get_menu("napari/layers/segment")]
    ids = [command.id for command in ids if command is not None]
    assert {"napari-dmqpm.segment_widget", "napari-dmqpm.finetune_widget"} <= set(ids)
    app.commands.execute_command("napari-dmqpm.segment_widget").result()
    app.commands.execute_command("napari-dmqpm.finetune_widget").result()
    docked = list(viewer.window.dock_widgets.values())
    assert any(isinstance(w, SegmentWidget) for w in docked)
    assert any(isinstance(w, FinetuneWidget) for w in docked)


@pytest.mark.parametrize("threads", [True, False], ids=["worker", "inline"])
def test_a_cpu_fallback_during_a_run_is_shown_as_a_napari_warning(
    make_napari_viewer, qtbot, models, notes, monkeypatch, threads
):
    """Out of GPU memory, the core finishes on the CPU and warns; the user must see it."""
    import warnings

    if not threads:
        monkeypatch.setenv("NAPARI_DMQPM_NOTHREADS", "1")
    import napari_dmqpm.inference as inference
    from napari_dmqpm.model.device import DeviceFallbackWarning

    segment = inference.segment_acquisition

    def falling_back(*args, **kwargs):
        message = "CUDA out of memory; finishing this frame on the CPU"
        warnings.warn(message, DeviceFallbackWarning, stacklevel=2)
        return segment(*args, **kwargs)

    monkeypatch.setattr(inference, "segment_acquisition", falling_back)
    make_model(models / "tiny")
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "sparse")
    widget = dock(viewer)
    widget.device.setCurrentText("cpu")
    run_and_wait(qtbot, widget)
    qtbot.waitUntil(lambda: any("finishing this frame on the CPU" in m for _, m in notes))
    assert [s for s, m in notes if "on the CPU" in m][0].endswith("warning")
    assert "sparse field cells" in viewer.layers  # the run still delivered its labels


def test_the_estimated_cell_diameter_is_shown_recorded_and_a_typed_one_wins(
    make_napari_viewer, qtbot, models
):
    import shutil
    from pathlib import Path

    import napari_dmqpm

    # the shipped phase-only weights, under another name (the fixture hides the shipped ones)
    shipped = Path(napari_dmqpm.__file__).resolve().parents[2] / "weights" / "phase-only"
    if not shipped.is_dir():
        pytest.skip("the shipped weights are not beside this checkout")
    shutil.copytree(shipped, models / "shipped-phase")
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "sparse")
    widget = dock(viewer)
    widget.model.setCurrentText("shipped-phase")
    widget.device.setCurrentText("cpu")
    assert widget.diameter.value() == 0 and widget.diameter_found.isReadOnly()
    assert "--diameter" not in widget.copy_as_code()  # auto is the command's default
    run_and_wait(qtbot, widget, timeout=120_000)
    found = widget.diameter_found.text()
    assert found.endswith(" px (estimated)"), found
    estimate = float(found.split()[0])
    assert 15 < estimate < 40  # the sample's cells are about 28 px across
    assert f"cell diameter {estimate:.1f} px (estimated from" in widget.status.text()
    record = viewer.layers["sparse field cells"].metadata["segmentation"]
    (frame,) = record["cell_diameter"]
    assert frame["source"] == "estimated" and frame["diameter_px"] == pytest.approx(estimate, 0.01)
    features = viewer.layers["sparse field cells"].features
    np.testing.assert_allclose(features["cell_diameter_px"], frame["diameter_px"], rtol=1e-3)
    # a typed diameter wins, and the command line says so
    widget.diameter.setValue(30.0)
    assert "--diameter 30" in widget.copy_as_code()
    run_and_wait(qtbot, widget, timeout=120_000)
    assert widget.diameter_found.text() == "30.0 px (given)"
    record = viewer.layers["sparse field cells"].metadata["segmentation"]
    assert record["cell_diameter"][0]["source"] == "given"


def test_the_contours_toggle_outlines_the_result(make_napari_viewer, qtbot, models):
    make_model(models / "tiny")
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "sparse")
    widget = dock(viewer)
    widget.device.setCurrentText("cpu")
    widget.contours.setChecked(True)
    run_and_wait(qtbot, widget)
    cells = viewer.layers["sparse field cells"]
    assert cells.contour == 2  # a new result comes outlined
    widget.contours.setChecked(False)
    assert cells.contour == 0
    widget.contours.setChecked(True)
    assert cells.contour == 2


def test_choosing_another_image_clears_what_was_said_about_the_last(
    make_napari_viewer, qtbot, models
):
    make_model(models / "tiny")
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "sparse")
    widget = dock(viewer)
    widget.device.setCurrentText("cpu")
    run_and_wait(qtbot, widget)
    widget.copy_as_code()
    assert "sparse field cells" in widget.status.text() and widget.diameter_found.text()
    assert widget.code.isVisibleTo(widget) and widget.code.toPlainText()
    viewer.add_image(np.zeros((64, 64), np.float32), name="other phase", metadata=RAD)
    widget.phase.select(viewer.layers["other phase"])
    assert widget.status.text() == "" and widget.diameter_found.text() == ""
    assert not widget.code.isVisibleTo(widget) and widget.code.toPlainText() == ""
    # the fine-tune widget offers a free name again when its suggestion is taken
    from napari_dmqpm._napari._widgets._form import model_events

    tune = dock(viewer, "Fine-tune model")
    taken = tune.name.text()
    make_model(models / taken)
    model_events().added.emit(taken)
    assert tune.name.text() != taken and tune.name.text() not in (taken, "")
