"""Break the science on purpose and check that the test suite notices (issue #15).

Each mutation below is one deliberate breakage, written as a text substitution in one source
file, with the tests that must fail because of it. The script copies ``src/`` and
``pyproject.toml`` into a temporary folder (``weights/`` is linked, read-only), applies one
mutation at a time to the copy, runs the named tests there, and reports each mutation as
caught (the tests failed) or MISSED (they passed). The working tree is never modified.

Usage::

    python scripts/mutation_check.py              # every mutation
    python scripts/mutation_check.py -k tiling    # those whose name contains "tiling"
    python scripts/mutation_check.py --baseline   # first check the tests pass unbroken
    python scripts/mutation_check.py --list       # names, files and tests only

Exit status 0 when every mutation selected was caught (and the baseline passed), else 1.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "src/napari_dmqpm"
TESTS = f"{PACKAGE}/_tests"


@dataclass(frozen=True)
class Mutation:
    """One breakage: replace ``old`` (which must occur exactly once) by ``new`` in ``path``."""

    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


T_LOOP = f"{TESTS}/training/test_training_loop.py"
T_LOSSES = f"{TESTS}/training/test_training_losses.py"
T_TILING = f"{TESTS}/inference/test_inference_tiling.py"
T_POST = f"{TESTS}/inference/test_inference_postprocess.py"
T_MEASURE = f"{TESTS}/inference/test_inference_measure.py"
T_CHECKPOINT = f"{TESTS}/model/test_model_checkpoint.py"
T_SHIPPED = f"{TESTS}/model/test_shipped_weights.py"
T_PREDICT = f"{TESTS}/inference/test_inference_predict.py"
T_CONFIG = f"{TESTS}/test_config.py"
UNITS_ROUND_TRIP = f"{T_MEASURE}::test_dry_mass_of_a_pg_per_um2_map_is_its_sum_times_the_pixel_area"
BLENDS = f"{T_TILING}::test_gaussian_blending_hides_tile_borders_that_flat_blending_shows"
LEARNS = f"{T_LOOP}::test_the_loop_cuts_the_loss_of_a_fixed_problem_by_a_quarter_in_sixteen_steps"

MUTATIONS: tuple[Mutation, ...] = (
    Mutation(
        "training: no optimizer step",
        f"{PACKAGE}/training/loop.py",
        "        self.scaler.step(self.optimizer)\n",
        "",
        (LEARNS,),
    ),
    Mutation(
        "training: learning rate 0",
        f"{PACKAGE}/training/loop.py",
        '            group["lr"] = lr\n',
        '            group["lr"] = 0.0 * lr\n',
        (LEARNS,),
    ),
    Mutation(
        "tiling: flat blending (weights of ones)",
        f"{PACKAGE}/inference/tiling.py",
        "    weights = gaussian_weights(plan.tile)\n",
        "    weights = np.ones(plan.tile, dtype=np.float32)\n",
        (BLENDS,),
    ),
    Mutation(
        "tiling: overlap ignored by tile_starts (always 50 %)",
        f"{PACKAGE}/inference/tiling.py",
        "step = max(1, int(tile * (1.0 - overlap)))",
        "step = max(1, int(tile * 0.5))",
        (T_TILING,),
    ),
    Mutation(
        "tiling: InferenceConfig.overlap not passed to the tiler",
        f"{PACKAGE}/inference/predict.py",
        "        overlap=config.overlap,\n        divisor=divisor,\n        batch_size=size,\n",
        "        divisor=divisor,\n        batch_size=size,\n",
        (f"{T_PREDICT}::test_the_configured_overlap_reaches_the_tiler",),
    ),
    Mutation(
        "tiling: off-by-one tile origins (last tile ends one pixel short)",
        f"{PACKAGE}/inference/tiling.py",
        "spacing = (length - tile) / (n_steps - 1)",
        "spacing = (length - tile - 1) / (n_steps - 1)",
        (BLENDS,),
    ),
    Mutation(
        "tiling: tile outputs placed one pixel off their origin",
        f"{PACKAGE}/inference/tiling.py",
        "            result[:, rows, cols] += output * weights\n",
        "            result[:, rows, cols] += np.roll(output, 1, axis=-1) * weights\n",
        (BLENDS,),
    ),
    Mutation(
        "tiling: padded image cropped back one pixel off",
        f"{PACKAGE}/inference/tiling.py",
        "result[:, top : top + n_rows, left : left + n_cols]",
        "result[:, top + 1 : top + 1 + n_rows, left : left + n_cols]",
        (T_TILING,),
    ),
    Mutation(
        "tiling: the tiler's default overlap differs from InferenceConfig's",
        f"{PACKAGE}/inference/tiling.py",
        "    overlap: float = DEFAULT_OVERLAP,\n    divisor: int = 1,\n    batch_size: int = 1,\n",
        "    overlap: float = 0.5,\n    divisor: int = 1,\n    batch_size: int = 1,\n",
        (f"{T_TILING}::test_the_tiler_and_inference_config_share_one_default_overlap",),
    ),
    Mutation(
        "checkpoint: sha256 mismatch not checked",
        f"{PACKAGE}/model/checkpoint.py",
        "        if value != digest:\n",
        "        if False and value != digest:\n",
        (f"{T_SHIPPED}::test_a_corrupted_copy_of_a_shipped_model_is_refused",),
    ),
    Mutation(
        "checkpoint: SHA256SUMS ignored",
        f"{PACKAGE}/model/checkpoint.py",
        'if len(parts) == 2 and parts[1].lstrip("*") == WEIGHTS_FILE:',
        "if False:",
        (f"{T_SHIPPED}::test_a_corrupted_copy_of_a_shipped_model_is_refused",),
    ),
    Mutation(
        "checkpoint: config.json sha256 ignored",
        f"{PACKAGE}/model/checkpoint.py",
        '    if content.get("sha256") is not None:\n',
        "    if False:\n",
        (f"{T_SHIPPED}::test_a_corrupted_copy_of_a_shipped_model_is_refused",),
    ),
    Mutation(
        "losses: deep-supervision weights all equal",
        f"{PACKAGE}/training/losses.py",
        "    weights = [1.0 / 2**i for i in range(n_outputs)]\n",
        "    weights = [1.0 for i in range(n_outputs)]\n",
        (T_LOSSES,),
    ),
    Mutation(
        "losses: lowest deep-supervision output not dropped",
        f"{PACKAGE}/training/losses.py",
        "        weights[-1] = 0.0\n",
        "        weights[-1] = weights[-1]\n",
        (T_LOSSES,),
    ),
    Mutation(
        "losses: deep supervision reduced to the top output",
        f"{PACKAGE}/training/losses.py",
        "zip(deep_supervision_weights(len(outputs)), outputs, strict=True)",
        "zip([1.0], outputs[:1], strict=True)",
        (T_LOSSES,),
    ),
    Mutation(
        "losses: cross-entropy term dropped",
        f"{PACKAGE}/training/losses.py",
        "F.cross_entropy(logits, classes) + 1.0 - soft_dice(",
        "0.0 * F.cross_entropy(logits, classes) + 1.0 - soft_dice(",
        (T_LOSSES,),
    ),
    Mutation(
        "losses: Dice term dropped",
        f"{PACKAGE}/training/losses.py",
        "+ 1.0 - soft_dice(logits, classes, smooth=self.smooth)",
        "+ 0.0 * soft_dice(logits, classes, smooth=self.smooth)",
        (T_LOSSES,),
    ),
    Mutation(
        "losses: distance term dropped",
        f"{PACKAGE}/training/losses.py",
        "loss = loss + self.distance_weight * (error * mask)",
        "loss = loss + 0.0 * self.distance_weight * (error * mask)",
        (T_LOSSES,),
    ),
    Mutation(
        "postprocess: foreground threshold ignored (0.5)",
        f"{PACKAGE}/inference/postprocess.py",
        "foreground = probabilities.foreground > config.foreground_threshold",
        "foreground = probabilities.foreground > 0.5",
        (T_POST,),
    ),
    Mutation(
        "postprocess: seed threshold ignored (0.5)",
        f"{PACKAGE}/inference/postprocess.py",
        "seed_mask = (score > config.seed_threshold) & foreground",
        "seed_mask = (score > 0.5) & foreground",
        (T_POST,),
    ),
    Mutation(
        "postprocess: seeds taken from the foreground instead of the interior",
        f"{PACKAGE}/inference/postprocess.py",
        "        score = probabilities.interior\n",
        "        score = probabilities.foreground\n",
        (T_POST,),
    ),
    Mutation(
        "postprocess: flooding confined to the seed regions instead of the foreground",
        f"{PACKAGE}/inference/postprocess.py",
        "watershed(1.0 - score, markers, mask=foreground)",
        "watershed(1.0 - score, markers, mask=score > config.seed_threshold)",
        (T_POST,),
    ),
    Mutation(
        "postprocess: seed_h ignored",
        f"{PACKAGE}/inference/postprocess.py",
        "    if config.seed_h <= 0 or not regions.any():\n",
        "    if True:\n",
        (T_POST,),
    ),
    Mutation(
        "postprocess: min_cell_area_px ignored",
        f"{PACKAGE}/inference/postprocess.py",
        "labels = _remove_small(labels, int(round(config.min_cell_area_px / scale**2)))",
        "labels = _remove_small(labels, 0)",
        (T_POST,),
    ),
    Mutation(
        "units: pg/µm² -> rad conversion not applied",
        f"{PACKAGE}/io/arrays.py",
        "phase = (phase * np.float32(radians)).astype(np.float32)",
        "phase = phase.astype(np.float32)",
        (UNITS_ROUND_TRIP,),
    ),
    Mutation(
        "units: pg/µm² -> rad conversion applied twice",
        f"{PACKAGE}/io/arrays.py",
        "phase = (phase * np.float32(radians)).astype(np.float32)",
        "phase = (phase * np.float32(radians) ** 2).astype(np.float32)",
        (UNITS_ROUND_TRIP,),
    ),
    Mutation(
        "units: alpha on the wrong side of radians_per_unit",
        f"{PACKAGE}/io/units.py",
        "    return per_um * alpha_um3_per_pg\n",
        "    return per_um / alpha_um3_per_pg\n",
        (UNITS_ROUND_TRIP,),
    ),
    Mutation(
        "measure: dry mass off by the pixel size (area = pixel, not pixel²)",
        f"{PACKAGE}/inference/measure.py",
        "    integrated_um2 = integrated_px * pixel**2\n",
        "    integrated_um2 = integrated_px * pixel\n",
        (T_MEASURE,),
    ),
    Mutation(
        "measure: dry mass integrated per pixel, not per µm²",
        f"{PACKAGE}/inference/measure.py",
        '"dry_mass_pg": wavelength / (2.0 * math.pi * alpha) * integrated_um2,',
        '"dry_mass_pg": wavelength / (2.0 * math.pi * alpha) * integrated_px,',
        (T_MEASURE,),
    ),
    Mutation(
        "fine-tuning: best/ never updated after the base model's epoch 0",
        f"{PACKAGE}/training/loop.py",
        "    trainer.save(best=report.is_best)\n",
        "    trainer.save(best=False)\n",
        (f"{T_LOOP}::test_a_finetuned_model_is_the_best_epoch_not_the_base_nor_the_last",),
    ),
    Mutation(
        "fine-tuning: every epoch counted as the best",
        f"{PACKAGE}/training/loop.py",
        "    is_best = score is not None and score > state.best_score\n",
        "    is_best = score is not None\n",
        (f"{T_LOOP}::test_a_finetuned_model_is_the_best_epoch_not_the_base_nor_the_last",),
    ),
    Mutation(
        "configs: unknown JSON keys accepted",
        f"{PACKAGE}/_config.py",
        "    if unknown:\n",
        "    if False:\n",
        (f"{T_CONFIG}::test_bad_data_is_one_value_error_naming_the_key",),
    ),
    Mutation(
        "configs: JSON types not checked",
        f"{PACKAGE}/_config.py",
        "    if hint is Any or not _accepts(hint, value):\n",
        "    if hint is Any:\n",
        (f"{T_CONFIG}::test_bad_data_is_one_value_error_naming_the_key",),
    ),
    Mutation(
        "tiling: a batch out of memory is not halved",
        f"{PACKAGE}/inference/tiling.py",
        "        return ShrinkingBatch(forward, present.device, present.shape[0])(*tensors)\n",
        "        return forward(*tensors)\n",
        (f"{TESTS}/inference/test_out_of_memory.py",),
    ),
    Mutation(
        "cli: --backend not passed to InferenceConfig",
        f"{PACKAGE}/cli/_segment.py",
        "        backend=args.backend,\n",
        "",
        (f"{TESTS}/test_cli_options.py::test_segment_backend_reaches_the_inference_config",),
    ),
    Mutation(
        "phase: unwrap adds up the wraps without looking for residues",
        f"{PACKAGE}/phase.py",
        "        if loops.any():\n",
        "        if False:\n",
        (f"{TESTS}/test_phase_unwrap_skip.py",),
    ),
    Mutation(
        "phase: unwrap adds up the wraps of a map with NaN",
        f"{PACKAGE}/phase.py",
        "    if not np.isfinite(values).all():",
        "    if False:",
        (f"{TESTS}/test_phase_unwrap_skip.py",),
    ),
    Mutation(
        "phase: wraps added with the wrong sign",
        f"{PACKAGE}/phase.py",
        "    return (step < -np.pi).astype(np.int8) - (step > np.pi).astype(np.int8)",
        "    return (step > np.pi).astype(np.int8) - (step < -np.pi).astype(np.int8)",
        (f"{TESTS}/test_phase_unwrap_skip.py",),
    ),
    Mutation(
        "backends: a model's first run on a runtime not announced",
        f"{PACKAGE}/inference/backends/__init__.py",
        "                _log.info(note)\n",
        "                pass\n",
        (
            f"{TESTS}/inference/test_backends.py::"
            "test_first_use_says_what_a_first_run_does_and_engine_for_logs_it_once",
        ),
    ),
)


def _copy_tree(target: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    shutil.copytree(REPO / "src", target / "src", ignore=ignore)
    shutil.copy2(REPO / "pyproject.toml", target / "pyproject.toml")
    if (REPO / "weights").is_dir():
        (target / "weights").symlink_to(REPO / "weights", target_is_directory=True)


def _run_tests(root: Path, tests: tuple[str, ...]) -> tuple[int, str, float]:
    env = dict(os.environ, PYTHONPATH=str(root / "src"), PYTHONDONTWRITEBYTECODE="1")
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
    return done.returncode, done.stdout + done.stderr, time.perf_counter() - start


def _summary(output: str) -> str:
    lines = [line for line in output.strip().splitlines() if line.strip()]
    failed = [line.split()[1].split("/")[-1] for line in lines if line.startswith("FAILED ")]
    last = lines[-1] if lines else "(no output)"
    return last + "".join(f"\n        failed: {name}" for name in failed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", default="", help="only mutations whose name contains this")
    parser.add_argument("--baseline", action="store_true", help="run the tests unbroken first")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("-v", "--verbose", action="store_true", help="print pytest's output")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTATIONS if args.k.lower() in m.name.lower()]
    if args.list:
        for m in chosen:
            print(f"{m.name}\n    {m.path}\n    " + "\n    ".join(m.tests))
        return 0
    failures = 0
    with tempfile.TemporaryDirectory(prefix="dmqpm-mutants-") as folder:
        root = Path(folder)
        _copy_tree(root)
        if args.baseline:
            tests = tuple(sorted({t for m in chosen for t in m.tests}))
            code, output, seconds = _run_tests(root, tests)
            verdict = "pass" if code == 0 else "FAIL"
            print(f"baseline: {verdict} ({seconds:.0f} s) {_summary(output)}")
            if code != 0:
                print(output)
                return 1
        for m in chosen:
            source = root / m.path
            original = source.read_text(encoding="utf-8")
            if original.count(m.old) != 1:
                print(f"STALE   {m.name}: the text to replace occurs {original.count(m.old)} times")
                failures += 1
                continue
            source.write_text(original.replace(m.old, m.new), encoding="utf-8")
            try:
                code, output, seconds = _run_tests(root, m.tests)
            finally:
                source.write_text(original, encoding="utf-8")
            caught = code == 1  # 1: tests failed; 2-5: interrupted, usage or collection error
            failures += not caught
            verdict = "caught" if caught else ("MISSED" if code == 0 else f"ERROR {code}")
            print(f"{verdict:7} {m.name} ({seconds:.0f} s): {_summary(output)}")
            if args.verbose or not caught:
                print(output)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
