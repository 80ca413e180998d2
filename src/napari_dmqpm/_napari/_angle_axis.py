"""The polarizer-angle slider says which angle it shows: "angle 45°", not step 1 of 0-3.

napari's dims slider shows the step index of an axis (0, 1, 2, 3 for the four interferograms)
and the axis label beside it. The angles layers name their first axis ``"angle"``
(:func:`napari_dmqpm._napari._layers.spatial_kwargs`); :func:`follow_angle_axis` keeps that
label at the angle of the current step. napari rebuilds the labels from the layers whenever
a layer is added or removed, so the label is re-applied on every change of the labels too.
The reader and the sample data install it on the viewer they open into (napari's current
viewer), the widgets on the viewer they are docked in.
"""

from __future__ import annotations

import sys
import weakref
from typing import Any

from napari_dmqpm.io.acquisition import ANGLES_DEG

__all__ = ["ANGLE_AXIS", "angle_label", "follow_angle_axis", "follow_current_viewer"]

#: The axis label of the polarizer-angle axis of an angles layer.
ANGLE_AXIS = "angle"
_FOLLOWED: list[weakref.ref] = []


def angle_label(step: int) -> str:
    """The slider label of the angle axis at ``step`` (``"angle 45°"`` for step 1).

    Examples
    --------
    >>> [angle_label(step) for step in range(4)]
    ['angle 0°', 'angle 45°', 'angle 90°', 'angle 135°']
    """
    if not 0 <= step < len(ANGLES_DEG):
        return ANGLE_AXIS
    return f"{ANGLE_AXIS} {ANGLES_DEG[step]}°"


def _is_angle_axis(label: str) -> bool:
    return label == ANGLE_AXIS or (label.startswith(ANGLE_AXIS + " ") and label.endswith("°"))


def _relabel(dims: Any) -> None:
    labels = list(dims.axis_labels)
    for axis, label in enumerate(labels):
        if _is_angle_axis(label) and dims.nsteps[axis] == len(ANGLES_DEG):
            labels[axis] = angle_label(int(dims.current_step[axis]))
    if tuple(labels) != tuple(dims.axis_labels):
        dims.axis_labels = labels  # emits axis_labels once more: then nothing changes


def follow_angle_axis(viewer: Any) -> None:
    """Label the angle axis of ``viewer`` with the polarizer angle shown (once per viewer).

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        Its ``dims``: on every change of the current step or of the axis labels, an axis
        labelled ``"angle"`` (or already ``"angle <deg>°"``) with four steps is relabelled
        ``"angle 0°"``, ``"angle 45°"``, ``"angle 90°"`` or ``"angle 135°"``.
    """
    _FOLLOWED[:] = [ref for ref in _FOLLOWED if ref() is not None]
    if any(ref() is viewer for ref in _FOLLOWED):
        return
    _FOLLOWED.append(weakref.ref(viewer))
    dims = viewer.dims
    dims.events.current_step.connect(lambda _event=None: _relabel(dims))
    dims.events.axis_labels.connect(lambda _event=None: _relabel(dims))
    _relabel(dims)


def follow_current_viewer() -> None:
    """:func:`follow_angle_axis` on napari's current viewer, if there is one (else nothing).

    Reading outside napari (napari not imported) imports nothing and does nothing.
    """
    napari = sys.modules.get("napari")
    viewer = None if napari is None else napari.current_viewer()
    if viewer is not None:
        follow_angle_axis(viewer)
