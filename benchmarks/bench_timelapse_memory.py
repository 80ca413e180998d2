"""Memory of a long time-lapse, segmented and tracked: issue 16, item 6.

A 200-frame 1024x1224 ssQPM time-lapse is segmented by ``segment_file`` (streamed: the file
is read lazily and labels and cells are written frame by frame) with the shipped ``dmqpm-fast``
model, then linked by ``track_file`` (what ``dmqpm segment --track`` runs), in one fresh
process. The benchmark records the resident memory of that process after every frame of the
segmentation (``VmRSS``, its anonymous part ``RssAnon`` and the peak ``VmHWM``; pages of the
memory-mapped input count in ``VmRSS`` but the kernel can drop them) and the peak after the
linking. The linking alone is then run again, each in a fresh process, on the first 50, 100
and 200 frames of the same labels and cells table: the memory it adds over the imports should
not grow with the number of frames beyond the tracks themselves.

The movie: one simulated dense field (the calibrated simulator: phantoms, optics, detector
noise) of (1024 + T/2) x (1224 + T) px, seen through a 1024x1224 window that moves by one
column and half a row per frame, so cells drift through the field and enter and leave it (they
do not grow or divide: this measures memory and time, not accuracy; accuracy is
docs/results_tracking.md). Written as the canonical ImageJ ``ssqpm-stack`` (TCYX float32, 5 GB
for 200 frames) page by page into ``.bench_cache/timelapse_memory/``, kept between runs.

Usage: ``OMP_NUM_THREADS=1 python benchmarks/bench_timelapse_memory.py [--frames 200]
[--track-frames 50 100 200] [--skip-segment] [--out FILE]``. Prints a markdown section;
``--out`` also writes it, and ``<cache>/result.json`` keeps the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

if not __package__:  # run as a file: the repository root makes `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import bench_tracking as bt
from benchmarks.process_memory import status_mib
from benchmarks.templates import render

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".bench_cache" / "timelapse_memory"
SHAPE = (1024, 1224)
MODEL = "dmqpm-fast"
INTERVAL_MIN = 10.0


def write_movie(path: Path, n_frames: int, shape: tuple[int, int] = SHAPE) -> None:
    """The drifting window over one simulated dense field, written page by page."""
    import tifffile

    from napari_dmqpm.io.write import STACK_CHANNELS
    from napari_dmqpm.simulation import SimulationConfig, simulate_field

    rows, cols = shape[0] + n_frames // 2 + 1, shape[1] + n_frames + 1
    field = simulate_field(SimulationConfig(shape=(rows, cols), density="dense"), rng=16)
    planes = np.concatenate([field.angles, field.phase[None]]).astype(np.float32)

    def pages():
        for t in range(n_frames):
            top, left = t // 2, t
            for plane in planes:
                yield np.ascontiguousarray(plane[top : top + shape[0], left : left + shape[1]])

    metadata = {"axes": "TCYX", "Labels": list(STACK_CHANNELS) * n_frames, "unit": "um"}
    metadata |= {"wavelength_um": field.config.wavelength_um, "phase_unit": "rad"}
    metadata |= {"finterval": INTERVAL_MIN * 60.0, "tunit": "sec"}
    partial = path.with_suffix(".partial")
    tifffile.imwrite(
        partial, pages(), shape=(n_frames, 5, *shape), dtype=np.float32, imagej=True,
        metadata=metadata, resolution=(1.0 / field.config.pixel_size_um,) * 2,
    )  # fmt: skip
    partial.replace(path)


def segment_and_track(movie: str, out_dir: str) -> dict:
    """In this fresh process: segment (RSS after each frame), then link, like segment --track."""
    from napari_dmqpm.inference import InferenceConfig, segment_file
    from napari_dmqpm.model.registry import load_model
    from napari_dmqpm.tracking.files import track_file

    model = load_model(MODEL, device="cpu")
    before = status_mib()
    trace: list[dict] = []
    state = {"frames": 0}

    def progress(done: int, total: int) -> None:
        # steps: tiles plus one per frame; frames done ~ done / total * T
        frames = int(done * n_frames / max(total, 1) + 1e-9)
        if frames > state["frames"]:
            state["frames"] = frames
            trace.append({"frame": frames, "s": time.perf_counter() - start, **status_mib()})

    from napari_dmqpm.io import inspect_file

    n_frames = inspect_file(movie).n_frames
    start, cpu = time.perf_counter(), time.process_time()
    result = segment_file(movie, out_dir=out_dir, model=model,
                          config=InferenceConfig(device="cpu"), progress=progress)  # fmt: skip
    segment_s, segment_cpu = time.perf_counter() - start, time.process_time() - cpu
    after_segment = status_mib()
    start, cpu = time.perf_counter(), time.process_time()
    tracked = track_file(result.labels_path, out_dir, phase_path=movie,
                         table_path=result.table_path)  # fmt: skip
    track_s, track_cpu = time.perf_counter() - start, time.process_time() - cpu
    return {
        "before": before, "trace": trace, "after_segment": after_segment,
        "after_track": status_mib(), "segment_s": segment_s, "segment_cpu_s": segment_cpu,
        "track_s": track_s, "track_cpu_s": track_cpu, "n_frames": result.n_frames,
        "n_cells": result.n_cells, "n_tracks": tracked.tracks.n_tracks,
        "labels_path": str(result.labels_path), "table_path": str(result.table_path),
    }  # fmt: skip


def track_only(labels: str, table: str, movie: str, out_dir: str) -> dict:
    """In this fresh process: ``track_file`` alone; memory before and after."""
    from napari_dmqpm.tracking.files import track_file

    before = status_mib()
    start, cpu = time.perf_counter(), time.process_time()
    tracked = track_file(labels, out_dir, phase_path=movie, table_path=table)
    return {
        "before": before, "after": status_mib(), "s": time.perf_counter() - start,
        "cpu_s": time.process_time() - cpu, "n_tracks": tracked.tracks.n_tracks,
        "n_points": int(tracked.tracks.cells["frame"].size),
    }  # fmt: skip


def first_frames(labels: Path, table: Path, n_frames: int, folder: Path) -> tuple[Path, Path]:
    """Copies of the labels stack and cells table cut to their first ``n_frames`` frames."""
    import tifffile

    from napari_dmqpm.io.write import LabelsStream

    cut_labels, cut_table = (
        folder / f"first{n_frames}_labels.tif",
        folder / f"first{n_frames}_cells.csv",
    )
    if not cut_labels.exists():
        with tifffile.TiffFile(labels) as tif:
            pages = tif.pages
            frame_shape = pages[0].shape
            with LabelsStream(cut_labels, shape=(n_frames, *frame_shape)) as out:
                for t in range(n_frames):
                    out.write(t, pages[t].asarray())
    if not cut_table.exists():
        lines = table.read_text().splitlines(keepends=True)
        header = lines[0].split(",")
        column = header.index("frame")
        kept = [line for line in lines[1:] if int(float(line.split(",")[column])) < n_frames]
        cut_table.write_text(lines[0] + "".join(kept))
    return cut_labels, cut_table


def _child(mode: str, case: list) -> dict:
    command = [sys.executable, __file__, f"--{mode}", json.dumps(case)]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--track-frames", type=int, nargs="*", default=[50, 100, 200])
    parser.add_argument("--skip-segment", action="store_true",
                        help="reuse the segmentation of the last run in the cache")  # fmt: skip
    parser.add_argument("--shape", type=int, nargs=2, default=list(SHAPE),
                        help="frame size (a smaller one for a quick check)")  # fmt: skip
    parser.add_argument("--out", type=Path)
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "results_tracking.md",
                        help="report whose section of this benchmark is replaced")  # fmt: skip
    parser.add_argument("--report-only", action="store_true",
                        help="format the saved result into --doc; run nothing")  # fmt: skip
    parser.add_argument("--segment-child", help=argparse.SUPPRESS)
    parser.add_argument("--track-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.segment_child:
        print(json.dumps(segment_and_track(*json.loads(args.segment_child))))
        return 0
    if args.track_child:
        print(json.dumps(track_only(*json.loads(args.track_child))))
        return 0
    CACHE.mkdir(parents=True, exist_ok=True)
    shape = tuple(args.shape)
    folder = CACHE / f"{args.frames}x{shape[0]}x{shape[1]}"
    folder.mkdir(parents=True, exist_ok=True)
    movie = folder / "movie.tif"
    if not movie.exists():
        write_movie(movie, args.frames, shape)
    saved = folder / "result.json"
    result = json.loads(saved.read_text()) if saved.exists() else {}
    before = folder / "result_before_streaming.json"  # kept by hand from a run before b9429af
    result["before"] = json.loads(before.read_text()) if before.exists() else None
    if args.report_only:
        update_section(args.doc, section(result))
        return 0
    segment_dir = folder / "segment"
    if not args.skip_segment:
        if segment_dir.exists():
            for path in sorted(segment_dir.rglob("*"), reverse=True):
                path.rmdir() if path.is_dir() else path.unlink()
        segment_dir.mkdir(parents=True, exist_ok=True)
        for cut in folder.glob("first*"):  # cut from an earlier segmentation
            cut.unlink()
        result["segment"] = _child("segment-child", [str(movie), str(segment_dir)])
        result["shape"] = list(shape)
        result["segment"]["commit"] = _commit()
        result["segment"]["load"] = os.getloadavg()[0]
        saved.write_text(json.dumps(result, indent=1))
    segmented = result["segment"]
    result["track"] = {}
    with tempfile.TemporaryDirectory(prefix="bench_tl_") as name:
        for n_frames in args.track_frames:
            labels, table = first_frames(
                Path(segmented["labels_path"]), Path(segmented["table_path"]), n_frames, folder
            )
            out = Path(name) / f"t{n_frames}"
            out.mkdir()
            case = [str(labels), str(table), str(movie), str(out)]
            result["track"][str(n_frames)] = _child("track-child", case)
            print(n_frames, result["track"][str(n_frames)], file=sys.stderr, flush=True)
    result["track_commit"] = _commit()
    saved.write_text(json.dumps(result, indent=1))
    text = "\n".join(section(result)) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)
    if args.doc.is_file():
        update_section(args.doc, section(result))
    return 0


TITLE = "## Memory of a long time-lapse, segmented and tracked (bench_timelapse_memory)"


def update_section(path: Path, lines: list[str]) -> None:
    """Put the section into a report, replacing an earlier one (else before btrack's)."""
    bt.put_section(path, TITLE, "\n".join(lines) + "\n", before="## Another linker")


def cached_section(frames: int = 200, shape: tuple[int, int] = SHAPE) -> list[str]:
    """The section of the last full run (from its cache), else nothing; runs nothing."""
    folder = CACHE / f"{frames}x{shape[0]}x{shape[1]}"
    saved = folder / "result.json"
    if not saved.is_file():
        return []
    result = json.loads(saved.read_text())
    if "segment" not in result or "track" not in result:
        return []
    before = folder / "result_before_streaming.json"
    result["before"] = json.loads(before.read_text()) if before.exists() else None
    return section(result)


def _commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True, cwd=ROOT, check=False)  # fmt: skip
    return done.stdout.strip() or "unknown"


def section(result: dict) -> list[str]:
    """The markdown section of a result."""
    seg = result["segment"]
    if "error" in seg:
        failed = render("timelapse_memory/failed.md", error=seg["error"])
        return ["## Memory of a long time-lapse", "", *failed]
    base = seg["before"]["peak"]
    rows = []
    for want in (25, 50, 100, 200, seg["n_frames"]):
        hit = next((row for row in seg["trace"] if row["frame"] >= want), None)
        if hit is not None and all(r[0] != hit["frame"] for r in rows):
            rows.append((hit["frame"], hit))
    lines = [
        TITLE,
        "",
        *render(
            "timelapse_memory/intro.md",
            machine=platform.machine(),
            cores=os.cpu_count(),
            load=f"{seg['load']:.1f}",
            commit=seg["commit"],
            track_commit=result["track_commit"],
            frames=seg["n_frames"],
            rows=result["shape"][0],
            columns=result["shape"][1],
            model=MODEL,
            cells=f"{seg['n_cells']:,}",
            tracks=f"{seg['n_tracks']:,}",
        ),
        "",
        *render(
            "timelapse_memory/times.md",
            minutes=f"{seg['segment_s'] / 60:.1f}",
            cpu_minutes=f"{seg['segment_cpu_s'] / 60:.1f}",
            per_frame=f"{seg['segment_s'] / seg['n_frames']:.1f}",
            track_s=f"{seg['track_s']:.0f}",
            track_cpu_s=f"{seg['track_cpu_s']:.0f}",
            base=f"{base:,.0f}",
        ),
        "",
        "| after frame | peak MiB (VmHWM) | resident MiB (VmRSS) | anonymous MiB (RssAnon) |",
        "|---:|---:|---:|---:|",
        *(f"| {f} | {r['peak']:,.0f} | {r['rss']:,.0f} | {r['anon']:,.0f} |" for f, r in rows),
        f"| linked | {seg['after_track']['peak']:,.0f} | {seg['after_track']['rss']:,.0f} "
        f"| {seg['after_track']['anon']:,.0f} |",
        *_before_row(result.get("before")),
        "",
        *render("timelapse_memory/linking.md"),
        "",
        "| frames | cells | tracks | time s (CPU s) | peak MiB | peak over imports MiB "
        "| peak MiB before b9429af |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    old_track = (result.get("before") or {}).get("track", {})
    for n_frames, row in result["track"].items():
        if "error" in row:
            lines.append(f"| {n_frames} | failed: {row['error']} | | | | | |")
            continue
        old = old_track.get(n_frames, {}).get("after", {}).get("peak")
        lines.append(
            f"| {n_frames} | {row['n_points']:,} | {row['n_tracks']:,} | {row['s']:.0f} "
            f"({row['cpu_s']:.0f}) | {row['after']['peak']:,.0f} "
            f"| {row['after']['peak'] - row['before']['rss']:,.0f} "
            f"| {'–' if old is None else f'{old:,.0f}'} |"
        )
    return lines + _growth_lines(result)


def _per_frame(rows: dict) -> float | None:
    """MiB of peak memory per frame between the shortest and longest cut."""
    done = {int(n): r["after"]["peak"] for n, r in rows.items() if "after" in r}
    if len(done) < 2:
        return None
    low, high = min(done), max(done)
    return (done[high] - done[low]) / (high - low)


def _growth_lines(result: dict) -> list[str]:
    now = _per_frame(result["track"])
    old = _per_frame((result.get("before") or {}).get("track", {}))
    if now is None:
        return []
    points = max(int(r["n_points"]) for r in result["track"].values() if "n_points" in r)
    n_max = max(int(n) for n in result["track"])
    per_cell = now * 2**20 * n_max / points  # bytes per cell and frame
    sentences = render(
        "timelapse_memory/growth.md", now=f"{now:.2f}", per_cell=f"{per_cell / 1024:.1f}"
    )
    if old is not None:
        sentences += render("timelapse_memory/growth_before.md", old=f"{old:.1f}")
    return ["", " ".join(sentences)]


def _before_row(before: dict | None) -> list[str]:
    """The whole path's peak after linking, as it was before the linking read frame by frame."""
    if not before or "error" in before.get("segment", {"error": 1}):
        return []
    seg = before["segment"]
    return [
        f"| linked, before b9429af (segmentation at {seg['commit']}) "
        f"| {seg['after_track']['peak']:,.0f} | {seg['after_track']['rss']:,.0f} "
        f"| {seg['after_track']['anon']:,.0f} |"
    ]


if __name__ == "__main__":
    sys.exit(main())
