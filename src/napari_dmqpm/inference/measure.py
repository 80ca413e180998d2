r"""Per-cell measurements from instance labels and phase: area, phase, dry mass, centroid.

The dry mass of a cell follows from its integrated phase (Barer 1952; Popescu et al. 2008):

.. math::

    m = \frac{\lambda}{2 \pi \alpha} \iint_\text{cell} \varphi \, dA

with the phase :math:`\varphi` in radians, the wavelength :math:`\lambda` in µm, the specific
refraction increment :math:`\alpha` in µm³/pg (0.18 for typical cell content, i.e. 0.18 mL/g)
and the area element :math:`dA` in µm², so that :math:`m` is in pg. The integral is the sum of
the phase over the cell's pixels times the pixel area.

The phase is measured against the medium around the cells: a low-order surface is fitted
(:func:`napari_dmqpm.phase.fit_background`) to the pixels the labels leave as background,
more than ``background_margin_px`` from any cell (its blurred rim), and subtracted. The
phase retrieval's own background fit sees no labels; in a confluent field, with a few per
cent of background, it settles partly on the cells and leaves an offset and curvature that
change from frame to frame (area x offset in every cell's mass). Each row says how many
background pixels the fit used and whether the background under the cell is trusted.

The table is a dict of equally long numpy columns (what napari's ``Labels.features`` and
``pandas.DataFrame`` take); :func:`write_table_csv` writes it atomically.

References
----------
.. [1] R. Barer, "Interference microscopy and mass determination", Nature 169, 366-367 (1952).
.. [2] G. Popescu et al., "Optical imaging of cell mass and growth dynamics", American Journal
   of Physiology - Cell Physiology 295, C538-C544 (2008).
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import ndimage

from napari_dmqpm.io.write import atomic_write
from napari_dmqpm.phase import BACKGROUND_ORDERS, BackgroundFit, BackgroundName, fit_background

#: Column names, in order, with their units.
TABLE_COLUMNS: dict[str, str] = {
    "frame": "time point index",
    "label": "cell label in the labels image",
    "area_px": "pixels",
    "area_um2": "µm² (NaN without a pixel size)",
    "mean_phase_rad": "rad",
    "integrated_phase_rad_px": "rad·px² (sum over the cell's pixels)",
    "integrated_phase_rad_um2": "rad·µm² (NaN without a pixel size)",
    "dry_mass_pg": "pg (NaN without pixel size or wavelength)",
    "centroid_row": "px",
    "centroid_col": "px",
    "centroid_y_um": "µm (row axis; NaN without a pixel size)",
    "centroid_x_um": "µm (column axis; NaN without a pixel size)",
    "pixel_size_um": "µm used (NaN if unknown)",
    "wavelength_um": "µm used (NaN if unknown)",
    "alpha_um3_per_pg": "specific refraction increment used, µm³/pg",
    "cell_diameter_px": "typical cell diameter the frame was resampled for, px (estimated or "
    "given; NaN when not resampled by size)",
    "backend": "what ran the network on the frame: torch, onnxruntime or openvino (text; empty "
    "when the labels did not come from a segmentation)",
    "precision": "the arithmetic it ran at: float32 or bfloat16 (text; empty likewise)",
    "background_rad": "mean background phase subtracted over the cell's pixels, rad (the "
    "fitted surface; 0 without a background fit)",
    "background_px": "background pixels the frame's background fit used (label 0, away from "
    "the cells, within the robust clip; 0: no fit)",
    "background_extrapolation": "standard error of the background subtracted from the cell "
    "(its mean over the cell's pixels) over that of the mean of the fit's pixels (about 1-3 "
    "among well spread background, large where the surface is extrapolated far from it; NaN "
    "without a fit)",
    "background_ok": "1 when the background under the cell is trusted; 0 when the frame has "
    "too little background, or none near the cell, for a reliable dry mass",
}
_INTEGER_COLUMNS = ("frame", "label", "area_px", "background_px", "background_ok")
#: Columns of text; every other column is a number (what :func:`read_table_csv` reads).
TEXT_COLUMNS = ("backend", "precision")
#: Pixels per row band of :func:`measure_cells` (bounds its temporary memory on huge frames).
MEASURE_CHUNK_PIXELS = 2**22
#: Largest ``background_extrapolation`` with ``background_ok`` = 1. Measured on simulated
#: confluent fields (benchmarks/bench_dry_mass.py): below it the cells' dry-mass errors stay
#: within a few per cent; far above it the quadratic is extrapolated into errors of 10-100 %.
MAX_BACKGROUND_EXTRAPOLATION = 30.0


def empty_table() -> dict[str, np.ndarray]:
    """A table with every column and no rows."""
    return {name: np.zeros(0, dtype=_dtype(name)) for name in TABLE_COLUMNS}


def _dtype(name: str) -> type:
    if name in TEXT_COLUMNS:
        return np.str_
    return np.int64 if name in _INTEGER_COLUMNS else np.float64


def _positive_or_nan(name: str, value: float | None) -> float:
    if value is None:
        return math.nan
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number or None; got {name}={value!r}")
    return float(value)


def measure_cells(
    labels: np.ndarray,
    phase: np.ndarray,
    *,
    pixel_size_um: float | None = None,
    wavelength_um: float | None = None,
    alpha_um3_per_pg: float = 0.18,
    frame: int | None = None,
    cell_diameter_px: float | None = None,
    background: BackgroundName | None = "quadratic",
    background_margin_px: float = 2.0,
    backend: str = "",
    precision: str = "",
) -> dict[str, np.ndarray]:
    r"""Area, phase, dry mass and centroid of every cell of one frame.

    Parameters
    ----------
    labels : ndarray of shape (M, N), integer
        Instance labels, 0 is background. Not modified.
    phase : ndarray of shape (M, N)
        Phase in radians, background-corrected by the retrieval or not: ``background``
        measures each cell against the medium around the cells.
    pixel_size_um : float, optional
        Pixel size in µm; without it the µm columns and the dry mass are NaN.
    wavelength_um : float, optional
        Illumination wavelength in µm; without it the dry mass is NaN.
    alpha_um3_per_pg : float
        Specific refraction increment in µm³/pg (= mL/g); 0.18 by default.
    frame : int, optional
        Time point written in the ``frame`` column (0 when None).
    cell_diameter_px : float, optional
        The typical cell diameter the segmentation resampled for, written in the
        ``cell_diameter_px`` column (NaN when None).
    background : {"quadratic", "plane", "offset"} or None
        The surface fitted (:func:`napari_dmqpm.phase.fit_background`) to the pixels with
        label 0 more than ``background_margin_px`` from every cell, and subtracted before
        measuring; "quadratic" (default) also takes out the curvature a whole-frame fit
        leaves in a confluent field. None: the phase as given (``background_px`` 0,
        ``background_ok`` 1). Without enough background pixels for the surface, the phase
        is used as given and the rows say ``background_ok`` 0.
    background_margin_px : float
        Background pixels within this distance of a cell are left out of the fit: the
        optics blur a cell's phase into its rim (2 px: the halo of a 0.8 µm point spread
        at 0.63 µm pixels is below the noise beyond it).
    backend, precision : str
        What ran the network that made ``labels`` and at which arithmetic
        (``Probabilities.backend`` and ``.precision``), written in the ``backend`` and
        ``precision`` columns; empty for labels that did not come from a segmentation.

    Returns
    -------
    dict of str to ndarray of shape (n_cells,)
        The columns of ``TABLE_COLUMNS`` in that order, one row per label present, by label.
        ``dry_mass_pg = wavelength_um / (2 pi alpha) * integrated_phase_rad_um2``, the phase
        integrated above the fitted background; ``background_ok`` is 1 where
        ``background_extrapolation <= MAX_BACKGROUND_EXTRAPOLATION``.

    Examples
    --------
    A flat disk of 1 rad over 100 pixels of 1 µm², at 0.65 µm:
    0.65 / (2 pi 0.18) x 100 rad·µm² = 57.47 pg.

    >>> labels = np.zeros((20, 20), np.int32)
    >>> labels[5:15, 5:15] = 3
    >>> table = measure_cells(labels, (labels > 0) * 1.0, pixel_size_um=1.0, wavelength_um=0.65)
    >>> int(table["label"][0]), int(table["area_px"][0]), round(float(table["dry_mass_pg"][0]), 2)
    (3, 100, 57.47)
    """
    labels, phase = np.asarray(labels), np.asarray(phase)
    if labels.ndim != 2 or phase.shape != labels.shape:
        raise ValueError(
            f"labels and phase must both have shape (M, N); got labels.shape={labels.shape}, "
            f"phase.shape={phase.shape}"
        )
    if not np.issubdtype(labels.dtype, np.integer) or (labels.size and labels.min() < 0):
        raise ValueError(f"labels must hold integers >= 0; got labels.dtype={labels.dtype}")
    pixel = _positive_or_nan("pixel_size_um", pixel_size_um)
    wavelength = _positive_or_nan("wavelength_um", wavelength_um)
    alpha = _positive_or_nan("alpha_um3_per_pg", alpha_um3_per_pg)
    diameter = _positive_or_nan("cell_diameter_px", cell_diameter_px)
    fit, n_background = _fit_background(labels, phase, background, background_margin_px)
    sums = _label_sums(labels, phase, 0 if fit is None else fit.order)
    area, centroid_row, centroid_col = sums.area, sums.row, sums.col
    present = np.flatnonzero(area)
    present = present[present > 0]
    count = area[present].astype(np.float64)
    level, extrapolation = np.zeros(present.size), np.full(present.size, math.nan)
    if fit is not None:  # the mean of the surface over each cell, and its standard error
        terms = sums.mean_terms(labels.shape, fit.order)[present]
        level = terms @ fit.coefficients
        spread = np.einsum("ij,jk,ik->i", terms, fit.extrapolation_matrix, terms)
        extrapolation = np.sqrt(np.maximum(spread, 0.0))
    trusted = (background is None) | (extrapolation <= MAX_BACKGROUND_EXTRAPOLATION)
    integrated_px = sums.phase[present] - level * count
    centroid_row, centroid_col = centroid_row[present] / count, centroid_col[present] / count
    integrated_um2 = integrated_px * pixel**2
    return {
        "frame": np.full(present.size, 0 if frame is None else int(frame), dtype=np.int64),
        "label": present.astype(np.int64),
        "area_px": area[present].astype(np.int64),
        "area_um2": count * pixel**2,
        "mean_phase_rad": integrated_px / count,
        "integrated_phase_rad_px": integrated_px,
        "integrated_phase_rad_um2": integrated_um2,
        "dry_mass_pg": wavelength / (2.0 * math.pi * alpha) * integrated_um2,
        "centroid_row": centroid_row,
        "centroid_col": centroid_col,
        "centroid_y_um": centroid_row * pixel,
        "centroid_x_um": centroid_col * pixel,
        "pixel_size_um": np.full(present.size, pixel),
        "wavelength_um": np.full(present.size, wavelength),
        "alpha_um3_per_pg": np.full(present.size, alpha),
        "cell_diameter_px": np.full(present.size, diameter),
        "backend": np.full(present.size, str(backend)),
        "precision": np.full(present.size, str(precision)),
        "background_rad": level,
        "background_px": np.full(present.size, n_background, dtype=np.int64),
        "background_extrapolation": extrapolation,
        "background_ok": trusted.astype(np.int64),
    }


def _fit_background(
    labels: np.ndarray, phase: np.ndarray, surface: BackgroundName | None, margin_px: float
) -> tuple[BackgroundFit | None, int]:
    """The background surface of the frame's non-cell pixels, and the pixels it used.

    None and 0 without ``surface``, without cells, or with too few background pixels for
    the surface.
    """
    if surface is None:
        return None, 0
    if surface not in BACKGROUND_ORDERS:
        raise ValueError(
            f"background must be one of {tuple(BACKGROUND_ORDERS)} or None; got {surface!r}"
        )
    if not (isinstance(margin_px, (int, float)) and math.isfinite(margin_px) and margin_px >= 0):
        raise ValueError(f"background_margin_px must be a number >= 0; got {margin_px!r}")
    empty = labels == 0
    if empty.all():  # no cells to measure: no fit
        return None, 0
    mask = empty
    if margin_px > 0:  # not within margin_px of a cell: a disk dilation
        reach = int(margin_px)
        offsets = np.arange(-reach, reach + 1)
        disk = offsets[:, None] ** 2 + offsets[None, :] ** 2 <= margin_px**2
        mask = ~ndimage.binary_dilation(~empty, structure=disk)
    try:
        fit = fit_background(phase, mask, surface=surface)
    except ValueError:
        return None, 0
    return fit, fit.n_pixels


class _Sums:
    """Per label value: pixel count and sums of phase, row, column and the squared terms."""

    def __init__(self, n_bins: int) -> None:
        self.area = np.zeros(n_bins, dtype=np.int64)
        self.phase, self.row, self.col = np.zeros((3, n_bins))
        #: sums of r**a * c**b (normalized coordinates) for a + b == 2, by (a, b)
        self.squares = {(a, 2 - a): np.zeros(n_bins) for a in range(3)}

    def mean_terms(self, shape: tuple[int, int], order: int) -> np.ndarray:
        """Each label's mean of the polynomial terms of ``_design_matrix``, (n_bins, n_terms)."""
        scale_r, scale_c = max(shape[0] - 1, 1), max(shape[1] - 1, 1)
        moments = {(0, 0): self.area.astype(np.float64), (1, 0): self.row / scale_r}
        moments[0, 1] = self.col / scale_c
        moments.update(self.squares)
        terms = [moments[i, t - i] for t in range(order + 1) for i in range(t + 1)]
        return np.stack(terms, axis=-1) / np.maximum(self.area, 1)[:, None]


def _label_sums(labels: np.ndarray, phase: np.ndarray, order: int) -> _Sums:
    """Sums per label value over bands of ``MEASURE_CHUNK_PIXELS`` (small temporaries).

    With ``order`` 2, also the sums of the squared terms of the normalized coordinates, for
    the mean of a quadratic background over each label.
    """
    n_rows, n_cols = labels.shape
    n_bins = int(labels.max()) + 1 if labels.size else 1
    sums = _Sums(n_bins)
    band = max(1, MEASURE_CHUNK_PIXELS // max(n_cols, 1))
    scale_r, scale_c = max(n_rows - 1, 1), max(n_cols - 1, 1)
    for top in range(0, n_rows, band):
        rows, cols = np.indices(labels[top : top + band].shape)
        rows = rows + top
        flat = labels[top : top + band].ravel().astype(np.intp)
        sums.area += np.bincount(flat, minlength=n_bins)
        values: np.ndarray = np.nan_to_num(phase[top : top + band].astype(np.float64))
        for total, weights in zip(
            (sums.phase, sums.row, sums.col), (values, rows, cols), strict=True
        ):
            total += np.bincount(flat, weights=np.asarray(weights).ravel(), minlength=n_bins)
        if order >= 2:
            r, c = rows.ravel() / scale_r, cols.ravel() / scale_c
            for (a, b), weights in zip(sums.squares, (c * c, r * c, r * r), strict=True):
                sums.squares[a, b] += np.bincount(flat, weights=weights, minlength=n_bins)
    return sums


def concat_tables(tables: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Rows of several tables (e.g. one per frame) in one table; an empty one for none.

    Parameters
    ----------
    tables : sequence of dict of str to ndarray
        Tables with the same columns.
    """
    if not tables:
        return empty_table()
    return {name: np.concatenate([t[name] for t in tables]) for name in tables[0]}


def _format(value: object) -> str:
    if isinstance(value, (float, np.floating)):
        return "" if math.isnan(value) else repr(float(value))
    return str(value)


def table_to_csv(table: dict[str, np.ndarray], *, header: bool = True) -> str:
    """The table as CSV text: a header line, then one line per row; NaN is an empty field.

    ``header=False`` gives the rows only, to append a frame's rows to a CSV being written.

    Parameters
    ----------
    table : dict of str to ndarray
        Columns of equal length (as :func:`~napari_dmqpm.inference.measure_cells` returns).
    header : bool
        Start with the header line.
    """
    lengths = {len(column) for column in table.values()}
    if len(lengths) > 1:
        raise ValueError(f"table columns must have equal lengths; got {sorted(lengths)}")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if header:
        writer.writerow(list(table))
    for row in zip(*(column.tolist() for column in table.values()), strict=True):
        writer.writerow([_format(value) for value in row])
    return buffer.getvalue()


def read_table_csv(path: str | os.PathLike, columns: Sequence[str]) -> dict[str, np.ndarray]:
    """Columns of a CSV written by :func:`write_table_csv`, as float64 arrays (empty: NaN).

    Parameters
    ----------
    path : str or path-like
        A table CSV, e.g. ``dmqpm segment``'s ``<stem>_cells.csv``.
    columns : sequence of str
        The columns to read: numbers (not ``TEXT_COLUMNS``, such as ``backend``; read those
        with :mod:`csv` or pandas). Files written before a column existed lack it.

    Returns
    -------
    dict of str to ndarray of shape (n_rows,)

    Raises
    ------
    ValueError
        When a column is missing, or a field is not a number (naming the file).
    """
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [name for name in columns if name not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path} has no column {missing[0]!r}; it has {reader.fieldnames}")
        rows = list(reader)
    try:
        return {
            name: np.array([float(row[name]) if row[name] else np.nan for row in rows])
            for name in columns
        }
    except ValueError as error:
        raise ValueError(f"{path}: a field is not a number ({error})") from error


def write_table_csv(
    path: str | os.PathLike, table: dict[str, np.ndarray], *, overwrite: bool = False
) -> Path:
    """Write a table as CSV atomically (UTF-8; NaN as an empty field, like pandas).

    Parameters
    ----------
    path : str or path-like
        Destination; its folder must exist.
    table : dict of str to ndarray
        Equally long columns, e.g. from :func:`measure_cells`.
    overwrite : bool
        Replace an existing file (default: raise ``FileExistsError``).

    Returns
    -------
    Path
        The written file; on any error nothing is left under that name.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"the folder {path.parent} does not exist")
    data = table_to_csv(table).encode("utf-8")
    return atomic_write(path, lambda handle: handle.write(data), overwrite=overwrite)
