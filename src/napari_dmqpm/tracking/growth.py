r"""Growth of each track: robust fits of dry mass against time.

The growth rate is the Theil-Sen slope of the dry mass against time (pg/h): the median of the
slopes between all pairs of time points, which ignores a few frames of bad segmentation (up
to 29 % of the points, Sen 1968). The specific growth rate :math:`k` is the Theil-Sen slope
of :math:`\ln m` against time (1/h) and the doubling time is :math:`\ln 2 / k` (h), for cells
that grow (:math:`k > 0`); for an exponential law :math:`m(t) = m_0 e^{k t}` both are exact.

Frames in which the cell touches the field edge are left out of the fits (the edge cuts its
mass), and so are frames whose background the mass measurement could not trust
(``background_ok`` 0 in the cells table: too little background near the cell, the fitted
surface extrapolated; on simulated confluent time-lapses with the background cut, such masses
were off by a median 3.7-20 %, trusted ones by 0.2-0.7 %: benchmarks/bench_growth_background.py).
``n_fit_frames`` says how many frames each fit used. Without a frame interval the per-hour
columns are NaN and the per-frame columns hold the same fits against the frame index; without
dry mass (no phase, pixel size or wavelength) every rate is NaN. Nothing is guessed.

References
----------
.. [1] P. K. Sen, "Estimates of the regression coefficient based on Kendall's tau", Journal of
   the American Statistical Association 63, 1379-1389 (1968).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import theilslopes

__all__ = ["MIN_FIT_FRAMES", "TRACK_COLUMNS", "fit_growth", "track_table"]

#: Fewest frames with a positive, finite dry mass for a growth fit (else NaN).
MIN_FIT_FRAMES = 3

#: Columns of :func:`track_table`, with their units.
TRACK_COLUMNS: dict[str, str] = {
    "track_id": "label of the track in the relabelled labels",
    "parent": "track_id of the mother (0: none)",
    "first_frame": "time point index",
    "last_frame": "time point index",
    "n_frames": "frames in which the cell was found",
    "n_fit_frames": "frames the growth fits used: off the field edge, background trusted, "
    "dry mass positive (fewer than 3: no fit)",
    "division_frame": "first frame of the daughters (-1: no division seen)",
    "n_daughters": "tracks whose parent this is",
    "touches_border": "the cell touches the field edge in some frame (mass cut; bool)",
    "dry_mass_first_pg": "pg, first frame (NaN without dry mass)",
    "dry_mass_last_pg": "pg, last frame (NaN without dry mass)",
    "growth_rate_pg_per_frame": "pg per frame, Theil-Sen slope of mass against frame (frames "
    "off the field edge)",
    "growth_rate_pg_per_h": "pg/h, Theil-Sen slope (NaN without a frame interval)",
    "specific_growth_rate_per_h": "1/h, Theil-Sen slope of ln(mass) (NaN without interval)",
    "doubling_time_frames": "frames, ln 2 over the slope of ln(mass) per frame (NaN if <= 0)",
    "doubling_time_h": "h, ln 2 / specific growth rate (NaN without interval or if <= 0)",
}


def fit_growth(times: np.ndarray, masses: np.ndarray) -> tuple[float, float]:
    """Theil-Sen slopes of mass and of log mass against time.

    Parameters
    ----------
    times : ndarray of shape (n,)
        Time of each point (h, or frames).
    masses : ndarray of shape (n,)
        Dry mass at each time, pg; points with a mass that is not finite and positive are
        left out.

    Returns
    -------
    rate : float
        pg per unit of ``times``; NaN with fewer than ``MIN_FIT_FRAMES`` usable points.
    specific_rate : float
        1 per unit of ``times``; NaN likewise.

    Examples
    --------
    >>> t = np.arange(5.0)
    >>> rate, k = fit_growth(t, 100 * np.exp(0.1 * t))
    >>> round(k, 6), round(rate, 2)
    (0.1, 12.27)
    """
    times, masses = np.asarray(times, np.float64), np.asarray(masses, np.float64)
    usable = np.isfinite(masses) & (masses > 0) & np.isfinite(times)
    if np.count_nonzero(usable) < MIN_FIT_FRAMES:
        return math.nan, math.nan
    times, masses = times[usable], masses[usable]
    rate = float(theilslopes(masses, times).slope)
    specific = float(theilslopes(np.log(masses), times).slope)
    return rate, specific


def _doubling(specific_rate: float) -> float:
    return math.log(2.0) / specific_rate if specific_rate > 0 else math.nan


def track_table(
    cells: dict[str, np.ndarray],
    graph: dict[int, list[int]],
    *,
    frame_interval_min: float | None,
) -> dict[str, np.ndarray]:
    """One row per track: lineage, frames, dry mass and growth.

    Parameters
    ----------
    cells : dict of str to ndarray of shape (n_points,)
        One row per cell and frame with ``track_id``, ``frame``, ``dry_mass_pg`` and
        ``touches_border`` (and ``background_ok``: frames where it is False are not fitted),
        sorted by track, then frame.
    graph : dict of int to list of int
        ``{daughter_id: [parent_id]}``.
    frame_interval_min : float or None
        Minutes between frames; None leaves the per-hour columns NaN.

    Returns
    -------
    dict of str to ndarray of shape (n_tracks,)
        The columns of ``TRACK_COLUMNS``, by track id.
    """
    ids, starts = np.unique(cells["track_id"], return_index=True)
    bounds = np.append(starts, cells["track_id"].size)
    hours_per_frame = math.nan if frame_interval_min is None else frame_interval_min / 60.0
    daughters: dict[int, list[int]] = {}
    for child, (parent,) in graph.items():
        daughters.setdefault(parent, []).append(child)
    first_frame = {int(i): int(cells["frame"][s]) for i, s in zip(ids, starts, strict=True)}
    # the edge cuts the mass; an untrusted background makes it unreliable
    fitted = ~np.asarray(cells["touches_border"], bool)
    if "background_ok" in cells:
        fitted &= np.asarray(cells["background_ok"], bool)
    rows = []
    for track_id, start, stop in zip(ids, bounds[:-1], bounds[1:], strict=True):
        frames = cells["frame"][start:stop]
        masses = cells["dry_mass_pg"][start:stop]
        used = fitted[start:stop] & np.isfinite(masses) & (masses > 0)
        rate, specific = fit_growth(frames[used].astype(np.float64), masses[used])
        children = daughters.get(int(track_id), [])
        rows.append(
            (
                int(track_id),
                graph.get(int(track_id), [0])[0],
                int(frames[0]),
                int(frames[-1]),
                int(frames.size),
                int(np.count_nonzero(used)),
                min((first_frame[c] for c in children), default=-1),
                len(children),
                bool(cells["touches_border"][start:stop].any()),
                float(masses[0]),
                float(masses[-1]),
                rate,
                rate / hours_per_frame,
                specific / hours_per_frame,
                _doubling(specific),
                _doubling(specific / hours_per_frame),
            )
        )
    return _columns(rows)


def _columns(rows: list[tuple]) -> dict[str, np.ndarray]:
    dtypes = (np.int64,) * 8 + (bool,) + (np.float64,) * 7
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(TRACK_COLUMNS)
    return {
        name: np.array(values, dtype=dtype)
        for name, values, dtype in zip(TRACK_COLUMNS, columns, dtypes, strict=True)
    }
