"""Option types of the ``dmqpm`` command line, and the progress line and diameter words.

Nothing here imports torch or the reader.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections import Counter

__all__ = [
    "MAX_FRAMES",
    "TerminalProgress",
    "cell_diameter",
    "describe_diameter",
    "fraction",
    "parse_frames",
    "pixel_area",
    "positive_number",
]

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
