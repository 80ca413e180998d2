"""``dmqpm segment``: segment files into labels TIFFs and cells tables, here or on a pool."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
from pathlib import Path

from napari_dmqpm.cli._args import (
    TerminalProgress,
    cell_diameter,
    describe_diameter,
    fraction,
    parse_frames,
    pixel_area,
    positive_number,
)
from napari_dmqpm.cli._errors import THRESHOLD_FLAGS, CommandError, cli_words
from napari_dmqpm.cli._reader import add_reader_options, reader_kwargs, unit_warning
from napari_dmqpm.cli._track import track_segmented
from napari_dmqpm.inference.config import BACKEND_CHOICES, DEVICE_CHOICES, InferenceConfig

#: InferenceConfig's defaults, which the options of ``segment`` default to.
_INFERENCE_DEFAULTS = {field.name: field.default for field in dataclasses.fields(InferenceConfig)}

#: Defaults of iter_segment_files' pool options, written out so that building the parser does
#: not import the batch module (the model registry, the reader); test_cli_options checks them.
POOL_DEFAULTS = {"workers": 1, "retries": 2, "connect_timeout": 10.0}

__all__ = [
    "POOL_DEFAULTS",
    "add_parser",
    "add_pool_options",
    "postprocess_options",
    "run",
    "segment_options",
]


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Add ``segment`` to the sub-commands."""
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
        "--device",
        choices=DEVICE_CHOICES,
        default=_INFERENCE_DEFAULTS["device"],
        help=f"default {_INFERENCE_DEFAULTS['device']}",
    )
    segment.add_argument(
        "--diameter",
        type=cell_diameter,
        default=_INFERENCE_DEFAULTS["diameter_px"],
        metavar="auto|PX",
        help="typical cell diameter in pixels; default auto: estimated on each image (on the "
        f"first frame of a time-lapse, re-checked every {_INFERENCE_DEFAULTS['recheck_every']} "
        "frames) and printed",
    )
    segment.add_argument("--tta", action="store_true", help="mirror test-time augmentation")
    segment.add_argument(
        "--backend",
        choices=BACKEND_CHOICES,
        default=_INFERENCE_DEFAULTS["backend"],
        help=f"the engine that runs the network (default {_INFERENCE_DEFAULTS['backend']})",
    )
    segment.add_argument(
        "--batch-size",
        type=int,
        default=_INFERENCE_DEFAULTS["batch_size"],
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
    add_reader_options(segment)
    add_pool_options(segment)
    segment.set_defaults(run=run)


def add_pool_options(parser: argparse.ArgumentParser) -> None:
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
        default=POOL_DEFAULTS["workers"],
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
        "--retries",
        type=int,
        default=POOL_DEFAULTS["retries"],
        metavar="N",
        help=f"re-runs of a failed task (default {POOL_DEFAULTS['retries']})",
    )
    group.add_argument(
        "--connect-timeout",
        type=float,
        default=POOL_DEFAULTS["connect_timeout"],
        metavar="SECONDS",
        help="give up on an unreachable scheduler after this long "
        f"(default {POOL_DEFAULTS['connect_timeout']:g})",
    )


def postprocess_options(args: argparse.Namespace):
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


def segment_options(args: argparse.Namespace) -> dict:
    """The keyword arguments of inference.batch.iter_segment_files from the options."""
    config = InferenceConfig(
        device=args.device,
        diameter_px=args.diameter,
        tta=args.tta,
        batch_size=args.batch_size,
        backend=args.backend,
    )
    return {
        "out_dir": args.out,
        "model": args.model,
        "config": config,
        "postprocess": postprocess_options(args),
        "frames": args.frames,
        "read_options": reader_kwargs(args),
        "alpha_um3_per_pg": args.alpha,
        "overwrite": args.overwrite,
        "scheduler": args.scheduler,
        "scheduler_file": args.scheduler_file,
        "workers": args.workers,
        "torch_threads": args.torch_threads,
        "retries": args.retries,
        "connect_timeout": args.connect_timeout,
        "keep_going": True,  # one failing file does not stop the others (pools too)
    }


def run(args: argparse.Namespace) -> int:
    """Segment each input (:func:`napari_dmqpm.inference.batch.iter_segment_files`).

    Returns 2 when an input failed: the others are segmented all the same.
    """
    from napari_dmqpm.inference import describe_frames, output_paths
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
        results = iter_segment_files(args.inputs, **segment_options(args), progress=progress)
    except ImportError as err:  # no dask.distributed: one line with the pip command
        raise CommandError(str(err)) from err
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
            written = (result.labels_path, result.table_path, result.frames_path)
            without = describe_frames(result.frames)  # said, not left to an empty table
            print(
                f"{inputs[result.labels_path]}: {result.n_cells} cells in {result.n_frames} "
                f"frame(s) with {result.model}, {describe_diameter(result, args.diameter)} "
                f"-> {', '.join(str(path) for path in written if path is not None)}"
                f"{'' if without is None else '; ' + without}",
                flush=True,
            )
            if args.track:
                track_segmented(inputs[result.labels_path], result, args)
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
