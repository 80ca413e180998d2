"""The model follows the input: without angle images both widgets choose a phase model, and the
models that need angles are greyed out, also when the remembered setting names one of them."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")
pytest.importorskip("torch")

from napari_dmqpm._tests.napari.test_widget_segment import make_model  # noqa: E402

pytestmark = pytest.mark.gui
PLUGIN = "napari-dmqpm"


def _enabled(box) -> dict[str, bool]:
    items = box.model()
    return {box.itemText(i): items.item(i).isEnabled() for i in range(box.count())}


@pytest.mark.parametrize(
    ("widget_name", "box"), [("Segment cells", "model"), ("Fine-tune model", "base")]
)
def test_a_phase_only_input_gets_a_phase_model(make_napari_viewer, models, widget_name, box):
    make_model(models / "both", inputs="both")
    make_model(models / "tiny", inputs="phase")
    from napari_dmqpm._napari._widgets._settings import WidgetSettings, save_settings

    save_settings(WidgetSettings(model="both"))  # remembered: a model that needs angles
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "sparse")  # phase and angles
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, widget_name)
    models_box = getattr(widget, box)
    models_box.setCurrentText("both")
    assert models_box.currentText() == "both" and _enabled(models_box) == {
        "both": True,
        "tiny": True,
    }
    # the user picks "none (phase only)": the angle model gives way and is greyed out
    widget.angles.setCurrentIndex(0)
    assert widget.angles.layer() is None
    assert models_box.currentText() == "tiny"
    assert _enabled(models_box) == {"both": False, "tiny": True}
    tooltip = models_box.itemData(models_box.findText("both"), 3)  # Qt.ToolTipRole
    assert "needs the four angle images" in tooltip
    # angle images again: the model the user had comes back
    widget.angles.setCurrentIndex(widget.angles.findText("sparse field angles"))
    assert models_box.currentText() == "both" and _enabled(models_box)["both"]


def test_a_phase_map_opened_with_an_angle_model_remembered(make_napari_viewer, models):
    make_model(models / "both", inputs="both")
    make_model(models / "tiny", inputs="phase")
    from napari_dmqpm._napari._widgets._settings import WidgetSettings, save_settings

    save_settings(WidgetSettings(model="both"))
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((64, 64), np.float32), name="map phase", metadata={"unit": "rad"})
    _, segment = viewer.window.add_plugin_dock_widget(PLUGIN, "Segment cells")
    _, tune = viewer.window.add_plugin_dock_widget(PLUGIN, "Fine-tune model")
    assert segment.model.currentText() == "tiny" and tune.base.currentText() == "tiny"
    assert segment.request().model == "tiny"
