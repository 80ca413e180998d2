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
    viewer.open(str(qpm_files[key].path), plugin=PLUGIN)
    viewer.window.add_plugin_dock_widget(PLUGIN, "Segment cells")
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
    # docking the second widget does not install a second listener that fights the first
    viewer.window.add_plugin_dock_widget(PLUGIN, "Fine-tune model")
    viewer.dims.set_current_step(angle, 1)
    assert slider_label(viewer, angle) == "angle 45°"
