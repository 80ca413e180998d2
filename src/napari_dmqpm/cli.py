"""The ``dmqpm`` command line: each sub-command is a thin call into one core function.

Run ``dmqpm --help`` or ``dmqpm COMMAND --help``. Heavy modules are imported inside the
command that needs them, so ``dmqpm info`` starts fast and never imports torch.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from napari_dmqpm import __version__

_KINDS = ("ssqpm-stack", "angles-stack", "raw-mosaic", "phase-map")
_PHASE_UNITS = ("rad", "opd_um", "opd_nm", "pg_per_um2")


def _add_reader_options(parser: argparse.ArgumentParser) -> None:
    """Options that change how an input file is interpreted (docs/formats.md)."""
    group = parser.add_argument_group("how to read the input (see docs/formats.md)")
    group.add_argument("--kind", choices=_KINDS, help="override the format detection")
    group.add_argument(
        "--phase-unit", choices=_PHASE_UNITS, default="rad", help="unit of a phase-only map"
    )
    group.add_argument("--wavelength-um", type=float, help="wavelength in µm (else the file's)")
    group.add_argument(
        "--alpha",
        type=float,
        default=0.18,
        metavar="UM3_PER_PG",
        help="specific refractive increment for pg/µm² maps (default 0.18 µm³/pg)",
    )
    group.add_argument(
        "--demosaic-method",
        choices=("superpixel", "interpolate"),
        default="superpixel",
        help="how a raw polarization mosaic is split into the four angles",
    )
    group.add_argument(
        "--mosaic-origin",
        type=int,
        nargs=2,
        default=(0, 0),
        metavar=("ROW", "COL"),
        help="where the first full 2x2 super-pixel starts (0 or 1 each; default 0 0)",
    )


def _reader_kwargs(args: argparse.Namespace) -> dict:
    """The keyword arguments of io.read_acquisition / io.describe_file from the options."""
    return {
        "kind": args.kind,
        "phase_unit": args.phase_unit,
        "wavelength_um": args.wavelength_um,
        "alpha_um3_per_pg": args.alpha,
        "demosaic_method": args.demosaic_method,
        "mosaic_origin": tuple(args.mosaic_origin),
    }


def _cmd_info(args: argparse.Namespace) -> int:
    from napari_dmqpm.io import describe_file

    for index, path in enumerate(args.files):
        if index:
            print()
        print(describe_file(path, **_reader_kwargs(args)))
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    from napari_dmqpm.simulation import write_dataset

    written = write_dataset(
        args.out,
        n=args.n,
        seed=args.seed,
        density=args.density,
        shape=tuple(args.size) if args.size else None,
        n_frames=args.frames,
        overwrite=args.overwrite,
    )
    print(f"wrote {len(written)} files to {args.out}")
    for path in written:
        print(f"  {path}")
    return 0


class _TerminalProgress:
    """A one-line progress display on stderr for ``progress(done, total)`` callbacks."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.shown = -1

    def __call__(self, done: int, total: int) -> None:
        percent = int(100 * done / max(total, 1))
        if percent != self.shown and sys.stderr.isatty():
            print(f"\r  {self.label}: {percent:3d} %", end="", file=sys.stderr, flush=True)
        self.shown = percent

    def close(self) -> None:
        if self.shown >= 0 and sys.stderr.isatty():
            print(file=sys.stderr)
        self.shown = -1


def _diameter(text: str) -> str | float:
    """``--diameter``: "auto" or a positive number of pixels."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 1.0 <= value <= 10_000.0):
        raise argparse.ArgumentTypeError(
            f"expected 'auto' or a cell diameter in pixels between 1 and 10000; got {text!r}"
        )
    return value


def _describe_diameter(result, given: str | float) -> str:
    """'cell diameter 48.2 px (estimated)' for the line printed per file."""
    values = result.cell_diameter_px
    if not values:
        return "not resampled by cell size"
    how = "estimated" if given == "auto" else "given"
    if len(values) == 1:
        return f"cell diameter {values[0]:.1f} px ({how})"
    return f"cell diameter {values[0]:.1f}-{values[-1]:.1f} px ({how}, re-checked over frames)"


def _segment_options(args: argparse.Namespace) -> dict:
    """The keyword arguments of inference.batch.iter_segment_files from the options."""
    from napari_dmqpm.inference import InferenceConfig

    config = InferenceConfig(
        device=args.device, diameter_px=args.diameter, tta=args.tta, batch_size=args.batch_size
    )
    return {
        "out_dir": args.out,
        "model": args.model,
        "config": config,
        "read_options": _reader_kwargs(args),
        "alpha_um3_per_pg": args.alpha,
        "overwrite": args.overwrite,
        "scheduler": args.scheduler,
        "scheduler_file": args.scheduler_file,
        "workers": args.workers,
        "torch_threads": args.torch_threads,
        "retries": args.retries,
        "connect_timeout": args.connect_timeout,
    }


def _cmd_segment(args: argparse.Namespace) -> int:
    from napari_dmqpm.inference import output_paths
    from napari_dmqpm.inference.batch import iter_segment_files

    in_process = args.scheduler is None and args.scheduler_file is None and args.workers == 1
    inputs = {output_paths(path, args.out)[0]: path for path in args.inputs}
    args.out.mkdir(parents=True, exist_ok=True)
    # in process the files run in input order, one bar each; on a pool one bar over all tasks
    progress = _TerminalProgress(args.inputs[0].name if in_process else "segment (tasks)")
    try:
        results = iter_segment_files(args.inputs, **_segment_options(args), progress=progress)
    except ImportError as err:  # no dask.distributed: one line with the pip command
        raise RuntimeError(str(err)) from err
    with contextlib.closing(results):
        for index, result in enumerate(results, start=1):
            progress.close()
            print(
                f"{inputs[result.labels_path]}: {result.n_cells} cells in {result.n_frames} "
                f"frame(s) with {result.model}, {_describe_diameter(result, args.diameter)} "
                f"-> {result.labels_path}, {result.table_path}",
                flush=True,
            )
            if in_process and index < len(args.inputs):
                progress.label = args.inputs[index].name
    progress.close()
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from napari_dmqpm.training.metrics import evaluate_folders, format_report

    report = evaluate_folders(args.pred, args.truth, iou_threshold=args.iou)
    print(format_report(report, per_image=not args.summary))
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from napari_dmqpm.training import TrainConfig, iter_training, write_model_card

    saved = args.out / "train_config.json"
    if args.config is not None:
        config = TrainConfig.load(args.config)
    elif saved.is_file():
        config = TrainConfig.load(saved)  # resume the run in --out with its own settings
    else:
        config = TrainConfig()
    changes = {"minutes": args.minutes, "epochs": args.epochs, "device": args.device}
    config = config.replace(
        checkpoint_dir=str(args.out), **{k: v for k, v in changes.items() if v is not None}
    )
    print(f"training into {args.out} (resumes from {args.out / 'last'} when present)")
    for report in iter_training(config):
        print(report.format(), flush=True)
    if (args.out / "best").is_dir():
        write_model_card(args.out / "best", title=args.out.name)
    print(f"best checkpoint: {args.out / 'best'}")
    return 0


def _read_finetune_data(args: argparse.Namespace, needs_angles: bool) -> dict:
    """Phase (and angle) frames of each --image with the matching --labels, as lists."""
    import tifffile

    from napari_dmqpm.io import read_acquisition

    if len(args.image) != len(args.labels):
        raise ValueError(
            f"give one --labels file per --image; got {len(args.image)} images and "
            f"{len(args.labels)} label files"
        )
    data: dict[str, list] = {"phase": [], "labels": [], "angles": []}
    for image_path, labels_path in zip(args.image, args.labels, strict=True):
        acquisition = read_acquisition(image_path, lazy=False, **_reader_kwargs(args))
        labels = tifffile.imread(labels_path)
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
            data["angles"].append(angles[0] if labels.ndim == 2 else angles)
    return data


def _cmd_finetune(args: argparse.Namespace) -> int:
    from napari_dmqpm.inference import resolve_model
    from napari_dmqpm.model.registry import default_model_for, user_model_path
    from napari_dmqpm.training import export_model
    from napari_dmqpm.training.finetune import finetune

    if args.name is not None:
        user_model_path(args.name)  # check the name before any work
    base = args.model or default_model_for("phase-map")
    network = resolve_model(base, kind="phase-map", device="cpu")
    network = getattr(network, "network", network)
    data = _read_finetune_data(args, needs_angles=network.config.inputs != "phase")
    result = finetune(
        data["phase"],
        data["labels"],
        angles=data["angles"] or None,
        base=base,
        out=args.out,
        minutes=3.0 if args.minutes is None and args.epochs is None else args.minutes,
        epochs=args.epochs,
        learning_rate=args.lr,
        device=args.device,
        progress=lambda report: print(report.format(), flush=True),
    )
    print(
        f"validation Dice {result.dice_before:.3f} -> {result.dice_after:.3f}, "
        f"F1@0.5 {result.f1_before:.3f} -> {result.f1_after:.3f}; model: {result.model_dir}"
    )
    if args.name is not None:
        print(f"installed as '{args.name}': {export_model(args.out, user_model_path(args.name))}")
    return 0


def _add_pool_options(parser: argparse.ArgumentParser) -> None:
    """Where ``segment`` runs: this process, a local pool or a dask cluster (docs/cluster.md)."""
    group = parser.add_argument_group("where to run (see docs/cluster.md)")
    where = group.add_mutually_exclusive_group()
    where.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on the dask.distributed cluster of this scheduler, e.g. tcp://host:8786",
    )
    where.add_argument(
        "--scheduler-file", type=Path, metavar="FILE", help="...or of this dask scheduler file"
    )
    group.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="local worker processes without --scheduler (default 1: in this process)",
    )
    group.add_argument(
        "--torch-threads",
        type=int,
        metavar="N",
        help="torch threads per worker (default: the cores shared out among the workers)",
    )
    group.add_argument(
        "--retries", type=int, default=2, metavar="N", help="re-runs of a failed task (default 2)"
    )
    group.add_argument(
        "--connect-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="give up on an unreachable scheduler after this long (default 10)",
    )


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dmqpm",
        description="Cell segmentation for single-shot polarization QPM (napari-dmqpm).",
    )
    parser.add_argument("--version", action="version", version=f"napari-dmqpm {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    info = commands.add_parser("info", help="say what kind of file this is and how it will be read")
    info.add_argument("files", nargs="+", type=Path, metavar="FILE")
    _add_reader_options(info)
    info.set_defaults(run=_cmd_info)

    simulate = commands.add_parser(
        "simulate", help="write simulated ssQPM stacks with instance labels"
    )
    simulate.add_argument("--out", type=Path, required=True, help="output folder")
    simulate.add_argument("--n", type=int, default=4, help="number of fields (default 4)")
    simulate.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    simulate.add_argument(
        "--density",
        default=None,
        help="sparse, medium, dense, confluent, or a cover fraction in (0, 1)",
    )
    simulate.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), help="field size")
    simulate.add_argument("--frames", type=int, default=1, help="time points per field")
    simulate.add_argument(
        "--overwrite", action="store_true", help="replace files of an earlier run in --out"
    )
    simulate.set_defaults(run=_cmd_simulate)

    segment = commands.add_parser(
        "segment", help="segment files into <stem>_labels.tif and <stem>_cells.csv"
    )
    segment.add_argument("inputs", nargs="+", type=Path, metavar="INPUT")
    segment.add_argument("--out", type=Path, required=True, help="output folder (created)")
    segment.add_argument(
        "--model",
        help="model name (see docs) or checkpoint folder; default: the shipped model that "
        "fits the input (DM-QPMNet for stacks and raw frames, the phase model for phase maps)",
    )
    segment.add_argument(
        "--device", choices=("auto", "cpu", "cuda", "mps"), default="auto", help="default auto"
    )
    segment.add_argument(
        "--diameter",
        type=_diameter,
        default="auto",
        metavar="auto|PX",
        help="typical cell diameter in pixels; default auto: estimated on each image (on the "
        "first frame of a time-lapse, re-checked every 10 frames) and printed",
    )
    segment.add_argument("--tta", action="store_true", help="mirror test-time augmentation")
    segment.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="tiles per forward pass (default: 1 on the CPU, as many as fit on a GPU)",
    )
    segment.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    _add_reader_options(segment)
    _add_pool_options(segment)
    segment.set_defaults(run=_cmd_segment)

    evaluate = commands.add_parser(
        "evaluate", help="score predicted label TIFFs against ground truth (Dice, IoU, F1)"
    )
    evaluate.add_argument("--pred", type=Path, required=True, help="folder of *_labels.tif")
    evaluate.add_argument("--truth", type=Path, required=True, help="folder of *_labels.tif")
    evaluate.add_argument("--iou", type=float, default=0.5, help="IoU for a match (0.5)")
    evaluate.add_argument("--summary", action="store_true", help="only the mean ± sd rows")
    evaluate.set_defaults(run=_cmd_evaluate)

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
    train.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"))
    train.set_defaults(run=_cmd_train)

    tune = commands.add_parser(
        "finetune", help="fine-tune a model on corrected labels of your own images"
    )
    tune.add_argument("--image", type=Path, nargs="+", required=True, metavar="FILE")
    tune.add_argument("--labels", type=Path, nargs="+", required=True, metavar="FILE")
    tune.add_argument("--out", type=Path, required=True, help="run folder; the model is out/best")
    tune.add_argument("--model", help="base model name or folder (default: the phase model)")
    budget = tune.add_mutually_exclusive_group()
    budget.add_argument("--minutes", type=float, default=None, help="time budget (default 3)")
    budget.add_argument("--epochs", type=int, help="number of epochs instead of a time budget")
    tune.add_argument("--lr", type=float, default=1e-3, help="learning rate (default 1e-3)")
    tune.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    tune.add_argument("--name", help="also install the result as a user model of this name")
    _add_reader_options(tune)
    tune.set_defaults(run=_cmd_finetune)
    return parser


def _error_types() -> tuple[type[BaseException], ...]:
    """Errors that are the user's input, reported as one line instead of a traceback."""
    return (
        ValueError,
        RuntimeError,  # an unavailable device, out of device memory
        FileNotFoundError,
        FileExistsError,
        PermissionError,
        IsADirectoryError,
        NotADirectoryError,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``dmqpm`` command line; returns the exit status."""
    args = _build_parser().parse_args(argv)
    command: Callable[[argparse.Namespace], int] = args.run
    try:
        return command(args)
    except _error_types() as error:
        print(f"dmqpm {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"dmqpm {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
