"""Do thresholds chosen on real maps hold at every scale? Writes docs/results_thresholds.md.

docs/results_loo.md found that thresholds tuned on 14 real Q-PHASE maps score better on the
15th than the shipped ones (tuned on simulated fields), and that 13-15 of the 15 folds choose
the same values. Before such a choice becomes a default it must not cost anything elsewhere:
this script runs each shipped model once per image of the scale sweep (docs/results_scale.md:
simulated fields of 12-110 px cells, the real maps resampled x0.5-x2.5) with the defaults
(automatic cell diameter) and scores the same probabilities with each preset:

- ``stored``: the thresholds in the checkpoint's config.json (what users get today);
- ``real-loo``: the stored thresholds with the changes the leave-one-out folds agreed on
  (``REAL_LOO``, copied from docs/results_loo.md, "What the folds chose");
- ``seeds``: only the two seed settings every model's folds agreed on (``seed_h`` 0.05,
  ``seed_threshold`` 0.7).

The real rows at x1 are not held out for ``real-loo`` (its values were chosen on those maps;
the held-out estimate is docs/results_loo.md); the resampled real rows share their cells with
x1; the simulated rows are held out (no real-map choice saw them).

Usage::

    python benchmarks/bench_thresholds.py [--models NAME ...] [--quick]

Records are cached per model in ``.bench_cache/thresholds/`` (ignored by git).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

if not __package__:  # run as a file: the repository root makes `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import bench_scale, loo_thresholds, results
from benchmarks.templates import render

ROOT = Path(__file__).resolve().parents[1]
CACHE_DIR = ROOT / ".bench_cache" / "thresholds"
SEEDS = {"seed_h": 0.05, "seed_threshold": 0.7}
#: The changes to the stored thresholds that most leave-one-out folds chose (results_loo.md).
REAL_LOO = {
    "dmqpm-default": {**SEEDS, "smooth_sigma_px": 2.0},
    "dmqpm-fast": {**SEEDS, "foreground_threshold": 0.3},
    "phase-only": {**SEEDS, "foreground_threshold": 0.5},
}
PRESETS = ("stored", "real-loo", "seeds")


def presets(model_name: str, stored) -> dict:
    """The post-processing configs compared, by preset name."""
    from dataclasses import replace

    return {
        "stored": stored,
        "real-loo": replace(stored, **REAL_LOO[model_name]),
        "seeds": replace(stored, **SEEDS),
    }


def run_model(name: str, cases: Sequence, *, cache: Path) -> dict:
    """Score every preset on every case (the network runs once per case)."""
    from napari_dmqpm.inference import default_postprocess, probabilities_to_labels
    from napari_dmqpm.model.registry import load_model
    from napari_dmqpm.training.metrics import score_image

    data = bench_scale._load_cache(cache)
    model = None
    for case in cases:
        if case.name in data:
            continue
        model = model or load_model(name, device="cpu")
        started = time.process_time()
        probabilities = loo_thresholds.probabilities_auto(model, case)
        record = {"group": case.group, "cpu_s": 0.0}
        for preset, config in presets(name, default_postprocess(model)).items():
            scores = score_image(probabilities_to_labels(probabilities, config=config), case.labels)
            record[preset] = {"f1": scores.f1, "dice": scores.dice}
        record["cpu_s"] = time.process_time() - started
        data[case.name] = record
        bench_scale._save_cache(cache, data)
        print(f"{name} {case.name}: " + ", ".join(
            f"{p} {record[p]['f1']:.3f}" for p in PRESETS), flush=True)  # fmt: skip
    return data


def _mean(rows: Sequence[dict], preset: str, key: str) -> float:
    return float(np.mean([r[preset][key] for r in rows]))


def report(all_records: Mapping[str, Mapping[str, dict]], *, header: Sequence[str]) -> str:
    """docs/results_thresholds.md: mean F1 (Dice) per model, scale and preset."""
    lines = ["# Post-processing presets across scales", "", *header, ""]
    for name, records in all_records.items():
        by_group: dict[str, list[dict]] = {}
        for record in records.values():
            by_group.setdefault(record["group"], []).append(record)
        order = sorted(by_group, key=lambda g: (g[0] == "x", float(g[1:])))
        changes = ", ".join(f"{k}={v}" for k, v in REAL_LOO[name].items())
        lines += [f"## `{name}` (real-loo: {changes})", ""]
        lines += ["| scale | images | " + " | ".join(f"F1 {p}" for p in PRESETS) + " | "
                  + " | ".join(f"Dice {p}" for p in PRESETS) + " |"]  # fmt: skip
        lines += ["|---|---|" + "---|" * (2 * len(PRESETS))]
        for group in order:
            rows = by_group[group]
            f1 = [f"{_mean(rows, p, 'f1'):.3f}" for p in PRESETS]
            dice = [f"{_mean(rows, p, 'dice'):.3f}" for p in PRESETS]
            lines.append(f"| {group} | {len(rows)} | " + " | ".join(f1 + dice) + " |")
        for kind, prefix in (("simulated", "D"), ("real", "x")):
            rows = [r for g in order if g.startswith(prefix) for r in by_group[g]]
            if rows:
                worst = {p: min(_mean(by_group[g], p, "f1") for g in order if g.startswith(prefix))
                         for p in PRESETS}  # fmt: skip
                lines.append(
                    f"| all {kind} (worst scale) | {len(rows)} | "
                    + " | ".join(f"{_mean(rows, p, 'f1'):.3f} ({worst[p]:.3f})" for p in PRESETS)
                    + " | "
                    + " | ".join(f"{_mean(rows, p, 'dice'):.3f}" for p in PRESETS)
                    + " |"
                )
        lines.append("")
    return "\n".join([*lines, *decision(all_records)]) + "\n"


def _group_means(records: Mapping[str, dict], prefix: str, preset: str) -> list[float]:
    by_group: dict[str, list[dict]] = {}
    for record in records.values():
        if record["group"].startswith(prefix):
            by_group.setdefault(record["group"], []).append(record)
    return [_mean(rows, preset, "f1") for rows in by_group.values()]


def _changes(records: Mapping[str, dict], prefix: str) -> list[float]:
    """Per scale of ``prefix`` ("x" real, "D" simulated): F1 of real-loo minus stored."""
    stored, chosen = (
        _group_means(records, prefix, "stored"),
        _group_means(records, prefix, "real-loo"),
    )
    return [b - a for a, b in zip(stored, chosen, strict=True)]


def decision(all_records: Mapping[str, Mapping[str, dict]]) -> list[str]:
    """What the numbers say, and why the shipped thresholds stay as they are."""
    lines = ["## Reading", ""]
    for name, records in all_records.items():
        real, sim = _changes(records, "x"), _changes(records, "D")
        worst = min(_group_means(records, "D", "real-loo"), default=float("nan"))
        if real and sim:
            lines.append(
                f"- `{name}`: real-loo changes the real maps' F1 by {min(real):+.3f} to "
                f"{max(real):+.3f} over the resamplings and the simulated fields' by "
                f"{min(sim):+.3f} to {max(sim):+.3f} (lowest simulated scale {worst:.3f})."
            )  # fmt: skip
    lines += ["", *render("thresholds/reading.md"), ""]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(bench_scale.SHIPPED))
    parser.add_argument("--quick", action="store_true", help="two diameters, 2 real maps")
    parser.add_argument("--real-dir", type=Path, default=results.REAL_DIR)
    parser.add_argument("--cache-dir", type=Path, default=CACHE_DIR)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results_thresholds.md")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)
    unknown = set(args.models) - set(REAL_LOO)
    if unknown:
        parser.error(f"--models: unknown {sorted(unknown)}; choose from {sorted(REAL_LOO)}")
    if not args.report_only:
        cases = bench_scale.sweep_cases(args.real_dir, quick=args.quick)
        for name in args.models:
            run_model(name, cases, cache=args.cache_dir / f"{name}.json")
    all_records = {
        name: bench_scale._load_cache(args.cache_dir / f"{name}.json")
        for name in bench_scale.SHIPPED
        if (args.cache_dir / f"{name}.json").is_file()
    }
    seconds = sum(r["cpu_s"] for records in all_records.values() for r in records.values())
    command = "python benchmarks/bench_thresholds.py" + (" --quick" if args.quick else "")
    header = bench_scale.header_lines(seconds, command)[:4]  # command, machine, commit
    header += render("thresholds/inference.md")
    text = report(all_records, header=header)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
