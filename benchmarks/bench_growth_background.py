"""Growth fits and cells whose background was not trusted (``background_ok`` 0).

``measure_cells`` flags a cell whose local background it had to extrapolate (too little
background near it, typical of confluent fields): its dry mass is unreliable. This benchmark
measures, on the simulated time-lapses of ``bench_tracking`` (same seeds), how wrong those
masses are and what each choice for the growth fits gives:

- per cell and frame: the relative dry-mass error of flagged and trusted cells against the
  simulator's true mass (the simulator's own labels, where each track is one true cell);
- per track: the error of the specific growth rate (1/h, against the cell's law) of the robust
  fit on every frame off the field edge (``all``: the fits before this change) and on those
  frames whose background was trusted (``trusted``: the fits as shipped), over the tracks with
  at least one flagged frame, where the two differ.

The simulated fields keep enough background for every cell (no cell flagged, even at 95 %
cover), so confluent movies are also measured with a background margin widened around the cells
(8 and 13 px instead of 2, as ``bench_dry_mass`` does), which leaves the fit fewer, smaller gaps.
Tracks as in ``bench_tracking``: ``lap-mass`` (``track_labels`` defaults), tracks with at least
8 frames off the field edge, matched to the true cell covering >= 50 % of their pixels.

Usage: ``python benchmarks/bench_growth_background.py [--no-model]``; prints the markdown
section and puts it into docs/results_tracking.md (replacing an earlier one); records are
cached in ``.bench_cache/tracking/background-*.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

if not __package__:  # run as a file: the repository root makes `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import bench_tracking as bt
from benchmarks.templates import render

ROOT = Path(__file__).resolve().parents[1]
TITLE = "## Frames with an untrusted background (bench_growth_background)"
#: (density, interval, labels, background margin in px); 2 px is ``measure_cells``' default.
CONDITIONS = [(d, i, "truth", 2) for d in ("dense", "confluent") for i in (5.0, 10.0, 30.0)]
CONDITIONS += [(d, i, "phase-only", 2) for d in ("dense", "confluent") for i in (10.0, 30.0)]
#: Confluent movies with less background left to the fit: a margin widened around the cells,
#: as in bench_dry_mass, so that cells get flagged.
CONDITIONS += [("confluent", i, "truth", m) for m in (8, 13) for i in (5.0, 10.0, 30.0)]
VERSION = 1


def _widened(labels: np.ndarray, movie, margin_px: float) -> dict:
    """The cells table of ``measure_cells`` with ``background_margin_px=margin_px``."""
    from napari_dmqpm.inference.measure import measure_cells

    tables = [
        measure_cells(labels[t], movie.phase[t], pixel_size_um=movie.config.pixel_size_um,
                      wavelength_um=movie.config.wavelength_um, frame=t,
                      background_margin_px=margin_px)
        for t in range(labels.shape[0])
    ]  # fmt: skip
    names = ("frame", "label", "dry_mass_pg", "background_ok")
    return {name: np.concatenate([table[name] for table in tables]) for name in names}


def run_condition(density: str, interval: float, source: str, margin_px: float) -> dict:
    """Mass errors by flag and growth errors of both fits, on one movie."""
    from napari_dmqpm.tracking import fit_growth, track_labels

    start = time.process_time()
    movie = bt.simulate(density, interval, 0)
    labels = movie.labels if source == "truth" else bt.segment_movie(movie)
    if margin_px == 2:  # as shipped: the masses measured on the phase by track_labels
        tracks = bt.link("lap-mass", labels, movie)
    else:
        table = _widened(labels, movie, margin_px)
        tracks = track_labels(labels, table=table, frame_interval_min=movie.frame_interval_min)
    cells = tracks.cells
    hours = movie.frame_interval_min / 60.0
    law = dict(zip(movie.lineage["track_id"], movie.lineage["growth_rate_per_h"], strict=True))
    true_mass = {
        (int(t), int(f)): float(m)
        for t, f, m in zip(*(movie.mass_scale[k] for k in ("track_id", "frame", "dry_mass_pg")),
                           strict=True)
    }  # fmt: skip
    mass_errors = {"ok": [], "flagged": []}
    tracks_out = []
    for track_id in np.unique(cells["track_id"]):
        mine = cells["track_id"] == track_id
        inside = mine & ~cells["touches_border"]
        if inside.sum() < bt.MIN_GROWTH_FRAMES:
            continue
        true_id = bt._majority_truth(movie.labels, tracks.labels, int(track_id),
                                     cells["frame"][inside])  # fmt: skip
        if true_id == 0:
            continue
        trusted = inside & cells["background_ok"]
        for row in np.flatnonzero(inside):
            truth = true_mass.get((true_id, int(cells["frame"][row])))
            if truth and source == "truth":
                key = "ok" if cells["background_ok"][row] else "flagged"
                mass_errors[key].append((cells["dry_mass_pg"][row] - truth) / truth)
        _, k_all = fit_growth(cells["frame"][inside] * hours, cells["dry_mass_pg"][inside])
        _, k_ok = fit_growth(cells["frame"][trusted] * hours, cells["dry_mass_pg"][trusted])
        tracks_out.append({
            "n_inside": int(inside.sum()), "n_flagged": int((inside & ~trusted).sum()),
            "k_true": float(law[true_id]), "k_all": k_all, "k_trusted": k_ok,
        })  # fmt: skip
    return {
        "mass_errors": mass_errors, "tracks": tracks_out,
        "n_points": int((~cells["touches_border"]).sum()),
        "n_flagged_points": int((~cells["touches_border"] & ~cells["background_ok"]).sum()),
        "cpu_s": time.process_time() - start,
    }  # fmt: skip


def _cache_file(density: str, interval: float, source: str, margin_px: float) -> Path:
    key = f"background-{density}-{interval:g}min-{source}-m{margin_px:g}-v{VERSION}"
    return bt.CACHE_DIR / f"{key}.json"


def cached_section() -> list[str]:
    """The section from the cached records (every condition run), else nothing; runs nothing."""
    paths = {key: _cache_file(*key) for key in CONDITIONS}
    if not all(path.is_file() for path in paths.values()):
        return []
    records = {key: json.loads(path.read_text()) for key, path in paths.items()}
    return section(records, sum(record["cpu_s"] for record in records.values()))


def _cached(density: str, interval: float, source: str, margin_px: float) -> dict:
    path = _cache_file(density, interval, source, margin_px)
    if path.is_file():
        return json.loads(path.read_text())
    record = run_condition(density, interval, source, margin_px)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return record


def _pct(values, count: bool = False) -> str:
    """Median of the finite values in per cent (with how many there were when ``count``)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    text = f"{100 * np.median(values):.1f} %" if values.size else "–"
    return f"{text} ({values.size})" if count else text


def row(density: str, interval: float, source: str, margin_px: float, record: dict) -> str:
    """One line of the table."""
    errors = record["mass_errors"]
    affected = [t for t in record["tracks"] if t["n_flagged"] > 0]
    err_all = [abs(t["k_all"] - t["k_true"]) / t["k_true"] for t in affected]
    err_ok = [abs(t["k_trusted"] - t["k_true"]) / t["k_true"] for t in affected]
    no_fit = sum(not np.isfinite(t["k_trusted"]) for t in affected)
    every_all = [abs(t["k_all"] - t["k_true"]) / t["k_true"] for t in record["tracks"]]
    every_ok = [
        abs((t["k_trusted"] if t["n_flagged"] else t["k_all"]) - t["k_true"]) / t["k_true"]
        for t in record["tracks"]
    ]
    mass = (
        f"{_pct(np.abs(errors['ok']))} / {_pct(np.abs(errors['flagged']))}"
        if source == "truth" else "–"
    )  # fmt: skip
    share = record["n_flagged_points"] / max(record["n_points"], 1)
    return (
        f"| {source} | {density} | {interval:g} min | {margin_px:g} px | {100 * share:.1f} % "
        f"| {mass} "
        f"| {len(affected)} of {len(record['tracks'])} | {_pct(err_all)} "
        f"| {_pct(err_ok, count=True)} | {no_fit} | {_pct(every_all)} "
        f"| {_pct(every_ok, count=True)} |"
    )


def section(records: dict, seconds: float) -> list[str]:
    """The markdown section."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=ROOT, check=False).stdout.strip()  # fmt: skip
    lines = [
        TITLE,
        "",
        *render(
            "growth_background/intro.md",
            machine=platform.machine(),
            cores=os.cpu_count(),
            commit=commit,
            minutes=f"{seconds / 60:.1f}",
        ),
        "",
        "| labels | density | interval | margin | flagged cells | mass error trusted / flagged "
        "| tracks with a flagged frame | growth error, all | growth error, trusted "
        "| no fit left | all tracks: all | all tracks: trusted |",
        "|---|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|",
        *(row(*key, record) for key, record in records.items()),
        "",
        *render("growth_background/reading.md"),
    ]
    return lines


def update_section(path: Path, lines: list[str]) -> None:
    """Put the section into an existing report (before the ground-truth tables)."""
    bt.put_section(path, TITLE, "\n".join(lines) + "\n", before="## Ground-truth labels")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-model", action="store_true", help="the true labels only")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results_tracking.md")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    records = {}
    keys = [key for key in CONDITIONS if not (args.no_model and key[2] != "truth")]
    for key in keys:
        records[key] = _cached(*key)
        print(row(*key, records[key]), flush=True)
    seconds = sum(record["cpu_s"] for record in records.values())
    lines = section(records, seconds)
    print("\n".join(lines))
    update_section(args.out, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
