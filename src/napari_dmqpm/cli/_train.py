"""``dmqpm train``: train a model on the simulator and/or folders; resumable."""

from __future__ import annotations

import argparse
from pathlib import Path

from napari_dmqpm.inference.config import DEVICE_CHOICES

__all__ = ["add_parser", "run"]


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Add ``train`` to the sub-commands."""
    train = commands.add_parser(
        "train", help="train a model (nnU-Net recipe) on the simulator and/or folders; resumable"
    )
    train.add_argument("--out", type=Path, required=True, help="run folder (last/, best/)")
    train.add_argument(
        "--config",
        type=Path,
        help="TrainConfig JSON (model variant, data, budget; docs/training.md)",
    )
    train.add_argument("--minutes", type=float, help="wall-time budget of the whole run")
    train.add_argument("--epochs", type=int, help="number of epochs")
    train.add_argument("--device", choices=DEVICE_CHOICES)  # default: the config's
    train.add_argument(
        "--overwrite",
        action="store_true",
        help="start afresh, removing an earlier run in --out (else it is resumed)",
    )
    train.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run :func:`napari_dmqpm.training.iter_training`, one line per epoch."""
    from napari_dmqpm.training import TrainConfig, iter_training, write_model_card

    saved = args.out / "train_config.json"
    if args.config is not None:
        config = TrainConfig.load(args.config)
    elif saved.is_file() and not args.overwrite:
        config = TrainConfig.load(saved)  # resume the run in --out with its own settings
    else:
        config = TrainConfig()
    changes = {"minutes": args.minutes, "epochs": args.epochs, "device": args.device}
    config = config.replace(
        checkpoint_dir=str(args.out), **{k: v for k, v in changes.items() if v is not None}
    )
    print(f"training into {args.out} (resumes from {args.out / 'last'} when present)")
    for report in iter_training(config, overwrite=args.overwrite):
        print(report.format(), flush=True)
    if (args.out / "best").is_dir():
        write_model_card(args.out / "best", title=args.out.name)
    print(f"best checkpoint: {args.out / 'best'}")
    return 0
