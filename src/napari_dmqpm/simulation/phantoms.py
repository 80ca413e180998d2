r"""Phantoms: instance labels and the optical path difference of a field of cells.

Each cell's optical path difference (OPD, thickness times refractive-index difference) is

.. math::

    \mathrm{OPD}(x) = H_i \,(1 - d^2)^p \,(1 + c_n\, n(d))\, e(s)\, b(s_b)\,(1 + t\, \tau(x))
        + \text{nucleoli},

with ``d`` the normalized radius of the owning cell (:mod:`.cells`), ``n`` a soft nucleus of
radius ``nucleus_size``, ``e(s) = 1 - exp(-s / w)`` the roll-off over the distance ``s`` to the
background (``w = edge_width_um``), ``b(s_b) = 1 - D exp(-s_b^2 / 2 w_b^2)`` the dip at the
distance ``s_b`` from a border shared with another cell, and ``tau`` a smooth unit-variance
texture. Unlabelled debris (small Gaussian blobs, positive or negative) is added and the whole
map is blurred by the point-spread function. The labels mark exactly the pixels owned by each
cell (before the blur); touching cells keep their own ids.

Well-spread cells (``spread_fraction``) sit on a thin sheet: each background pixel whose
nearest cell pixel belongs to a spread cell joins that cell when it lies closer than the
cell's lamellipodium width in that direction (:meth:`.Cell.lamellipodium_at`). The whole
footprint, body and lamellipodium, carries ``L (1 + 0.5 tau_2(x)) (1 - exp(-s / 0.4 µm))`` of
OPD (``L`` from ``lamellipodium_rad``, the modulation clipped to 0.3-2 L, ``s`` the distance to
the background); the body gets a second texture ``(1 + 0.1 tau_3(x))``, and bright organelles
(Gaussian spots, sd 0.5 µm) are added like the nucleoli. The label is the whole footprint;
organelles never get labels of their own.

References
----------
.. [1] P. Marquet et al., "Digital holographic microscopy: a noninvasive contrast imaging
   technique allowing quantitative visualization of living cells with subwavelength axial
   accuracy", Opt. Lett. 30, 468 (2005). doi:10.1364/OL.30.000468
.. [2] T. Vicar et al., "Cell segmentation methods for label-free contrast microscopy: review
   and comprehensive comparison", BMC Bioinformatics 20, 360 (2019).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from skimage.measure import label as connected_components
from skimage.segmentation import expand_labels

from napari_dmqpm.simulation.cells import Cell, Tessellation, place_cells
from napari_dmqpm.simulation.config import SimulationConfig

__all__ = ["Phantom", "make_phantom", "render_phantom", "visible_cells"]

_MIN_CELL_PIXELS = 20  # smaller visible pieces of cells are dropped, as in the real labels
_NUCLEUS_SOFTNESS = 0.08  # width of the nucleus edge in units of the normalized radius
_NUCLEOLUS_SIGMA_UM = 0.7
_TEXTURE_SIGMA_UM = 0.8
_ORGANELLE_SIGMA_UM = 0.5
_LAMELLIPODIUM_EDGE_UM = 0.4  # roll-off of the thin sheet at the cell edge
_RUFFLE_SIGMA_UM = 1.5  # correlation length of the lamellipodium's thickness modulation
_SPREAD_TEXTURE = 0.1  # extra relative texture amplitude of a spread cell's body


@dataclass(frozen=True)
class Phantom:
    """A field of cells before imaging.

    Attributes
    ----------
    labels : ndarray of shape (M, N), int32
        0 for background, one id per cell.
    opd_um : ndarray of shape (M, N), float32
        Optical path difference of the object (cells and debris), µm, blurred by the PSF.
    debris_um : ndarray of shape (M, N), float32
        The debris part of ``opd_um`` (before the blur), µm.
    cell_index : ndarray of shape (n_ids + 1,), int64
        The index into ``cells`` of each label id (-1 for id 0 and for unused ids).
    cells : list of Cell
        The geometry the phantom was drawn from.
    """

    labels: np.ndarray
    opd_um: np.ndarray
    debris_um: np.ndarray
    cell_index: np.ndarray
    cells: list[Cell]


def make_phantom(
    config: SimulationConfig, *, rng: np.random.Generator | int | None = None
) -> Phantom:
    """Place cells at the configured density and draw them.

    Parameters
    ----------
    config : SimulationConfig
        The field and cell parameters.
    rng : int or numpy.random.Generator, optional
        Seed or random source.

    Returns
    -------
    Phantom
        With labels numbered 1..n in the order the cells were placed.

    Examples
    --------
    >>> phantom = make_phantom(SimulationConfig(shape=(64, 64), density="dense"), rng=0)
    >>> phantom.labels.dtype.name, phantom.opd_um.shape
    ('int32', (64, 64))
    """
    placement, drawing = _children(np.random.default_rng(rng), 2)
    cells, tessellation = place_cells(config, placement)
    return render_phantom(cells, config, rng=drawing, tessellation=tessellation)


def render_phantom(
    cells: list[Cell],
    config: SimulationConfig,
    *,
    ids: np.ndarray | None = None,
    rng: np.random.Generator | int | None = None,
    debris_rng: np.random.Generator | int | None = None,
    tessellation: Tessellation | None = None,
) -> Phantom:
    """Draw given cells: tessellate them, label them and compute their OPD.

    Parameters
    ----------
    cells : list of Cell
        Cell geometry, e.g. from :func:`~napari_dmqpm.simulation.cells.place_cells`.
    config : SimulationConfig
        Field and profile parameters.
    ids : ndarray of shape (len(cells),), int, optional
        Label id of each cell (0: leave it out). By default the visible cells are numbered
        1..n in order; a time-lapse passes fixed ids so they stay the same in every frame.
    rng : int or numpy.random.Generator, optional
        Seed or random source for texture and debris.
    debris_rng : int or numpy.random.Generator, optional
        A separate source for the debris (a time-lapse keeps its debris in place).
    tessellation : Tessellation, optional
        ``cells`` already drawn in this order (as :func:`place_cells` returns it).

    Returns
    -------
    Phantom
    """
    source = np.random.default_rng(rng)
    texture_rng, own_debris_rng = _children(source, 2)
    debris_rng = own_debris_rng if debris_rng is None else np.random.default_rng(debris_rng)
    if tessellation is None:
        tessellation = _tessellate(cells, config)
    owner = _clean_owner(tessellation.owner)
    labels, cell_index = _number(owner, len(cells), ids)
    opd = _cell_opd(labels, tessellation.radius, cell_index, cells, config, texture_rng)
    if any(cell.spread for cell in cells):  # a stream of their own, after the others
        labels, opd = _spread_cells(labels, opd, cell_index, cells, config, _children(source, 1)[0])
    debris = _debris(config, debris_rng)
    total = opd + debris
    sigma = config.psf_sigma_um / config.pixel_size_um
    if sigma > 0:
        total = ndi.gaussian_filter(total, sigma, mode="nearest")
    return Phantom(
        labels=labels,
        opd_um=total.astype(np.float32),
        debris_um=debris,
        cell_index=cell_index,
        cells=list(cells),
    )


def visible_cells(cells: list[Cell], config: SimulationConfig) -> np.ndarray:
    """Indices of the cells that keep a labelled region in the field, in order.

    Parameters
    ----------
    cells : list of Cell
        Cell geometry.
    config : SimulationConfig
        Field shape and pixel size.

    Returns
    -------
    ndarray of int64
    """
    owner = _clean_owner(_tessellate(cells, config).owner)
    return np.unique(owner[owner >= 0]).astype(np.int64)


def _tessellate(cells: list[Cell], config: SimulationConfig) -> Tessellation:
    tessellation = Tessellation(config.shape, config.pixel_size_um)
    for index, cell in enumerate(cells):
        tessellation.add(cell, index)
    return tessellation


def _children(rng: np.random.Generator, count: int) -> list[np.random.Generator]:
    """Independent random streams, so that switching one part off leaves the others alone."""
    return [np.random.default_rng(seed) for seed in rng.integers(0, 2**63, size=count)]


def _clean_owner(owner: np.ndarray) -> np.ndarray:
    """One connected piece per cell: detached fragments go to a neighbour, or to background.

    Pieces below 20 pixels are dropped as well, as in the real labels.
    """
    fragment = _fragments(owner)
    if not fragment.any():
        return owner
    kept = np.where(fragment, 0, owner + 1)
    grown = expand_labels(kept, distance=3)
    owner = np.where(fragment, grown, kept).astype(np.int32) - 1
    # a fragment given to a cell it does not touch would be a new fragment: drop those
    return np.where(_fragments(owner), -1, owner).astype(np.int32)


def _fragments(owner: np.ndarray) -> np.ndarray:
    """Pixels of a cell outside its largest 4-connected piece, or in a piece below 20 px."""
    components = connected_components(owner + 1, background=0, connectivity=1)
    sizes = np.bincount(components.ravel())
    component_owner = np.full(sizes.size, -1, dtype=np.int64)
    component_owner[components.ravel()] = owner.ravel()
    component_owner[0] = -1
    order = np.argsort(-sizes[1:], kind="stable") + 1
    _, first = np.unique(component_owner[order], return_index=True)
    keep = np.zeros(sizes.size, dtype=bool)
    keep[order[first]] = True
    keep &= sizes >= _MIN_CELL_PIXELS
    keep[0] = True
    return ~keep[components]


def _number(
    owner: np.ndarray, n_cells: int, ids: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Label image from the owner map, and the cell index of each id."""
    if ids is None:
        present = np.zeros(n_cells + 1, dtype=bool)
        present[owner.ravel() + 1] = True
        ids = np.cumsum(present[1:]) * present[1:]
    ids = np.asarray(ids, dtype=np.int64)
    lookup = np.concatenate([[0], ids]).astype(np.int32)
    labels = lookup[owner + 1]
    cell_index = np.full(int(ids.max(initial=0)) + 1, -1, dtype=np.int64)
    visible = np.unique(owner[owner >= 0])
    visible = visible[ids[visible] > 0]
    cell_index[ids[visible]] = visible
    return labels, cell_index


def _cell_opd(
    labels: np.ndarray,
    radius: np.ndarray,
    cell_index: np.ndarray,
    cells: list[Cell],
    config: SimulationConfig,
    rng: np.random.Generator,
) -> np.ndarray:
    """The OPD of all cells (µm) from their labels and normalized radii (see module docs)."""
    inside = labels > 0
    if not inside.any():
        return np.zeros(labels.shape, dtype=np.float32)
    pixel = config.pixel_size_um
    height, exponent, nucleus = _per_label(cell_index, cells, config)
    d2 = np.where(inside, np.minimum(radius, 0.999) ** 2, 1.0)
    body = (1.0 - d2) ** exponent[labels]
    soft = (nucleus[labels] - np.sqrt(d2)) / _NUCLEUS_SOFTNESS
    body *= 1.0 + config.nucleus_contrast * (nucleus[labels] > 0) / (1.0 + np.exp(-soft))
    to_background = (ndi.distance_transform_edt(inside) - 0.5) * pixel
    body *= 1.0 - np.exp(-to_background / config.edge_width_um)
    border = _shared_border(labels)
    if config.border_dip > 0 and border.any():
        to_border = (ndi.distance_transform_edt(~border) + 0.5) * pixel
        body *= 1.0 - config.border_dip * np.exp(-0.5 * (to_border / config.border_width_um) ** 2)
    if config.texture > 0:
        body *= 1.0 + config.texture * _smooth_noise(labels.shape, _TEXTURE_SIGMA_UM / pixel, rng)
    opd = height[labels] * body * inside
    opd += _nucleoli(labels, cell_index, cells, config)
    return opd.astype(np.float32)


def _per_label(
    cell_index: np.ndarray, cells: list[Cell], config: SimulationConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Peak OPD (µm), dome exponent and nucleus radius of each label id (index 0: background)."""
    height = np.zeros(cell_index.size, dtype=np.float32)
    exponent = np.ones(cell_index.size, dtype=np.float32)
    nucleus = np.zeros(cell_index.size, dtype=np.float32)
    for label_id, index in enumerate(cell_index):
        if index < 0:
            continue
        cell = cells[index]
        height[label_id] = cell.height_um
        exponent[label_id] = 0.5 if cell.mitotic else config.dome_exponent
        nucleus[label_id] = 0.0 if cell.mitotic else config.nucleus_size
    return height, exponent, nucleus


def _shared_border(labels: np.ndarray) -> np.ndarray:
    """Pixels with a 4-neighbour that belongs to another cell."""
    border = np.zeros(labels.shape, dtype=bool)
    for axis in (0, 1):
        a = labels[:-1, :] if axis == 0 else labels[:, :-1]
        b = labels[1:, :] if axis == 0 else labels[:, 1:]
        differ = (a != b) & (a > 0) & (b > 0)
        if axis == 0:
            border[:-1, :] |= differ
            border[1:, :] |= differ
        else:
            border[:, :-1] |= differ
            border[:, 1:] |= differ
    return border


def _smooth_noise(shape: tuple[int, int], sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian-filtered white noise scaled to unit standard deviation."""
    noise = ndi.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), sigma)
    spread = float(noise.std())
    return noise / spread if spread > 0 else noise


def _nucleoli(
    labels: np.ndarray, cell_index: np.ndarray, cells: list[Cell], config: SimulationConfig
) -> np.ndarray:
    """Small bright blobs in the nuclei, confined to their cell's pixels."""
    if config.nucleolus_contrast <= 0:
        return np.zeros(labels.shape, dtype=np.float32)
    points = [None if i < 0 else cells[i].nucleoli for i in cell_index]
    sigma_um, contrast = _NUCLEOLUS_SIGMA_UM, config.nucleolus_contrast
    spots = _spots(labels, cells, cell_index, points, sigma_um, contrast, config.pixel_size_um)
    return spots * (labels > 0)


def _spots(
    labels: np.ndarray,
    cells: list[Cell],
    cell_index: np.ndarray,
    points: list[np.ndarray | None],
    sigma_um: float,
    contrast: float,
    pixel_size_um: float,
) -> np.ndarray:
    """Gaussian spots of peak ``contrast * H_i`` (times a brightness) at points in cell frames.

    ``points[label_id]`` holds rows ``(along, across[, brightness])`` in units of the cell's
    semi-axes; a spot whose centre lies outside its cell's label is left out.
    """
    spots = np.zeros(labels.shape, dtype=np.float32)
    sigma = sigma_um / pixel_size_um
    for label_id, index in enumerate(cell_index):
        cell_points = points[label_id]
        if index < 0 or cell_points is None:
            continue
        cell = cells[index]
        long_axis, short_axis = cell.semi_axes_um
        cos, sin = np.cos(cell.angle), np.sin(cell.angle)
        for point in cell_points:
            along, across = point[0], point[1]
            col = cell.col_um + along * long_axis * cos - across * short_axis * sin
            row = cell.row_um + along * long_axis * sin + across * short_axis * cos
            r, c = int(round(row / pixel_size_um)), int(round(col / pixel_size_um))
            if 0 <= r < labels.shape[0] and 0 <= c < labels.shape[1] and labels[r, c] == label_id:
                spots[r, c] += cell.height_um if len(point) < 3 else cell.height_um * point[2]
    # a unit impulse blurred by a Gaussian peaks at 1 / (2 pi sigma^2)
    scale = contrast * 2 * np.pi * sigma**2
    return ndi.gaussian_filter(spots, sigma) * scale


def _spread_cells(
    labels: np.ndarray,
    opd: np.ndarray,
    cell_index: np.ndarray,
    cells: list[Cell],
    config: SimulationConfig,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Grow the lamellipodia of the spread cells and add their sheet, texture and organelles."""
    pixel = config.pixel_size_um
    texture_rng, sheet_rng = _children(rng, 2)
    spread = np.array([i >= 0 and cells[i].spread for i in cell_index], dtype=bool)
    body = spread[labels] & (labels > 0)
    texture = _smooth_noise(labels.shape, _TEXTURE_SIGMA_UM / pixel, texture_rng)
    modulation = _smooth_noise(labels.shape, _RUFFLE_SIGMA_UM / pixel, sheet_rng)
    if not body.any():
        return labels, opd
    opd = np.where(body, opd * (1.0 + _SPREAD_TEXTURE * texture), opd)
    labels = _grow_lamellipodia(labels, cell_index, cells, spread, pixel)
    footprint = spread[labels] & (labels > 0)
    sheet_um = config.lamellipodium_rad * config.wavelength_um / (2 * np.pi)
    sheet = sheet_um * np.clip(1.0 + 0.5 * modulation, 0.3, 2.0)
    to_background = (ndi.distance_transform_edt(labels > 0) - 0.5) * pixel
    sheet *= (1.0 - np.exp(-to_background / _LAMELLIPODIUM_EDGE_UM)) * footprint
    points = [None if i < 0 or not cells[i].spread else cells[i].organelles for i in cell_index]
    contrast = config.organelle_contrast
    organelles = _spots(labels, cells, cell_index, points, _ORGANELLE_SIGMA_UM, contrast, pixel)
    return labels, (opd + sheet + organelles * footprint).astype(np.float32)


def _grow_lamellipodia(
    labels: np.ndarray,
    cell_index: np.ndarray,
    cells: list[Cell],
    spread: np.ndarray,
    pixel_size_um: float,
) -> np.ndarray:
    """Background pixels nearer to a spread cell's body than its lamellipodium width join it."""
    background = labels == 0
    widest = max(float(cells[i].lamellipodium_table().max()) for i in cell_index[spread])
    if not background.any() or widest <= 0:
        return labels
    distance, (near_rows, near_cols) = ndi.distance_transform_edt(background, return_indices=True)
    nearest = labels[near_rows, near_cols]
    rows, cols = np.nonzero(background & spread[nearest] & (distance * pixel_size_um < widest))
    ids = nearest[rows, cols]
    grows = np.zeros(ids.size, dtype=bool)
    for label_id in np.flatnonzero(spread):
        mine = np.flatnonzero(ids == label_id)
        width = cells[cell_index[label_id]].lamellipodium_at(
            rows[mine] * pixel_size_um, cols[mine] * pixel_size_um
        )
        grows[mine] = distance[rows[mine], cols[mine]] * pixel_size_um < width
    grown = labels.copy()
    grown[rows[grows], cols[grows]] = ids[grows]
    return _clean_owner(grown - 1) + 1


def _debris(config: SimulationConfig, rng: np.random.Generator) -> np.ndarray:
    """Unlabelled debris: small blobs of either sign anywhere in the field, µm of OPD."""
    debris = np.zeros(config.shape, dtype=np.float32)
    if config.debris_count == 0:
        return debris
    typical = config.cell_thickness_um * config.delta_n
    for _ in range(config.debris_count):
        sigma = rng.uniform(0.4, 1.2) / config.pixel_size_um
        amplitude = typical * rng.uniform(0.1, 0.6) * (1 if rng.random() < 0.7 else -0.5)
        row, col = rng.uniform(0, 1, size=2) * np.array(config.shape)
        half = int(4 * sigma) + 1
        r0, c0 = max(int(row) - half, 0), max(int(col) - half, 0)
        rows = np.arange(r0, min(int(row) + half + 1, config.shape[0]))[:, None]
        cols = np.arange(c0, min(int(col) + half + 1, config.shape[1]))[None, :]
        blob = np.exp(-0.5 * ((rows - row) ** 2 + (cols - col) ** 2) / sigma**2)
        debris[rows, cols] += (amplitude * blob).astype(np.float32)
    return debris
