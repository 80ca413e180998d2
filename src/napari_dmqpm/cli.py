"""The ``dmqpm`` command line: each sub-command is a thin call into one core function.

Run ``dmqpm --help`` or ``dmqpm COMMAND --help``. Heavy modules are imported inside the
command that needs them, so ``dmqpm info`` starts fast and never imports torch.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from napari_dmqpm import __version__

_KINDS = ("ssqpm-stack", "angles-stack", "raw-mosaic", "phase-map")


def _cmd_info(args: argparse.Namespace) -> int:
    from napari_dmqpm.io import describe_file

    for index, path in enumerate(args.files):
        if index:
            print()
        print(describe_file(path, kind=args.kind))
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
    )
    print(f"wrote {len(written)} files to {args.out}")
    for path in written:
        print(f"  {path}")
    return 0


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dmqpm",
        description="Cell segmentation for single-shot polarization QPM (napari-dmqpm).",
    )
    parser.add_argument("--version", action="version", version=f"napari-dmqpm {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    info = commands.add_parser("info", help="say what kind of file this is and how it will be read")
    info.add_argument("files", nargs="+", type=Path, metavar="FILE")
    info.add_argument("--kind", choices=_KINDS, help="override format detection")
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
    simulate.set_defaults(run=_cmd_simulate)
    return parser


def _error_types() -> tuple[type[BaseException], ...]:
    """Errors that are the user's input, reported as one line instead of a traceback."""
    return (ValueError, FileNotFoundError, FileExistsError, PermissionError, IsADirectoryError)


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
