"""The human-in-the-loop experiment on real data (issue 4, item 6).

Start from the shipped phase-only model, fine-tune it on ONE corrected real Q-PHASE image
for at most 3 minutes on this CPU (the same core function as the napari fine-tune widget
and ``dmqpm finetune``), and score the OTHER images of the set before and after.

Usage: ``python benchmarks/finetune_real.py [--image NAME...] [--minutes 3] [--out FILE]``.
Each named image is one experiment (the default runs three, to show the gain does not hang
on the choice of image).
Writes a markdown section (default ``docs/results_finetune.md``, included by
``benchmarks/results.py`` in docs/results.md, whose section 7 it also updates) and prints it.

The real data (``../shared/data/real/vicar_qphase_iit``, BSD-3-Clause, Vicar et al.) is not part
of the repository; the script says so and stops when the folder is absent. Its maps are in
pg/µm² and are read with ``phase_unit="pg_per_um2"`` at λ = 0.65 µm (see its README).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile

if not __package__:  # run as a file: the repository root makes `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.templates import render

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "real" / "vicar_qphase_iit"
DEFAULT_OUT = ROOT / "docs" / "results_finetune.md"
READ = {"phase_unit": "pg_per_um2", "wavelength_um": 0.65}


def real_pairs() -> list[tuple[str, Path, Path]]:
    """``(name, image, labels)`` of the 15 real images with manual instance labels."""
    images = {"qpi15": REAL / "raw" / "data" / "qpi15.tif"}
    for index in range(1, 15):
        images[f"dense_{index:03d}"] = REAL / "raw" / "data_dense" / f"img_{index:03d}.tif"
    return [
        (name, image, REAL / "labels" / f"vicar_iit_{name}_labels.tif")
        for name, image in images.items()
    ]


def segment_all(model, pairs, *, device: str = "cpu") -> dict[str, np.ndarray]:
    """Predicted labels of each image with ``model`` (a name or checkpoint folder)."""
    from napari_dmqpm.inference import InferenceConfig, segment_acquisition
    from napari_dmqpm.io import read_acquisition

    config = InferenceConfig(device=device, backend="torch")  # the reference engine
    predicted = {}
    for name, image, _ in pairs:
        (result,) = segment_acquisition(read_acquisition(image, **READ), model, config=config)
        predicted[name] = result.labels
    return predicted


def score(predicted: dict[str, np.ndarray], pairs) -> dict[str, tuple[float, float]]:
    """Mean and sd of foreground Dice and F1 at IoU 0.5 over ``pairs``."""
    from napari_dmqpm.training.metrics import score_image

    scores = [score_image(predicted[name], tifffile.imread(labels)) for name, _, labels in pairs]
    dice = np.array([s.dice for s in scores])
    f1 = np.array([s.f1 for s in scores])
    return {"dice": (dice.mean(), dice.std()), "f1": (f1.mean(), f1.std())}


def commit() -> str:
    """Short hash of HEAD."""
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    return done.stdout.strip() or "unknown"


def finetune_one(image: str, pairs, before: dict, minutes: float, base: str) -> dict:
    """Fine-tune on ``image`` alone; score the other images before and after."""
    from napari_dmqpm.io import read_acquisition
    from napari_dmqpm.training.finetune import finetune, tuning_record

    train = [p for p in pairs if p[0] == image]
    if not train:
        raise SystemExit(f"--image must be among {[p[0] for p in pairs]}; got {image!r}")
    others = [p for p in pairs if p[0] != image]
    phase = read_acquisition(train[0][1], **READ).phase[0]
    labels = tifffile.imread(train[0][2])
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        result = finetune(phase, labels, base=base, out=folder, minutes=minutes, device="cpu")
        seconds = time.perf_counter() - start
        tuned = tuning_record(result.model_dir) is not None
        after = score(segment_all(result.model_dir, others), others)
        strip_tuned = None if tuned else _score_strip_tuned(result.model_dir, phase, labels, others)
    return {
        "image": image,
        "n_cells": int(len(np.unique(labels)) - 1),
        "shape": labels.shape,
        "seconds": seconds,
        "n_epochs": len(result.reports) - 1,
        "before": score({n: before[n] for n, _, _ in others}, others),
        "after": after,
        "result": result,
        "tuned": tuned,
        "n_others": len(others),
        "strip_tuned": strip_tuned,
    }


def _score_strip_tuned(model_dir: Path, phase, labels, others) -> dict:
    """Scores on ``others`` of ``model_dir`` with thresholds tuned on its held-out strip.

    The strip is the one ``finetune`` validated on (:func:`finetune_split`): this is what
    fine-tuning would keep if it tuned on so few cells.
    """
    import shutil

    from napari_dmqpm.training.finetune import base_training, finetune_split, tune_on_validation

    diameter = base_training(model_dir).get("cell_diameter_px")  # the base's, kept by finetune
    _, val = finetune_split(phase, labels, diameter_px=diameter)  # the strip it validated on
    copy = model_dir.parent / "strip-tuned"
    shutil.copytree(model_dir, copy)
    tune_on_validation(copy, val, device="cpu", deadline=None)
    return score(segment_all(copy, others), others)


def _cell(pair: tuple[float, float]) -> str:
    return f"{pair[0]:.3f} ± {pair[1]:.3f}"


def run(images: list[str], minutes: float, base: str) -> str:
    """Fine-tune on each of ``images`` in turn and return the markdown section."""
    import torch

    pairs = real_pairs()
    before = segment_all(base, pairs)
    runs = [finetune_one(image, pairs, before, minutes, base) for image in images]
    return report(runs, base=base, minutes=minutes, threads=torch.get_num_threads())


def report(runs: list[dict], *, base: str, minutes: float, threads: int) -> str:
    """The markdown section from the records of :func:`finetune_one`."""
    lines = render(
        "finetune_real/intro.md",
        base=base,
        minutes=f"{minutes:g}",
        threads=threads,
        n_others=runs[0]["n_others"],
        commit=commit(),
    )
    for r in runs:
        thresholds = "tuned on the strip" if r["tuned"] else "the base model's"
        lines.append(
            f"| `{r['image']}` | {r['n_cells']} | {r['seconds'] / 60:.1f} ({r['n_epochs']}) "
            f"| {_cell(r['before']['dice'])} | **{_cell(r['after']['dice'])}** "
            f"| {_cell(r['before']['f1'])} | **{_cell(r['after']['f1'])}** | {thresholds} |"
        )
    gains = "; ".join(
        f"`{r['image']}` Dice {r['after']['dice'][0] - r['before']['dice'][0]:+.3f}, "
        f"F1 {r['after']['f1'][0] - r['before']['f1'][0]:+.3f}"
        for r in runs
    )
    validation = "; ".join(
        f"`{r['image']}` Dice {r['result'].dice_before:.3f} → {r['result'].dice_after:.3f}, "
        f"F1 {r['result'].f1_before:.3f} → {r['result'].f1_after:.3f}"
        for r in runs
    )
    strip_tuned = "; ".join(
        f"`{r['image']}` F1 {_cell(r['strip_tuned']['f1'])}"
        for r in runs
        if r["strip_tuned"] is not None
    )
    lines += [
        "",
        *render(
            "finetune_real/reading.md", gains=gains, validation=validation, strip_tuned=strip_tuned
        ),
        "",
    ]
    if any(r["image"] == "qpi15" for r in runs):
        lines += [*render("finetune_real/qpi15.md"), ""]
    lines += [
        *render("finetune_real/regenerate.md", minutes=f"{len(runs) * (minutes + 0.7) + 0.5:.0f}"),
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--image",
        nargs="+",
        default=["dense_011", "dense_003", "qpi15"],
        help="fine-tune on each of these images in turn, one at a time",
    )
    parser.add_argument("--minutes", type=float, default=3.0, help="time budget (default 3)")
    parser.add_argument("--base", default="phase-only", help="base model name or folder")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    if not REAL.is_dir():
        print(f"skipped: the real data folder {REAL} is absent (see ../shared/data/README.md)")
        return 0
    section = run(args.image, args.minutes, args.base)
    args.out.write_text(section)
    print(section)
    if args.out == DEFAULT_OUT:
        from benchmarks.results_report import update_finetune_section

        if update_finetune_section(ROOT / "docs" / "results.md"):
            print("updated the fine-tuning section of docs/results.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
