"""Benchmark: read a 2448 x 2048 raw polarization frame and retrieve its phase.

Times ``read_acquisition`` on a synthetic 12-bit uint16 mosaic written to a temporary TIFF
(uncompressed and LZW) and on a real IMX250MZR PNG when ../shared/data/real is present,
with the stages apart (decode, demosaic, wrapped phase, unwrapping, background). Median of
5 runs after one warm-up. Prints a markdown section (see run_all.py). Target: <= 1.5 s.

Usage: ``python benchmarks/bench_read_raw.py``
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tifffile

from napari_dmqpm import phase
from napari_dmqpm.io import demosaic, read_acquisition
from napari_dmqpm.io.detect import inspect_file
from napari_dmqpm.io.read import read_pixels

if not __package__:  # run as a file: the repository root makes `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.templates import render

ROOT = Path(__file__).resolve().parents[1]
REAL_PNG = ROOT.parent / "shared/data/real/polanalyser_imx250mzr/raw/polarizer_IMX250MZR.png"
N_RUNS = 5
TARGET_S = 1.5


def synthetic_mosaic(rng: np.random.Generator) -> np.ndarray:
    """A 2048 x 2448 12-bit mosaic of cells under a tilted reference, with shot noise."""
    rows, cols = np.mgrid[:1024, :1224].astype(np.float32)
    truth = np.zeros_like(rows)
    for _ in range(40):
        r0, c0, radius = rng.uniform(0, 1024), rng.uniform(0, 1224), rng.uniform(15, 40)
        truth += 3.0 * np.exp(-((rows - r0) ** 2 + (cols - c0) ** 2) / (2 * radius**2))
    angles = phase.synthesize_angles(truth + 0.15 * cols, mean=1800.0, visibility=0.7)
    raw = np.zeros((2048, 2448), dtype=np.float32)
    raw[1::2, 1::2], raw[0::2, 1::2] = angles[0], angles[1]
    raw[0::2, 0::2], raw[1::2, 0::2] = angles[2], angles[3]
    return np.clip(rng.poisson(raw), 0, 4095).astype(np.uint16)


def median_time(
    function: Callable[[], object], clock: Callable[[], float] = time.perf_counter
) -> float:
    function()  # warm-up: imports, caches
    times = []
    for _ in range(N_RUNS):
        start = clock()
        function()
        times.append(clock() - start)
    return statistics.median(times)


def stage_times(path: Path) -> dict[str, float]:
    """Median seconds of each stage of reading ``path`` and of the whole."""
    info = inspect_file(path)
    raw = read_pixels(info)
    angles = demosaic(raw)
    wrapped = phase.wrapped_phase(angles)
    unwrapped = phase.unwrap(wrapped)
    return {
        "inspect": median_time(lambda: inspect_file(path)),
        "decode": median_time(lambda: read_pixels(info)),
        "demosaic": median_time(lambda: demosaic(raw)),
        "wrapped + modulation": median_time(
            lambda: (phase.wrapped_phase(angles), phase.modulation(angles))
        ),
        "unwrap": median_time(lambda: phase.unwrap(wrapped)),
        "background": median_time(lambda: phase.remove_background(unwrapped)),
        "retrieve_phase": median_time(lambda: phase.retrieve_phase(angles)),
        "read_acquisition (total)": median_time(lambda: read_acquisition(path)),
        "read_acquisition, CPU time of this process": median_time(
            lambda: read_acquisition(path), clock=time.process_time
        ),
    }


def machine() -> str:
    try:
        from benchmarks.run_all import machine_description

        return machine_description()
    except ImportError:
        import platform

        return f"{platform.processor() or platform.machine()}, Python {platform.python_version()}"


def report(cases: dict[str, dict[str, float]], *, machine: str, load: float) -> str:
    """The markdown section: prose from ``benchmarks/templates/read_raw``, a table of the stages.

    Parameters
    ----------
    cases : dict of str to dict of str to float
        Per file read (the table's columns, in order), the median seconds of each stage
        (:func:`stage_times`; the rows, in the first case's order).
    machine : str
        The machine line (``run_all.machine_description``).
    load : float
        The one-minute load average when the run ended.

    Returns
    -------
    str
        The section, each line ending with a newline.
    """
    stages = list(next(iter(cases.values())))
    worst = max(case["read_acquisition (total)"] for case in cases.values())
    lines = render(
        "read_raw/intro.md", n_runs=N_RUNS, target=TARGET_S, machine=machine, load=f"{load:.1f}"
    )
    lines += ["| stage | " + " | ".join(cases) + " |", "|---|" + "---:|" * len(cases)]
    for stage in stages:
        row = " | ".join(f"{cases[case][stage]:.3f}" for case in cases)
        lines.append(f"| {stage} | {row} |")
    verdict = "meets" if worst <= TARGET_S else "MISSES"
    lines += [
        "",
        *render("read_raw/verdict.md", worst=f"{worst:.2f}", verdict=verdict, target=TARGET_S),
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    rng = np.random.default_rng(0)
    mosaic = synthetic_mosaic(rng)
    cases: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        plain = Path(folder) / "raw_12bit.tif"
        tifffile.imwrite(plain, mosaic)
        cases["synthetic uint16 TIFF"] = stage_times(plain)
        lzw = Path(folder) / "raw_12bit_lzw.tif"
        tifffile.imwrite(lzw, mosaic, compression="lzw")
        cases["synthetic uint16 TIFF, LZW"] = stage_times(lzw)
        if REAL_PNG.is_file():
            cases["real IMX250MZR PNG (uint8)"] = stage_times(REAL_PNG)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(report(cases, machine=machine(), load=load), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
