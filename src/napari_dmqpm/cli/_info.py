"""``dmqpm info``: say what kind of file this is and how it will be read."""

from __future__ import annotations

import argparse
from pathlib import Path

from napari_dmqpm.cli._reader import add_reader_options, reader_kwargs, stored_phase_note

__all__ = ["add_parser", "run"]


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Add ``info`` to the sub-commands."""
    info = commands.add_parser("info", help="say what kind of file this is and how it will be read")
    info.add_argument("files", nargs="+", type=Path, metavar="FILE")
    add_reader_options(info)
    info.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Describe each file (:func:`napari_dmqpm.io.describe_file`); returns the exit status."""
    from napari_dmqpm.io import describe_file

    for index, path in enumerate(args.files):
        if index:
            print()
        print(describe_file(path, **{**reader_kwargs(args), "phase_unit": args.phase_unit}))
        found = stored_phase_note(path, args)
        if found is not None and found[1] is not None:
            print(f"  values:      {found[1].removeprefix('values ')} (frame 0)")
    return 0
