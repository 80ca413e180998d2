"""Robustness to what another instrument does to a phase map. Writes docs/results_shifts.md.

A phase map from another QPM instrument reaches ``phase-only`` after that instrument's own
processing: its background may sit a few tenths of a radian off zero, tilted or bowed, and its
unit may be read with the wrong factor. The shifts here are made on purpose, on the 15 real
Q-PHASE maps of ``../shared/data/real/vicar_qphase_iit`` at their measured scale, so nothing
was tuned on the shifted images:

- ``none``: the map as measured (radians, pg/µm² x 1.74);
- ``offset +0.3`` / ``offset -0.3``: a constant added, rad;
- ``foreign background``: offset, tilt and bowl drawn per image as the simulator draws them
  (``simulation.optics.residual_background`` with offset ±0.3, tilt ±0.2 and curvature
  ±0.2 rad, seeds ``(9_400_000, i)``);
- ``scale x0.5`` / ``scale x2``: the whole map multiplied, as a map in an unknown unit read
  with a wrong factor (pg/µm² read as radians is x0.57).

Each method runs with its defaults (``auto``: the automatic cell diameter, the file's pixel
size), beside Otsu + watershed and Vicar et al.'s IIT (both presets). The models that take the
angle images are not run: their phase is retrieved in the plugin from the angles, with the
plugin's own background removal, so a foreign background never reaches them.

Usage::

    python benchmarks/bench_shifts.py [--methods NAME ...] [--model LABEL=FOLDER ...]

``--model`` adds a checkpoint folder under a label of its own (to compare a candidate with
the shipped model). Records are cached per method in ``.bench_cache/shifts/``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

if not __package__:  # run as a file: the repository root makes `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import bench_scale, results
from benchmarks.results import Case
from benchmarks.templates import render

ROOT = Path(__file__).resolve().parents[1]
CACHE_DIR = ROOT / ".bench_cache" / "shifts"
MODELS = ("phase-only",)
BASELINES = bench_scale.BASELINES
SHIFT_SEED = 9_400_000
#: The simulator's foreign-background ranges used for ``foreign background``, rad.
FOREIGN = {"residual_offset_rad": 0.3, "residual_tilt_rad": 0.2, "residual_curvature_rad": 0.2}
SHIFTS = ("none", "offset +0.3", "offset -0.3", "foreign background", "scale x0.5", "scale x2")


def shift_phase(phase: np.ndarray, shift: str, *, index: int) -> np.ndarray:
    """``phase`` (radians) as another instrument might hand it over (see the module doc).

    Examples
    --------
    >>> flat = np.zeros((8, 8), np.float32)
    >>> float(shift_phase(flat + 1, "scale x2", index=0).max())
    2.0
    >>> round(float(shift_phase(flat, "offset -0.3", index=0).mean()), 6)
    -0.3
    """
    if shift == "none":
        return phase
    kind, value = shift.split(" ", 1)
    if kind == "offset":
        return (phase + np.float32(value)).astype(np.float32)
    if kind == "scale":
        return (phase * np.float32(value.lstrip("x"))).astype(np.float32)
    if shift == "foreign background":
        from napari_dmqpm.simulation import SimulationConfig
        from napari_dmqpm.simulation.optics import residual_background

        config = SimulationConfig(shape=phase.shape, **FOREIGN)
        rng = np.random.default_rng((SHIFT_SEED, index))
        return (phase + residual_background(config, rng)).astype(np.float32)
    raise ValueError(f"unknown shift {shift!r}; choose from {SHIFTS}")


def shifted_cases(base: Sequence[Case]) -> list[Case]:
    """Every real case under every shift (group = the shift)."""
    return [
        replace(case, name=f"{case.name}|{shift}", group=shift,
                phase=shift_phase(case.phase, shift, index=index), angles=None, angle_phase=None)
        for shift in SHIFTS
        for index, case in enumerate(base)
    ]  # fmt: skip


def runner(method: str, folders: Mapping[str, str]) -> Callable[[Case], np.ndarray]:
    """``run(case) -> labels`` with the method's defaults."""
    if method in BASELINES:
        run = bench_scale.baseline_runner(method)
        return lambda case: run(case, "none")[0]
    run = bench_scale.model_runner(folders.get(method, method))
    return lambda case: run(case, "auto")[0]


def run_method(
    method: str,
    cases: Sequence[Case],
    *,
    folders: Mapping[str, str],
    cache: Path,
    say: Callable[[str], None] = print,
) -> dict:
    """Score one method on every shifted case (records cached per case)."""
    from napari_dmqpm.training.metrics import score_image

    data = bench_scale._load_cache(cache)
    segment = None
    for case in cases:
        if case.name in data:
            continue
        segment = segment or runner(method, folders)
        started = time.process_time()
        scores = score_image(segment(case), case.labels)
        data[case.name] = {
            "shift": case.group, "f1": scores.f1, "dice": scores.dice,
            "cpu_s": time.process_time() - started,
        }  # fmt: skip
        bench_scale._save_cache(cache, data)
        say(f"{method} {case.name}: F1 {scores.f1:.3f} Dice {scores.dice:.3f}")
    return data


def report(all_records: Mapping[str, Mapping[str, dict]], *, header: Sequence[str]) -> str:
    """docs/results_shifts.md: mean F1 and Dice per method and shift, and the change from none."""
    lines = ["# Robustness to foreign phase maps (offsets, backgrounds, units)", "", *header, ""]
    head = ["shift", *(f"`{m}`" for m in all_records)]
    for key, title in (("f1", "F1 at IoU 0.5"), ("dice", "Foreground Dice")):
        lines += [f"## {title}", "", "Mean over the 15 maps (change from `none` in brackets).", ""]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for shift in SHIFTS:
            cells = []
            for records in all_records.values():
                values = [r[key] for r in records.values() if r["shift"] == shift]
                plain = [r[key] for r in records.values() if r["shift"] == "none"]
                if not values:
                    cells.append("–")
                    continue
                mean = float(np.mean(values))
                change = "" if shift == "none" or not plain else f" ({mean - np.mean(plain):+.3f})"
                cells.append(f"{mean:.3f}{change}")
            lines.append(f"| {shift} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=[*MODELS, *BASELINES])
    parser.add_argument("--model", action="append", default=[], metavar="LABEL=FOLDER")
    parser.add_argument("--real-dir", type=Path, default=results.REAL_DIR)
    parser.add_argument("--cache-dir", type=Path, default=CACHE_DIR)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results_shifts.md")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)
    folders = dict(item.split("=", 1) for item in args.model)
    methods = [*args.methods, *folders]
    unknown = set(args.methods) - set(MODELS) - set(BASELINES)
    if unknown:
        parser.error(f"--methods: unknown {sorted(unknown)}; choose from {MODELS + BASELINES}")
    if not args.real_dir.is_dir():
        parser.error(f"--real-dir: no folder {args.real_dir} (the real Q-PHASE maps)")
    if not args.report_only:
        cases = shifted_cases(results.real_cases(args.real_dir))
        for method in methods:
            run_method(method, cases, folders=folders, cache=args.cache_dir / f"{method}.json")
    order = [*MODELS, *BASELINES]
    paths = sorted(args.cache_dir.glob("*.json"), key=lambda p: (p.stem not in order, p.stem))
    all_records = {path.stem: bench_scale._load_cache(path) for path in paths}
    seconds = sum(r["cpu_s"] for records in all_records.values() for r in records.values())
    header = bench_scale.header_lines(seconds, "python benchmarks/bench_shifts.py")
    header[-2:] = render("shifts/methods.md")
    if any("@" in name for name in all_records):
        header += render("shifts/old_commits.md")
    args.out.write_text(report(all_records, header=header), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
