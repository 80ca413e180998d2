"""The cells of every frame as one table: the nodes that tracking links.

One row per (frame, label): centroid, area, dry mass, whether the cell touches the field
edge (its mass is then cut by the edge) and whether its background was trusted (else its mass
is not: ``background_ok`` of the cells table). The dry mass comes from the phase through
:func:`napari_dmqpm.inference.measure.measure_cells` (which imports no torch), or from a
per-cell table the caller measured before.
"""

from __future__ import annotations

import math

import numpy as np

from napari_dmqpm.inference.measure import measure_cells
from napari_dmqpm.tracking.frames import LabelFrames

__all__ = ["REGION_COLUMNS", "measure_regions"]

#: The columns of :func:`measure_regions`, with their units.
REGION_COLUMNS: dict[str, str] = {
    "frame": "time point index",
    "label": "label of the cell in the input labels of that frame",
    "centroid_row": "px",
    "centroid_col": "px",
    "area_px": "pixels",
    "dry_mass_pg": "pg (NaN without phase, pixel size and wavelength, or a table)",
    "touches_border": "the cell touches the field edge (bool)",
    "background_ok": "the dry mass was measured above a trusted background (bool; True "
    "without a background fit, False where the cells table says background_ok 0)",
}


def measure_regions(
    labels_tyx: np.ndarray | LabelFrames,
    *,
    phase_tyx: np.ndarray | None = None,
    table: dict[str, np.ndarray] | None = None,
    pixel_size_um: float | None = None,
    wavelength_um: float | None = None,
    alpha_um3_per_pg: float = 0.18,
) -> dict[str, np.ndarray]:
    """Centroid, area, dry mass and edge contact of every cell of every frame.

    Parameters
    ----------
    labels_tyx : ndarray of shape (T, M, N), integer
        Instance labels per frame (checked by the caller), 0 for background.
    phase_tyx : ndarray of shape (T, M, N), optional
        Phase in radians, background near 0; with ``pixel_size_um`` and ``wavelength_um`` it
        gives the dry mass.
    table : dict of str to ndarray, optional
        Per-cell-per-frame table with ``frame``, ``label`` and ``dry_mass_pg`` (pg); the dry
        mass is taken from it (NaN for cells it does not list), and ``background_ok`` when
        it has that column (else every cell's background is taken as trusted).
    pixel_size_um, wavelength_um : float, optional
        µm; without them the dry mass from the phase is NaN.
    alpha_um3_per_pg : float
        Specific refraction increment, µm³/pg.

    Returns
    -------
    dict of str to ndarray of shape (n_cells,)
        The columns of ``REGION_COLUMNS``, sorted by frame, then label.

    Examples
    --------
    >>> labels = np.zeros((2, 8, 8), np.int64)
    >>> labels[0, 2:4, 2:4] = 5
    >>> labels[1, 3:5, 2:4] = 7
    >>> regions = measure_regions(labels)
    >>> regions["label"].tolist(), regions["centroid_row"].tolist()
    ([5, 7], [2.5, 3.5])
    """
    zeros = np.zeros(labels_tyx.shape[1:], np.float32)  # the phase of a frame without one
    per_frame = []
    for frame, labels in enumerate(labels_tyx):
        phase = zeros if phase_tyx is None else np.asarray(phase_tyx[frame])
        measured = measure_cells(
            labels,
            phase,
            pixel_size_um=pixel_size_um if phase_tyx is not None else None,
            wavelength_um=wavelength_um if phase_tyx is not None else None,
            alpha_um3_per_pg=alpha_um3_per_pg,
            frame=frame,
            background="quadratic" if phase_tyx is not None else None,  # no phase: no fit
        )
        measured["touches_border"] = np.isin(measured["label"], _border_labels(labels))
        measured["background_ok"] = measured["background_ok"].astype(bool)
        per_frame.append({name: measured[name] for name in REGION_COLUMNS})
    regions = {name: np.concatenate([t[name] for t in per_frame]) for name in REGION_COLUMNS}
    if table is not None:
        regions["dry_mass_pg"] = _from_table(regions, table, "dry_mass_pg", math.nan)
        if "background_ok" in table:
            trusted = _from_table(regions, table, "background_ok", 1.0)
            regions["background_ok"] = trusted != 0  # a NaN (empty field) is not 0: trusted
    return regions


def _border_labels(labels: np.ndarray) -> np.ndarray:
    edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    return np.unique(edge[edge > 0])


def _from_table(
    regions: dict[str, np.ndarray], table: dict[str, np.ndarray], column: str, missing: float
) -> np.ndarray:
    """The table's ``column`` for each region (``missing`` where the table has no row for it)."""
    lookup = {
        (int(f), int(lab)): float(m)
        for f, lab, m in zip(table["frame"], table["label"], table[column], strict=True)
    }
    return np.array(
        [
            lookup.get((int(f), int(lab)), missing)
            for f, lab in zip(regions["frame"], regions["label"], strict=True)
        ],
        dtype=np.float64,
    )
