"""The phase unit fields: a map stored in pg/µm² is converted to radians as the CLI does."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

pytest.importorskip("napari")
pytest.importorskip("pytestqt")
pytest.importorskip("torch")

from napari_dmqpm.io.units import radians_per_unit  # noqa: E402

pytestmark = pytest.mark.gui
PLUGIN = "napari-dmqpm"
#: The Q-PHASE case: dry mass density at 650 nm, 1.74 rad per pg/µm².
FACTOR = radians_per_unit("pg_per_um2", wavelength_um=0.65)


@pytest.fixture
def qphase_map(tmp_path):
    """A 96 x 128 phase map in pg/µm² whose file states neither unit nor wavelength."""
    rows, cols = np.mgrid[:96, :128]
    density = 1.2 * np.exp(-((rows - 48) ** 2 + (cols - 64) ** 2) / 400.0)
    path = tmp_path / "qphase.tif"
    tifffile.imwrite(path, density.astype(np.float32), imagej=True, metadata={"axes": "YX"})
    return path


def _captured(monkeypatch) -> list:
    """Record the acquisitions the widget hands to segment_acquisition."""
    import napari_dmqpm.inference as inference

    seen, real = [], inference.segment_acquisition

    def spy(acquisition, *args, **kwargs):
        seen.append(acquisition)
        return real(acquisition, *args, **kwargs)

    monkeypatch.setattr(inference, "segment_acquisition", spy)
    return seen


def test_a_map_without_a_unit_is_converted_recorded_and_remembered(
    make_napari_viewer, qtbot, tiny_model, dock, qphase_map, monkeypatch, notes
):
    tiny_model()
    viewer = make_napari_viewer()
    (phase,) = viewer.open(qphase_map, plugin=PLUGIN)
    assert phase.metadata["unit"] is None  # the file states none: the user says
    widget = dock(viewer)
    # not silently radians: the field asks, and says what the values look like
    assert widget.units.unit.isEnabled() and widget.units.unit.currentData() is None
    assert widget.units.unit.currentText() == "not stated: choose"
    note = widget.units.note.text()
    assert "states no unit" in note and "pg/µm² of dry mass" in note and "radians" in note
    assert widget.units.wavelength.value() == 0.0  # "unknown"
    widget.device.setCurrentText("cpu")
    widget.run()
    assert not widget.running and "states no unit: choose it under Phase unit" in notes[-1][1]
    assert "qphase cells" not in viewer.layers
    widget.units.unit.setCurrentIndex(widget.units.unit.findData("pg_per_um2"))
    widget.run()  # no wavelength yet: refused, nothing runs
    assert not widget.running and "needs the wavelength" in notes[-1][1]
    widget.units.wavelength.setValue(0.65)
    seen = _captured(monkeypatch)
    widget.run()
    qtbot.waitUntil(lambda: not widget.running, timeout=30_000)
    np.testing.assert_allclose(seen[0].phase[0], np.asarray(phase.data) * FACTOR, rtol=1e-6)
    assert seen[0].wavelength_um == 0.65
    record = viewer.layers["qphase cells"].metadata["segmentation"]["phase_unit"]
    assert record["unit"] == "pg_per_um2" and record["wavelength_um"] == 0.65
    assert record["radians_per_unit"] == pytest.approx(FACTOR)
    # the table measures the converted phase (here of a cell painted by hand)
    cells = viewer.layers["qphase cells"]
    rows, cols = np.mgrid[40:56, 56:72]
    cells.data_setitem((rows.ravel(), cols.ravel()), 900)
    widget.update_table()
    row = cells.features[cells.features["label"] == 900].iloc[0]
    # measure_cells on the phase converted by hand (above the background the labels leave)
    from napari_dmqpm.inference import measure_cells

    by_hand = measure_cells(np.asarray(cells.data), np.asarray(phase.data, np.float64) * FACTOR)
    expected = by_hand["mean_phase_rad"][by_hand["label"] == 900][0]
    assert row["mean_phase_rad"] == pytest.approx(expected, rel=1e-5)
    # copy as code repeats the choice for the CLI and the API
    text = widget.copy_as_code()
    assert f"dmqpm segment {qphase_map} --out segmented --model tiny" in text
    assert "--phase-unit pg_per_um2 --wavelength-um 0.65" in text
    assert "read_acquisition(" in text and "phase_unit='pg_per_um2', wavelength_um=0.65" in text
    # remembered: the other widget has the choice for this layer; a new map is asked again
    from napari_dmqpm._napari._widgets._settings import load_settings

    assert load_settings().phase_unit == "pg_per_um2" and load_settings().wavelength_um == 0.65
    other = dock(viewer, "Fine-tune model")
    assert other.units.unit.currentData() == "pg_per_um2" and other.units.unit.isEnabled()
    viewer.add_image(np.asarray(phase.data) * 100.0, name="another map")
    widget.phase.select(viewer.layers["another map"])
    assert widget.units.unit.currentData() is None
    assert "Your last choice: pg/µm² (dry mass)" in widget.units.note.text()
    assert "implausible as radians" in widget.units.note.text()  # 120 above the background
    widget.phase.select(phase)
    assert widget.units.unit.currentData() == "pg_per_um2"
    # ...but a layer that states its unit locks the field
    viewer.open_sample(PLUGIN, "sparse")
    widget.phase.select(viewer.layers["sparse field phase"])
    assert widget.units.unit.currentData() == "rad" and not widget.units.unit.isEnabled()
    assert widget.units.wavelength.value() == pytest.approx(
        viewer.layers["sparse field phase"].metadata["wavelength_um"]
    )


def test_the_python_snippet_of_layers_without_a_file_converts_the_same(
    make_napari_viewer, tiny_model, dock
):
    tiny_model()
    viewer = make_napari_viewer()
    density = np.random.default_rng(0).uniform(0.0, 1.0, (64, 64)).astype(np.float32)
    viewer.add_image(density, name="map phase")
    widget = dock(viewer)
    widget.units.unit.setCurrentIndex(widget.units.unit.findData("opd_nm"))
    widget.units.wavelength.setValue(0.5)
    widget.device.setCurrentText("cpu")
    text = widget.copy_as_code()
    assert "--phase-unit opd_nm --wavelength-um 0.5" in text
    code = text.split("# Python\n", 1)[1]
    assert "phase_unit='opd_nm'" in code and "wavelength_um=0.5" in code
    scope = {"viewer": viewer}
    exec(compile(code, "<copy-as-code>", "exec"), scope)  # noqa: S102
    expected = density * radians_per_unit("opd_nm", wavelength_um=0.5)
    np.testing.assert_allclose(scope["acquisition"].phase[0], expected, rtol=1e-6)


def test_finetune_trains_on_the_phase_in_radians(make_napari_viewer, tiny_model, dock, qphase_map):
    tiny_model()
    viewer = make_napari_viewer()
    (phase,) = viewer.open(qphase_map, plugin=PLUGIN)
    labels = np.zeros(phase.data.shape, np.uint32)
    labels[30:66, 40:88] = 1
    viewer.add_labels(labels, name="qphase cells")
    tune = dock(viewer, "Fine-tune model")
    tune.units.unit.setCurrentIndex(tune.units.unit.findData("pg_per_um2"))
    tune.units.wavelength.setValue(0.65)
    request = tune.request()
    np.testing.assert_allclose(request.phase[0], np.asarray(phase.data) * FACTOR, rtol=1e-6)
    assert request.phase_unit.unit == "pg_per_um2"


def test_phase_unit_rules_without_qt():
    from napari_dmqpm._napari._widgets._inputs import InputError, PhaseUnit

    assert PhaseUnit().radians == 1.0 and PhaseUnit().to_dict()["unit"] == "rad"
    assert PhaseUnit(unit="opd_um", wavelength_um=0.5).radians == pytest.approx(4 * np.pi)
    with pytest.raises(InputError, match="needs the wavelength"):
        PhaseUnit(unit="pg_per_um2")
    with pytest.raises(InputError, match="must be one of"):
        PhaseUnit(unit="deg")
    with pytest.raises(InputError, match="wavelength_um must be a positive number"):
        PhaseUnit(unit="opd_nm", wavelength_um=float("nan"))


def test_a_typed_pixel_size_fills_um2_and_pg(
    make_napari_viewer, qtbot, tiny_model, dock, qphase_map
):
    tiny_model()
    viewer = make_napari_viewer()
    (phase,) = viewer.open(qphase_map, plugin=PLUGIN)
    widget = dock(viewer)
    assert widget.units.pixel_size.isEnabled() and widget.units.pixel_size_um() is None
    widget.units.unit.setCurrentIndex(widget.units.unit.findData("pg_per_um2"))
    widget.units.wavelength.setValue(0.65)
    widget.device.setCurrentText("cpu")
    cells = viewer.add_labels(np.zeros(phase.data.shape, np.uint32), name="qphase cells")
    cells.data_setitem(tuple(np.mgrid[40:56, 56:72].reshape(2, -1)), 7)
    widget.update_table()
    assert (
        np.isnan(cells.features["area_um2"]).all() and np.isnan(cells.features["dry_mass_pg"]).all()
    )
    widget.units.pixel_size.setValue(0.5)
    widget.update_table()
    row = cells.features.iloc[0]
    assert row["area_um2"] == pytest.approx(256 * 0.25)
    density = np.asarray(phase.data)[40:56, 56:72].astype(np.float64)  # pg/µm²
    background = row["background_rad"] / FACTOR  # pg/µm² of the fitted background under it
    assert abs(background) < 0.1 * density.mean()
    assert row["dry_mass_pg"] == pytest.approx((density - background).sum() * 0.25, rel=1e-4)
    # a run measures with it too, and the copied command repeats it
    widget.run()
    qtbot.waitUntil(lambda: not widget.running, timeout=30_000)
    table = viewer.layers["qphase cells"].features
    assert len(table) and np.isfinite(table["area_um2"]).all()
    assert "--pixel-size-um 0.5" in widget.copy_as_code()
    # a layer whose file states its pixel size locks the field to it
    viewer.open_sample(PLUGIN, "sparse")
    widget.phase.select(viewer.layers["sparse field phase"])
    stated = viewer.layers["sparse field phase"].metadata["pixel_size_um"]
    assert not widget.units.pixel_size.isEnabled()
    assert widget.units.pixel_size_um() == pytest.approx(stated, rel=1e-5)
