"""``dmqpm track``: link labels stacks over time; also the linking of ``segment --track``."""

from __future__ import annotations

import argparse
from pathlib import Path

from napari_dmqpm.cli._args import positive_number

__all__ = ["add_parser", "run", "say_tracked", "track_segmented"]


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Add ``track`` to the sub-commands."""
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
    track.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Track each labels stack (:func:`napari_dmqpm.tracking.files.track_file`)."""
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
        say_tracked(str(path), result)
    return 0


def say_tracked(what: str, result) -> None:
    """One line on what tracking found and the frame interval, then the files written."""
    tracks = result.tracks
    if result.frame_interval_min is None:
        timing = "frame interval unknown: growth rates are per frame (pg/frame), not per hour"
    else:
        timing = f"frame interval {result.frame_interval_min:g} min ({result.interval_source})"
    print(f"{what}: {tracks.n_tracks} tracks, {tracks.n_divisions} divisions; {timing}")
    for written in result.paths:
        print(f"  {written}", flush=True)


def track_segmented(source: Path, result, args: argparse.Namespace) -> None:
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
    say_tracked(f"  tracked {source}", tracked)
