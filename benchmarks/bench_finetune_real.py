"""Benchmark: the human-in-the-loop gain of fine-tuning on ONE corrected real Q-PHASE image.

Starts from the shipped phase-only model, segments the dense Q-PHASE maps of
``../shared/data/real/vicar_qphase_iit`` (Vicar et al., manual instance masks), then fine-tunes
it on one image and its corrected labels for at most ``--minutes`` (3) on the CPU, with the
function the napari fine-tune widget and ``dmqpm finetune`` run
(:func:`napari_dmqpm.training.finetune`, held-out strip for validation), and segments the other
images again. The "corrected" labels are that image's manual annotation: what a user would have
after correcting the model's output. Reports foreground Dice and F1 at IoU 0.5 on the other
images, before and after, as mean ± sd, plus per image. Prints a markdown section (see
run_all.py) and writes the numbers as JSON with ``--json``.

Usage::

    python benchmarks/bench_finetune_real.py [--base phase-only] [--train img_003] [--minutes 3]
                                             [--json results/finetune_real.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "real" / "vicar_qphase_iit"


def dense_pairs() -> dict[str, tuple[Path, Path]]:
    """``img_NNN`` -> (phase map, instance labels) of the dense Q-PHASE set."""
    pairs = {}
    for image in sorted((DATA / "raw" / "data_dense").glob("img_*.tif")):
        number = image.stem.split("_")[1]
        labels = DATA / "labels" / f"vicar_iit_dense_{number}_labels.tif"
        if labels.is_file():
            pairs[image.stem] = (image, labels)
    return pairs


def segment_all(model, images: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Labels of every image (name -> (M, N) phase) with ``model``, default thresholds."""
    from napari_dmqpm.inference import InferenceConfig, segment_acquisition
    from napari_dmqpm.io import acquisition_from_arrays

    config = InferenceConfig(device="cpu")
    labels = {}
    for name, phase in images.items():
        acquisition = acquisition_from_arrays(phase=phase, background=None, source=name)
        (result,) = segment_acquisition(acquisition, model, config=config)
        labels[name] = result.labels
    return labels


def score(pred: dict, truth: dict) -> dict:
    """Per image and mean ± sd of Dice and F1@0.5."""
    from napari_dmqpm.training.metrics import score_image

    per_image = {name: score_image(pred[name], truth[name]) for name in truth}
    dice = np.array([s.dice for s in per_image.values()])
    f1 = np.array([s.f1 for s in per_image.values()])
    return {
        "dice_mean": float(dice.mean()),
        "dice_sd": float(dice.std(ddof=1)) if dice.size > 1 else 0.0,
        "f1_mean": float(f1.mean()),
        "f1_sd": float(f1.std(ddof=1)) if f1.size > 1 else 0.0,
        "per_image": {n: {"dice": s.dice, "f1": s.f1} for n, s in per_image.items()},
    }


def run(base: str, train: str, minutes: float, seed: int) -> dict:
    """Score before, fine-tune on ``train``, score after; returns the numbers."""
    from napari_dmqpm.io import read_acquisition
    from napari_dmqpm.model.registry import load_model
    from napari_dmqpm.training.finetune import finetune

    pairs = dense_pairs()
    if train not in pairs:
        raise SystemExit(f"--train must be one of {sorted(pairs)}; got {train!r}")
    phases = {name: read_acquisition(image).phase[0] for name, (image, _) in pairs.items()}
    truths = {name: tifffile.imread(labels) for name, (_, labels) in pairs.items()}
    tests = [name for name in pairs if name != train]
    before = score(segment_all(load_model(base, device="cpu"), {n: phases[n] for n in tests}),
                   {n: truths[n] for n in tests})  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-finetune-") as run_dir:
        started = time.perf_counter()
        result = finetune(phases[train], truths[train].astype(np.int64), base=base,
                          out=run_dir, minutes=minutes, device="cpu", seed=seed)  # fmt: skip
        seconds = time.perf_counter() - started
        tuned = load_model(result.model_dir, device="cpu")
        after = score(segment_all(tuned, {n: phases[n] for n in tests}),
                      {n: truths[n] for n in tests})  # fmt: skip
    return {
        "base": base,
        "train_image": train,
        "test_images": tests,
        "minutes_budget": minutes,
        "training_seconds": seconds,
        "epochs": result.reports[-1].epoch,
        "best_epoch": result.reports[-1].best_epoch,
        "val_dice_before": result.dice_before,
        "val_dice_after": result.dice_after,
        "before": before,
        "after": after,
    }


def markdown(numbers: dict) -> str:
    """The section for docs/results.md."""
    b, a = numbers["before"], numbers["after"]

    def cells(x: dict) -> str:
        return f"{x['dice_mean']:.3f} ± {x['dice_sd']:.3f} | {x['f1_mean']:.3f} ± {x['f1_sd']:.3f}"

    lines = [
        "## Fine-tuning on one corrected real Q-PHASE image",
        "",
        f"Base `{numbers['base']}`, fine-tuned on `{numbers['train_image']}` (its manual labels) "
        f"for {numbers['training_seconds'] / 60:.1f} min on the CPU ({numbers['epochs']} epochs, "
        f"best {numbers['best_epoch']}); scored on the other {len(numbers['test_images'])} images.",
        "",
        "| | Dice | F1@0.5 |",
        "|---|---|---|",
        f"| before | {cells(b)} |",
        f"| after | {cells(a)} |",
        "",
        "| image | Dice before | Dice after | F1 before | F1 after |",
        "|---|---|---|---|---|",
    ]
    for name in numbers["test_images"]:
        x, y = b["per_image"][name], a["per_image"][name]
        lines.append(
            f"| {name} | {x['dice']:.3f} | {y['dice']:.3f} | {x['f1']:.3f} | {y['f1']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="phase-only", help="model name or checkpoint folder")
    parser.add_argument("--train", default="img_003", help="the one corrected image")
    parser.add_argument("--minutes", type=float, default=3.0, help="training budget (3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        print(f"skipped: {DATA} is absent")
        return 0
    numbers = run(args.base, args.train, args.minutes, args.seed)
    print(markdown(numbers))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(numbers, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
