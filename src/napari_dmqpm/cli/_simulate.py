"""``dmqpm simulate``: simulated ssQPM stacks with instance labels, or growing time-lapses."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from napari_dmqpm.cli._args import positive_number

__all__ = ["DENSITY_NAMES", "SIMULATE_DEFAULTS", "add_parser", "run"]

# Written out so that building the parser does not import the simulator; test_cli_options checks
# them against simulation.config.DENSITY_PRESETS and the defaults of simulation.dataset.

#: The density presets (simulation.config.DENSITY_PRESETS).
DENSITY_NAMES = ("sparse", "medium", "dense", "confluent")

#: ``n_frames`` of write_dataset; frames of a time-lapse when --frames gives none (the CLI's
#: own); write_growth_dataset's ``frame_interval_min``.
SIMULATE_DEFAULTS: dict[str, Any] = {
    "n_frames": 1,
    "timelapse_frames": 10,
    "frame_interval_min": 10.0,
}


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Add ``simulate`` to the sub-commands."""
    simulate = commands.add_parser(
        "simulate", help="write simulated ssQPM stacks with instance labels"
    )
    simulate.add_argument("--out", type=Path, required=True, help="output folder")
    simulate.add_argument("--n", type=int, default=4, help="number of fields (default 4)")
    simulate.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    simulate.add_argument(
        "--density",
        default=None,
        help=f"{', '.join(DENSITY_NAMES)}, or a cover fraction in (0, 1)",
    )
    simulate.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), help="field size")
    simulate.add_argument(
        "--frames", type=int, default=SIMULATE_DEFAULTS["n_frames"], help="time points per field"
    )
    simulate.add_argument(
        "--timelapse",
        action="store_true",
        help="time-lapses of growing, dividing cells with the true lineage (--frames, default "
        f"{SIMULATE_DEFAULTS['timelapse_frames']}; --frame-interval, default "
        f"{SIMULATE_DEFAULTS['frame_interval_min']:g} min)",
    )
    simulate.add_argument(
        "--frame-interval", type=positive_number, metavar="MIN", help="minutes between frames"
    )
    simulate.add_argument(
        "--overwrite", action="store_true", help="replace files of an earlier run in --out"
    )
    simulate.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Write the fields (:func:`napari_dmqpm.simulation.write_dataset`) or time-lapses."""
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
            n_frames=args.frames if args.frames > 1 else SIMULATE_DEFAULTS["timelapse_frames"],
            frame_interval_min=args.frame_interval or SIMULATE_DEFAULTS["frame_interval_min"],
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
