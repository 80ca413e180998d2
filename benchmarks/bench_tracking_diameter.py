"""Are the model's confluent tracking errors the automatic cell diameter's? Oracle against auto.

On the confluent time-lapses of ``bench_tracking`` (first movie, 10 and 30 min; same seeds),
the shipped ``phase-only`` model segments every frame twice: with the automatic diameter
(as users run it, and as the main tables) and with the true one (the median equivalent
diameter, ``2 sqrt(area / pi)``, of the simulator's cells off the field edge, over all
frames: the quantity the estimate aims at). Both are linked by ``lap-mass`` and scored as in
``bench_tracking`` (TRA, DET, divisions, growth-rate errors). If the oracle closes most of
the gap to the true labels, the errors come from the diameter estimate; if not, from the
network's boundaries in crowded fields.

Usage: ``python benchmarks/bench_tracking_diameter.py``; prints the markdown section and puts
it into docs/results_tracking.md (replacing an earlier one). Cached per movie and diameter in
``.bench_cache/tracking/diameter-*.json``.
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
TITLE = "## Confluent model labels: automatic against true cell diameter (bench_tracking_diameter)"
INTERVALS = (10.0, 30.0)
VERSION = 1


def true_diameter(labels: np.ndarray) -> float:
    """Median equivalent diameter of the labelled cells off the field edge, all frames, px."""
    diameters = []
    for frame in labels:
        edge = np.unique(np.concatenate([frame[0], frame[-1], frame[:, 0], frame[:, -1]]))
        areas = np.bincount(frame.ravel())
        ids = np.setdiff1d(np.flatnonzero(areas), np.append(edge, 0))
        diameters.extend(2.0 * np.sqrt(areas[ids] / np.pi))
    return float(np.median(diameters))


def segment(movie, diameter) -> tuple[np.ndarray, list[float]]:
    """Labels of every frame by the shipped phase-only model, and the diameters it used."""
    from napari_dmqpm.inference import InferenceConfig, segment_acquisition

    results = list(
        segment_acquisition(
            movie.to_acquisition(), "phase-only",
            config=InferenceConfig(device="cpu", diameter_px=diameter),
            keep_probabilities=False,
        )
    )  # fmt: skip
    used = [r.diameter.diameter_px for r in results if r.diameter is not None]
    return np.stack([r.labels for r in results]).astype(np.int32), used


def run(interval: float, mode: str) -> dict:
    """One movie, one diameter mode ("auto" or "true"): scores and growth errors."""
    start = time.process_time()
    movie = bt.simulate("confluent", interval, 0)
    truth = true_diameter(movie.labels)
    labels, used = segment(movie, "auto" if mode == "auto" else truth)
    tracks = bt.link("lap-mass", labels, movie)
    record = {**bt.ctc_scores(movie, tracks), **bt.growth_errors(movie, tracks)}
    record |= {
        "true_diameter_px": truth, "used_diameter_px": [min(used), max(used)],
        "cpu_s": time.process_time() - start,
    }  # fmt: skip
    return record


def _cache_file(interval: float, mode: str) -> Path:
    return bt.CACHE_DIR / f"diameter-confluent-{interval:g}min-{mode}-v{VERSION}.json"


def cached_section() -> list[str]:
    """The section from the cached records (both modes, every interval), else nothing."""
    keys = [(interval, mode) for interval in INTERVALS for mode in ("auto", "true")]
    if not all(_cache_file(*key).is_file() for key in keys):
        return []
    return section({key: json.loads(_cache_file(*key).read_text()) for key in keys})


def _cached(interval: float, mode: str) -> dict:
    path = _cache_file(interval, mode)
    if path.is_file():
        return json.loads(path.read_text())
    record = run(interval, mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return record


def _truth_rows(interval: float) -> dict | None:
    """The main run's lap-mass scores on the true labels of the same movie (cache)."""
    key = f"confluent-{interval:g}min-0-model-v{bt.CACHE_VERSION}"
    path = bt.CACHE_DIR / f"{key}.json"
    return json.loads(path.read_text()).get("truth|lap-mass") if path.is_file() else None


def _median(values) -> str:
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return f"{100 * np.median(values):.1f} %" if values.size else "–"


def _row(interval: float, name: str, record: dict, diameter: str) -> str:
    tp, fp, fn = record["div_tp"], record["div_fp"], record["div_fn"]
    recall = f"{tp / (tp + fn):.2f}" if tp + fn else "–"
    precision = f"{tp / (tp + fp):.2f}" if tp + fp else "–"
    return (
        f"| {interval:g} min | {name} | {diameter} | {record['tra']:.3f} | {record['det']:.3f} "
        f"| {recall} | {precision} | {len(record['errors_k'])} | {_median(record['errors_k'])} |"
    )


def section(records: dict) -> list[str]:
    """The markdown section."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=ROOT, check=False).stdout.strip()  # fmt: skip
    seconds = sum(r["cpu_s"] for r in records.values())
    lines = [
        TITLE,
        "",
        *render(
            "tracking_diameter/intro.md",
            machine=platform.machine(),
            cores=os.cpu_count(),
            commit=commit,
            minutes=f"{seconds / 60:.1f}",
        ),
        "",
        "| interval | labels | diameter px | TRA | DET | div. recall | div. precision "
        "| tracks fitted | median growth error (1/h) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for interval in INTERVALS:
        for mode in ("auto", "true"):
            rec = records[(interval, mode)]
            low, high = rec["used_diameter_px"]
            used = f"{low:.1f}" if abs(high - low) < 0.05 else f"{low:.1f}-{high:.1f}"
            name = "phase-only, automatic" if mode == "auto" else "phase-only, true diameter"
            lines.append(_row(interval, name, rec, used))
        truth = _truth_rows(interval)
        if truth is not None:
            true_d = records[(interval, "true")]["true_diameter_px"]
            lines.append(_row(interval, "true labels", truth, f"({true_d:.1f})"))
    gains = [records[(i, "true")]["tra"] - records[(i, "auto")]["tra"] for i in INTERVALS]
    dets = [records[key]["det"] for key in records]
    lines += [
        "",
        *render(
            "tracking_diameter/reading.md",
            gain_low=f"{min(gains):+.3f}",
            gain_high=f"{max(gains):+.3f}",
            det_low=f"{min(dets):.2f}",
            det_high=f"{max(dets):.2f}",
        ),
    ]
    return lines


def update_section(path: Path, lines: list[str]) -> None:
    """Put the section into an existing report (before the ground-truth tables)."""
    bt.put_section(path, TITLE, "\n".join(lines) + "\n", before="## Ground-truth labels")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results_tracking.md")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    records = {}
    for interval in INTERVALS:
        for mode in ("auto", "true"):
            records[(interval, mode)] = _cached(interval, mode)
            print(interval, mode, {k: records[(interval, mode)][k] for k in ("tra", "det")},
                  flush=True)  # fmt: skip
    lines = section(records)
    print("\n".join(lines))
    update_section(args.out, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
