"""``dmqpm evaluate``: score predicted label TIFFs against ground truth."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["IOU_THRESHOLD", "add_parser", "run"]

#: training.metrics.evaluate_folders' default ``iou_threshold`` (checked by test_cli_options;
#: written out so that building the parser does not import the metrics).
IOU_THRESHOLD = 0.5


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Add ``evaluate`` to the sub-commands."""
    evaluate = commands.add_parser(
        "evaluate", help="score predicted label TIFFs against ground truth (Dice, IoU, F1)"
    )
    evaluate.add_argument("--pred", type=Path, required=True, help="folder of *_labels.tif")
    evaluate.add_argument("--truth", type=Path, required=True, help="folder of *_labels.tif")
    evaluate.add_argument(
        "--iou", type=float, default=IOU_THRESHOLD, help=f"IoU for a match ({IOU_THRESHOLD})"
    )
    evaluate.add_argument("--summary", action="store_true", help="only the mean ± sd rows")
    evaluate.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print the report of :func:`napari_dmqpm.training.metrics.evaluate_folders`."""
    from napari_dmqpm.training.metrics import evaluate_folders, format_report

    report = evaluate_folders(args.pred, args.truth, iou_threshold=args.iou)
    print(format_report(report, per_image=not args.summary))
    return 0
