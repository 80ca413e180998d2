"""Compare the simulator with the real Q-PHASE maps; draw docs/images/simulator_calibration.png.

The real maps (../shared/data/real/vicar_qphase_iit, 15 images of 600 x 600 px at 0.627 µm/px,
values in pg/µm², phase = 1.74 * value) are read with tifffile. For each real image one field
is simulated with the same shape, pixel size and cover fraction (its ``density`` set to the
real image's cover), so that both sets hold the same amount of cells. Both sets are measured
the same way:

- the phase inside cells and in the background (histograms, quantiles, background noise),
- cell areas (µm²), aspect ratios and solidity from the labels,
- the edge profile: mean phase against the signed distance to the cell boundary,
- the shared-border profile: mean phase against the distance to a border between two cells
  (the dip that decides whether touching cells can be told apart),
- cover fraction and clustering (share of cells touching another, cells per cluster).

The script prints a markdown table of the statistics and saves the figure. ``--set NAME=VALUE``
overrides a default of SimulationConfig, to try parameters while calibrating.

It also draws docs/images/simulator_examples.png (the four angle images, the retrieved phase
and the labels of one field, and the sparse and confluent presets).

Usage: ``python scripts/calibrate_simulator.py [--real DIR] [--out PNG] [--examples PNG]
[--seed N] [--set NAME=VALUE ...]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import matplotlib
import numpy as np
import tifffile
from scipy import ndimage as ndi
from skimage.measure import label as connected_components
from skimage.measure import regionprops

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from napari_dmqpm.simulation import SimulationConfig, simulate_field  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "real" / "vicar_qphase_iit"
PG_PER_UM2_TO_RAD = 2 * np.pi * 0.18 / 0.65  # 1.74: alpha 0.18 µm³/pg, lambda 0.65 µm
PIXEL_UM = 0.627
EDGE_RANGE = np.arange(-8, 21)  # px, negative outside the cell
BORDER_RANGE = np.arange(0, 16)  # px from a shared border


def load_real(folder: Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, phase in rad, labels) for each real image."""
    pairs = [("qpi15", folder / "raw/data/qpi15.tif", folder / "labels/vicar_iit_qpi15_labels.tif")]
    for i in range(1, 15):
        pairs.append(
            (
                f"img_{i:03d}",
                folder / f"raw/data_dense/img_{i:03d}.tif",
                folder / f"labels/vicar_iit_dense_{i:03d}_labels.tif",
            )
        )
    return [
        (
            name,
            tifffile.imread(image).astype(np.float64) * PG_PER_UM2_TO_RAD,
            tifffile.imread(lab).astype(np.int64),
        )
        for name, image, lab in pairs
    ]


def shared_border(labels: np.ndarray) -> np.ndarray:
    """Pixels whose 3x3 neighbourhood holds two different cells (also across 1-px gaps)."""
    big = np.where(labels > 0, labels, np.iinfo(np.int64).max)
    high = ndi.maximum_filter(labels, 3)
    low = ndi.minimum_filter(big, 3)
    return (high > 0) & (low < np.iinfo(np.int64).max) & (high != low)


def measure(phase: np.ndarray, labels: np.ndarray) -> dict:
    """Every statistic of one image (sums for profiles, lists for per-cell values)."""
    cells = labels > 0
    border = shared_border(labels)
    inside = np.rint(ndi.distance_transform_edt(cells)).astype(int)
    outside = np.rint(ndi.distance_transform_edt(~cells)).astype(int)
    signed = np.where(cells, inside, -outside)
    to_border = np.rint(ndi.distance_transform_edt(~border)).astype(int)
    deep = ndi.distance_transform_edt(cells | border) >= 6
    far = outside > 8
    smooth = ndi.gaussian_filter(phase, 8)
    step = np.diff(phase, axis=1)[far[:, 1:] & far[:, :-1]]
    stats = {
        "inside": phase[cells],
        "background": phase[far],
        "bg_std": _mad(phase[far]),
        "bg_pixel_std": _mad(step) / np.sqrt(2),
        "bg_lowfreq_std": _mad(smooth[far]),
        "cover": cells.mean(),
        "edge": _profile(phase, signed, EDGE_RANGE, ndi.distance_transform_edt(~border) > 3),
        "border": _profile(phase, to_border, BORDER_RANGE, deep & (to_border < BORDER_RANGE.size)),
    }
    stats.update(_per_cell(phase, labels, border))
    return stats


def _mad(values: np.ndarray) -> float:
    return float(1.4826 * np.median(np.abs(values - np.median(values)))) if values.size else np.nan


def _profile(
    phase: np.ndarray, distance: np.ndarray, bins: np.ndarray, mask: np.ndarray
) -> np.ndarray:
    """(sum, count) of the phase at each integer distance in ``bins``."""
    keep = mask & (distance >= bins[0]) & (distance <= bins[-1])
    index = distance[keep] - bins[0]
    sums = np.bincount(index, weights=phase[keep], minlength=bins.size)
    counts = np.bincount(index, minlength=bins.size)
    return np.stack([sums, counts])


def _per_cell(phase: np.ndarray, labels: np.ndarray, border: np.ndarray) -> dict:
    clusters = connected_components((labels > 0) | border, connectivity=1)
    cluster_size = {}
    for region in regionprops(clusters, intensity_image=labels):
        cluster_size[region.label] = len(np.unique(labels[clusters == region.label])) - 1
    areas, aspect, solidity, peak, mean, members = [], [], [], [], [], []
    rows, cols = labels.shape
    for region in regionprops(labels, intensity_image=phase):
        r0, c0, r1, c1 = region.bbox
        if region.area < 20 or r0 == 0 or c0 == 0 or r1 == rows or c1 == cols:
            continue  # cut by the image edge (often not annotated in the real set)
        areas.append(region.area * PIXEL_UM**2)
        aspect.append(region.axis_major_length / max(region.axis_minor_length, 1.0))
        solidity.append(region.solidity)
        peak.append(region.intensity_max)
        mean.append(region.intensity_mean)
        row, col = region.coords[0]
        members.append(cluster_size.get(clusters[row, col], 1))
    return {
        "area": areas,
        "aspect": aspect,
        "solidity": solidity,
        "peak": peak,
        "mean": mean,
        "cluster": members,
    }


def pool(measurements: list[dict]) -> dict:
    """Pool the measurements of a set of images."""
    pooled = {}
    for key in ("inside", "background"):
        pooled[key] = np.concatenate([m[key] for m in measurements])
    for key in ("area", "aspect", "solidity", "peak", "mean", "cluster"):
        pooled[key] = np.concatenate([np.asarray(m[key], dtype=float) for m in measurements])
    for key in ("bg_std", "bg_pixel_std", "bg_lowfreq_std", "cover"):
        pooled[key] = np.array([m[key] for m in measurements])
    for key in ("edge", "border"):
        total = np.sum([m[key] for m in measurements], axis=0)
        pooled[key] = np.where(total[1] > 0, total[0] / np.maximum(total[1], 1), np.nan)
    return pooled


def summary_rows(real: dict, sim: dict) -> list[tuple[str, str, str]]:
    """(statistic, real, simulated) rows of the markdown table."""

    def q(values: np.ndarray, fmt: str = "{:.2f}") -> str:
        p5, p50, p95 = np.percentile(values, [5, 50, 95])
        return f"{fmt.format(p50)} [{fmt.format(p5)}, {fmt.format(p95)}]"

    def dip(profile: np.ndarray) -> str:
        return f"{profile[0] / profile[4:12].max():.2f}"

    rows = [
        ("phase inside cells, rad: median [p5, p95]", q(real["inside"]), q(sim["inside"])),
        ("cell mean phase, rad", q(real["mean"]), q(sim["mean"])),
        ("cell peak phase, rad", q(real["peak"]), q(sim["peak"])),
        ("background sd (robust), rad", q(real["bg_std"], "{:.3f}"), q(sim["bg_std"], "{:.3f}")),
        (
            "background pixel noise, rad",
            q(real["bg_pixel_std"], "{:.3f}"),
            q(sim["bg_pixel_std"], "{:.3f}"),
        ),
        (
            "background low-frequency sd, rad",
            q(real["bg_lowfreq_std"], "{:.3f}"),
            q(sim["bg_lowfreq_std"], "{:.3f}"),
        ),
        ("cell area, µm²", q(real["area"], "{:.0f}"), q(sim["area"], "{:.0f}")),
        ("aspect ratio", q(real["aspect"]), q(sim["aspect"])),
        ("solidity", q(real["solidity"]), q(sim["solidity"])),
        ("cover fraction", q(real["cover"]), q(sim["cover"])),
        ("cells per cluster (per cell)", q(real["cluster"], "{:.0f}"), q(sim["cluster"], "{:.0f}")),
        (
            "share of cells touching another",
            f"{np.mean(real['cluster'] >= 2):.2f}",
            f"{np.mean(sim['cluster'] >= 2):.2f}",
        ),
        (
            "edge: phase 1 px inside / 8 px inside",
            _ratio(real["edge"], 1, 8),
            _ratio(sim["edge"], 1, 8),
        ),
        ("edge: phase 1 px outside, rad", f"{real['edge'][7]:.2f}", f"{sim['edge'][7]:.2f}"),
        ("shared border: phase on border / plateau", dip(real["border"]), dip(sim["border"])),
    ]
    return rows


def _ratio(profile: np.ndarray, near: int, far: int) -> str:
    offset = -EDGE_RANGE[0]
    return f"{profile[offset + near] / profile[offset + far]:.2f}"


def simulate_matched(
    real: list, config: SimulationConfig, seed: int
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """One simulated field per real image, at the real image's shape and cover fraction."""
    fields = []
    for index, (name, phase, labels) in enumerate(real):
        cover = float(np.clip((labels > 0).mean(), 0.02, 0.95))
        matched = config.replace(shape=phase.shape, density=cover)
        field = simulate_field(matched, rng=(seed, index))
        fields.append(
            (f"sim_{name}", field.phase.astype(np.float64), field.labels.astype(np.int64))
        )
    return fields


def draw(
    real: list, sim: list, real_stats: dict, sim_stats: dict, examples: list, out: Path
) -> None:
    """The calibration figure."""
    fig = plt.figure(figsize=(18, 8.6))
    grid = fig.add_gridspec(2, 5, height_ratios=[1.0, 1.0])
    shown = [("real " + real[13][0], real[13][1]), ("simulated, same cover", sim[13][1])] + examples
    for column, (title, image) in enumerate(shown[:5]):
        axis = fig.add_subplot(grid[0, column])
        axis.imshow(image[:400, :400], cmap="gray", vmin=-0.3, vmax=4.5)
        axis.set_title(title, fontsize=10)
        axis.axis("off")
    bins = np.linspace(-0.3, 7, 120)
    axis = fig.add_subplot(grid[1, 0])
    axis.hist(real_stats["inside"], bins, density=True, histtype="step", label="real")
    axis.hist(sim_stats["inside"], bins, density=True, histtype="step", label="simulated")
    axis.set(title="phase inside cells", xlabel="rad", ylabel="density")
    axis.legend()
    axis = fig.add_subplot(grid[1, 1])
    bins = np.linspace(-0.15, 0.15, 100)
    axis.hist(real_stats["background"], bins, density=True, histtype="step", label="real")
    axis.hist(sim_stats["background"], bins, density=True, histtype="step", label="simulated")
    axis.set(title="background phase (> 8 px from cells)", xlabel="rad")
    axis = fig.add_subplot(grid[1, 2])
    bins = np.geomspace(40, 2500, 40)
    axis.hist(real_stats["area"], bins, histtype="step", density=True, label="real")
    axis.hist(sim_stats["area"], bins, histtype="step", density=True, label="simulated")
    axis.set(xscale="log", title="cell area", xlabel="µm²")
    axis = fig.add_subplot(grid[1, 3])
    axis.plot(EDGE_RANGE * PIXEL_UM, real_stats["edge"], "o-", ms=3, label="real")
    axis.plot(EDGE_RANGE * PIXEL_UM, sim_stats["edge"], "s-", ms=3, label="simulated")
    axis.axvline(0, color="k", lw=0.5)
    axis.set(
        title="edge profile",
        xlabel="distance inside the cell boundary, µm",
        ylabel="mean phase, rad",
    )
    axis = fig.add_subplot(grid[1, 4])
    axis.plot(BORDER_RANGE * PIXEL_UM, real_stats["border"], "o-", ms=3, label="real")
    axis.plot(BORDER_RANGE * PIXEL_UM, sim_stats["border"], "s-", ms=3, label="simulated")
    axis.set(
        title="touching cells: phase near the shared border", xlabel="distance from the border, µm"
    )
    axis.set_ylim(0, None)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)


def draw_examples(config: SimulationConfig, seed: int, out: Path) -> None:
    """What the simulator writes: the four angles, the retrieved phase and the labels."""
    from skimage.color import label2rgb
    from skimage.segmentation import find_boundaries

    field = simulate_field(config.replace(shape=(256, 256), density="dense"), rng=seed)
    fig, axes = plt.subplots(2, 4, figsize=(16, 8.4))
    panels = [(f"I{angle} (counts)", field.angles[i]) for i, angle in enumerate((0, 45, 90, 135))]
    for axis, (title, image) in zip(axes[0], panels, strict=True):
        axis.imshow(image, cmap="gray", vmin=0, vmax=config.max_count)
        axis.set_title(title)
    axes[1, 0].imshow(field.phase, cmap="gray", vmin=-0.3, vmax=4.5)
    axes[1, 0].set_title("retrieved phase (rad)")
    axes[1, 1].imshow(label2rgb(field.labels, bg_label=0))
    axes[1, 1].set_title(f"labels ({field.labels.max()} cells)")
    for axis, density in zip(axes[1, 2:], ("sparse", "confluent"), strict=True):
        other = simulate_field(config.replace(shape=(256, 256), density=density), rng=seed)
        shown = np.dstack([np.clip(other.phase / 4.5, 0, 1)] * 3)
        shown[find_boundaries(other.labels, mode="inner")] = (1.0, 0.2, 0.2)
        axis.imshow(shown)
        axis.set_title(f"{density}: phase and label outlines")
    for axis in axes.flat:
        axis.axis("off")
    fig.tight_layout()
    fig.savefig(out, dpi=72)
    plt.close(fig)


def parse_overrides(pairs: list[str]) -> dict:
    overrides = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        overrides[name] = json.loads(value)
    return overrides


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", type=Path, default=REAL)
    parser.add_argument("--out", type=Path, default=ROOT / "docs/images/simulator_calibration.png")
    parser.add_argument(
        "--examples", type=Path, default=ROOT / "docs/images/simulator_examples.png"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    if not args.real.exists():
        print(f"real data not found at {args.real}", file=sys.stderr)
        return 1
    config = SimulationConfig(pixel_size_um=PIXEL_UM, **parse_overrides(args.set))
    start = time.perf_counter()
    real = load_real(args.real)
    sim = simulate_matched(real, config, args.seed)
    real_stats = pool([measure(phase, labels) for _, phase, labels in real])
    sim_stats = pool([measure(phase, labels) for _, phase, labels in sim])
    examples = []
    for density in ("dense", "confluent", "sparse"):
        field = simulate_field(config.replace(shape=(400, 400), density=density), rng=args.seed)
        examples.append((f"simulated, {density}", field.phase))
    draw(real, sim, real_stats, sim_stats, examples, args.out)
    draw_examples(config, args.seed, args.examples)
    print(f"| statistic | real Q-PHASE ({len(real)} images) | simulated ({len(sim)} fields) |")
    print("|---|---|---|")
    for row in summary_rows(real_stats, sim_stats):
        print("| " + " | ".join(row) + " |")
    elapsed = time.perf_counter() - start
    print(f"\nfigures: {args.out}, {args.examples} ({elapsed:.1f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
