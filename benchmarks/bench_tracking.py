"""Tracking benchmark: accuracy, divisions and growth rates on simulated time-lapses.

Writes docs/results_tracking.md. Time-lapses come from
:func:`napari_dmqpm.simulation.simulate_growth` (cells grow by a known exponential law, divide
into two half-mass daughters, move, enter and leave the field), densities sparse to
confluent, frame intervals 1 to 30 min, seeds ``(8_160_000, density, interval, i)``.

Linkers, each on the ground-truth labels and on the labels of the shipped ``phase-only`` model
(``napari_dmqpm.inference.segment_acquisition``, CPU, one thread, the model's own size handling):

- ``overlap``: the baseline, nearest-overlap linking (``napari_dmqpm.tracking.link_by_overlap``);
- ``lap-position``: ``track_labels`` with ``mass_weight_px=0`` (laptrack on centroids);
- ``lap-mass``: ``track_labels`` as shipped (centroid + log dry mass, mass-conserving divisions).

Measures: the Cell Tracking Challenge TRA and DET (AOGM-based, Matula et al. 2015) and the
division counts of branching correctness BC(0) (a division found in the right frame), all
computed by the ``py-ctcmetrics`` package from CTC folders written by
``napari_dmqpm.io.ctc.write_ctc``; growth: each track of at least ``MIN_GROWTH_FRAMES`` frames
that does not touch the field edge is matched to the true cell that covers most of its pixels,
and its specific growth rate (Theil-Sen slope of ln dry mass, 1/h) and growth rate (pg/h) are
compared with the truth (the cell's law, and the Theil-Sen slope of its true mass over the
same frames).

Usage::

    python benchmarks/bench_tracking.py [--quick] [--no-model] [--out docs/results_tracking.md]
    python benchmarks/bench_tracking.py --btrack   # btrack on a subset; updates its section only

``--btrack`` needs ``pip install btrack`` (not a dependency). Where its wheel's
``libtracker.so`` does not load (it wants a newer libstdc++, ``GLIBCXX_3.4.32``), build it from
btrack's sdist with ``make`` (Eigen headers linked to ``btrack/include/eigen``) and copy it over
``btrack/libs/libtracker.so``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

if not __package__:  # run as a file: the repository root makes `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.templates import render

ROOT = Path(__file__).resolve().parents[1]
CACHE_DIR = ROOT / ".bench_cache" / "tracking"
DENSITIES = ("sparse", "dense", "confluent")
INTERVALS_MIN = (1.0, 5.0, 10.0, 30.0)
LINKERS = ("overlap", "lap-position", "lap-mass")
SEED = 8_160_000
SHAPE = (192, 192)
#: Sparse fields are larger and twice as many, for enough cells (about 7 per 256² field).
SPARSE_SHAPE, SPARSE_MOVIES = (256, 256), 2
#: Frames per interval: 2 h at 1 min, 6 h at 5 min, 8 h at 10 min, 12 h at 30 min.
N_FRAMES = {1.0: 120, 5.0: 72, 10.0: 48, 30.0: 24}
N_MOVIES = 1
#: Model runs at these intervals only (CPU time).
MODEL_INTERVALS_MIN = (10.0, 30.0)
MIN_GROWTH_FRAMES = 8
TARGETS = {"tra_sparse": 0.95, "tra_confluent": 0.90, "growth_error": 0.05}
#: In every cache key: results of another version are not reused. 2: the dry mass is measured
#: against the background the labels leave (``measure_cells``' background fit). 3: the growth
#: fits leave out cells whose background was not trusted (``background_ok`` 0), as
#: ``track_table`` does.
CACHE_VERSION = 3


def simulate(density: str, interval: float, index: int, *, shape=None, n_frames=None):
    from napari_dmqpm.simulation import SimulationConfig, simulate_growth

    n_frames = N_FRAMES[interval] if n_frames is None else n_frames
    shape = (SPARSE_SHAPE if density == "sparse" else SHAPE) if shape is None else shape
    config = SimulationConfig(shape=shape, density=density)
    seed = (SEED, DENSITIES.index(density), int(interval * 10), index)
    return simulate_growth(config, n_frames, frame_interval_min=interval, rng=seed)


def segment_movie(movie) -> np.ndarray:
    """Labels of every frame from the shipped phase-only model (CPU)."""
    from napari_dmqpm.inference import InferenceConfig, segment_acquisition

    results = segment_acquisition(
        movie.to_acquisition(),
        "phase-only",
        config=InferenceConfig(device="cpu"),
        keep_probabilities=False,
    )
    return np.stack([result.labels for result in results]).astype(np.int32)


def link(name: str, labels: np.ndarray, movie):
    from napari_dmqpm.tracking import link_by_overlap, track_labels

    if name == "overlap":
        return link_by_overlap(labels, frame_interval_min=movie.frame_interval_min)
    return track_labels(
        labels,
        phase_tyx=movie.phase,
        frame_interval_min=movie.frame_interval_min,
        pixel_size_um=movie.config.pixel_size_um,
        wavelength_um=movie.config.wavelength_um,
        mass_weight_px=0.0 if name == "lap-position" else 10.0,
    )


#: btrack (not a dependency: ``pip install btrack``) on a subset: truth labels, 10 min,
#: these (density, movie index) of the main run.
BTRACK_MOVIES = (("sparse", 0), ("sparse", 1), ("confluent", 0))
BTRACK_INTERVAL_MIN = 10.0
BTRACK_TITLE = "## Another linker: btrack (subset)"
#: btrack's constant-velocity Kalman model and hypothesis model, with the values of its example
#: cell configuration (``cell_config.json``), written out here: btrack downloads that file.
BTRACK_MOTION = {
    "name": "cell_motion", "dt": 1.0, "measurements": 3, "states": 6, "accuracy": 7.5,
    "prob_not_assign": 0.1, "max_lost": 5,
    "A": {"matrix": np.kron([[1, 1], [0, 1]], np.eye(3)).ravel().tolist()},
    "H": {"matrix": np.eye(3, 6).ravel().tolist()},
    "P": {"sigma": 150.0, "matrix": np.diag([0.1] * 3 + [1.0] * 3).ravel().tolist()},
    "G": {"sigma": 15.0, "matrix": [0.5, 0.5, 0.5, 1.0, 1.0, 1.0]},
    "R": {"sigma": 5.0, "matrix": np.eye(3).ravel().tolist()},
}  # fmt: skip
BTRACK_HYPOTHESIS = {
    "name": "cell_hypothesis",
    "hypotheses": ["P_FP", "P_init", "P_term", "P_link", "P_branch", "P_dead"],
    "lambda_time": 5.0, "lambda_dist": 3.0, "lambda_link": 10.0, "lambda_branch": 50.0,
    "eta": 1e-10, "theta_dist": 20.0, "theta_time": 5.0, "dist_thresh": 40, "time_thresh": 2,
    "apop_thresh": 5, "segmentation_miss_rate": 0.1, "apoptosis_rate": 0.001, "relax": True,
}  # fmt: skip
BTRACK_SEARCH_RADIUS_PX = 50.0


def link_btrack(labels: np.ndarray, movie):
    """btrack (Bayesian tracker, Ulicna et al. 2021) on the centroids, as a ``Tracks``."""
    import logging

    import btrack
    from btrack.config import TrackerConfig
    from btrack.io import objects_from_dict

    from napari_dmqpm.tracking.regions import measure_regions
    from napari_dmqpm.tracking.tracks import build_tracks

    logging.getLogger("btrack").setLevel(logging.WARNING)
    regions = measure_regions(
        labels, phase_tyx=movie.phase, pixel_size_um=movie.config.pixel_size_um,
        wavelength_um=movie.config.wavelength_um,
    )  # fmt: skip
    n = regions["frame"].size
    objects = objects_from_dict({
        "ID": np.arange(n), "t": regions["frame"].astype(int), "z": np.zeros(n),
        "x": regions["centroid_col"].astype(float), "y": regions["centroid_row"].astype(float),
    })  # fmt: skip
    config = TrackerConfig(
        name="dmqpm-bench", motion_model=BTRACK_MOTION, hypothesis_model=BTRACK_HYPOTHESIS,
        max_search_radius=BTRACK_SEARCH_RADIUS_PX, verbose=False,
    )  # fmt: skip
    with btrack.BayesianTracker(verbose=False) as tracker:
        tracker.configure(config)
        tracker.append(objects)
        tracker.volume = ((0, labels.shape[2]), (0, labels.shape[1]))
        with contextlib.redirect_stdout(io.StringIO()):
            tracker.track(step_size=100)
            tracker.optimize()
        found = tracker.tracks
    edges, first, last = [], {}, {}
    for track in found:  # refs: the objects of the track, negative for dummies (gaps)
        refs = [int(ref) for ref in track.refs if ref >= 0]
        if refs:
            edges += list(zip(refs[:-1], refs[1:], strict=True))
            first[track.ID], last[track.ID] = refs[0], refs[-1]
    for track in found:
        if track.parent != track.ID and track.parent in last and track.ID in first:
            edges.append((last[track.parent], first[track.ID]))
    edges = np.array(sorted(edges), dtype=np.int64).reshape(-1, 2)
    return build_tracks(
        labels, regions, edges, frame_interval_min=movie.frame_interval_min,
        metadata={"linker": "btrack"},
    )  # fmt: skip


def run_btrack() -> dict:
    """btrack and lap-mass on the truth labels of ``BTRACK_MOVIES``, cached per movie."""
    records = {}
    for density, index in BTRACK_MOVIES:
        key = f"btrack-{density}-{BTRACK_INTERVAL_MIN:g}min-{index}-v{CACHE_VERSION}"
        path = _cache_path(key)
        if path.is_file():
            records[key] = json.loads(path.read_text())
            continue
        movie = simulate(density, BTRACK_INTERVAL_MIN, index)
        record = {"density": density, "interval": BTRACK_INTERVAL_MIN, "seconds": {}}
        for linker in ("btrack", "lap-mass"):
            start = time.process_time()
            tracks = link_btrack(movie.labels, movie) if linker == "btrack" else link(
                linker, movie.labels, movie)  # fmt: skip
            record["seconds"][linker] = time.process_time() - start
            record[f"truth|{linker}"] = {
                **ctc_scores(movie, tracks),
                **growth_errors(movie, tracks),
            }
        record["cpu_s"] = sum(record["seconds"].values())
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record))
        records[key] = record
        print(f"{key}: done", flush=True)
    return records


def btrack_lines() -> list[str]:
    """The btrack section, from the cached btrack records (none: no section)."""
    records = {
        path.stem: json.loads(path.read_text())
        for path in sorted(CACHE_DIR.glob(f"btrack-*-v{CACHE_VERSION}.json"))
    }
    if not records:
        return []
    summary = summarize(records)
    seconds: dict = {}
    for record in records.values():
        for linker, value in record["seconds"].items():
            key = (record["density"], linker)
            seconds[key] = seconds.get(key, 0.0) + value
    lines = [
        BTRACK_TITLE,
        "",
        *render(
            "tracking/btrack.md",
            version=_version("btrack"),
            interval=f"{BTRACK_INTERVAL_MIN:g}",
            movies=", ".join(f"{d} #{i}" for d, i in BTRACK_MOVIES),
            radius=f"{BTRACK_SEARCH_RADIUS_PX:g}",
            commit=_commit(),
        ),
        "",
        "| density | linker | TRA | DET | div. recall | div. precision | true div. "
        "| median growth error (1/h) | CPU s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (_, linker, density, _), s in sorted(
        summary.items(), key=lambda item: (DENSITIES.index(item[0][2]), item[0][1])
    ):
        lines.append(
            f"| {density} | {linker} | {_fmt(s['tra'])} | {_fmt(s['det'])} | "
            f"{_fmt(s['div_recall'], '.2f')} | {_fmt(s['div_precision'], '.2f')} | {s['n_div']} "
            f"| {_pct(s['growth_error_k'])} | {seconds[(density, linker)]:.1f} |"
        )
    return lines + [""]


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def put_section(
    path: Path, title: str, text: str, *, before: str = "## Ground-truth labels"
) -> None:
    """Put a section into a report: replace the one that starts with ``title``, else insert it.

    Parameters
    ----------
    path : Path
        The report (docs/results_tracking.md).
    title : str
        The section's heading line, as it starts the section.
    text : str
        The section, heading included; it runs up to the next ``## `` heading.
    before : str
        The heading a new section is put before (at the end when absent).
    """
    doc = path.read_text()
    start = doc.find(title)
    if start >= 0:
        end = doc.find("\n## ", start + len(title))
        doc = doc[:start] + text + ("\n" + doc[end + 1 :] if end >= 0 else "")
    else:
        anchor = doc.find(before)
        anchor = anchor if anchor >= 0 else len(doc)
        doc = doc[:anchor] + text + "\n" + doc[anchor:]
    path.write_text(doc)


def update_btrack_section(path: Path) -> None:
    """Put the btrack section into an existing report, leaving the rest as it is."""
    path.write_text(path.read_text().replace(OLD_NOT_COMPARED, NEW_NOT_COMPARED))
    put_section(path, BTRACK_TITLE, "\n".join(btrack_lines()))


def ctc_scores(movie, tracks) -> dict:
    """TRA, DET and BC(0) division counts from py-ctcmetrics on CTC folders."""
    from ctc_metrics import evaluate_sequence

    from napari_dmqpm.io.ctc import write_ctc

    with tempfile.TemporaryDirectory() as folder:
        gt, res = Path(folder) / "gt", Path(folder) / "res"
        write_ctc(gt, movie.labels, movie.graph, ground_truth=True)
        write_ctc(res, tracks.labels, tracks.graph)
        with contextlib.redirect_stdout(io.StringIO()):
            scores = evaluate_sequence(str(res), str(gt), metrics=["TRA", "DET", "BC"], threads=1)
    keys = {"TRA": "tra", "DET": "det", "tp_div(0)": "div_tp", "fp_div(0)": "div_fp"}
    out = {name: float(scores[key] or 0.0) for key, name in keys.items()}
    out["div_fn"] = float(scores["fn_div(0)"] or 0.0)
    return out


def growth_errors(movie, tracks) -> dict:
    """Relative errors of the specific growth rate (1/h) and growth rate (pg/h) per track."""
    from napari_dmqpm.tracking import fit_growth

    truth_rate = dict(
        zip(movie.lineage["track_id"], movie.lineage["growth_rate_per_h"], strict=True)
    )
    true_mass = movie.mass_scale
    hours = movie.frame_interval_min / 60.0
    errors_k, errors_pg, estimates, truths = [], [], [], []
    measured: dict = {}
    for track_id in np.unique(tracks.cells["track_id"]):
        rows = (tracks.cells["track_id"] == track_id) & ~tracks.cells["touches_border"]
        rows &= tracks.cells["background_ok"]  # the frames the tracker's own fits use
        if rows.sum() < MIN_GROWTH_FRAMES:
            continue
        frames = tracks.cells["frame"][rows]
        true_id = _majority_truth(movie.labels, tracks.labels, int(track_id), frames)
        if true_id == 0:
            continue
        rate, k = fit_growth(frames * hours, _mass(tracks, movie, rows, measured))
        sel = (true_mass["track_id"] == true_id) & np.isin(true_mass["frame"], frames)
        true_rate, _ = fit_growth(true_mass["frame"][sel] * hours, true_mass["dry_mass_pg"][sel])
        k_true = truth_rate[true_id]
        errors_k.append(abs(k - k_true) / k_true)
        errors_pg.append(abs(rate - true_rate) / abs(true_rate))
        estimates.append(k)
        truths.append(k_true)
    return {"errors_k": errors_k, "errors_pg": errors_pg, "k": estimates, "k_true": truths}


def _mass(tracks, movie, rows, measured: dict) -> np.ndarray:
    mass = tracks.cells["dry_mass_pg"][rows]
    if np.all(np.isnan(mass)):  # the baseline measures no mass: measure it on its tracks
        from napari_dmqpm.inference.measure import measure_cells

        mass = []
        for frame, label in zip(
            tracks.cells["frame"][rows], tracks.cells["track_id"][rows], strict=True
        ):
            if frame not in measured:  # the whole frame: the other cells are not background
                table = measure_cells(
                    tracks.labels[frame],
                    movie.phase[frame],
                    pixel_size_um=movie.config.pixel_size_um,
                    wavelength_um=movie.config.wavelength_um,
                )
                measured[frame] = dict(zip(table["label"], table["dry_mass_pg"], strict=True))
            mass.append(measured[frame][label])
        mass = np.array(mass)
    return mass


def _majority_truth(truth, labels, track_id, frames) -> int:
    values = np.concatenate([truth[f][labels[f] == track_id] for f in frames])
    if values.size == 0:
        return 0
    counts = np.bincount(values)
    best = int(counts.argmax())
    return best if counts[best] >= 0.5 * values.size else 0


def run_condition(density: str, interval: float, index: int, *, use_model: bool, **sim) -> dict:
    """Every linker on one movie (ground-truth labels, and the model's when asked)."""
    start_all = time.process_time()
    movie = simulate(density, interval, index, **sim)
    sources = {"truth": movie.labels}
    seconds = {}
    if use_model:
        start = time.process_time()
        sources["phase-only"] = segment_movie(movie)
        seconds["segment"] = time.process_time() - start
    record = {
        "n_true_tracks": int(movie.lineage["track_id"].size),
        "n_true_divisions": len({p for (p,) in movie.graph.values()}),
        "seconds": seconds,
    }
    for source, labels in sources.items():
        for linker in LINKERS:
            start = time.process_time()
            tracks = link(linker, labels, movie)
            seconds[f"{source}|{linker}"] = time.process_time() - start
            record[f"{source}|{linker}"] = {
                **ctc_scores(movie, tracks),
                **growth_errors(movie, tracks),
            }
    record["cpu_s"] = time.process_time() - start_all
    return record


def moving_disks(n_frames: int, shape: tuple[int, int], n_cells: int, *, seed: int = 0):
    """A labels stack of ``n_cells`` disks (radius 12 px) on a grid, each moving 2 px a frame."""
    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(n_cells)))
    rows = (np.arange(n_cells) // side + 0.5) * shape[0] / side
    cols = (np.arange(n_cells) % side + 0.5) * shape[1] / side
    grid_r, grid_c = np.indices((25, 25)) - 12
    disk = grid_r**2 + grid_c**2 <= 144
    labels = np.zeros((n_frames, *shape), np.int32)
    for t in range(n_frames):
        rows = np.clip(rows + rng.normal(0, 2, n_cells), 12, shape[0] - 13)
        cols = np.clip(cols + rng.normal(0, 2, n_cells), 12, shape[1] - 13)
        for label, (r, c) in enumerate(zip(rows.astype(int), cols.astype(int), strict=True), 1):
            window = labels[t, r - 12 : r + 13, c - 12 : c + 13]
            window[disk & (window == 0)] = label
    return labels


def run_scale(n_frames: int = 200, shape=(1024, 1224), n_cells: int = 300) -> dict:
    """Time and peak memory of track_labels on a long, full-size labels stack (no phase)."""
    import resource

    from napari_dmqpm.tracking import track_labels

    labels = moving_disks(n_frames, shape, n_cells)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start, cpu = time.perf_counter(), time.process_time()
    tracks = track_labels(labels)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "n_frames": n_frames,
        "shape": list(shape),
        "n_cells": n_cells,
        "n_tracks": tracks.n_tracks,
        "seconds": seconds,
        "cpu_s": cpu,
        "labels_mib": labels.nbytes / 2**20,
        "peak_rss_mib": peak,
        "rss_before_mib": before,
    }


def scale_lines() -> list[str]:
    path = _cache_path("scale")
    if not path.is_file():
        return []
    r = json.loads(path.read_text())
    paragraph = render(
        "tracking/scale.md",
        frames=r["n_frames"],
        rows=r["shape"][0],
        columns=r["shape"][1],
        cells=r["n_cells"],
        labels_mib=f"{r['labels_mib']:.0f}",
        tracks=r["n_tracks"],
        seconds=f"{r['seconds']:.0f}",
        cpu_s=f"{r['cpu_s']:.0f}",
        peak_mib=f"{r['peak_rss_mib']:.0f}",
        before_mib=f"{r['rss_before_mib']:.0f}",
    )
    return ["## Scale", "", *paragraph, ""]


def bench_timelapse_memory_section() -> list[str]:
    """The whole path on a 200-frame 1024x1224 file (bench_timelapse_memory's cache)."""
    from benchmarks import bench_timelapse_memory

    found = bench_timelapse_memory.cached_section()
    return found + [""] if found else []


def other_sections() -> list[str]:
    """The sections of the benchmarks that add to this page, from their caches."""
    from benchmarks import bench_growth_background, bench_tracking_diameter

    lines: list[str] = []
    for module in (bench_growth_background, bench_tracking_diameter):
        found = module.cached_section()
        lines += found + [""] if found else []
    return lines


def _cache_path(key: str) -> Path:
    return CACHE_DIR / f"{key}.json"


def run_all(*, quick: bool, use_model: bool) -> dict:
    records = {}
    intervals = (10.0, 30.0) if quick else INTERVALS_MIN
    n_movies = 1 if quick else N_MOVIES
    sim = {"shape": (96, 96), "n_frames": 10} if quick else {}
    for density in DENSITIES:
        for interval in intervals:
            for index in range(SPARSE_MOVIES if density == "sparse" and not quick else n_movies):
                model = use_model and interval in MODEL_INTERVALS_MIN and index == 0
                key = f"{density}-{interval:g}min-{index}"
                key += ("-quick" if quick else "") + ("-model" if model else "")
                key += f"-v{CACHE_VERSION}"
                path = _cache_path(key)
                if path.is_file():
                    records[key] = json.loads(path.read_text())
                    continue
                record = run_condition(density, interval, index, use_model=model, **sim)
                record.update(density=density, interval=interval)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(record))
                records[key] = record
                print(f"{key}: done", flush=True)
    return records


def summarize(records: dict) -> dict:
    """Per (source, linker, density, interval): mean TRA/DET, division counts, growth medians."""
    groups: dict[tuple, dict] = {}
    for record in records.values():
        for key, value in record.items():
            if "|" not in key or not isinstance(value, dict):
                continue
            source, linker = key.split("|")
            group = groups.setdefault(
                (source, linker, record["density"], record["interval"]),
                {
                    "tra": [],
                    "det": [],
                    "div_tp": 0.0,
                    "div_fp": 0.0,
                    "div_fn": 0.0,
                    "errors_k": [],
                    "errors_pg": [],
                    "k": [],
                    "k_true": [],
                },
            )
            group["tra"].append(value["tra"])
            group["det"].append(value["det"])
            for name in ("div_tp", "div_fp", "div_fn"):
                group[name] += value[name]
            for name in ("errors_k", "errors_pg", "k", "k_true"):
                group[name].extend(value[name])
    return {key: _stats(group) for key, group in groups.items()}


def _stats(group: dict) -> dict:
    tp, fp, fn = group["div_tp"], group["div_fp"], group["div_fn"]
    k, k_true = np.array(group["k"]), np.array(group["k_true"])
    field = abs(np.median(k) - np.median(k_true)) / np.median(k_true) if k.size else np.nan
    return {
        "tra": float(np.mean(group["tra"])),
        "det": float(np.mean(group["det"])),
        "div_recall": tp / (tp + fn) if tp + fn else np.nan,
        "div_precision": tp / (tp + fp) if tp + fp else np.nan,
        "n_div": int(tp + fn),
        "n_growth": int(k.size),
        "growth_error_k": float(np.median(group["errors_k"])) if k.size else np.nan,
        "growth_error_pg": float(np.median(group["errors_pg"])) if k.size else np.nan,
        "field_error_k": float(field),
    }


def _fmt(value: float, spec: str = ".3f") -> str:
    return "–" if value is None or not np.isfinite(value) else format(value, spec)


def _pct(value: float) -> str:
    return "–" if not np.isfinite(value) else f"{100 * value:.1f} %"


def table(summary: dict, source: str) -> list[str]:
    lines = [
        "| density | interval | linker | TRA | DET | div. recall | div. precision | true div. "
        "| tracks fitted | median growth error (1/h) | median growth error (pg/h) "
        "| field median error |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (src, linker, density, interval), s in sorted(
        summary.items(),
        key=lambda item: (DENSITIES.index(item[0][2]), item[0][3], LINKERS.index(item[0][1])),
    ):
        if src != source:
            continue
        lines.append(
            f"| {density} | {interval:g} min | {linker} | {_fmt(s['tra'])} | {_fmt(s['det'])} | "
            f"{_fmt(s['div_recall'], '.2f')} | {_fmt(s['div_precision'], '.2f')} | {s['n_div']} | "
            f"{s['n_growth']} | {_pct(s['growth_error_k'])} | {_pct(s['growth_error_pg'])} | "
            f"{_pct(s['field_error_k'])} |"
        )
    return lines


def targets(summary: dict) -> list[str]:
    """The issue's targets against lap-mass, per label source."""
    lines = []
    for source in ("truth", "phase-only"):
        rows = {k: v for k, v in summary.items() if k[0] == source and k[1] == "lap-mass"}
        if not rows:
            continue
        for density, goal in (
            ("sparse", TARGETS["tra_sparse"]),
            ("confluent", TARGETS["tra_confluent"]),
        ):
            values = [v["tra"] for k, v in rows.items() if k[2] == density]
            worst = min(values) if values else np.nan
            verdict = "met" if worst >= goal else "missed"
            lines += render(
                "tracking/target.md",
                source=source,
                density=density,
                worst=_fmt(worst),
                goal=goal,
                verdict=verdict,
            )
        for (_, _, density, interval), v in sorted(
            rows.items(), key=lambda i: (i[0][3], DENSITIES.index(i[0][2]))
        ):
            if v["n_growth"]:
                verdict = "met" if v["growth_error_k"] <= TARGETS["growth_error"] else "missed"
                lines += render(
                    "tracking/growth.md",
                    source=source,
                    density=density,
                    interval=f"{interval:g}",
                    error=_pct(v["growth_error_k"]),
                    n=v["n_growth"],
                    verdict=verdict,
                )
    return lines


def _commit() -> str:
    return (
        subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        or "unknown"
    )


def header(seconds: float, command: str) -> list[str]:
    return render(
        "tracking/header.md",
        command=command,
        cpu_minutes=f"{seconds / 60:.1f}",
        machine=platform.processor() or platform.machine(),
        cores=os.cpu_count(),
        python=platform.python_version(),
        numpy=np.__version__,
        commit=_commit(),
        date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    )


def _text(template: str, **fields: object) -> str:
    """A template's text with its fields filled, ending with a newline (as the page holds it).

    Parameters
    ----------
    template : str
        The template's path under ``benchmarks/templates``.
    **fields : object
        The value of each ``$field``.

    Returns
    -------
    str
        The filled text.
    """
    return "\n".join(render(template, **fields)) + "\n"


#: The notes written for the last run ("## Reading the numbers"); "## What was run" is
#: tracking/method.md, filled by :func:`report`.
NOTES = _text("tracking/notes.md")
#: The notes' last item before btrack was run, replaced by the current one by --btrack.
OLD_NOT_COMPARED = _text("tracking/old_not_compared.md")
NEW_NOT_COMPARED = NOTES[NOTES.index("- Not compared:") :]


def report(records: dict, *, seconds: float, command: str, quick: bool) -> str:
    summary = summarize(records)
    lines = ["# Tracking: accuracy, divisions and growth rates on simulated time-lapses", ""]
    lines += header(seconds, command) + [""]
    lines.append(
        _text(
            "tracking/method.md",
            shape="96x96"
            if quick
            else f"{SHAPE[0]}x{SHAPE[1]} (sparse: {SPARSE_SHAPE[0]}x{SPARSE_SHAPE[1]})",
            frames="10 frames"
            if quick
            else ", ".join(f"{n} frames at {i:g} min" for i, n in N_FRAMES.items()),
            movies=1 if quick else f"{N_MOVIES} ({SPARSE_MOVIES} sparse)",
            model_intervals=" and ".join(f"{i:g}" for i in MODEL_INTERVALS_MIN),
            min_frames=MIN_GROWTH_FRAMES,
        )
    )
    lines += ["## Targets (issue #16), lap-mass", ""] + targets(summary) + [""]
    memory = bench_timelapse_memory_section()
    lines += [NOTES] + scale_lines() + memory + btrack_lines() + other_sections()
    for source, title in (
        ("truth", "Ground-truth labels"),
        ("phase-only", "Labels of the phase-only model"),
    ):
        rows = table(summary, source)
        if len(rows) > 2:
            lines += [f"## {title}", ""] + rows + [""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small movies, two intervals")
    parser.add_argument("--no-model", action="store_true", help="ground-truth labels only")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results_tracking.md")
    parser.add_argument(
        "--scale", action="store_true", help="also time a 200-frame 1024x1224 stack"
    )
    parser.add_argument(
        "--btrack", action="store_true",
        help="run btrack on a subset (pip install btrack) and update only its section of --out",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.btrack:
        try:
            import btrack  # noqa: F401
        except ImportError:
            sys.exit("btrack is not installed (pip install btrack); it is not a dependency")
        run_btrack()
        update_btrack_section(args.out)
        print(f"updated the btrack section of {args.out}")
        return 0
    if args.scale and not _cache_path("scale").is_file():  # first, for a clean peak memory
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        _cache_path("scale").write_text(json.dumps(run_scale()))
    with contextlib.suppress(ImportError):
        import torch

        torch.set_num_threads(1)
    records = run_all(quick=args.quick, use_model=not args.no_model)
    seconds = sum(record["cpu_s"] for record in records.values())
    command = "python benchmarks/bench_tracking.py" + " ".join([""] + (argv or sys.argv[1:]))
    args.out.write_text(
        report(records, seconds=seconds, command=command.strip(), quick=args.quick) + "\n"
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
