"""The automatic diameter estimate, before and after a change: same answers, less CPU?

Runs the estimate of :mod:`napari_dmqpm.inference.diameter` as it is now and as it was at a
baseline commit (the module's source read from git, run against today's predict and
post-processing) on the images of the scale sweep (``benchmarks/bench_scale.py``: simulated
fields of D12-D110 px, the 15 real Q-PHASE maps resampled x0.5-x2.5) and on simulated
camera-sized frames (1024 x 1224, where the estimate's window matters), the two interleaved
(their order alternates from image to image), one torch thread, process CPU time, the
shipped networks on torch. Every shipped model is sized by ``phase-only``: on the phase of
the image, or for ``dmqpm-default`` and ``dmqpm-fast`` on the phase retrieved from the
angles synthesized for a real map (their inputs differ there, so both are estimated).

Prints a markdown section (collected by ``benchmarks/run_all.py``), with every estimate, old
against new, in a collapsed table.

Usage: ``python benchmarks/bench_diameter.py [--baseline REV] [--quick]``
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

if not __package__:  # run as a file: the repository root makes `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.templates import render

ROOT = Path(__file__).resolve().parents[1]
MODULE_PATH = "src/napari_dmqpm/inference/diameter.py"
#: The last commit before the estimate's windows and model-scale passes (issue 17).
BASELINE = "7c3cae2"
#: Simulated camera frames: the IMX250MZR super-pixel frame at these cell diameters, px.
CAMERA_SHAPE, CAMERA_DIAMETERS = (1024, 1224), (12, 20, 35, 50, 80)
#: An estimate that moves by more than this (per cent) is listed on its own.
NOTE_PCT = 3.0


@dataclass(frozen=True)
class Row:
    case: str
    group: str
    sized_on: str  # whose input the estimate ran on: "phase" or "angle phase"
    true_px: float
    old_px: float
    new_px: float
    old_cpu_s: float
    new_cpu_s: float
    old_passes: int
    new_passes: int

    @property
    def change_pct(self) -> float:
        return 100.0 * (self.new_px / self.old_px - 1.0)


def baseline_module(rev: str) -> ModuleType:
    """``diameter.py`` as it was at ``rev``, imported beside today's inference package."""
    source = subprocess.run(
        ["git", "show", f"{rev}:{MODULE_PATH}"], cwd=ROOT, capture_output=True, text=True,
        check=True,
    ).stdout  # fmt: skip
    name = "napari_dmqpm.inference._diameter_baseline"
    spec = importlib.util.spec_from_loader(name, loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "napari_dmqpm.inference"
    sys.modules[name] = module
    exec(compile(source, f"{rev}:{MODULE_PATH}", "exec"), module.__dict__)  # noqa: S102
    return module


def camera_cases(diameters: Sequence[int] = CAMERA_DIAMETERS):
    """Dense simulated 1024 x 1224 frames whose median cell diameter is about each value."""
    from benchmarks import bench_scale
    from benchmarks.results import Case
    from napari_dmqpm.simulation import SimulationConfig, simulate_field

    cases = []
    for diameter in diameters:
        pixel = bench_scale.REFERENCE_PIXEL_UM * bench_scale.REFERENCE_DIAMETER_PX / diameter
        config = SimulationConfig(shape=CAMERA_SHAPE, density="dense", pixel_size_um=pixel)
        seed = np.random.default_rng((bench_scale.SCALE_SEED + 1, diameter, 0))
        field = simulate_field(config, rng=seed)
        cases.append(Case(f"camera-D{diameter}", f"camera D{diameter}", field.phase,
                          field.labels, field.angles, pixel_size_um=pixel))  # fmt: skip
    return cases


def compare(cases, baseline: ModuleType, say=print) -> list[Row]:
    """Old and new estimate of every case (and of its angle phase where it has one)."""
    from benchmarks import bench_scale
    from napari_dmqpm.inference import InferenceConfig
    from napari_dmqpm.inference import diameter as current
    from napari_dmqpm.model.registry import load_model

    sizer = load_model(current.SIZE_MODEL, device="cpu")
    config = InferenceConfig(backend="torch")
    rows = []
    for index, case in enumerate(cases):
        inputs = [("phase", case.phase)]
        if case.angle_phase is not None:
            inputs.append(("angle phase", case.angle_phase))
        for sized_on, phase in inputs:
            found = {}
            order = [("old", baseline), ("new", current)]
            for label, module in order if index % 2 == 0 else order[::-1]:
                started = time.process_time()
                estimate = module.estimate_diameter(
                    sizer, phase=phase, pixel_size_um=case.pixel_size_um, config=config
                )
                found[label] = (estimate, time.process_time() - started)
            (old, old_s), (new, new_s) = found["old"], found["new"]
            row = Row(case.name, case.group, sized_on, bench_scale.median_diameter(case.labels),
                      old.diameter_px, new.diameter_px, old_s, new_s, old.passes,
                      new.passes)  # fmt: skip
            say(f"{row.case} ({sized_on}): old {row.old_px:.2f} px in {old_s:.2f} s, new "
                f"{row.new_px:.2f} px in {new_s:.2f} s ({row.change_pct:+.2f} %)")  # fmt: skip
            rows.append(row)
    return rows


def _group_order(group: str) -> tuple[int, float]:
    kind = {"D": 0, "x": 1, "c": 2}[group[0]]
    return kind, float(group.split("D")[-1] if group[0] == "c" else group[1:])


def section(rows: Sequence[Row], *, baseline: str, commit: str, load: tuple, seconds: float) -> str:
    """The markdown section: per group, the moved estimates, every estimate."""
    lines = [
        "## Cost of the automatic diameter estimate (bench_diameter)",
        "",
        *render(
            "diameter/intro.md",
            commit=commit,
            baseline=baseline,
            load_start=", ".join(f"{value:.2f}" for value in load[0]),
            load_end=", ".join(f"{value:.2f}" for value in load[1]),
            minutes=f"{seconds / 60:.0f}",
        ),
        "",
        "| images | estimates | true diameter, px (median) | estimate old → new, px (median) "
        "| largest change | CPU s old | CPU s new | × faster |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(row.group, []).append(row)
    for group in sorted(groups, key=_group_order):
        part = groups[group]
        worst = max(part, key=lambda r: abs(r.change_pct))
        old_s, new_s = sum(r.old_cpu_s for r in part), sum(r.new_cpu_s for r in part)
        old_px, new_px = (np.median([getattr(r, k) for r in part]) for k in ("old_px", "new_px"))
        lines.append(
            f"| {group} | {len(part)} | {np.median([r.true_px for r in part]):.1f} "
            f"| {old_px:.1f} → {new_px:.1f} | {worst.change_pct:+.1f} % | {old_s:.1f} "
            f"| {new_s:.1f} | {old_s / new_s:.2f} |"
        )
    changes = np.abs([r.change_pct for r in rows])
    sweep = [r for r in rows if not r.group.startswith("camera")]
    camera = [r for r in rows if r.group.startswith("camera")]
    lines += ["", _summary(rows, changes, sweep, camera), ""]
    moved = [r for r in rows if abs(r.change_pct) > NOTE_PCT]
    if moved:
        lines += [*render("diameter/moved_intro.md", pct=f"{NOTE_PCT:g}"), ""]
        lines += [_moved(r) for r in moved] + [""]
    lines += [
        *render("diameter/details.md"),
        "",
        "| image | sized on | true, px | old, px | new, px | change | passes old / new "
        "| CPU s old | CPU s new |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r.case} | {r.sized_on} | {r.true_px:.1f} | {r.old_px:.2f} | {r.new_px:.2f} "
        f"| {r.change_pct:+.2f} % | {r.old_passes} / {r.new_passes} | {r.old_cpu_s:.2f} "
        f"| {r.new_cpu_s:.2f} |"
        for r in rows
    ]
    return "\n".join([*lines, "", "</details>", ""])


def _summary(rows, changes, sweep, camera) -> str:
    def ratio(part):
        return sum(r.old_cpu_s for r in part) / max(sum(r.new_cpu_s for r in part), 1e-9)

    sentences = render(
        "diameter/changes.md",
        n=len(rows),
        median=f"{np.median(changes):.2f}",
        within_1=int(np.sum(changes <= 1)),
        within_3=int(np.sum(changes <= 3)),
        within_5=int(np.sum(changes <= 5)),
        largest=f"{changes.max():.1f}",
    )
    if sweep:
        sentences += render("diameter/sweep.md", ratio=f"{ratio(sweep):.2f}")
    # every sentence but the camera one is followed by a space, as the pages have it
    text = "".join(f"{sentence} " for sentence in sentences)
    if camera:
        text += render(
            "diameter/camera.md",
            ratio=f"{ratio(camera):.2f}",
            old=f"{np.mean([r.old_cpu_s for r in camera]):.2f}",
            new=f"{np.mean([r.new_cpu_s for r in camera]):.2f}",
        )[0]
    return text


def _moved(row: Row) -> str:
    error_old = 100.0 * (row.old_px / row.true_px - 1.0)
    error_new = 100.0 * (row.new_px / row.true_px - 1.0)
    return render(
        "diameter/moved.md",
        case=row.case,
        sized_on=row.sized_on,
        old=f"{row.old_px:.1f}",
        new=f"{row.new_px:.1f}",
        change=f"{row.change_pct:+.1f}",
        true=f"{row.true_px:.1f}",
        error_old=f"{error_old:+.1f}",
        error_new=f"{error_new:+.1f}",
        old_passes=row.old_passes,
        new_passes=row.new_passes,
    )[0]


def main(argv: Sequence[str] | None = None) -> int:
    import torch

    from benchmarks import bench_scale, results

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=BASELINE, help="git revision of the old estimate")
    parser.add_argument("--quick", action="store_true", help="two diameters, two real maps")
    parser.add_argument("--real-dir", type=Path, default=results.REAL_DIR)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    load_start, started = os.getloadavg(), time.perf_counter()
    cases = bench_scale.sweep_cases(args.real_dir, quick=args.quick)
    cases += camera_cases(CAMERA_DIAMETERS[1:2] if args.quick else CAMERA_DIAMETERS)
    rows = compare(cases, baseline_module(args.baseline), say=lambda s: print(s, file=sys.stderr))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()  # fmt: skip
    print(section(rows, baseline=args.baseline, commit=commit or "unknown",
                  load=(load_start, os.getloadavg()),
                  seconds=time.perf_counter() - started))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
