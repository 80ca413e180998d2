"""Frames per second of a long time-lapse, frames overlapped or not, and its peak memory in T.

Issue 17, items 2 and 4. ``segment_file`` (the core of ``dmqpm segment``: the file read lazily,
labels and cells written frame by frame) segments a simulated 100-frame 512² time-lapse with
each of ``dmqpm-default`` and ``dmqpm-fast``, with ``InferenceConfig.overlap_frames`` on
(frame t post-processed and measured on a worker thread while the network runs on frame t+1,
:mod:`napari_dmqpm.inference.pipeline`) and off (one frame after the other). The two runs of a
model are interleaved (the order alternates between models and repeats) on the same loaded
model, after a one-frame warm-up; their outputs are compared byte for byte. Torch runs at
``--threads`` threads; the network runs where ``backend="auto"`` puts it (OpenVINO when it is
installed), and the section says what ran.

Peak memory: ``segment_file`` on the first T = 25, 50 and 100 frames of the same file, each in
a fresh process (``VmHWM``, as ``bench_memory``), overlap on and off, with ``dmqpm-fast``: it
should not grow with T.

The movie: ``simulate_timelapse`` (the calibrated simulator; cells drift and deform, one
divides), written as the canonical ImageJ ``ssqpm-stack`` into
``.bench_cache/timelapse_speed/`` and kept between runs. Prints a markdown section (collected by
``benchmarks/run_all.py``). Usage: ``python benchmarks/bench_timelapse_speed.py [--frames 100]
[--rss-frames 25 50 100] [--models dmqpm-default dmqpm-fast] [--repeats 1] [--threads 2]
[--out FILE]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

if not __package__:  # run as a file: the repository root makes `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.process_memory import status_mib
from benchmarks.templates import render

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".bench_cache" / "timelapse_speed"
MODELS = ("dmqpm-default", "dmqpm-fast")
N_FRAMES = 100
SIZE = 512
RSS_FRAMES = (25, 50, 100)
RSS_MODEL = "dmqpm-fast"
THREADS = 2


def movie_path(n_frames: int, size: int) -> Path:
    """The simulated time-lapse, written once into the cache."""
    from napari_dmqpm.io import write_stack
    from napari_dmqpm.simulation import SimulationConfig, simulate_timelapse

    path = CACHE / f"movie_{n_frames}x{size}.tif"
    if not path.is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        movie = simulate_timelapse(SimulationConfig(shape=(size, size)), n_frames, rng=2)
        partial = path.with_suffix(".partial.tif")
        partial.unlink(missing_ok=True)
        write_stack(partial, movie.to_acquisition())
        partial.replace(path)
    return path


def run_once(
    path: Path, model, *, overlap: bool, frames: Sequence[int] | None, progress=None
) -> dict:
    """``segment_file`` into a temporary folder: wall and CPU seconds, what it wrote."""
    from napari_dmqpm.inference import InferenceConfig, segment_file

    config = InferenceConfig(device="cpu", overlap_frames=overlap)
    with tempfile.TemporaryDirectory(prefix="bench_timelapse_speed_") as folder:
        start, cpu = time.perf_counter(), time.process_time()
        result = segment_file(
            path, out_dir=folder, model=model, config=config, frames=frames, progress=progress
        )
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        digest = hashlib.sha256()
        for written in (result.labels_path, result.table_path, result.frames_path):
            digest.update(Path(written).read_bytes())
    return {
        "wall": wall, "cpu": cpu, "n_frames": result.n_frames, "n_cells": result.n_cells,
        "backend": result.backend, "precision": result.precision, "sha256": digest.hexdigest(),
    }  # fmt: skip


def speed(path: Path, models: Sequence[str], *, repeats: int, threads: int) -> dict:
    """Per model: the runs with overlap off and on, interleaved (order alternating)."""
    import torch

    from napari_dmqpm.model.registry import load_model

    torch.set_num_threads(threads)
    runs: dict[str, dict[str, list[dict]]] = {}
    for index, name in enumerate(models):
        model = load_model(name, device="cpu")
        run_once(path, model, overlap=False, frames=[0])  # warm-up: export, first calls
        runs[name] = {"off": [], "on": []}
        for repeat in range(repeats):
            order = (False, True) if (index + repeat) % 2 == 0 else (True, False)
            for overlap in order:
                result = run_once(path, model, overlap=overlap, frames=None)
                runs[name]["on" if overlap else "off"].append(result)
                print(name, "overlap" if overlap else "one by one", result, file=sys.stderr)
    return runs


def peak_child(path: str, model: str, n_frames: int, overlap: bool, threads: int) -> dict:
    """In this fresh process: load the model, segment the first ``n_frames``, report memory."""
    import torch

    from napari_dmqpm.model.registry import load_model

    torch.set_num_threads(threads)
    loaded = load_model(model, device="cpu")
    before = status_mib()["rss"]
    anon: dict[int, float] = {}  # frames done (about) -> anonymous resident MiB then

    def progress(done: int, total: int) -> None:
        anon[round(n_frames * done / max(total, 1))] = status_mib()["anon"]

    result = run_once(
        Path(path), loaded, overlap=overlap, frames=range(n_frames), progress=progress
    )
    half = max((k for k in anon if k <= n_frames // 2), default=0)
    return {
        "peak": status_mib()["peak"], "before": before, "anon_half": anon.get(half, float("nan")),
        "anon_end": status_mib()["anon"], **result,
    }  # fmt: skip


def peaks(path: Path, model: str, counts: Sequence[int], threads: int) -> list[dict]:
    """``peak_child`` for each T, overlap off and on, each in a fresh interpreter."""
    rows = []
    for n_frames in counts:
        for overlap in (False, True):
            case = json.dumps([str(path), model, n_frames, overlap, threads])
            command = [sys.executable, __file__, "--child", case]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                tail = done.stderr.strip().splitlines()[-1:] or ["failed"]
                rows.append({"frames": n_frames, "overlap": overlap, "error": tail[0]})
            else:
                result = json.loads(done.stdout.strip().splitlines()[-1])
                rows.append({"frames": n_frames, "overlap": overlap, **result})
            print(rows[-1], file=sys.stderr, flush=True)
    return rows


def _fps(runs: list[dict]) -> float:
    """Frames per second of the best run (the least disturbed by the machine's other work)."""
    return max(run["n_frames"] / run["wall"] for run in runs)


def section(result: dict) -> list[str]:
    """The markdown section from the measurements (``result`` as :func:`main` collects it).

    Parameters
    ----------
    result : dict
        ``frames``, ``size``, ``threads``, ``cores``, ``repeats``, ``load_start``,
        ``load_end``, ``commit``; ``speed``: per model, ``{"off": [run, ...], "on": [...]}``
        (:func:`run_once`); ``rss_model`` and ``rss``: the rows of :func:`peaks`.

    Returns
    -------
    list of str
        The section's lines.
    """
    lines = ["## Time-lapse speed and memory (bench_timelapse_speed)", ""]
    lines += render(
        "timelapse_speed/intro.md",
        frames=result["frames"], size=result["size"], threads=result["threads"],
        cores=result["cores"], repeats=result["repeats"], commit=result["commit"],
        load_start=f"{result['load_start']:.1f}", load_end=f"{result['load_end']:.1f}",
    )  # fmt: skip
    lines += [
        "",
        "| model | network on | overlap | wall (s) | frames per second | CPU (s) | cells |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    verdicts = []
    for name, runs in result["speed"].items():
        for key, words in (("off", "off (one by one)"), ("on", "on")):
            for run in runs[key]:
                lines.append(
                    f"| `{name}` | {run['backend']} {run['precision']} | {words} "
                    f"| {run['wall']:.1f} | {run['n_frames'] / run['wall']:.2f} "
                    f"| {run['cpu']:.1f} | {run['n_cells']:,} |"
                )
        off, on = _fps(runs["off"]), _fps(runs["on"])
        hashes = {run["sha256"] for run in runs["off"] + runs["on"]}
        verdicts += render(
            "timelapse_speed/speedup.md",
            name=name, on=f"{on:.2f}", off=f"{off:.2f}", ratio=f"{on / off:.2f}",
            change=f"{100 * (on / off - 1):+.0f}",
            same="identical" if len(hashes) == 1 else "**different**",
        )  # fmt: skip
    lines += ["", *verdicts, ""]
    lines += render(
        "timelapse_speed/memory.md",
        model=result["rss_model"], counts=", ".join(str(n) for n in result["rss_counts"]),
    )  # fmt: skip
    lines += [
        "",
        "| T (frames) | overlap | peak MiB | before MiB | anonymous MiB at T/2 → T "
        "| wall (s) | cells |",
        "|---:|---|---:|---:|---|---:|---:|",
    ]
    for row in result["rss"]:
        overlap = "on" if row["overlap"] else "off"
        if "error" in row:
            lines.append(f"| {row['frames']} | {overlap} | failed: {row['error']} | | | | |")
            continue
        anon = f"{row['anon_half']:,.0f} → {row['anon_end']:,.0f}" if "anon_end" in row else "-"
        lines.append(
            f"| {row['frames']} | {overlap} | **{row['peak']:,.0f}** | {row['before']:,.0f} "
            f"| {anon} | {row['wall']:.1f} | {row['n_cells']:,} |"
        )
    spans = []
    for overlap in (False, True):
        found = [
            row["peak"] for row in result["rss"] if row["overlap"] is overlap and "peak" in row
        ]
        if len(found) > 1:
            spans += render(
                "timelapse_speed/flat.md",
                overlap="on" if overlap else "off",
                low=f"{min(found):,.0f}", high=f"{max(found):,.0f}",
                spread=f"{max(found) - min(found):,.0f}",
            )  # fmt: skip
    if spans:
        lines += ["", *spans]
    return lines


def _commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    return done.stdout.strip() or "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=N_FRAMES, help="time-lapse frames")
    parser.add_argument("--size", type=int, default=SIZE, help="side of the frames")
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--repeats", type=int, default=1, help="runs of each setting")
    parser.add_argument("--threads", type=int, default=THREADS, help="torch threads")
    parser.add_argument("--rss-frames", type=int, nargs="*", default=list(RSS_FRAMES))
    parser.add_argument("--rss-model", default=RSS_MODEL)
    parser.add_argument("--out", type=Path, help="also write the markdown here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(peak_child(*json.loads(args.child))))
        return 0
    if any(n > args.frames for n in args.rss_frames):
        parser.error("--rss-frames cannot exceed --frames (they are the first frames of it)")
    path = movie_path(args.frames, args.size)
    load_start = os.getloadavg()[0]
    runs = speed(path, args.models, repeats=args.repeats, threads=args.threads)
    rss = peaks(path, args.rss_model, args.rss_frames, args.threads)
    result = {
        "frames": args.frames, "size": args.size, "threads": args.threads,
        "cores": os.cpu_count(), "repeats": args.repeats, "load_start": load_start,
        "load_end": os.getloadavg()[0], "commit": _commit(), "speed": runs,
        "rss_model": args.rss_model, "rss_counts": args.rss_frames, "rss": rss,
    }  # fmt: skip
    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / "result.json").write_text(json.dumps(result, indent=1))
    text = "\n".join(section(result)) + "\n"
    print(text, end="")
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
