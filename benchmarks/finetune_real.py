"""The human-in-the-loop experiment on real data (issue 4, item 6).

Start from the shipped phase-only model, fine-tune it on ONE corrected real Q-PHASE image
for at most 3 minutes on this CPU (the same core function as the napari fine-tune widget
and ``dmqpm finetune``), and score the OTHER images of the set before and after.

Usage: ``python benchmarks/finetune_real.py [--image NAME] [--minutes 3] [--out FILE]``.
Writes a markdown section (default ``docs/results_finetune.md``, included by
``benchmarks/results.py`` in docs/results.md) and prints it.

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

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "real" / "vicar_qphase_iit"
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

    config = InferenceConfig(device=device)
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


def run(image: str, minutes: float, base: str) -> str:
    """Fine-tune on ``image`` and return the markdown section."""
    import torch

    from napari_dmqpm.io import read_acquisition
    from napari_dmqpm.training.finetune import finetune

    pairs = real_pairs()
    train = [p for p in pairs if p[0] == image]
    if not train:
        raise SystemExit(f"--image must be one of {[p[0] for p in pairs]}; got {image!r}")
    others = [p for p in pairs if p[0] != image]
    before = score(segment_all(base, others), others)
    phase = read_acquisition(train[0][1], **READ).phase[0]
    labels = tifffile.imread(train[0][2])
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        result = finetune(phase, labels, base=base, out=folder, minutes=minutes, device="cpu")
        seconds = time.perf_counter() - start
        after = score(segment_all(result.model_dir, others), others)
    n_epochs = len(result.reports) - 1
    lines = [
        "## Fine-tuning on one corrected real image (human in the loop)",
        "",
        f"Base model `{base}`, fine-tuned on `{image}` ({int(labels.max())} cells, "
        f"{labels.shape[0]}×{labels.shape[1]} px) for {seconds / 60:.1f} min on the CPU "
        f"({torch.get_num_threads()} threads, {n_epochs} epochs, best epoch kept by the "
        "validation Dice on held-out tiles of the same image); scored on the other "
        f"{len(others)} real Q-PHASE images, never seen in training. Commit {commit()}.",
        "",
        "| | Dice (mean ± sd) | F1@0.5 (mean ± sd) |",
        "|---|---|---|",
        f"| before (shipped `{base}`) | {before['dice'][0]:.3f} ± {before['dice'][1]:.3f} "
        f"| {before['f1'][0]:.3f} ± {before['f1'][1]:.3f} |",
        f"| after fine-tuning | {after['dice'][0]:.3f} ± {after['dice'][1]:.3f} "
        f"| {after['f1'][0]:.3f} ± {after['f1'][1]:.3f} |",
        "",
        f"Validation on held-out tiles of `{image}`: Dice {result.dice_before:.3f} → "
        f"{result.dice_after:.3f}, F1 {result.f1_before:.3f} → {result.f1_after:.3f}.",
        "",
        "Regenerate with `python benchmarks/finetune_real.py` (about 5 minutes).",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="dense_011", help="the one image to fine-tune on")
    parser.add_argument("--minutes", type=float, default=3.0, help="time budget (default 3)")
    parser.add_argument("--base", default="phase-only", help="base model name or folder")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results_finetune.md")
    args = parser.parse_args()
    if not REAL.is_dir():
        print(f"skipped: the real data folder {REAL} is absent (see ../shared/data/README.md)")
        return 0
    section = run(args.image, args.minutes, args.base)
    args.out.write_text(section)
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
