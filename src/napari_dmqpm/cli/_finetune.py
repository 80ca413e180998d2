"""``dmqpm finetune``: fine-tune a model on corrected labels of your own images."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from napari_dmqpm.cli._reader import add_reader_options, reader_kwargs
from napari_dmqpm.inference.config import DEVICE_CHOICES

__all__ = ["FINETUNE_DEFAULTS", "add_parser", "read_finetune_data", "run"]

#: Defaults of training.finetune.finetune_config, written out so that building the parser does
#: not import torch; test_cli_options checks them against the function.
FINETUNE_DEFAULTS = {"minutes": 3.0, "learning_rate": 1e-3, "device": "auto"}


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Add ``finetune`` to the sub-commands."""
    tune = commands.add_parser(
        "finetune", help="fine-tune a model on corrected labels of your own images"
    )
    tune.add_argument("--image", type=Path, nargs="+", required=True, metavar="FILE")
    tune.add_argument("--labels", type=Path, nargs="+", required=True, metavar="FILE")
    tune.add_argument("--out", type=Path, required=True, help="run folder; the model is out/best")
    tune.add_argument("--model", help="base model name or folder (default: the phase model)")
    budget = tune.add_mutually_exclusive_group()
    budget.add_argument(
        "--minutes",
        type=float,
        default=None,
        help=f"time budget (default {FINETUNE_DEFAULTS['minutes']:g})",
    )
    budget.add_argument("--epochs", type=int, help="number of epochs instead of a time budget")
    tune.add_argument(
        "--lr",
        type=float,
        default=FINETUNE_DEFAULTS["learning_rate"],
        help=f"learning rate (default {FINETUNE_DEFAULTS['learning_rate']:g})",
    )
    tune.add_argument("--device", choices=DEVICE_CHOICES, default=FINETUNE_DEFAULTS["device"])
    tune.add_argument("--name", help="also install the result as a user model of this name")
    tune.add_argument(
        "--overwrite",
        action="store_true",
        help="start afresh, removing an earlier run in --out (else it is resumed only when "
        "it fine-tuned the same model on the same images with the same settings)",
    )
    add_reader_options(tune)
    tune.set_defaults(run=run)


def _read_labels(path: Path):
    """A --labels file's integer labels, >= 0; errors name the file."""
    import numpy as np
    import tifffile

    try:
        labels = tifffile.imread(path)
    except (ValueError, tifffile.TiffFileError) as error:  # not a TIFF, damaged
        raise ValueError(
            f"{path}: cannot read it as a labels TIFF ({type(error).__name__}: {error})"
        ) from error
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{path}: labels must be integers (one ID per cell); got {labels.dtype}")
    if labels.size and int(labels.min()) < 0:
        raise ValueError(
            f"{path}: labels hold negative values (min {int(labels.min())}); instance labels "
            "are 0 for background and a positive integer per cell"
        )
    return labels


def read_finetune_data(args: argparse.Namespace, needs_angles: bool) -> dict:
    """Phase (and angle) frames of each --image with the matching --labels, as lists."""
    from napari_dmqpm.io import read_acquisition

    if len(args.image) != len(args.labels):
        raise ValueError(
            f"give one --labels file per --image; got {len(args.image)} images and "
            f"{len(args.labels)} label files"
        )
    data: dict[str, list] = {"phase": [], "labels": [], "angles": []}
    for image_path, labels_path in zip(args.image, args.labels, strict=True):
        acquisition = read_acquisition(image_path, lazy=False, **reader_kwargs(args))
        labels = _read_labels(labels_path)
        if labels.shape[-2:] != acquisition.frame_shape:
            raise ValueError(
                f"{labels_path}: labels of shape {labels.shape} do not match the frames "
                f"{acquisition.frame_shape} of {image_path}"
            )
        if needs_angles and acquisition.angles is None:
            raise ValueError(f"the base model needs angle images; {image_path} has phase only")
        data["phase"].append(acquisition.phase[0] if labels.ndim == 2 else acquisition.phase)
        data["labels"].append(labels)
        if needs_angles:
            angles = acquisition.angles
            assert angles is not None  # checked above
            data["angles"].append(angles[0] if labels.ndim == 2 else angles)
    return data


def run(args: argparse.Namespace) -> int:
    """Fine-tune (:func:`napari_dmqpm.training.finetune.finetune`), then install with ``--name``."""
    from napari_dmqpm.inference import resolve_model
    from napari_dmqpm.model.registry import LoadedModel, check_new_user_model, default_model_for
    from napari_dmqpm.training import export_model
    from napari_dmqpm.training.budget import BudgetTooShortError
    from napari_dmqpm.training.finetune import finetune

    # the name must be free and the user models folder writable before any work
    destination = None if args.name is None else check_new_user_model(args.name)
    base = default_model_for("phase-map") if args.model is None else args.model  # '' is refused
    resolved = resolve_model(base, kind="phase-map", device="cpu")
    network = resolved.network if isinstance(resolved, LoadedModel) else resolved
    data = read_finetune_data(args, needs_angles=network.config.inputs != "phase")
    minutes = args.minutes
    if args.minutes is None and args.epochs is None:
        minutes = FINETUNE_DEFAULTS["minutes"]
    try:
        result = finetune(
            data["phase"],
            data["labels"],
            angles=data["angles"] or None,
            base=base,
            out=args.out,
            minutes=minutes,
            epochs=args.epochs,
            learning_rate=args.lr,
            device=args.device,
            overwrite=args.overwrite,
            progress=lambda report: print(report.format(), flush=True),
        )
    except BudgetTooShortError as error:  # raised before anything is written
        print(
            f"dmqpm finetune: error: --minutes {error.minutes:g} is too short for one epoch "
            f"of {error.iterations} iterations with the base model's validation (about "
            f"{error.needed_minutes:g} min here); give --minutes {error.needed_minutes:g} "
            "or more, or --epochs N instead of a time budget",
            file=sys.stderr,
        )
        return 2
    print(result.format())
    if not result.improved:
        if args.name is not None:
            print(f"nothing installed as '{args.name}': no epoch beat the base model")
        return 0
    print(f"model: {result.model_dir}")
    if args.name is not None:
        print(f"installed as '{args.name}': {export_model(args.out, destination)}")
    return 0
