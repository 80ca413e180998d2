"""The ``dmqpm`` command line: each sub-command is a thin call into one core function.

Run ``dmqpm --help`` or ``dmqpm COMMAND --help``. Heavy modules are imported inside the
command that needs them, so ``dmqpm info`` starts fast and never imports torch.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from napari_dmqpm import __version__
from napari_dmqpm._cli_args import (
    PHASE_UNITS,
    THRESHOLD_FLAGS,
    TerminalProgress,
    cell_diameter,
    check_out_folder,
    cli_words,
    describe_diameter,
    fraction,
    new_folders,
    parse_frames,
    pixel_area,
    positive_number,
    remove_if_empty,
    stored_phase_note,
    unit_warning,
)
from napari_dmqpm._cli_signals import Terminated, handle_sigterm, stale_temporaries

_KINDS = ("ssqpm-stack", "angles-stack", "raw-mosaic", "phase-map")


def _add_reader_options(parser: argparse.ArgumentParser) -> None:
    """Options that change how an input file is interpreted (docs/formats.md)."""
    group = parser.add_argument_group("how to read the input (see docs/formats.md)")
    group.add_argument("--kind", choices=_KINDS, help="override the format detection")
    group.add_argument(
        "--phase-unit",
        choices=PHASE_UNITS,
        default=None,
        help="unit of a stored phase (phase maps, channel 4 of ssQPM stacks); default: the "
        "file's (ssQPM stacks: rad). A phase map states none: it is taken as rad, with a "
        "warning that says what its values look like",
    )
    group.add_argument(
        "--wavelength-um",
        type=positive_number,
        metavar="UM",
        help="wavelength in µm (else the file's)",
    )
    group.add_argument(
        "--pixel-size-um",
        type=positive_number,
        metavar="UM",
        help="size of the file's pixels in µm, used where the file states none and in place "
        "of the file's where it states one (a raw mosaic's superpixel demosaicing doubles "
        "it); it gives the table's areas in µm² and the dry mass in pg",
    )
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
    """The keyword arguments of io.read_acquisition / io.describe_file from the options.

    A phase unit nobody gave is read as radians (the reader's default), see
    :func:`unit_warning`.
    """
    return {
        "kind": args.kind,
        "phase_unit": args.phase_unit or "rad",
        "wavelength_um": args.wavelength_um,
        "pixel_size_um": args.pixel_size_um,
        "alpha_um3_per_pg": args.alpha,
        "demosaic_method": args.demosaic_method,
        "mosaic_origin": tuple(args.mosaic_origin),
    }


def _cmd_info(args: argparse.Namespace) -> int:
    from napari_dmqpm.io import describe_file

    for index, path in enumerate(args.files):
        if index:
            print()
        print(describe_file(path, **{**_reader_kwargs(args), "phase_unit": args.phase_unit}))
        found = stored_phase_note(path, args)
        if found is not None and found[1] is not None:
            print(f"  values:      {found[1].removeprefix('values ')} (frame 0)")
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    from napari_dmqpm.simulation import write_dataset
    from napari_dmqpm.simulation.dataset import write_growth_dataset

    common = {
        "n": args.n,
        "seed": args.seed,
        "density": args.density,
        "shape": tuple(args.size) if args.size else None,
        "overwrite": args.overwrite,
    }
    if args.timelapse:
        written = write_growth_dataset(
            args.out,
            n_frames=args.frames if args.frames > 1 else 10,
            frame_interval_min=args.frame_interval or 10.0,
            **common,
        )
        what, note = "files and folders", " (time-lapses with true lineage)"
    else:
        written = write_dataset(args.out, n_frames=args.frames, **common)
        what, note = "files", ""
    print(f"wrote {len(written)} {what} to {args.out}{note}")
    for path in written:
        print(f"  {path}")
    return 0


def _cmd_track(args: argparse.Namespace) -> int:
    from napari_dmqpm.tracking.files import track_file

    phases = args.phase or []
    if phases and len(phases) != len(args.inputs):
        raise ValueError(
            f"give one --phase per labels file or none; got {len(phases)} --phase for "
            f"{len(args.inputs)} labels files"
        )
    for index, path in enumerate(args.inputs):
        result = track_file(
            path,
            args.out,
            phase_path=phases[index] if phases else None,
            frame_interval_min=args.frame_interval,
            pixel_size_um=args.pixel_size_um,
            wavelength_um=args.wavelength_um,
            overwrite=args.overwrite,
        )
        _say_tracked(str(path), result)
    return 0


def _say_tracked(what: str, result) -> None:
    """One line on what tracking found and the frame interval, then the files written."""
    tracks = result.tracks
    if result.frame_interval_min is None:
        timing = "frame interval unknown: growth rates are per frame (pg/frame), not per hour"
    else:
        timing = f"frame interval {result.frame_interval_min:g} min ({result.interval_source})"
    print(f"{what}: {tracks.n_tracks} tracks, {tracks.n_divisions} divisions; {timing}")
    for written in result.paths:
        print(f"  {written}", flush=True)


def _track_segmented(source: Path, result, args: argparse.Namespace) -> None:
    """``segment --track``: link the cells of a segmented time-lapse (one frame: said).

    The dry mass comes from the table the segmentation just wrote, so the input's phase is
    not retrieved a second time (nor held in memory for all frames).
    """
    if result.n_frames < 2:
        print(f"  {source}: one frame, nothing to track", flush=True)
        return
    from napari_dmqpm.tracking.files import track_file

    tracked = track_file(
        result.labels_path, args.out, phase_path=source, table_path=result.table_path,
        frame_interval_min=args.frame_interval, pixel_size_um=args.pixel_size_um,
        wavelength_um=args.wavelength_um, overwrite=args.overwrite,
    )  # fmt: skip
    _say_tracked(f"  tracked {source}", tracked)


def _postprocess(args: argparse.Namespace):
    """The model's own post-processing with the thresholds given on the command line, or None.

    None (no threshold given) leaves the model's own to ``segment_file``. The model is the
    one ``--model`` names, else the shipped default of the inputs' kind, which must then be
    the same for all inputs.
    """
    given = {key: getattr(args, key) for key in THRESHOLD_FLAGS}
    given = {key: value for key, value in given.items() if value is not None}
    if not given:
        return None
    from napari_dmqpm.inference import PostprocessConfig
    from napari_dmqpm.io import inspect_file
    from napari_dmqpm.model.registry import default_model_for, find_model

    model = args.model
    if model is None:
        names = set()
        for path in args.inputs:
            with contextlib.suppress(OSError, ValueError):  # the command itself says why
                names.add(default_model_for(inspect_file(path, kind=args.kind).kind))
        if len(names) != 1:
            flags = ", ".join(THRESHOLD_FLAGS[key] for key in given)
            raise ValueError(
                f"{flags} set the thresholds of one model, and these inputs are segmented with "
                f"{' and '.join(sorted(names)) or 'no model'} by default: give --model"
            )
        model = names.pop()
    info = find_model(model)
    try:
        base = PostprocessConfig.from_dict(info.postprocessing)
    except (TypeError, ValueError) as err:
        raise ValueError(f"the 'postprocessing' of model {info.name!r} is invalid: {err}") from err
    return base.replace(**given)


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
        "postprocess": _postprocess(args),
        "frames": args.frames,
        "read_options": _reader_kwargs(args),
        "alpha_um3_per_pg": args.alpha,
        "overwrite": args.overwrite,
        "scheduler": args.scheduler,
        "scheduler_file": args.scheduler_file,
        "workers": args.workers,
        "torch_threads": args.torch_threads,
        "retries": args.retries,
        "connect_timeout": args.connect_timeout,
        "keep_going": True,  # in process: one failing file does not stop the others
    }


def _cmd_segment(args: argparse.Namespace) -> int:
    from napari_dmqpm.inference import output_paths
    from napari_dmqpm.inference.batch import FileFailure, cap_workers, iter_segment_files

    if args.scheduler is None and args.scheduler_file is None and args.workers > 1:
        args.workers, note = cap_workers(args.workers)  # cores and memory; said, not silent
        if note is not None:
            print(f"dmqpm segment: {cli_words(note, 'segment')}", file=sys.stderr, flush=True)
    in_process = args.scheduler is None and args.scheduler_file is None and args.workers == 1
    if args.track and args.frames is not None:
        raise ValueError("--track links consecutive frames: leave out --frames")
    if args.frames is not None and not in_process:
        raise ValueError(
            "--frames segments in this process only: leave out --workers, --scheduler and "
            "--scheduler-file"
        )
    inputs = {output_paths(path, args.out)[0]: path for path in args.inputs}
    args.out.mkdir(parents=True, exist_ok=True)
    # in process the files run in input order, one bar each; on a pool one bar over all tasks
    progress = TerminalProgress(args.inputs[0].name if in_process else "segment (tasks)")
    try:
        results = iter_segment_files(args.inputs, **_segment_options(args), progress=progress)
    except ImportError as err:  # no dask.distributed: one line with the pip command
        raise RuntimeError(str(err)) from err
    for path in args.inputs:  # after the checks: inputs, outputs, model
        warning = unit_warning(path, args)
        if warning is not None:
            print(f"dmqpm segment: warning: {warning}", file=sys.stderr, flush=True)
    failures: list[FileFailure] = []
    with contextlib.closing(results):
        for index, result in enumerate(results, start=1):
            progress.close()
            if in_process and index < len(args.inputs):
                progress.label = args.inputs[index].name
            if isinstance(result, FileFailure):
                failures.append(result)
                words = cli_words(result.message, args.command)
                print(f"dmqpm segment: error: {words}", file=sys.stderr, flush=True)
                continue
            print(
                f"{inputs[result.labels_path]}: {result.n_cells} cells in {result.n_frames} "
                f"frame(s) with {result.model}, {describe_diameter(result, args.diameter)} "
                f"-> {result.labels_path}, {result.table_path}",
                flush=True,
            )
            if args.track:
                _track_segmented(inputs[result.labels_path], result, args)
    progress.close()
    if failures:  # the others were segmented; the exit status says not all were
        names = ", ".join(str(failure.path) for failure in failures)
        print(
            f"dmqpm segment: {len(failures)} of {len(args.inputs)} inputs failed "
            f"(nothing written for them): {names}",
            file=sys.stderr,
        )
        return 2
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
    from napari_dmqpm.model.registry import check_new_user_model, default_model_for
    from napari_dmqpm.training import export_model
    from napari_dmqpm.training.budget import BudgetTooShortError
    from napari_dmqpm.training.finetune import finetune

    # the name must be free and the user models folder writable before any work
    destination = None if args.name is None else check_new_user_model(args.name)
    base = args.model or default_model_for("phase-map")
    network = resolve_model(base, kind="phase-map", device="cpu")
    network = getattr(network, "network", network)
    data = _read_finetune_data(args, needs_angles=network.config.inputs != "phase")
    minutes = 3.0 if args.minutes is None and args.epochs is None else args.minutes
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
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an error, not one line"
    )
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
        "--timelapse",
        action="store_true",
        help="time-lapses of growing, dividing cells with the true lineage (--frames, default "
        "10; --frame-interval, default 10 min)",
    )
    simulate.add_argument(
        "--frame-interval", type=positive_number, metavar="MIN", help="minutes between frames"
    )
    simulate.add_argument(
        "--overwrite", action="store_true", help="replace files of an earlier run in --out"
    )
    simulate.set_defaults(run=_cmd_simulate)

    track = commands.add_parser(
        "track",
        help="link labels stacks over time: <stem>_tracks.csv, <stem>_lineage.csv, <stem>_ctc/",
    )
    track.add_argument("inputs", nargs="+", type=Path, metavar="LABELS", help="labels stacks")
    track.add_argument("--out", type=Path, required=True, help="output folder")
    track.add_argument(
        "--phase",
        type=Path,
        action="append",
        metavar="FILE",
        help="the time-lapse each labels stack was segmented from, in order (for dry mass)",
    )
    track.add_argument(
        "--frame-interval",
        type=positive_number,
        metavar="MIN",
        help="minutes between frames (default: from the files' metadata, else rates per frame)",
    )
    track.add_argument("--pixel-size-um", type=positive_number, metavar="UM", help="pixel size")
    track.add_argument("--wavelength-um", type=positive_number, metavar="UM", help="wavelength")
    track.add_argument("--overwrite", action="store_true", help="replace earlier outputs")
    track.set_defaults(run=_cmd_track)

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
        type=cell_diameter,
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
    segment.add_argument(
        "--frames",
        type=parse_frames,
        metavar="LIST",
        help="time points to segment, 0-based indices and inclusive ranges in this order, "
        "e.g. 0,2,5-7 (default all); the labels TIFF holds these frames only, the table's "
        "'frame' column the input's indices",
    )
    segment.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    segment.add_argument(
        "--track",
        action="store_true",
        help="link the cells of each time-lapse over its frames, as dmqpm track does: "
        "<stem>_tracks.csv, <stem>_lineage.csv and <stem>_ctc/ in --out",
    )
    segment.add_argument(
        "--frame-interval",
        type=positive_number,
        metavar="MIN",
        help="with --track: minutes between frames (default: the file's metadata, else "
        "growth rates per frame)",
    )
    thresholds = segment.add_argument_group(
        "post-processing (default: the model's own, from its config.json; docs/inference.md)"
    )
    thresholds.add_argument(
        "--foreground-threshold",
        type=fraction,
        metavar="P",
        help="a pixel is a cell pixel where 1 - p(background) exceeds this (0-1)",
    )
    thresholds.add_argument(
        "--seed-threshold",
        type=fraction,
        metavar="P",
        help="seeds: where the smoothed seed score exceeds this (0-1)",
    )
    thresholds.add_argument(
        "--min-cell-area",
        dest="min_cell_area_px",
        type=pixel_area,
        metavar="PX",
        help="smaller cells are removed, in pixels at the model's scale",
    )
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
    train.add_argument(
        "--overwrite",
        action="store_true",
        help="start afresh, removing an earlier run in --out (else it is resumed)",
    )
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
    tune.add_argument(
        "--overwrite",
        action="store_true",
        help="start afresh, removing an earlier run in --out (else it is resumed only when "
        "it fine-tuned the same model on the same images with the same settings)",
    )
    _add_reader_options(tune)
    tune.set_defaults(run=_cmd_finetune)
    return parser


def _error_types() -> tuple[type[BaseException], ...]:
    """Errors that are the user's input or machine, reported as one line instead of a traceback.

    ``--debug`` shows the traceback instead. Other exceptions are bugs: they show theirs.
    """
    return (
        ValueError,
        RuntimeError,  # an unavailable device, out of device memory
        OSError,  # missing, existing, unreadable files; a full disk, a read-only folder
        MemoryError,
    )


def _error_words(error: BaseException) -> str:
    """The one line for an error: an OSError names its file and the system's reason."""
    if isinstance(error, OSError) and error.strerror and error.filename is not None:
        return f"{error.filename}: {error.strerror}"
    if isinstance(error, MemoryError):
        return f"out of memory ({error or 'an allocation failed'})"
    return str(error) or type(error).__name__


def _quiet_stdout() -> None:
    """After a broken pipe (``dmqpm info ... | head -1``): drop what is left to print."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):  # no real stdout (tests): nothing to drop
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``dmqpm`` command line; returns the exit status.

    A command that fails removes the ``--out`` folder (and its parents) it created, if they
    are still empty; folders that existed before are never removed.
    """
    args = _build_parser().parse_args(argv)
    command: Callable[[argparse.Namespace], int] = args.run
    created = new_folders(getattr(args, "out", None))
    status = 1
    try:
        check_out_folder(getattr(args, "out", None))
        for line in stale_temporaries(getattr(args, "out", None)):  # left by a killed run
            print(f"dmqpm {args.command}: {line}", file=sys.stderr)
        with handle_sigterm():  # like Ctrl+C: writers clean up, nothing is half-written
            status = command(args)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return status
    except BrokenPipeError:  # the reader of our output has gone (| head -1): not an error
        _quiet_stdout()
        status = 141  # as a shell reports a process ended by SIGPIPE
        return status
    except _error_types() as error:
        if args.debug:
            raise
        words = cli_words(_error_words(error), args.command)
        print(f"dmqpm {args.command}: error: {words}", file=sys.stderr)
        status = 2
        return status
    except KeyboardInterrupt as interrupt:
        terminated = isinstance(interrupt, Terminated)
        words = "terminated (SIGTERM)" if terminated else "interrupted"
        print(f"dmqpm {args.command}: {words}", file=sys.stderr)
        status = 143 if terminated else 130  # 128 + the signal's number, as shells report
        return status
    finally:
        if status != 0:
            remove_if_empty(created)


if __name__ == "__main__":
    sys.exit(main())
