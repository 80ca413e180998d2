"""What a lab gains by correcting a dozen of its own images: k-fold fine-tuning on the real set.

The 15 real Q-PHASE maps are split into ``--folds`` folds (every third image of the sorted
list goes to the same fold, so each fold mixes sparse and dense fields). For each fold the
shipped base model is fine-tuned on the OTHER folds' images with their manual labels (the
same core function as the napari fine-tune widget and ``dmqpm finetune``: ``finetune`` with
its defaults, except a fixed number of epochs instead of a wall-clock budget, so the result
does not depend on the machine's load), and scores the images of its fold, which it never
saw. Every image is scored exactly once by a model that did not train on it; the page
reports the mean over all 15 against the base model and Vicar et al.'s improved iterative
thresholding (both published presets) on the same images.

Usage::

    python benchmarks/finetune_kfold.py [--folds 5] [--epochs 30] [--base phase-only]
                                        [--out docs/results_finetune_kfold.md]

About 10 min of CPU per fold with one torch thread (the page states what was measured).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile

if not __package__:  # run as a file: the repository root makes `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import iit
from benchmarks.finetune_real import READ, REAL, commit, real_pairs, segment_all
from benchmarks.templates import render

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "docs" / "results_finetune_kfold.md"
PIXEL_UM = 0.627


def folds_of(names: list[str], n_folds: int) -> list[list[str]]:
    """Image ``i`` of the sorted names goes to fold ``i % n_folds``."""
    if not 2 <= n_folds <= len(names):
        raise SystemExit(f"--folds must be in 2..{len(names)}; got {n_folds}")
    ordered = sorted(names)
    return [ordered[k::n_folds] for k in range(n_folds)]


def scores_per_image(predicted: dict[str, np.ndarray], pairs) -> dict[str, dict]:
    """Foreground Dice, F1 at IoU 0.5 and cell counts of each image."""
    from napari_dmqpm.training.metrics import score_image

    out = {}
    for name, _, labels in pairs:
        s = score_image(predicted[name], tifffile.imread(labels))
        out[name] = {"dice": s.dice, "f1": s.f1, "n_true": s.n_true, "n_pred": s.n_pred}
    return out


def iit_labels(pairs, preset: str) -> dict[str, np.ndarray]:
    """IIT with a published preset on each real map (phase in radians, as the models see it)."""
    from napari_dmqpm.io import read_acquisition

    config = iit.IIT_PRESETS[preset]
    return {
        name: iit.segment_iit(
            read_acquisition(image, **READ).phase[0], config=config, pixel_size_um=PIXEL_UM
        )
        for name, image, _ in pairs
    }


def finetune_fold(held_out: list[str], pairs, *, base: str, epochs: int, seed: int) -> dict:
    """Fine-tune on the images not in ``held_out`` and segment ``held_out`` with the result."""
    from napari_dmqpm.io import read_acquisition
    from napari_dmqpm.training.finetune import finetune, tuning_record

    train = [p for p in pairs if p[0] not in held_out]
    test = [p for p in pairs if p[0] in held_out]
    phases = [read_acquisition(image, **READ).phase[0] for _, image, _ in train]
    labels = [tifffile.imread(path) for _, _, path in train]
    with tempfile.TemporaryDirectory() as folder:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        result = finetune(
            phases, labels, base=base, out=folder, minutes=None, epochs=epochs,
            device="cpu", seed=seed,
        )  # fmt: skip
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        predicted = segment_all(result.model_dir, test)
        tuned = tuning_record(result.model_dir) is not None
    last = result.reports[-1]
    return {
        "held_out": held_out,
        "train": [p[0] for p in train],
        "predicted": predicted,
        "epochs": last.epoch,
        "iterations": last.iteration,
        "best_epoch": last.best_epoch,
        "cpu_minutes": cpu / 60.0,
        "wall_minutes": wall / 60.0,
        "tuned": tuned,
        "val": (result.dice_before, result.dice_after, result.f1_before, result.f1_after),
    }


def _mean(scores: dict[str, dict], key: str) -> tuple[float, float]:
    values = np.array([s[key] for s in scores.values()])
    return float(values.mean()), float(values.std(ddof=1)) if values.size > 1 else 0.0


def _pm(pair: tuple[float, float]) -> str:
    return f"{pair[0]:.3f} ± {pair[1]:.3f}"


def report(columns: dict[str, dict[str, dict]], folds: list[dict], *, base: str, epochs: int):
    """The markdown page from per-image scores of each method and the fold records."""
    import torch

    names = sorted(next(iter(columns.values())))
    after, before = columns["fine-tuned (k-fold)"], columns[f"`{base}` (shipped)"]
    best_iit = max(
        (k for k in columns if k.startswith("IIT")), key=lambda k: _mean(columns[k], "f1")
    )
    wins = sum(after[n]["f1"] > before[n]["f1"] for n in names)
    lines = render(
        "finetune_kfold/intro.md",
        n_folds=len(folds),
        epochs=epochs,
        base=base,
        commit=commit(),
        torch_version=torch.__version__,
        threads=torch.get_num_threads(),
        train_min=len(folds[0]["train"]),
        train_max=max(len(f["train"]) for f in folds),
    )
    for label, scores in columns.items():
        beats = (
            "–"
            if scores is before
            else f"{sum(scores[n]['f1'] > before[n]['f1'] for n in names)} of {len(names)}"
        )
        lines.append(
            f"| {label} | {_pm(_mean(scores, 'dice'))} | {_pm(_mean(scores, 'f1'))} | {beats} |"
        )
    gain = _mean(after, "f1")[0] - _mean(before, "f1")[0]
    margin = _mean(after, "f1")[0] - _mean(columns[best_iit], "f1")[0]
    thresholds = ", ".join(
        f"fold {i + 1} {'tuned on its validation images' if f['tuned'] else 'the base model’s'}"
        for i, f in enumerate(folds)
    )
    lines += [
        "",
        *render(
            "finetune_kfold/reading.md",
            gain=f"{gain:+.3f}",
            wins=wins,
            n_images=len(names),
            margin=f"{margin:+.3f}",
            best_iit=best_iit,
            thresholds=thresholds,
        ),
    ]
    for i, f in enumerate(folds):
        d0, d1, f0, f1 = f["val"]
        lines.append(
            f"| {i + 1} | {', '.join(f['held_out'])} | {len(f['train'])} images | {f['epochs']} "
            f"({f['best_epoch']}) | {f['iterations']} | {f['cpu_minutes']:.1f} "
            f"| {f['wall_minutes']:.1f} | {d0:.3f} → {d1:.3f} | {f0:.3f} → {f1:.3f} |"
        )
    lines += ["", *render("finetune_kfold/per_image.md"), ""]
    keys = list(columns)
    lines += ["| image | " + " | ".join(keys) + " | cells |", "|---" * (len(keys) + 2) + "|"]
    for n in names:
        cells = " | ".join(f"{columns[k][n]['f1']:.3f}" for k in keys)
        lines.append(f"| {n} | {cells} | {after[n]['n_true']} / {after[n]['n_pred']} |")
    lines += ["", *render("finetune_kfold/closing.md"), ""]
    return "\n".join(lines)


def run(n_folds: int, epochs: int, base: str, seed: int = 0) -> str:
    """Every fold, the base model and IIT on the same images; the markdown page."""
    pairs = real_pairs()
    folds = [
        finetune_fold(held_out, pairs, base=base, epochs=epochs, seed=seed)
        for held_out in folds_of([p[0] for p in pairs], n_folds)
    ]
    predicted = {name: labels for f in folds for name, labels in f["predicted"].items()}
    columns = {
        f"`{base}` (shipped)": scores_per_image(segment_all(base, pairs), pairs),
        "fine-tuned (k-fold)": scores_per_image(predicted, pairs),
    }
    for preset in iit.IIT_PRESETS:
        columns[f"IIT {preset}"] = scores_per_image(iit_labels(pairs, preset), pairs)
    return report(columns, folds, base=base, epochs=epochs)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=30, help="epochs of 10 optimizer steps")
    parser.add_argument("--base", default="phase-only", help="shipped model name or folder")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if not REAL.is_dir():
        print(f"skipped: the real data folder {REAL.name} is absent (see ../shared/data/README.md)")
        return 0
    text = run(args.folds, args.epochs, args.base)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
