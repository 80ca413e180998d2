"""Tune the post-processing thresholds of checkpoints on simulated fields and store them.

For each checkpoint folder given, the network is run once on ``--fields`` simulated fields per
density (sparse to confluent, pixel size drawn as in training), seeded
``default_rng((9_300_000, density, i))``: a namespace of its own, disjoint from training, from
the test set of ``benchmarks/results.py`` (9_000_000), the real-data angles (9_100_000) and
the baseline's tuning (9_200_000). The watershed thresholds are then tuned by
:func:`napari_dmqpm.training.tune_postprocess` and written into the checkpoint's
``config.json`` (``postprocessing``; the weights and their sha256 are untouched). No real
image is used.

Usage::

    python benchmarks/tune_postprocess.py weights/dmqpm-default weights/phase-only \
        ../runs/ablation/*/best [--fields 3] [--shape 384] [--dry-run]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if not __package__:  # run as a file: the repository root makes `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.results import synthetic_cases

POSTPROCESS_SEED = 9_300_000


def tuned_summary(folder: Path, cases, *, store: bool) -> dict:
    """Tune one checkpoint on ``cases``; returns the summary (and stores it unless dry)."""
    from napari_dmqpm.training.tuning import tune_checkpoint

    described = (
        f"{len(cases)} simulated fields (benchmarks/tune_postprocess.py, "
        f"seeds ({POSTPROCESS_SEED}, density, i))"
    )
    result = tune_checkpoint(folder, cases, tuned_on=described, store=store)
    return {"config": result.config.to_dict(), **result.summary()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", type=Path, help="checkpoint folders")
    parser.add_argument("--fields", type=int, default=3, help="fields per density")
    parser.add_argument("--shape", type=int, default=384, help="field side in pixels")
    parser.add_argument("--dry-run", action="store_true", help="report, do not store")
    args = parser.parse_args(argv)
    cases = synthetic_cases(args.fields, (args.shape, args.shape), namespace=POSTPROCESS_SEED)
    for folder in args.folders:
        summary = tuned_summary(folder, cases, store=not args.dry_run)
        print(
            f"{folder}: F1 {summary['f1_before']:.3f} -> {summary['f1_after']:.3f}, Dice "
            f"{summary['dice_before']:.3f} -> {summary['dice_after']:.3f}; {summary['config']}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
