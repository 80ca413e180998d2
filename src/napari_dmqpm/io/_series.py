"""Series 0 of a TIFF, found cheaply, and what the file holds besides it.

Every reader of the package reads a TIFF's first series. tifffile's ``TiffFile.series``
enumerates all series, which takes time quadratic in their number for tifffile "shaped" files
written one page at a time (20,000 pages: 90 s). :func:`first_series` counts the pages (a walk of
the page directories only) and, for a shaped file of more than :data:`MANY_PAGES` pages, builds
series 0 from the first page's shape metadata without enumerating the others. It also says
what is not read: the other series, or the pages beyond series 0.
"""

from __future__ import annotations

import json
import math

__all__ = ["MANY_PAGES", "first_series"]

#: Above this many pages, the series of a shaped TIFF are not enumerated.
MANY_PAGES = 1000


def _shaped_first(tif, n_pages: int):
    """Series 0 of a shaped file from its first page's JSON metadata, or None."""
    import tifffile

    page = tif.pages.first
    try:
        metadata = json.loads(page.description)
        shape = tuple(int(n) for n in metadata["shape"])
    except (ValueError, TypeError, KeyError):
        return None
    per_page = math.prod(page.shape)
    if not per_page or not shape or math.prod(shape) % per_page:
        return None
    n_series_pages = math.prod(shape) // per_page
    if n_series_pages >= n_pages:
        return None  # one series: tifffile's own is cheap
    pages = [tif.pages[index] for index in range(n_series_pages)]
    axes = metadata.get("axes")
    if not isinstance(axes, str) or len(axes) != len(shape):
        stored = (n_series_pages, *page.shape) if n_series_pages > 1 else page.shape
        axes = ("Q" if n_series_pages > 1 else "") + page.axes
        axes = tifffile.reshape_axes(axes, stored, shape)
    return tifffile.TiffPageSeries(pages, shape, page.dtype, axes, kind="shaped", squeeze=False)


def first_series(tif):
    """Series 0 of an open ``tifffile.TiffFile``, and what else the file holds, in words.

    Returns
    -------
    series : tifffile.TiffPageSeries or None
        None when the file has no image series.
    ignored : str
        ``""`` when series 0 is the whole file, else e.g. ``"reads series 0 (1 of 20000
        pages); the other 19999 pages ignored"``.
    """
    n_pages = len(tif.pages)
    series = _shaped_first(tif, n_pages) if n_pages > MANY_PAGES and tif.is_shaped else None
    n_series = None  # not counted when series 0 was built alone
    if series is None:
        if not tif.series:
            return None, ""
        series, n_series = tif.series[0], len(tif.series)
    first = series.keyframe if series.keyframe is not None else tif.pages.first
    planes = math.prod(series.shape) // max(math.prod(first.shape), 1)
    others = n_pages - planes
    if others <= 0 and (n_series or 1) == 1:
        return series, ""
    read = f"reads series 0 ({planes} of {_pages(n_pages)})"
    if n_series is not None and n_series > 1:
        rest = (
            f"{n_series - 1} series" if others <= 0 else f"{n_series - 1} series, {_pages(others)}"
        )
        return series, f"{read}; the other {rest} ignored"
    return series, f"{read}; the other {_pages(others)} ignored"


def _pages(n: int) -> str:
    return f"{n} page" if n == 1 else f"{n} pages"
