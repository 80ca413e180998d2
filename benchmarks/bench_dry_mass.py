"""Dry-mass benchmark: per-cell dry mass against the truth on simulated fields, by density.

Writes docs/results_dry_mass.md. Fields come from :func:`napari_dmqpm.simulation.simulate_field`
(seeds ``(8_170_000, density, i)``), with the simulator's true labels, so that only the mass
measurement is judged. A cell's true dry mass is its noiseless object phase integrated over its
label (what the time-lapse simulator calls the truth); the measured one integrates the retrieved
phase over the same label, either as retrieved (``background=None``: the whole-frame fit of
:func:`napari_dmqpm.phase.retrieve_phase`) or above the background fitted to the pixels the
labels leave (``measure_cells`` as shipped, ``background="quadratic"``).

A second table gives the errors against ``background_extrapolation`` on confluent fields whose
usable background is cut further (a wider margin around the cells), the measurement behind
``MAX_BACKGROUND_EXTRAPOLATION``.

Usage::

    python benchmarks/bench_dry_mass.py [--quick] [--out docs/results_dry_mass.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

if not __package__:  # run as a file: the repository root makes `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.templates import render

ROOT = Path(__file__).resolve().parents[1]
SEED = 8_170_000
SHAPE = (256, 256)
N_FIELDS = 6
CONDITIONS = {
    "sparse": {"density": "sparse"},
    "dense": {"density": "dense"},
    "confluent": {"density": "confluent"},
    "packed": {"density": 0.95},
    "confluent + residual": {
        "density": "confluent",
        "residual_offset_rad": 0.5,
        "residual_tilt_rad": 0.5,
        "residual_curvature_rad": 0.5,
    },
}
MARGINS_PX = (2.0, 4.0, 6.0, 8.0, 10.0, 13.0, 16.0)
EXTRAPOLATION_BINS = (0.0, 3.0, 10.0, 30.0, 100.0, 300.0, np.inf)


def _field(name: str, index: int):
    from napari_dmqpm.simulation import SimulationConfig, simulate_field

    config = SimulationConfig(shape=SHAPE, **CONDITIONS[name])
    return simulate_field(config, rng=(SEED, list(CONDITIONS).index(name), index))


def _errors(field, **options) -> dict:
    """Relative dry-mass errors of the cells of one field, and the background columns."""
    from napari_dmqpm.inference.measure import measure_cells

    units = {
        "pixel_size_um": field.config.pixel_size_um,
        "wavelength_um": field.config.wavelength_um,
    }
    truth = measure_cells(field.labels, field.true_phase, background=None, **units)
    measured = measure_cells(field.labels, field.phase, **units, **options)
    return {
        "error": measured["dry_mass_pg"] / truth["dry_mass_pg"] - 1.0,
        "extrapolation": measured["background_extrapolation"],
        "ok": measured["background_ok"],
        "background_px": measured["background_px"][:1],
        "background_fraction": [np.mean(field.labels == 0)],
    }


def _gather(records: list[dict]) -> dict:
    return {key: np.concatenate([np.asarray(r[key]) for r in records]) for key in records[0]}


def run(n_fields: int) -> dict:
    results = {}
    for name in CONDITIONS:
        fields = [_field(name, index) for index in range(n_fields)]
        results[name] = {
            "retrieval only": _gather([_errors(f, background=None) for f in fields]),
            "labels' background": _gather([_errors(f) for f in fields]),
        }
        if name == "confluent":
            results["sweep"] = _gather(
                [_errors(f, background_margin_px=m) for f in fields for m in MARGINS_PX]
            )
        print(f"{name}: done", flush=True)
    return results


def _pct(value: float) -> str:
    return f"{100 * value:.1f} %"


def density_table(results: dict) -> list[str]:
    lines = [
        "| field | background (label 0) | mass measured against | cells | median abs. error "
        "| 90th pct. | max | median signed | background px used | flagged |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in CONDITIONS:
        for method, r in results[name].items():
            err = r["error"]
            px = (
                f"{int(np.min(r['background_px']))}-{int(np.max(r['background_px']))}"
                if method != "retrieval only"
                else "–"
            )
            lines.append(
                f"| {name} | {100 * np.mean(r['background_fraction']):.0f} % | {method} "
                f"| {err.size} | {_pct(np.median(np.abs(err)))} "
                f"| {_pct(np.percentile(np.abs(err), 90))} | {_pct(np.max(np.abs(err)))} "
                f"| {100 * np.median(err):+.1f} % | {px} | {int(np.sum(r['ok'] == 0))} |"
            )
    return lines


def sweep_table(sweep: dict) -> list[str]:
    lines = [
        "| background_extrapolation | cells | median abs. error | 90th pct. | max |",
        "|---|---|---|---|---|",
    ]
    err, extrapolation = np.abs(sweep["error"]), sweep["extrapolation"]
    for low, high in zip(EXTRAPOLATION_BINS[:-1], EXTRAPOLATION_BINS[1:], strict=True):
        rows = (extrapolation >= low) & (extrapolation < high)
        if not rows.any():
            continue
        label = f"{low:g}-{high:g}" if np.isfinite(high) else f">= {low:g}"
        lines.append(
            f"| {label} | {rows.sum()} | {_pct(np.median(err[rows]))} "
            f"| {_pct(np.percentile(err[rows], 90))} | {_pct(np.max(err[rows]))} |"
        )
    no_fit = ~np.isfinite(extrapolation)
    if no_fit.any():
        lines.append(
            f"| no fit (too few pixels) | {no_fit.sum()} | {_pct(np.median(err[no_fit]))} "
            f"| {_pct(np.percentile(err[no_fit], 90))} | {_pct(np.max(err[no_fit]))} |"
        )
    return lines


def report(results: dict, *, seconds: float, command: str, n_fields: int) -> str:
    from napari_dmqpm.inference.measure import MAX_BACKGROUND_EXTRAPOLATION

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    lines = render(
        "dry_mass/page.md",
        command=command,
        minutes=f"{seconds / 60:.1f}",
        machine=f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"Python {platform.python_version()}, numpy {np.__version__}",
        commit=commit or "unknown",
        date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        n_fields=n_fields,
        rows=SHAPE[0],
        columns=SHAPE[1],
        density_table="\n".join(density_table(results)),
        margins=", ".join(f"{m:g}" for m in MARGINS_PX),
        max_extrapolation=f"{MAX_BACKGROUND_EXTRAPOLATION:g}",
        sweep_table="\n".join(sweep_table(results["sweep"])),
    )
    return "\n".join([*lines, ""])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two fields per condition")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results_dry_mass.md")
    args = parser.parse_args(argv)
    n_fields = 2 if args.quick else N_FIELDS
    start = time.process_time()
    results = run(n_fields)
    seconds = time.process_time() - start
    command = "python benchmarks/bench_dry_mass.py" + " ".join([""] + (argv or sys.argv[1:]))
    args.out.write_text(
        report(results, seconds=seconds, command=command.strip(), n_fields=n_fields) + "\n"
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
