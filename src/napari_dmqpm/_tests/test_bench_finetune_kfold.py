"""benchmarks/finetune_kfold.py: every image in exactly one fold; the page's means and margins."""

from __future__ import annotations

import pytest

BENCHMARK = "finetune_kfold"


def test_every_image_is_scored_by_exactly_one_fold(bench):
    names = [f"dense_{i:03d}" for i in range(1, 15)] + ["qpi15"]
    folds = bench.folds_of(names, 5)
    assert len(folds) == 5 and sorted(n for fold in folds for n in fold) == sorted(names)
    assert {len(fold) for fold in folds} == {3}
    with pytest.raises(SystemExit, match="--folds"):
        bench.folds_of(names, 1)


def test_the_page_compares_the_same_images(bench):
    def scores(f1s):
        return {f"im{i}": {"dice": 0.9, "f1": f, "n_true": 10, "n_pred": 11}
                for i, f in enumerate(f1s)}  # fmt: skip

    columns = {
        "`base` (shipped)": scores([0.70, 0.80, 0.90]),
        "fine-tuned (k-fold)": scores([0.80, 0.85, 0.85]),
        "IIT dense": scores([0.60, 0.60, 0.60]),
        "IIT sparse": scores([0.70, 0.70, 0.70]),
    }
    fold = {"held_out": ["im0"], "train": ["im1", "im2"], "epochs": 3, "iterations": 30,
            "best_epoch": 2, "cpu_minutes": 1.0, "wall_minutes": 2.0, "tuned": False,
            "val": (0.9, 0.91, 0.7, 0.75)}  # fmt: skip
    text = bench.report(columns, [fold], base="base", epochs=3)
    assert "| fine-tuned (k-fold) | 0.900 ± 0.000 | 0.833 ± 0.029 | 2 of 3 |" in text
    assert "F1 changes by +0.033 on images never seen (2 of 3 images better)" in text
    assert "+0.133 above the better IIT preset (IIT sparse)" in text
    assert "| im2 | 0.900 | 0.850 | 0.600 | 0.700 | 10 / 11 |" in text
