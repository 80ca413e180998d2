"""How much of a cell's footprint is thin: simulated well-spread cells against real Q-PHASE maps.

For each image the script measures the share of the labelled footprint whose phase is below
0.3 rad (the lamellipodium range), the part of it deeper than 2 px inside the label (so not
just the outermost ring of a generous hand-drawn outline), the cover fraction and the median
cell area. It prints one markdown table (docs/simulator.md, "Well-spread cells and foreign
backgrounds").

- Real: the 15 maps of ../shared/data/real/vicar_qphase_iit (600 x 600 px, 0.627 µm/px,
  values in pg/µm², phase = 1.74 * value as its README derives): qpi15 (large flat cells) on
  its own, the dense set img_001..014 as the median [min, max] over its images.
- Simulated: 512 x 512 fields at the defaults (density "dense") with ``spread_fraction`` 0, 0.5
  and 1, measured on the retrieved ``phase`` (and, for 1, on the noise-free ``true_phase``);
  ``--seed`` gives the field reported alone, ``--n-seeds`` the seeds summarised as median
  [min, max].

Usage: ``python scripts/simulator_spread_stats.py [--real DIR] [--seed N] [--n-seeds K]``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import tifffile
from scipy import ndimage as ndi

from napari_dmqpm.simulation import SimulationConfig, simulate_field

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "real" / "vicar_qphase_iit"
PG_PER_UM2_TO_RAD = 2 * np.pi * 0.18 / 0.65  # 1.74: alpha 0.18 µm³/pg, lambda 0.65 µm
PIXEL_UM = 0.627
THIN_RAD = 0.3
RIM_PX = 2
SHAPE = (512, 512)
FRACTIONS = (0.0, 0.5, 1.0)


def measure(phase: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Thin share of the footprint, its part deeper than ``RIM_PX``, cover and median area."""
    footprint = labels > 0
    thin = footprint & (phase < THIN_RAD)
    deep = ndi.distance_transform_edt(footprint) > RIM_PX
    areas = np.bincount(labels.ravel())[1:]
    areas = areas[areas > 0] * PIXEL_UM**2
    return {
        "cells": float(areas.size),
        "cover": float(footprint.mean()),
        "thin": float(thin.sum() / footprint.sum()),
        "thin_deep": float((thin & deep).sum() / footprint.sum()),
        "area": float(np.median(areas)),
    }


def load_real(folder: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """name -> (phase in rad, labels) of the 15 real maps."""
    pairs = {"qpi15": ("raw/data/qpi15.tif", "labels/vicar_iit_qpi15_labels.tif")}
    for i in range(1, 15):
        pairs[f"img_{i:03d}"] = (
            f"raw/data_dense/img_{i:03d}.tif",
            f"labels/vicar_iit_dense_{i:03d}_labels.tif",
        )
    return {
        name: (
            tifffile.imread(folder / image).astype(np.float64) * PG_PER_UM2_TO_RAD,
            tifffile.imread(folder / labels).astype(np.int64),
        )
        for name, (image, labels) in pairs.items()
    }


def row(name: str, stats: list[dict[str, float]]) -> str:
    """One table row: the value, or median [min, max] over several images."""

    def cell(key: str, fmt: str) -> str:
        values = np.array([s[key] for s in stats])
        if values.size == 1:
            return fmt.format(values[0])
        low, mid, high = np.min(values), np.median(values), np.max(values)
        return f"{fmt.format(mid)} [{fmt.format(low)}, {fmt.format(high)}]"

    columns = [
        cell("cells", "{:.0f}"),
        cell("cover", "{:.2f}"),
        cell("thin", "{:.2f}"),
        cell("thin_deep", "{:.3f}"),
        cell("area", "{:.0f}"),
    ]
    return "| " + " | ".join([name, *columns]) + " |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", type=Path, default=REAL)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-seeds", type=int, default=5)
    args = parser.parse_args(argv)
    if not args.real.exists():
        print(f"real data not found at {args.real}", file=sys.stderr)
        return 1
    real = {name: measure(*pair) for name, pair in load_real(args.real).items()}
    lines = [
        f"| image | cells | cover | footprint < {THIN_RAD} rad | of it > {RIM_PX} px inside |"
        " median cell area, µm² |",
        "|---|---|---|---|---|---|",
        row("real qpi15 (large flat cells)", [real["qpi15"]]),
        row("real img_001-014 (14 images)", [v for k, v in real.items() if k != "qpi15"]),
    ]
    seeds = range(args.seed, args.seed + args.n_seeds)
    for fraction in FRACTIONS:
        config = SimulationConfig(shape=SHAPE, spread_fraction=fraction)
        fields = {seed: simulate_field(config, rng=seed) for seed in seeds}
        chosen = fields[args.seed]
        name = f"simulated, spread_fraction={fraction:g}"
        lines.append(row(f"{name}, seed {args.seed}", [measure(chosen.phase, chosen.labels)]))
        if fraction == 1.0:
            truth = measure(chosen.true_phase, chosen.labels)
            lines.append(row(f"{name}, seed {args.seed}, true_phase", [truth]))
        many = [measure(f.phase, f.labels) for f in fields.values()]
        lines.append(row(f"{name}, seeds {seeds.start}-{seeds.stop - 1}", many))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
