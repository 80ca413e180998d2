"""How a ``dmqpm`` command reads its input: the reader's options, and warnings on a phase's unit.

Shared by ``info``, ``segment`` and ``finetune`` (docs/formats.md). Nothing here imports
torch; the reader is imported only where a file's values are looked at.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from napari_dmqpm.cli._args import positive_number

__all__ = [
    "ALPHA_UM3_PER_PG",
    "DEMOSAIC_METHODS",
    "KINDS",
    "PHASE_UNITS",
    "add_reader_options",
    "reader_kwargs",
    "stored_phase_note",
    "unit_warning",
]

# The reader's choices and defaults, written out so that building the parser does not import
# the reader (a quarter of a second at every start); test_cli_options checks each against
# napari_dmqpm.io.

#: Units of ``--phase-unit`` (napari_dmqpm.io.PHASE_UNITS).
PHASE_UNITS = ("rad", "opd_um", "opd_nm", "pg_per_um2")

#: Kinds of input of ``--kind`` (napari_dmqpm.io.FILE_KINDS).
KINDS = ("ssqpm-stack", "angles-stack", "raw-mosaic", "phase-map")

#: ``--demosaic-method`` (napari_dmqpm.io.mosaic.DEMOSAIC_METHODS; the first is the default).
DEMOSAIC_METHODS = ("superpixel", "interpolate")

#: ``--alpha``: the reader's default specific refraction increment in µm³/pg.
ALPHA_UM3_PER_PG = 0.18


def add_reader_options(parser: argparse.ArgumentParser) -> None:
    """Options that change how an input file is interpreted (docs/formats.md)."""
    group = parser.add_argument_group("how to read the input (see docs/formats.md)")
    group.add_argument("--kind", choices=KINDS, help="override the format detection")
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
        default=ALPHA_UM3_PER_PG,
        metavar="UM3_PER_PG",
        help=f"specific refractive increment for pg/µm² maps (default {ALPHA_UM3_PER_PG} µm³/pg)",
    )
    group.add_argument(
        "--demosaic-method",
        choices=DEMOSAIC_METHODS,
        default=DEMOSAIC_METHODS[0],
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


def reader_kwargs(args: argparse.Namespace) -> dict:
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


def stored_phase_note(path: Path, args: argparse.Namespace) -> tuple[str, str | None] | None:
    """(kind, what the stored values say of their unit) for a file that stores a phase.

    None for a file that stores none (its phase is retrieved, in radians), for an ssQPM
    stack without ``--phase-unit`` (radians by the format), and for a file that cannot be
    read (the command itself then says why).
    """
    import warnings

    import numpy as np

    from napari_dmqpm.io import inspect_file, read_acquisition
    from napari_dmqpm.io.units import phase_unit_note

    try:
        kind = inspect_file(path, kind=args.kind).kind
        if kind != "phase-map" and (kind != "ssqpm-stack" or args.phase_unit is None):
            return None
        with warnings.catch_warnings():  # NaN pixels: the real read warns about them
            warnings.simplefilter("ignore")
            stored = read_acquisition(path, kind=args.kind, lazy=True).phase[0]  # as stored
            values = np.asarray(stored)
    except (OSError, ValueError):
        return None
    return kind, phase_unit_note(values, unit=args.phase_unit)


def unit_warning(path: Path, args: argparse.Namespace) -> str | None:
    """The warning for a phase read as radians without anyone saying so, or looking wrong."""
    found = stored_phase_note(path, args)
    if found is None:
        return None
    kind, note = found
    if args.phase_unit is not None:
        return None if note is None else f"{path}: --phase-unit {args.phase_unit}, but {note}"
    if kind != "phase-map":
        return None
    return (
        f"{path}: phase unit not stated; assumed rad. Give --phase-unit "
        f"{'|'.join(PHASE_UNITS)} to silence this ({note})"
    )
