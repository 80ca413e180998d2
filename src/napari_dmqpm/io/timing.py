"""The time between frames from a TIFF's metadata: ImageJ ``finterval`` or OME ``TimeIncrement``.

ImageJ stores the frame interval as ``finterval`` in its header, in the unit ``tunit``
(seconds when absent); OME-TIFF as the ``TimeIncrement`` attribute of ``Pixels``, in
``TimeIncrementUnit`` (seconds when absent). Nothing else is guessed: a file without either
has no frame interval.
"""

from __future__ import annotations

import math
import os
import re

import tifffile

__all__ = ["read_frame_interval"]

#: Minutes per unit, for the time units ImageJ and OME write.
_MINUTES = {
    "ms": 1 / 60000,
    "msec": 1 / 60000,
    "s": 1 / 60,
    "sec": 1 / 60,
    "second": 1 / 60,
    "seconds": 1 / 60,
    "min": 1.0,
    "minute": 1.0,
    "minutes": 1.0,
    "h": 60.0,
    "hr": 60.0,
    "hour": 60.0,
    "hours": 60.0,
}


def read_frame_interval(path: str | os.PathLike) -> float | None:
    """The minutes between frames that a TIFF states, or None.

    Parameters
    ----------
    path : str or path-like
        A TIFF file (ImageJ hyperstack or OME-TIFF).

    Returns
    -------
    float or None
        Minutes; None when the file states no positive interval in a known unit.
    """
    with tifffile.TiffFile(path) as tif:
        if tif.is_imagej and tif.imagej_metadata:
            meta = tif.imagej_metadata
            found = _minutes(meta.get("finterval"), meta.get("tunit", "sec"))
            if found is not None:
                return found
        if tif.is_ome and tif.ome_metadata:
            return _ome_interval(tif.ome_metadata)
    return None


def _ome_interval(xml: str) -> float | None:
    pixels = re.search(r"<(?:\w+:)?Pixels\b[^>]*>", xml)
    if pixels is None:
        return None
    value = re.search(r'\bTimeIncrement="([^"]+)"', pixels.group(0))
    unit = re.search(r'\bTimeIncrementUnit="([^"]+)"', pixels.group(0))
    return _minutes(value.group(1) if value else None, unit.group(1) if unit else "s")


def _minutes(value: object, unit: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    factor = _MINUTES.get(str(unit).strip().lower())
    if factor is None or not (math.isfinite(number) and number > 0):
        return None
    return number * factor
