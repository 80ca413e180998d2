"""Smoke test of benchmarks/results.py (docs/results.md) on tiny checkpoints and tiny data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch

from napari_dmqpm.model import THREE_CLASS, DMQPMNet, HeadConfig, ModelConfig, save_checkpoint
from napari_dmqpm.simulation import SimulationConfig, simulate_field

BENCHMARKS = Path(__file__).resolve().parents[3] / "benchmarks"
pytestmark = pytest.mark.skipif(
    not (BENCHMARKS / "results.py").is_file(), reason="needs the source checkout (benchmarks/)"
)
#: The script under test (the ``bench`` fixture of conftest imports it).
BENCHMARK = "results"
DISTANCE = HeadConfig(name="distance", kind="sigmoid", channels=("distance",))
TINY_GRIDS = {
    "foreground": {"smooth_sigma_px": (1.0,), "threshold_factor": (0.3, 0.5)},
    "seed": {"seed_sigma_px": (0.0,), "seed_h_px": (1.0,)},
}
TINY_RUN = {
    "fields_per_density": 1,
    "field_shape": (64, 64),
    "tuning_fields_per_density": 1,
    "baseline_grids": TINY_GRIDS,
    "tile_size": 64,
    "timing_repeats": 1,
    "timing_warmup": 0,
}


def save_tiny(folder: Path, *, inputs: str) -> Path:
    """A tiny untrained network with a made-up training record, saved as a checkpoint."""
    torch.manual_seed(0)
    config = ModelConfig(
        inputs=inputs,
        fusion="mha" if inputs == "both" else "early",
        fusion_stage=2,
        features=(4, 8, 16, 16),
        strides=(1, 2, 2, 2),
        n_heads=2,
        heads=(THREE_CLASS, DISTANCE),
    )
    training = {
        "elapsed_s": 90.0,
        "iterations": 12,
        "epoch": 3,
        "best_epoch": 3,
        "history": [{"epoch": 3, "val_f1": 0.5}],
        "best_val_dice": 0.7,
        "cell_diameter_px": 20.0,
        "device": "cpu",
        "config": {"minutes": 2.0, "batch_size": 2, "patch_size": [64, 64], "seed": 0},
    }
    save_checkpoint(folder, DMQPMNet(config).eval(), extra={"training": training})
    return folder


def write_real_folder(root: Path) -> Path:
    """A stand-in for vicar_qphase_iit: one phase map in pg/µm² and its labels."""
    field = simulate_field(SimulationConfig(shape=(96, 96), density="dense"), rng=1)
    (root / "raw" / "data_dense").mkdir(parents=True)
    (root / "labels").mkdir()
    tifffile.imwrite(root / "raw/data_dense/img_001.tif", field.true_phase / 1.74)
    tifffile.imwrite(root / "labels/vicar_iit_dense_001_labels.tif", field.labels.astype("u2"))
    return root


def test_run_benchmark_writes_every_section_row_and_column(bench, tmp_path):
    models = {
        "tiny-dual": save_tiny(tmp_path / "tiny-dual", inputs="both"),
        "tiny-phase": save_tiny(tmp_path / "tiny-phase", inputs="phase"),
    }
    numbers = bench.run_benchmark(
        models,
        real_dir=write_real_folder(tmp_path / "real"),
        **TINY_RUN,
    )
    markdown = bench.results_report.render_markdown(numbers, command="pytest")
    for heading in (
        "## Summary",
        "## 1. Held-out synthetic test set",
        "## 2. Real Q-PHASE",
        "## 3. Across magnifications",
        "## 4. Classical baselines",
        "## 5. Ablation",
        "## 6. Targets",
        "## 7. Training budgets",
        "## 8. Fine-tuning",
        "- Machine: ",
        "- Commit: ",
        "- Date: ",
        # the tiling this run used (tile_size=64 given, the other fields InferenceConfig's)
        "each image up to 1.6 MP as one tile padded to the divisor (larger ones in 64 px tiles "
        "with 25% overlap",
    ):
        assert heading in markdown
    assert (
        "| model | Dice | IoU | F1@0.5 | real Dice | real F1@0.5 | parameters "
        "| CPU ms per 512² tile | training |"
    ) in markdown
    lines = markdown.splitlines()
    for density in ("sparse", "medium", "dense", "confluent"):
        for label in (
            "DM-QPMNet (MHA at stage 2) (`tiny-dual`)",
            "phase only (`tiny-phase`)",
            "Otsu + watershed (classical)",
        ):
            assert any(line.startswith(f"| {label} | {density} | ") for line in lines), label
    for missing in (
        "concat at stage 2",
        "MHA at stage 1",
        "MHA at stage 3",
        "bidirectional MHA at stage 2",
        "5-channel early fusion",
        "angles only",
    ):
        assert f"| {missing} | not trained yet |" in markdown
    dual = next(
        line for line in lines if line.startswith("| DM-QPMNet (MHA at stage 2) (`tiny-dual`) | 0.")
    )
    assert dual.count("|") == 10 and " M |" in dual and "1.5 min, 12 it (24 patches)" in dual
    targets = [line for line in lines if "| synthetic " in line or "| real Q-PHASE |" in line]
    assert len(targets) == 2 * 4 * 2 + 2  # two shipped models x densities x scores, real x 2
    assert all("met (+" in line or "missed by" in line for line in targets)
    assert "`diameter_px=" in markdown and "Excluding cells touching the border" in markdown
    both = "angles synthesized from the real phase + phase retrieved from them"
    assert f"| DM-QPMNet (MHA at stage 2) (`tiny-dual`) | {both} | 0." in markdown
    assert "| phase only (`tiny-phase`) | real phase | 0." in markdown
    # a run without any row of Table 2 lists no untrained rows
    methods = {"otsu": numbers["synthetic"]["methods"]["otsu"]}
    alone = numbers | {"models": {}, "synthetic": numbers["synthetic"] | {"methods": methods}}
    section = "\n".join(bench.results_report.ablation_section(alone))
    assert "docs/results_ablation.md" in section and "not trained yet" not in section
    assert "train_ablation.py --out DIR" in section
    # ... but one with other networks (nnU-Net's, the strided stem) shows them
    other = alone | {"models": {"x": numbers["models"]["mha-2"] | {"shipped": False}}}
    other["synthetic"] = alone["synthetic"] | {"methods": methods | {"x": methods["otsu"]}}
    section = "\n".join(bench.results_report.ablation_section(other))
    assert "No row of Table 2 was in this run" in section
    assert "| Otsu + watershed (classical) | 0." in section
    # the classical QPM method is scored on the synthetic test set and the real maps
    for key in ("iit-dense", "iit-sparse"):
        assert key in numbers["synthetic"]["methods"] and key in numbers["real"]["methods"]
    assert "improved iterative thresholding, Vicar et al., dense preset" in markdown
    assert "Not run here (`--no-scale`)" in markdown  # no scale_cache given
    assert "| img_001 | " in markdown
    assert "0.888 ± 0.026" in markdown  # the paper's values, apart
    scores = numbers["synthetic"]["methods"]["otsu"]["records"]
    assert len(scores) == 4 and all(0.0 <= r["dice"] <= 1.0 for r in scores)


def test_real_section_says_why_it_is_skipped(bench):
    lines = bench.results_report.real_section({"real": {"available": False, "reason": "absent"}})
    assert "Skipped: absent." in lines


def test_checkpoints_go_to_the_row_their_config_describes(bench):
    assert bench.row_key(ModelConfig().to_dict()) == "mha-2"
    assert bench.row_key(ModelConfig(fusion="concat", fusion_stage=3).to_dict()) == "concat-3"
    assert bench.row_key(ModelConfig(fusion="early").to_dict()) == "early-fusion"
    assert bench.row_key(ModelConfig(inputs="angles", fusion="early").to_dict()) == "angles-only"
    strided = ModelConfig(strides=(2, 2, 2, 2, 2), fusion_stage=1).to_dict()
    assert bench.row_key(strided) == "strided-stem"
    assert "strided stem" in bench.results_report.row_label("strided-stem")
    assert "50-minute" in bench.results_report.row_label("nnunet-wall")


def test_networks_outside_table_2_are_keyed_by_the_name_given(bench, tmp_path):
    """One architecture with two budgets (nnU-Net at 1000 iterations and at 50 minutes)."""
    torch.manual_seed(0)
    strided = ModelConfig(features=(4, 8, 16), strides=(2, 2, 2), fusion_stage=1, n_heads=2)
    for name in ("strided-stem", "strided-long"):
        save_checkpoint(tmp_path / name, DMQPMNet(strided).eval())
    models = {
        "strided-stem": tmp_path / "strided-stem",
        "strided-long": tmp_path / "strided-long",
        "my-dual": save_tiny(tmp_path / "my-dual", inputs="both"),
    }
    loaded = bench.load_models(models)
    assert sorted(loaded) == ["mha-2", "strided-long", "strided-stem"]  # Table 2 rows by config
    assert loaded["strided-long"]["row"] == "strided-stem"
    assert bench.results_report.row_label("strided-long") == "`strided-long`"
    # a time-limited run is described by its minutes, an iteration-limited one by iterations
    planned = bench.results_report._planned_budget
    assert planned({"budget_minutes": 50.0, "planned_iterations": 100_000}) == "50 min"
    assert planned({"budget_minutes": None, "planned_iterations": 1000}) == "1000 iterations"


def test_error_analysis_counts_merges_splits_and_border_cells(bench):
    truth = np.zeros((20, 20), dtype=int)
    truth[2:8, 2:8], truth[2:8, 8:14], truth[12:18, 2:18] = 1, 2, 3
    pred = np.zeros_like(truth)
    pred[2:8, 2:14] = 1  # cells 1 and 2 merged
    pred[12:18, 2:10], pred[12:18, 10:18] = 2, 3  # cell 3 split in two
    errors = bench.instance_errors(pred, truth)
    assert errors == {
        "merges": 1,
        "merged_cells": 2,
        "splits": 1,
        "split_fragments": 2,
        "missed": 0,
        "spurious": 0,
    }
    inner = truth.copy()
    inner[0, 3] = 1
    assert np.unique(bench.drop_border_cells(inner)).tolist() == [0, 2, 3]


def test_synthesized_angles_give_back_the_phase(bench):
    phase = simulate_field(SimulationConfig(shape=(64, 64)), rng=2).true_phase
    angles, retrieved = bench.synthesize_ssqpm(
        phase, pixel_size_um=0.627, wavelength_um=0.65, rng=0
    )
    assert angles.shape == (4, 64, 64) and angles.max() <= 4095 and angles.min() >= 0
    error = (retrieved - phase) - np.median(retrieved - phase)
    assert float(np.sqrt(np.mean(error**2))) < 0.1  # radians


def test_shipped_models_carry_the_targets_and_share_a_twin_rows_scores(bench, tmp_path):
    dual = save_tiny(tmp_path / "rows" / "mha-2", inputs="both")
    shipped = {
        "dmqpm-default": dual,  # the very weights of the mha-2 row
        "phase-only": save_tiny(tmp_path / "weights" / "phase-only", inputs="phase"),
    }
    numbers = bench.run_benchmark(
        {"mha-2": dual},
        shipped=shipped,
        real_dir=write_real_folder(tmp_path / "real"),
        **TINY_RUN,
    )
    models, syn = numbers["models"], numbers["synthetic"]["methods"]
    assert models["shipped:dmqpm-default"]["same_as"] == "mha-2"
    assert models["shipped:phase-only"]["same_as"] is None
    assert syn["shipped:dmqpm-default"] is syn["mha-2"]  # scored once
    assert "shipped:phase-only" in numbers["real"]["methods"]
    assert "shipped:phase-only@diameter" in numbers["real"]["methods"]
    markdown = bench.results_report.render_markdown(numbers, command="pytest")
    lines = markdown.splitlines()
    real_targets = [line for line in lines if "| real Q-PHASE |" in line]
    assert len(real_targets) == 2
    assert all(line.startswith("| shipped `phase-only` (phase only) |") for line in real_targets)
    assert "| phase only | not trained yet |" in markdown  # no ablation row for it
    assert "The shipped `dmqpm-default` is the checkpoint of the row" in markdown


def _sweep_records(f1_auto: float, f1_iit: float) -> dict:
    """bench_scale-style records: one simulated (D20) and one real (x1) image per method."""
    records = {}
    for method in ("dmqpm-default", "dmqpm-fast", "phase-only", "otsu", "iit-dense", "iit-sparse"):
        shipped = not (method == "otsu" or method.startswith("iit"))
        by_case = {}
        for group in ("D20", "x1"):
            for mode in ("auto", "oracle", "none") if shipped else ("none",):
                f1 = f1_auto if shipped else f1_iit
                by_case[f"{group}-0|{mode}"] = {
                    "case": f"{group}-0", "group": group, "mode": mode, "f1": f1,
                    "dice": 0.95, "cpu_s": 6.0, "true_diameter_px": 20.0, "commit": "abc1234",
                    "estimate": {"diameter_px": 21.0} if mode == "auto" else None,
                }  # fmt: skip
        records[method] = by_case
    return records


def test_scale_section_shows_every_model_and_baseline_at_every_scale(bench):
    from benchmarks import bench_scale

    report = bench.results_report
    for f1_auto, real_met in ((0.95, True), (0.76, False)):  # 0.76: only 0.04 above IIT
        records = _sweep_records(f1_auto, f1_iit=0.72)
        numbers = {
            "scale": {
                "summary": bench_scale.summarize(records),
                "records": bench_scale.records_by_commit(records),
                "cpu_minutes": 1.2,
            }
        }
        text = "\n".join(report.scale_section(numbers))
        head = "| images | true diameter, px | `dmqpm-default` auto | `dmqpm-default` oracle |"
        assert head in text and "| otsu | iit-dense | iit-sparse |" in text
        assert f"| D20 | 20.0 | {f1_auto:.3f} | {f1_auto:.3f} |" in text
        assert "| x1 | 20.0 | " in text and "### Targets" in text
        rows = report.scale_target_rows(numbers)
        assert len(rows) == 3 * 2  # three models x two scales
        real = [r for r in rows if r["real"]]
        # real maps need F1 >= 0.75, Dice >= 0.88 and 0.05 F1 above the better IIT preset
        assert all(r["met"] is real_met for r in real)
        assert all(abs(r["over_iit"] - (f1_auto - 0.72)) < 1e-9 for r in real)
    assert report.scale_target_rows({"scale": None}) == []
