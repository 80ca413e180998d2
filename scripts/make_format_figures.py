"""Make the pictures of docs/formats.md: one per input format, each read by the real reader.

Every picture is made the way a user's file is: the data are written to a temporary file in
that format and read back with :func:`napari_dmqpm.io.read_acquisition`. Simulated fields
come from :func:`napari_dmqpm.simulation.simulate_field` (seeded); the raw-mosaic and
phase-map pictures use the real IMX250MZR frame and Q-PHASE map of ../shared/data/real
when that folder is present (simulated stand-ins otherwise).

Usage: ``python scripts/make_format_figures.py [--out docs/images]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import tifffile  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from napari_dmqpm.io import read_acquisition, write_stack  # noqa: E402
from napari_dmqpm.simulation import SimulationConfig, simulate_field  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "real"
IMX_PNG = REAL / "polanalyser_imx250mzr" / "raw" / "polarizer_IMX250MZR.png"
QPHASE_TIF = REAL / "vicar_qphase_iit" / "raw" / "data" / "qpi15.tif"
CHANNELS = ("I0", "I45", "I90", "I135")
DPI = 110


def scale_bar(axis, pixel_size_um: float | None, length_um: float = 20.0) -> None:
    """A white bar of ``length_um`` in the lower left corner (nothing without a pixel size)."""
    if not pixel_size_um:
        return
    n_rows, _ = axis.get_images()[0].get_array().shape
    length = length_um / pixel_size_um
    axis.add_patch(Rectangle((0.05 * length, n_rows * 0.93), length, n_rows * 0.015, color="w"))
    axis.text(0.05 * length, n_rows * 0.9, f"{length_um:g} µm", color="w", fontsize=8)


def show(axis, image, title, cmap="gray", colorbar=None):
    low, high = np.percentile(image, [0.1, 99.9])  # robust contrast limits
    shown = axis.imshow(image, cmap=cmap, interpolation="nearest", vmin=low, vmax=high)
    axis.set_title(title, fontsize=9)
    axis.set_axis_off()
    if colorbar:
        plt.colorbar(shown, ax=axis, fraction=0.046, pad=0.02).set_label(colorbar, fontsize=8)
    return shown


def save(figure, out: Path, name: str) -> Path:
    path = out / f"formats_{name}.png"
    figure.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(figure)
    print(f"wrote {path}")
    return path


def field():
    config = SimulationConfig(shape=(256, 256), density="medium")
    return simulate_field(config, rng=0)


def ssqpm_stack(out: Path, folder: Path) -> Path:
    path = write_stack(folder / "stack.tif", field().to_acquisition())
    acq = read_acquisition(path)
    figure, axes = plt.subplots(1, 5, figsize=(15, 3.3))
    for index, name in enumerate(CHANNELS):
        show(axes[index], acq.angles[0, index], f"channel {index}: {name} (counts)")
    show(axes[4], acq.phase[0], "channel 4: phase", cmap="viridis", colorbar="rad")
    scale_bar(axes[4], acq.pixel_size_um)
    figure.suptitle(f"ssqpm-stack: ImageJ hyperstack CYX, C = 5 ({path.name})", fontsize=10)
    return save(figure, out, "ssqpm_stack")


def angles_stack(out: Path, folder: Path) -> Path:
    path = folder / "angles.tif"
    tifffile.imwrite(path, field().angles.astype(np.uint16), photometric="minisblack")
    acq = read_acquisition(path, background="quadratic")
    from napari_dmqpm.phase import wrapped_phase

    figure, axes = plt.subplots(1, 5, figsize=(15, 3.3))
    show(axes[0], acq.angles[0, 0], "I0 (counts)")
    show(axes[1], acq.angles[0, 1], "I45 (counts)")
    show(axes[2], wrapped_phase(acq.angles[0]), "wrapped phase", cmap="twilight")
    show(axes[3], acq.phase[0], "retrieved phase", cmap="viridis", colorbar="rad")
    show(axes[4], acq.modulation[0], "modulation B", cmap="magma", colorbar="counts")
    figure.suptitle(
        "angles-stack: (4, M, N) uint16 TIFF -> four-step retrieval, unwrapping, "
        "background removal",
        fontsize=10,
    )
    return save(figure, out, "angles_stack")


def raw_mosaic(out: Path, folder: Path) -> Path:
    if IMX_PNG.is_file():
        path, title = IMX_PNG, "real IMX250MZR frame (polanalyser, MIT)"
    else:
        angles = field().angles
        raw = np.zeros((512, 512), dtype=np.uint16)
        raw[1::2, 1::2], raw[0::2, 1::2] = angles[0], angles[1]
        raw[0::2, 0::2], raw[1::2, 0::2] = angles[2], angles[3]
        path, title = folder / "raw.tif", "simulated mosaic"
        tifffile.imwrite(path, raw)
    raw = np.asarray(read_raw(path))
    acq = read_acquisition(path, background=None)
    figure, axes = plt.subplots(1, 5, figsize=(16, 3.6))
    top, left = (1080, 1480) if IMX_PNG.is_file() else (100, 100)
    crop = raw[top : top + 8, left : left + 8]
    show(axes[0], crop, f"raw {raw.shape}: rows {top}-{top + 7}, cols {left}-{left + 7}")
    names = {(0, 0): "90", (0, 1): "45", (1, 0): "135", (1, 1): "0"}
    for (r, c), _ in np.ndenumerate(crop):
        axes[0].text(c, r, names[(r % 2, c % 2)], ha="center", va="center", fontsize=7, color="r")
    for index, name in enumerate(CHANNELS):
        show(axes[index + 1], acq.angles[0, index, ::2, ::2], f"{name} after demosaic")
    figure.suptitle(f"raw-mosaic: {title}, superpixel demosaic -> (4, M/2, N/2)", fontsize=10)
    return save(figure, out, "raw_mosaic")


def read_raw(path: Path) -> np.ndarray:
    from napari_dmqpm.io.detect import inspect_file
    from napari_dmqpm.io.read import read_pixels

    return read_pixels(inspect_file(path))


def phase_map(out: Path, folder: Path) -> Path:
    if QPHASE_TIF.is_file():
        path, title = QPHASE_TIF, "real Q-PHASE map qpi15.tif (Vicar et al., BSD-3)"
        acq = read_acquisition(path, phase_unit="pg_per_um2", wavelength_um=0.65)
    else:
        path, title = folder / "phase.tif", "simulated phase map"
        tifffile.imwrite(path, field().phase)
        acq = read_acquisition(path)
    figure, axis = plt.subplots(1, 1, figsize=(5.2, 4.4))
    show(axis, acq.phase[0], "phase (rad)", cmap="viridis", colorbar="rad")
    scale_bar(axis, acq.pixel_size_um)
    figure.suptitle(f"phase-map: {title}", fontsize=9)
    return save(figure, out, "phase_map")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        for make in (ssqpm_stack, angles_stack, raw_mosaic, phase_map):
            make(args.out, Path(folder))
    return 0


if __name__ == "__main__":
    sys.exit(main())
