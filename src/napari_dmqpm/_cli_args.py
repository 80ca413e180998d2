"""Pieces of the ``dmqpm`` command line: option types, the words of errors, clean-up, warnings.

:mod:`napari_dmqpm.cli` builds the parser and runs the commands with these. Nothing here
imports torch; the reader is imported only where a file's values are looked at.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from collections import Counter
from pathlib import Path

__all__ = [
    "FLAGS",
    "PHASE_UNITS",
    "THRESHOLD_FLAGS",
    "TerminalProgress",
    "cell_diameter",
    "check_out_folder",
    "cli_words",
    "describe_diameter",
    "fraction",
    "new_folders",
    "parse_frames",
    "pixel_area",
    "positive_number",
    "remove_if_empty",
    "unit_warning",
]

#: Units of ``--phase-unit`` (napari_dmqpm.io.units.PHASE_UNITS, without importing the reader).
PHASE_UNITS = ("rad", "opd_um", "opd_nm", "pg_per_um2")

#: The most frames ``--frames`` may name (a typo such as 0-10000000000 must not eat the memory).


MAX_FRAMES = 1_000_000


def positive_number(text: str) -> float:
    """A finite number > 0 (``--pixel-size-um``, ``--wavelength-um``)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number; got {text!r}")
    return value


def fraction(text: str) -> float:
    """A threshold strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1; got {text!r}")
    return value


def pixel_area(text: str) -> int:
    """A whole number of pixels >= 0."""
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number of pixels >= 0; got {text!r}")
    return int(text)


def parse_frames(text: str) -> list[int]:
    """``--frames``: 0-based indices and inclusive ranges, comma-separated, in this order.

    Parameters
    ----------
    text : str
        E.g. ``"0,2,5-7"``.

    Returns
    -------
    list of int
        The frames, in the order given.

    Raises
    ------
    argparse.ArgumentTypeError
        Anything else, a range that runs backwards, a frame named twice, or more than a
        million frames.

    Examples
    --------
    >>> parse_frames("0,2,5-7")
    [0, 2, 5, 6, 7]
    """
    chosen: list[int] = []
    for part in text.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if match is None:
            raise argparse.ArgumentTypeError(
                f"expected 0-based frame indices and ranges such as 0,2,5-7; got {text!r}"
            )
        low = int(match[1])
        high = low if match[2] is None else int(match[2])
        if high < low:
            raise argparse.ArgumentTypeError(f"the range {part.strip()!r} runs backwards")
        if len(chosen) + high - low + 1 > MAX_FRAMES:
            raise argparse.ArgumentTypeError(f"more than {MAX_FRAMES} frames in {text!r}")
        chosen.extend(range(low, high + 1))
    twice = sorted(frame for frame, count in Counter(chosen).items() if count > 1)
    if twice:
        raise argparse.ArgumentTypeError(f"frames named twice in {text!r}: {twice}")
    return chosen


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


class TerminalProgress:
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


def cell_diameter(text: str) -> str | float:
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


def describe_diameter(result, given: str | float) -> str:
    """'cell diameter 48.2 px (estimated)' for the line printed per file."""
    values = result.cell_diameter_px
    if not values:
        return "not resampled by cell size"
    how = "estimated" if given == "auto" else "given"
    if len(values) == 1:
        return f"cell diameter {values[0]:.1f} px ({how})"
    return f"cell diameter {values[0]:.1f}-{values[-1]:.1f} px ({how}, re-checked over frames)"


THRESHOLD_FLAGS = {
    "foreground_threshold": "--foreground-threshold",
    "seed_threshold": "--seed-threshold",
    "min_cell_area_px": "--min-cell-area",
}


#: Keyword arguments of the core that are options of a command: errors name the option.


READER_FLAGS = {
    "kind": "--kind",
    "phase_unit": "--phase-unit",
    "wavelength_um": "--wavelength-um",
    "pixel_size_um": "--pixel-size-um",
    "alpha_um3_per_pg": "--alpha",
    "demosaic_method": "--demosaic-method",
    "mosaic_origin": "--mosaic-origin",
}
FLAGS: dict[str, dict[str, str]] = {
    "info": READER_FLAGS,
    "simulate": {
        "overwrite": "--overwrite",
        "n": "--n",
        "seed": "--seed",
        "density": "--density",
        "shape": "--size",
        "n_frames": "--frames",
        "frame_interval_min": "--frame-interval",
    },
    "track": {
        "overwrite": "--overwrite",
        "frame_interval_min": "--frame-interval",
        "pixel_size_um": "--pixel-size-um",
        "wavelength_um": "--wavelength-um",
    },
    "segment": {
        **READER_FLAGS,
        **THRESHOLD_FLAGS,
        "overwrite": "--overwrite",
        "diameter_px": "--diameter",
        "frames": "--frames",
        "device": "--device",
        "tta": "--tta",
        "batch_size": "--batch-size",
        "workers": "--workers",
        "torch_threads": "--torch-threads",
        "retries": "--retries",
        "connect_timeout": "--connect-timeout",
        "scheduler_file": "--scheduler-file",
        "scheduler": "--scheduler",
    },
    "evaluate": {"iou_threshold": "--iou"},
    "train": {
        "minutes": "--minutes",
        "epochs": "--epochs",
        "device": "--device",
        "overwrite": "--overwrite",
    },
    "finetune": {
        **READER_FLAGS,
        "minutes": "--minutes",
        "epochs": "--epochs",
        "learning_rate": "--lr",
        "device": "--device",
        "overwrite": "--overwrite",
        "base_checkpoint": "--model",
        "name": "--name",
    },
}


#: Whole phrases first: a command without --overwrite says what to do instead.


PHRASES = {
    "finetune": {
        "pass overwrite=True": "choose another --name",
        "choose another name": "choose another --name",
    }
}


def cli_words(message: str, command: str) -> str:
    """A core error message with the keyword arguments it names turned into the options.

    Parameters
    ----------
    message : str
        The error's text, e.g. ``"... exists; pass overwrite=True to replace it"``.
    command : str
        The sub-command, which decides the options (``"segment"``, ...).

    Returns
    -------
    str
        E.g. ``"... exists; pass --overwrite to replace it"``.

    Examples
    --------
    >>> cli_words("frames must be indices in [0, 3); got frames=[5]", "segment")
    '--frames must be indices in [0, 3); got --frames [5]'
    >>> cli_words("pass wavelength_um=... (e.g. 0.65)", "info")
    'pass --wavelength-um (e.g. 0.65)'
    """
    for phrase, words in PHRASES.get(command, {}).items():
        message = message.replace(phrase, words)
    flags = FLAGS.get(command, {})
    for name in sorted(flags, key=len, reverse=True):  # scheduler_file before scheduler
        flag, start = flags[name], rf"(?<![\w.-]){name}"
        message = re.sub(rf"{start}=(True\b|\.\.\.)", flag, message)
        message = re.sub(rf"{start}=", f"{flag} ", message)
        message = re.sub(rf"{start}(?= (must|needs)\b)", flag, message)
        if "_" in name:  # an identifier wherever it stands ("leave diameter_px unset")
            message = re.sub(rf"{start}(?![\w'])", flag, message)
    return message


def check_out_folder(out: Path | None) -> None:
    """NotADirectoryError when ``--out`` or one of its parents is a file, not a folder."""
    if out is None:
        return
    folder = Path(os.path.abspath(out))
    for place in (folder, *folder.parents):
        if os.path.lexists(place):
            if not place.is_dir():
                where = "is a file" if place == folder else f"lies in {place}, a file"
                raise NotADirectoryError(f"--out {out} {where}, not a folder")
            return


def new_folders(out: Path | None) -> list[Path]:
    """``out`` and those of its parents that do not exist yet, deepest first."""
    missing: list[Path] = []
    if out is None:
        return missing
    folder = Path(os.path.abspath(out))
    while not os.path.lexists(folder) and folder.parent != folder:
        missing.append(folder)
        folder = folder.parent
    return missing


def remove_if_empty(folders: list[Path]) -> None:
    """Remove the folders a failed command created, deepest first, while they are empty."""
    for folder in folders:
        if not folder.is_dir() or folder.is_symlink():
            continue  # never made (the command failed before), or not ours
        try:
            folder.rmdir()  # refuses a folder with anything in it
        except OSError:
            return
