"""The segment widget starts on the model the CLI picks for angle images (issue 17)."""

from __future__ import annotations

import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")
pytest.importorskip("torch")

from napari_dmqpm._tests.napari.test_widget_segment import make_model  # noqa: E402
from napari_dmqpm.model.registry import default_model_for  # noqa: E402

pytestmark = pytest.mark.gui
PLUGIN = "napari-dmqpm"


def test_the_widget_starts_on_the_default_model_not_the_first_listed(make_napari_viewer, models):
    default = default_model_for("ssqpm-stack")
    make_model(models / "aaa-first", inputs="both")  # listed before the default
    make_model(models / default, inputs="both", seed=1)
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "sparse")  # phase and angles
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Segment cells")
    assert widget.model.itemText(0) == "aaa-first"
    assert widget.model.currentText() == default


def test_a_remembered_model_still_wins(make_napari_viewer, models):
    from napari_dmqpm._napari._widgets._settings import WidgetSettings, save_settings

    make_model(models / "aaa-first", inputs="both")
    make_model(models / default_model_for("ssqpm-stack"), inputs="both", seed=1)
    save_settings(WidgetSettings(model="aaa-first"))
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "sparse")
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Segment cells")
    assert widget.model.currentText() == "aaa-first"
