"""Would thresholds tuned on real maps help on a real map they were not tuned on? Leave-one-out.

Every shipped model keeps post-processing thresholds tuned on simulated fields. Tuned on the
real Q-PHASE maps instead, they would score well on those same maps whatever their worth, so
the honest number is leave-one-image-out: for each of the 15 maps, tune on the other 14
(``training.tune_postprocess``, coordinate ascent from the stored thresholds, the same grid as
after training) and score the map left out. The report gives, per model, the mean F1 and Dice
over the 15 maps with

- the stored thresholds (what users get),
- leave-one-out tuned thresholds (what tuning on real maps would give on a new map),
- thresholds tuned on all 15 and scored on the same 15 (in-sample, optimistic; shown only to
  measure how much of the gain is fitting),

and which settings the 15 folds chose, to show how stable the choice is. The network runs once
per map with the defaults (automatic cell diameter, the maps' pixel size).

Usage::

    python benchmarks/loo_thresholds.py [--models NAME|FOLDER ...] [--out docs/results_loo.md]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

if not __package__:  # run as a file: the repository root makes `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import bench_scale, results
from benchmarks.templates import render

ROOT = Path(__file__).resolve().parents[1]


def probabilities_auto(model, case):
    """The network's output for one case with the defaults (automatic cell diameter)."""
    from napari_dmqpm.inference import InferenceConfig, predict_probabilities
    from napari_dmqpm.inference.diameter import estimate_diameter

    angles, phase = results.case_inputs(model, case)
    estimate = estimate_diameter(
        model, angles=angles, phase=phase, pixel_size_um=case.pixel_size_um
    )
    config = InferenceConfig(diameter_px=estimate.diameter_px)
    return predict_probabilities(
        model, angles=angles, phase=phase, config=config, pixel_size_um=case.pixel_size_um
    )


def leave_one_out(probabilities: Sequence, truths: Sequence[np.ndarray], start) -> dict:
    """Stored, leave-one-out and in-sample scores of tuned thresholds on the same maps."""
    from napari_dmqpm.inference import probabilities_to_labels
    from napari_dmqpm.training import score_image, tune_postprocess

    def score(index, config):
        return score_image(
            probabilities_to_labels(probabilities[index], config=config), truths[index]
        )

    cache: dict = {}
    n = len(probabilities)
    stored = [score(i, start) for i in range(n)]
    held_out, chosen = [], []
    for index in range(n):
        others = [i for i in range(n) if i != index]
        tuned = tune_postprocess(
            [probabilities[i] for i in others],
            [truths[i] for i in others],
            start=start,
            cache=cache,
        )
        held_out.append(score(index, tuned.config))
        changes = {k: v for k, v in tuned.config.to_dict().items() if start.to_dict()[k] != v}
        chosen.append(", ".join(f"{k}={v}" for k, v in sorted(changes.items())) or "stored")
    everything = tune_postprocess(probabilities, truths, start=start, cache=cache)
    return {
        "stored": [(r.f1, r.dice) for r in stored],
        "loo": [(r.f1, r.dice) for r in held_out],
        "in_sample": everything.after,
        "in_sample_config": everything.config.to_dict(),
        "chosen": chosen,
    }


def report(rows: dict, *, header: Sequence[str], names: Sequence[str]) -> str:
    """docs/results_loo.md."""
    lines = ["# Post-processing thresholds tuned on real maps: leave-one-image-out", ""]
    lines += [*header, ""]
    lines += [
        "| model | F1 stored | F1 leave-one-out | F1 in-sample | Dice stored | "
        "Dice leave-one-out | maps where LOO beats stored (F1) |",
        "|---|---|---|---|---|---|---|",
    ]
    for model, row in rows.items():
        stored, loo = np.array(row["stored"]), np.array(row["loo"])
        better = int(np.sum(loo[:, 0] > stored[:, 0] + 1e-9))
        worse = int(np.sum(loo[:, 0] < stored[:, 0] - 1e-9))
        lines.append(
            f"| `{model}` | {stored[:, 0].mean():.3f} | {loo[:, 0].mean():.3f} "
            f"| {row['in_sample'][0]:.3f} | {stored[:, 1].mean():.3f} | {loo[:, 1].mean():.3f} "
            f"| {better} better, {worse} worse of {len(stored)} |"
        )
    lines += ["", "## What the folds chose", ""]
    for model, row in rows.items():
        counts = Counter(row["chosen"]).most_common()
        lines.append(f"- `{model}`: " + "; ".join(f"{c} ({k} of 15)" for c, k in counts))
    lines += ["", "## Per map (F1: stored → leave-one-out)", ""]
    lines += ["| map | " + " | ".join(f"`{m}`" for m in rows) + " |"]
    lines += ["|---|" + "---|" * len(rows)]
    for index, name in enumerate(names):
        cells = [
            f"{row['stored'][index][0]:.3f} → {row['loo'][index][0]:.3f}" for row in rows.values()
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(bench_scale.SHIPPED))
    parser.add_argument("--real-dir", type=Path, default=results.REAL_DIR)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results_loo.md")
    args = parser.parse_args(argv)
    if not args.real_dir.is_dir():
        parser.error(f"--real-dir: no folder {args.real_dir} (the real Q-PHASE maps)")
    from napari_dmqpm.inference import default_postprocess
    from napari_dmqpm.model.registry import load_model

    cases = results.real_cases(args.real_dir)
    truths = [case.labels for case in cases]
    rows, started = {}, time.process_time()
    for name in args.models:
        model = load_model(name, device="cpu")
        probabilities = [probabilities_auto(model, case) for case in cases]
        rows[name] = leave_one_out(probabilities, truths, default_postprocess(model))
        loo = np.mean([f1 for f1, _ in rows[name]["loo"]])
        print(
            f"{name}: F1 stored {np.mean([f for f, _ in rows[name]['stored']]):.3f} LOO {loo:.3f}"
        )
    seconds = time.process_time() - started
    header = bench_scale.header_lines(seconds, "python benchmarks/loo_thresholds.py")[:-2]
    header[0] = render("loo/generated.md", minutes=f"{seconds / 60:.0f}")[0]
    header += render("loo/method.md")
    args.out.write_text(report(rows, header=header, names=[c.name for c in cases]), "utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
