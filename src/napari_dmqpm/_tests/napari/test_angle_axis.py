"""The polarizer-angle slider reads "angle 45°", in a real viewer with the widget docked."""

from __future__ import annotations

import pytest

pytest.importorskip("napari")
pytestmark = pytest.mark.gui

PLUGIN = "napari-dmqpm"


def slider_label(viewer, axis: int) -> str:
    """The text napari shows beside the slider of ``axis`` (its axis-label widget)."""
    sliders = viewer.window._qt_viewer.dims.slider_widgets
    return sliders[axis].axis_label.text()


@pytest.mark.parametrize("key", ["ssqpm_imagej", "timelapse"])
def test_the_angle_slider_shows_the_polarizer_angle(make_napari_viewer, qpm_files, key):
    viewer = make_napari_viewer()
    viewer.open(str(qpm_files[key].path), plugin=PLUGIN)  # no widget docked yet
    (angle,) = [i for i, label in enumerate(viewer.dims.axis_labels) if label.startswith("angle")]
    step = viewer.dims.current_step[angle]  # napari opens a stack at its middle step
    assert slider_label(viewer, angle) == f"angle {45 * step}°"
    for step, degrees in enumerate((0, 45, 90, 135)):
        viewer.dims.set_current_step(angle, step)
        assert slider_label(viewer, angle) == f"angle {degrees}°"
    # a layer added later makes napari rebuild the labels from the layers: still degrees
    viewer.add_image(viewer.layers[-1].data, name="copy")
    assert slider_label(viewer, angle) == "angle 135°"
    assert viewer.layers[0].axis_labels[0] == "angle"  # the layers keep their own label
    # docking the widgets does not install more listeners that fight the first
    viewer.window.add_plugin_dock_widget(PLUGIN, "Segment cells")
    viewer.window.add_plugin_dock_widget(PLUGIN, "Fine-tune model")
    viewer.dims.set_current_step(angle, 1)
    assert slider_label(viewer, angle) == "angle 45°"


def test_sample_data_has_the_angle_slider_in_degrees(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "confluent")
    viewer.dims.set_current_step(0, 3)
    assert slider_label(viewer, 0) == "angle 135°"
