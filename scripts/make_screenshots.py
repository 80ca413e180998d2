"""Screenshots of a real napari window for the docs: docs/images/napari_*.png.

Each scene opens napari, loads sample data or a file through the napari-dmqpm reader, turns
the scale bar on and saves the whole window (``viewer.screenshot(canvas_only=False)``), so the
pictures show what a user sees. Scenes that need ``../shared/data/real`` are skipped, with a
message, where it is absent.

Needs a display; without one it re-runs itself under Xvfb (``xvfb-run``). Qt's offscreen
platform cannot be used: napari crashes there when it draws.

    python scripts/make_screenshots.py [--out docs/images] [--only confluent timelapse ...]
"""

from __future__ import annotations

import argparse
import atexit
import functools
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = REPO.parent / "shared" / "data" / "real"
PLUGIN = "napari-dmqpm"
WINDOW_SIZE = (1600, 1000)


def _rerun_under_xvfb() -> None:
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return
    xvfb_run = shutil.which("xvfb-run")
    if xvfb_run is None:
        sys.exit("no display and no xvfb-run: install Xvfb (see the Makefile's xvfb target)")
    screen = f"-screen 0 {WINDOW_SIZE[0] + 100}x{WINDOW_SIZE[1] + 100}x24"
    os.execv(xvfb_run, [xvfb_run, "-a", "-s", screen, sys.executable, *sys.argv])


def _sample_confluent(viewer) -> None:
    _, phase, _ = viewer.open_sample(PLUGIN, "confluent")
    viewer.layers.selection.active = phase


def _sample_sparse_truth(viewer) -> None:
    *_, truth = viewer.open_sample(PLUGIN, "sparse")
    truth.visible = True
    truth.contour = 2
    viewer.layers.selection.active = truth


def _angles(viewer) -> float:
    angles, phase, _ = viewer.open_sample(PLUGIN, "confluent")
    phase.visible = False
    viewer.layers.selection.active = angles
    viewer.dims.set_current_step(0, 1)  # the 45° image
    return 3.0  # zoom in: close enough to see the fringes


def _timelapse(viewer) -> None:
    _, phase, truth = viewer.open_sample(PLUGIN, "timelapse")
    truth.visible = True
    truth.contour = 1
    viewer.layers.selection.active = phase
    viewer.dims.set_current_step(viewer.dims.axis_labels.index("t"), 5)


def _real_qphase(viewer) -> None:
    viewer.open(str(REAL_DATA / "vicar_qphase_iit/raw/data/qpi15.tif"), plugin=PLUGIN)


def _real_imx250mzr(viewer) -> None:
    # an everyday scene, not an interferogram: the angle images are what is worth seeing
    path = REAL_DATA / "polanalyser_imx250mzr/raw/fruits_IMX250MZR.png"
    angles, phase = viewer.open(str(path), plugin=PLUGIN)
    phase.visible = False
    viewer.layers.selection.active = angles


@functools.cache
def _model_for_widgets() -> str:
    """The shipped default model, or (no weights yet) a tiny model trained for a minute here."""
    from napari_dmqpm.model.registry import list_models

    names = [info.name for info in list_models()]
    for name in ("dmqpm-default", "phase-only"):
        if name in names:
            return name
    import tempfile

    import numpy as np
    import torch

    from napari_dmqpm.model import DMQPMNet, ModelConfig, save_checkpoint
    from napari_dmqpm.simulation import SimulationConfig, simulate_field
    from napari_dmqpm.training.finetune import export_model, finetune

    folder = Path(tempfile.mkdtemp(prefix="dmqpm-screenshots-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    os.environ["NAPARI_DMQPM_MODELS"] = str(folder / "models")
    torch.manual_seed(0)
    net = DMQPMNet(ModelConfig(inputs="phase", fusion="early", features=(8, 16, 32, 64, 64)))
    save_checkpoint(folder / "untrained", net, extra={"postprocessing": {"min_cell_area_px": 30}})
    fields = [
        simulate_field(SimulationConfig(shape=(256, 256), density=density), rng=seed)
        for seed, density in enumerate(("sparse", "sparse", "sparse", "dense"), start=1)
    ]
    phase = np.stack([f.phase for f in fields])
    labels = np.stack([f.labels for f in fields])
    finetune(phase, labels, base=folder / "untrained", out=folder / "run", minutes=None,
             epochs=25, iterations_per_epoch=10, patch_size=128, device="cpu", seed=0)  # fmt: skip
    export_model(folder / "run", folder / "models" / "demo-small")
    print("no shipped weights: the widget pictures use a small model trained here on simulations")
    return "demo-small"


def _run_widget(widget) -> None:
    from qtpy.QtWidgets import QApplication

    (widget.run if hasattr(widget, "run") else widget.train)()
    while widget.running:
        QApplication.processEvents()


def _segment_dock(viewer, model: str):
    """The Segment cells widget, docked, with ``model`` on the CPU."""
    _, segment = viewer.window.add_plugin_dock_widget(PLUGIN, "Segment cells")
    segment.model.refresh(select=model)
    segment.device.setCurrentText("cpu")
    return segment


def _segment_widget(viewer) -> None:
    model = _model_for_widgets()
    *_, truth = viewer.open_sample(PLUGIN, "sparse")
    segment = _segment_dock(viewer, model)
    segment.contours.setChecked(True)
    _run_widget(segment)
    segment.folds["Thresholds"].expand(animate=False)
    viewer.layers.selection.active = viewer.layers["sparse field cells"]


def _table_widget(viewer) -> None:
    _segment_widget(viewer)
    segment = next(iter(viewer.window.dock_widgets.values()))
    viewer.window.remove_dock_widget(segment)  # room for the table
    viewer.window.add_plugin_dock_widget("napari", "Features table widget")


def _real_qphase_segment(viewer) -> None:
    from napari_dmqpm.model.registry import list_models

    shipped = [info.name for info in list_models() if info.inputs == "phase"]
    model = shipped[0] if shipped else _model_for_widgets()  # a phase map needs a phase model
    viewer.open(str(REAL_DATA / "vicar_qphase_iit/raw/data_dense/img_003.tif"), plugin=PLUGIN)
    segment = _segment_dock(viewer, model)
    segment.units.unit.setCurrentIndex(segment.units.unit.findData("pg_per_um2"))
    segment.units.wavelength.setValue(0.65)  # Q-PHASE maps hold pg/µm² (data README)
    segment.contours.setChecked(True)
    _run_widget(segment)
    viewer.layers.selection.active = viewer.layers["img_003 cells"]


def _finetune_widget(viewer) -> None:
    model = _model_for_widgets()
    viewer.open_sample(PLUGIN, "sparse")
    segment = _segment_dock(viewer, model)
    _run_widget(segment)
    cells = viewer.layers["sparse field cells"]
    truth = viewer.layers["sparse field ground truth"].data
    changed = (cells.data != truth).nonzero()
    cells.data_setitem(changed, truth[changed])  # the user's corrections
    viewer.window.remove_dock_widget(segment)
    _, tune = viewer.window.add_plugin_dock_widget(PLUGIN, "Fine-tune model")
    tune.base.refresh(select=model)
    tune.epochs.setValue(6)
    tune.minutes.setValue(0.0)
    tune.iterations.setValue(4)
    tune.patch.setValue(128)
    tune.device.setCurrentText("cpu")
    _run_widget(tune)
    viewer.layers.selection.active = cells


def _growth_widget(viewer) -> None:
    model = _model_for_widgets()
    viewer.open_sample(PLUGIN, "timelapse")
    segment = _segment_dock(viewer, model)
    segment.scope.setCurrentText("all frames")
    segment.track.setChecked(True)
    segment.contours.setChecked(True)
    _run_widget(segment)
    viewer.window.remove_dock_widget(segment)
    _, growth = viewer.window.add_plugin_dock_widget(PLUGIN, "Cell growth")
    tracks = viewer.layers["time-lapse cells tracks"]
    mothers = sorted({parents[0] for parents in tracks.graph.values()})
    if mothers:  # show a division: the mother, with its daughters
        growth.track.setValue(int(mothers[0]))
    growth.folds["Correct tracks"].expand(animate=False)  # the corrections, unfolded
    viewer.layers.selection.active = viewer.layers["time-lapse cells"]
    viewer.dims.set_current_step(viewer.dims.axis_labels.index("t"), 7)


# file name -> (scene, needs the real data)
SCENES: dict[str, tuple[Callable, bool]] = {
    "napari_sample_confluent.png": (_sample_confluent, False),
    "napari_sample_sparse_ground_truth.png": (_sample_sparse_truth, False),
    "napari_angles.png": (_angles, False),
    "napari_timelapse.png": (_timelapse, False),
    "napari_real_qphase.png": (_real_qphase, True),
    "napari_real_imx250mzr.png": (_real_imx250mzr, True),
    "napari_widget_segment.png": (_segment_widget, False),
    "napari_widget_finetune.png": (_finetune_widget, False),
    "napari_widget_table.png": (_table_widget, False),
    "napari_widget_growth.png": (_growth_widget, False),
    "napari_widget_real_qphase.png": (_real_qphase_segment, True),
}


def _shoot(scene: Callable, path: Path) -> None:
    import napari
    from qtpy.QtWidgets import QApplication

    viewer = napari.Viewer(title="napari-dmqpm", show=True)
    try:
        viewer.window.resize(*WINDOW_SIZE)
        zoom = scene(viewer) or 1.0
        viewer.canvas.overlays.scale_bar.visible = True
        viewer.canvas.overlays.scale_bar.font_size = 12
        viewer.reset_view()
        viewer.scene.camera.zoom *= zoom
        for _ in range(5):
            QApplication.processEvents()
        viewer.screenshot(str(path), canvas_only=False)
    finally:
        viewer.close()
    _shrink(path)


def _shrink(path: Path) -> None:
    """Re-save as a 256-colour PNG: half the size, no visible change for these pictures."""
    from PIL import Image

    with Image.open(path) as image:
        rgb = image.convert("RGB")
    rgb.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        path, optimize=True
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images")
    parser.add_argument("--only", nargs="*", help="substrings of the scene file names to make")
    args = parser.parse_args(argv)
    _rerun_under_xvfb()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, (scene, needs_real) in SCENES.items():
        if args.only and not any(part in name for part in args.only):
            continue
        if needs_real and not REAL_DATA.is_dir():
            print(f"skipped {name}: {REAL_DATA} is absent")
            continue
        _shoot(scene, args.out / name)
        print(f"wrote {args.out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
