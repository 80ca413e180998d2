"""Fixtures of the napari tests: one small file of every supported format, written with tifffile."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from napari_dmqpm.phase import synthesize_angles

#: Frame size of the test files, in pixels.
ROWS, COLS = 48, 64
#: Pixel size written into the files that carry one, in µm.
PIXEL_UM = 0.345


@dataclass(frozen=True)
class WrittenFile:
    """A test file and what the reader should make of it."""

    path: Path
    kind: str
    shapes: dict[str, tuple[int, ...]]  # layer-name suffix -> layer data shape
    pixel_size_um: float | None


def _cell_phase(n_rows: int = ROWS, n_cols: int = COLS, *, shift: float = 0.0) -> np.ndarray:
    """A smooth cell, 3 rad high, on a flat background, in radians."""
    rows, cols = np.mgrid[:n_rows, :n_cols]
    radius2 = (rows - n_rows / 2) ** 2 + (cols - n_cols / 2 - shift) ** 2
    return 3.0 * np.exp(-radius2 / (2 * (n_rows / 6) ** 2))


def _intensities(phase: np.ndarray) -> np.ndarray:
    tilt = 0.4 * np.arange(phase.shape[1])[None, :]
    return synthesize_angles(phase + tilt, mean=1500.0, visibility=0.7)


def _ssqpm_frame(shift: float = 0.0) -> np.ndarray:
    phase = _cell_phase(shift=shift)
    return np.concatenate([_intensities(phase), phase[None].astype(np.float32)])


def _mosaic(phase: np.ndarray) -> np.ndarray:
    """An IMX250MZR mosaic (row 0: 90, 45; row 1: 135, 0 degrees) of the four intensities."""
    i0, i45, i90, i135 = _intensities(phase)
    mosaic = np.empty((2 * phase.shape[0], 2 * phase.shape[1]), np.float32)
    mosaic[0::2, 0::2], mosaic[0::2, 1::2] = i90, i45
    mosaic[1::2, 0::2], mosaic[1::2, 1::2] = i135, i0
    return mosaic


def _imagej_kwargs(axes: str) -> dict:
    return {
        "imagej": True,
        "resolution": (1 / PIXEL_UM, 1 / PIXEL_UM),
        "metadata": {"axes": axes, "unit": "um"},
    }


def write_all_formats(folder: Path) -> dict[str, WrittenFile]:
    """Write one file of every format into ``folder``; keyed by a short name."""
    frame = _ssqpm_frame()
    files = {}

    path = folder / "stack_imagej.tif"
    tifffile.imwrite(path, frame, **_imagej_kwargs("CYX"))
    files["ssqpm_imagej"] = WrittenFile(
        path, "ssqpm-stack", {"angles": (4, ROWS, COLS), "phase": (ROWS, COLS)}, PIXEL_UM
    )

    path = folder / "stack_ome.ome.tif"
    tifffile.imwrite(
        path,
        frame,
        ome=True,
        metadata={"axes": "CYX", "PhysicalSizeX": PIXEL_UM, "PhysicalSizeY": PIXEL_UM},
    )
    files["ssqpm_ome"] = WrittenFile(
        path, "ssqpm-stack", {"angles": (4, ROWS, COLS), "phase": (ROWS, COLS)}, PIXEL_UM
    )

    path = folder / "angles_plain.tiff"
    angles = np.round(frame[:4]).astype(np.uint16)
    tifffile.imwrite(path, angles, photometric="minisblack", compression="zlib")
    files["angles_plain"] = WrittenFile(
        path, "angles-stack", {"angles": (4, ROWS, COLS), "phase": (ROWS, COLS)}, None
    )

    path = folder / "raw_mosaic.tif"
    tifffile.imwrite(path, np.round(_mosaic(_cell_phase())).astype(np.uint16), compression="lzw")
    files["raw_mosaic"] = WrittenFile(
        path, "raw-mosaic", {"angles": (4, ROWS, COLS), "phase": (ROWS, COLS)}, None
    )

    path = folder / "raw_mosaic.png"
    scaled = _mosaic(_cell_phase()) * (255 / 2600)
    Image.fromarray(np.clip(np.round(scaled), 0, 255).astype(np.uint8)).save(path)
    files["raw_png"] = WrittenFile(
        path, "raw-mosaic", {"angles": (4, ROWS, COLS), "phase": (ROWS, COLS)}, None
    )

    path = folder / "phase_map.tif"
    tifffile.imwrite(path, _cell_phase().astype(np.float32), **_imagej_kwargs("YX"))
    files["phase_map"] = WrittenFile(path, "phase-map", {"phase": (ROWS, COLS)}, PIXEL_UM)

    path = folder / "timelapse.tif"
    movie = np.stack([_ssqpm_frame(shift=2.0 * t) for t in range(3)])
    tifffile.imwrite(path, movie, **_imagej_kwargs("TCYX"))
    files["timelapse"] = WrittenFile(
        path, "ssqpm-stack", {"angles": (4, 3, ROWS, COLS), "phase": (3, ROWS, COLS)}, PIXEL_UM
    )
    return files


@pytest.fixture(scope="module")
def qpm_files(tmp_path_factory) -> dict[str, WrittenFile]:
    """One small file of every supported format (module-scoped: written once)."""
    return write_all_formats(tmp_path_factory.mktemp("formats"))


@pytest.fixture
def foreign_files(tmp_path) -> dict[str, Path]:
    """Files napari-dmqpm must not claim (plus a path that does not exist)."""
    text = tmp_path / "notes.txt"
    text.write_text("not an image\n")
    fake_tif = tmp_path / "notes.tif"
    fake_tif.write_text("a text file with a .tif name\n")
    jpeg = tmp_path / "photo.jpg"
    rgb = np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(jpeg)
    jpeg_as_tif = tmp_path / "photo_renamed.tif"
    jpeg_as_tif.write_bytes(jpeg.read_bytes())
    folder = tmp_path / "a_folder.tif"
    folder.mkdir()
    return {
        "text": text,
        "text_named_tif": fake_tif,
        "jpeg": jpeg,
        "jpeg_named_tif": jpeg_as_tif,
        "folder": folder,
        "missing": tmp_path / "missing.tif",
    }


# --- shared by the widget tests ---


@pytest.fixture
def models(tmp_path, monkeypatch):
    """An empty user models folder and settings folder, both in tmp_path; threads on."""
    folder = tmp_path / "models"
    folder.mkdir()
    monkeypatch.setenv("NAPARI_DMQPM_MODELS", str(folder))
    monkeypatch.setenv("NAPARI_DMQPM_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv("NAPARI_DMQPM_NOTHREADS", raising=False)
    # only the tiny test models: the shipped weights would be slow and change the defaults
    monkeypatch.setattr("napari_dmqpm.model.registry.shipped_model_dirs", lambda: [])
    return folder


@pytest.fixture
def notes():
    """Every napari notification shown during the test: (severity, message)."""
    from napari.utils.notifications import notification_manager

    seen = []

    def keep(event):
        seen.append((str(event.severity).lower(), str(event.message)))

    notification_manager.notification_ready.connect(keep)
    yield seen
    notification_manager.notification_ready.disconnect(keep)


@pytest.fixture
def tiny_model(models):
    """Save a tiny untrained phase-only model ``name`` into the models folder; returns it."""
    torch = pytest.importorskip("torch")
    from napari_dmqpm.model import DMQPMNet, ModelConfig, save_checkpoint

    def make(name: str = "tiny", *, post: dict | None = None) -> Path:
        torch.manual_seed(0)
        config = ModelConfig(inputs="phase", fusion="early", features=(4, 8, 16, 32, 32))
        extra = {"postprocessing": post or {"min_cell_area_px": 10, "foreground_threshold": 0.3}}
        return save_checkpoint(models / name, DMQPMNet(config), extra=extra)

    return make


@pytest.fixture
def dock():
    """``dock(viewer, name)``: dock a widget of the plugin through its manifest; the widget."""

    def dock_widget(viewer, name: str = "Segment cells"):
        _, widget = viewer.window.add_plugin_dock_widget("napari-dmqpm", name)
        return widget

    return dock_widget
