"""The windowed demo (``python -m napari_dmqpm.demo --gui``, ``make demo`` with a display).

Opens napari with the plugin's sample data and docks every widget the manifest contributes,
so what the demo shows is exactly what a user gets from the Plugins menu.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import napari

__all__ = ["PLUGIN_NAME", "dock_plugin_widgets", "open_demo_viewer", "run_demo_gui"]

#: The npe2 plugin name (= the distribution name).
PLUGIN_NAME = "napari-dmqpm"


def dock_plugin_widgets(viewer: napari.Viewer) -> list[str]:
    """Dock every widget contribution of the napari-dmqpm manifest on ``viewer``, as tabs.

    Tabs give each widget the full height of the window, so both fit a 1280x800 screen; a
    user who docks them from the Plugins menu gets them stacked, and each scrolls.

    Parameters
    ----------
    viewer : napari.Viewer
        A viewer with a window.

    Returns
    -------
    list of str
        Display names of the widgets docked, in manifest order (empty while the manifest
        contributes no widgets).
    """
    from npe2 import PluginManager

    manifest = PluginManager.instance().get_manifest(PLUGIN_NAME)
    docked, docks = [], []
    for widget in manifest.contributions.widgets or ():
        dock, _ = viewer.window.add_plugin_dock_widget(
            PLUGIN_NAME, widget.display_name, tabify=bool(docks)
        )
        docked.append(widget.display_name)
        docks.append(dock)
    if docks:  # the first tab (Segment cells) in front, once Qt has laid the tabs out
        from qtpy.QtCore import QTimer

        docks[0].raise_()
        QTimer.singleShot(0, docks[0].raise_)
    return docked


def open_demo_viewer(
    *, samples: Sequence[str] = ("confluent",), viewer: napari.Viewer | None = None
) -> napari.Viewer:
    """Open (or fill) a viewer with sample data, the scale bar and the plugin's widgets.

    Parameters
    ----------
    samples : sequence of str, optional
        Sample keys of the manifest (``"sparse"``, ``"confluent"``, ``"timelapse"``), opened
        in this order. Mixing the time-lapse with a single field adds a time slider that the
        single field ignores.
    viewer : napari.Viewer, optional
        The viewer to use; a new one by default.

    Returns
    -------
    napari.Viewer
        The viewer (not yet run: call ``napari.run()``).
    """
    import napari
    from napari.utils.notifications import show_info

    if viewer is None:
        viewer = napari.Viewer(title="napari-dmqpm demo")
    for key in samples:
        viewer.open_sample(PLUGIN_NAME, key)
    viewer.canvas.overlays.scale_bar.visible = True
    viewer.reset_view()
    docked = dock_plugin_widgets(viewer)
    widgets = f"; widgets docked: {', '.join(docked)}" if docked else ""
    show_info(
        f"napari-dmqpm demo: sample {', '.join(samples)}{widgets}. "
        "More samples: File > Open Sample > ssQPM cell segmentation with DM-QPMNet."
    )
    return viewer


def run_demo_gui(*, samples: Sequence[str] = ("confluent",)) -> None:
    """Open the demo viewer and run napari's event loop until the window is closed.

    Parameters
    ----------
    samples : sequence of str, optional
        Sample keys to open (see :func:`open_demo_viewer`).
    """
    import napari

    open_demo_viewer(samples=samples)
    napari.run()
