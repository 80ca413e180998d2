"""Cell geometry: random outlines, their tessellation into a field, and colony growth.

A cell is an ellipse whose radius is bent by random Fourier modes. Each pixel ``x`` has a
normalized radius ``d_i(x)`` for every cell ``i`` (``d < 1`` inside the outline). A pixel
belongs to the cell with the smallest ``d_i * priority_i`` among those whose outline holds it,
so overlapping outlines split along a shared border with no gap (a multiplicatively weighted
Voronoi tessellation), while isolated cells keep their own outline. Colonies grow by placing
each new cell next to a member, at ``packing`` times the sum of their radii.

A share ``spread_fraction`` of the cells is well spread: a larger, flatter body with bright
organelles, and a thin lamellipodium whose width varies along the outline (random Fourier
modes 3 to 12, the ruffles). The tessellation holds the bodies; the lamellipodia are grown
around them when the phantom is drawn (:mod:`.phantoms`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from napari_dmqpm.simulation.config import SimulationConfig

__all__ = ["Cell", "Tessellation", "place_cells", "random_cell", "spread_cell"]

_N_ANGLES = 256  # samples of an outline's radius over the full turn
_HARMONICS = np.arange(2, 7)  # Fourier modes of the outline
_THETA = np.linspace(-np.pi, np.pi, _N_ANGLES, endpoint=False)
_BASIS = np.exp(1j * np.outer(_THETA, _HARMONICS))  # (angles, modes)
_MITOTIC_PRIORITY = 0.6  # rounded mitotic cells sit on top of their neighbours
_MITOTIC_RADIUS = 0.65  # their radius relative to a flat cell of the same draw
_RUFFLE_MODES = np.arange(3, 13)  # Fourier modes of a lamellipodium's width along the outline
_RUFFLE_BASIS = np.exp(1j * np.outer(_THETA, _RUFFLE_MODES))
_RUFFLE_AMPLITUDE = 0.2  # rms of each mode: the width varies by about 45 % rms
_SPREAD_HEIGHT_EXPONENT = -0.5  # a spread cell's height scales as spread_area_factor ** this
_ORGANELLE_RADII = (0.2, 0.85)  # normalized radii of the organelles (beyond the nucleus)


@dataclass(frozen=True, eq=False)
class Cell:
    """One cell's geometry and optical thickness.

    Attributes
    ----------
    row_um, col_um : float
        Centre in the field, µm from the top-left pixel centre.
    radius_um : float
        Equivalent radius of the outline before the tessellation, µm.
    aspect : float
        Ratio of the long to the short axis (>= 1).
    angle : float
        Orientation of the long axis, radians from the column axis.
    harmonics : ndarray of shape (5,), complex
        Relative amplitudes of the outline's Fourier modes 2 to 6.
    height_um : float
        Peak optical path difference of the cell body, µm.
    mitotic : bool
        A rounded, taller mitotic cell.
    nucleoli : ndarray of shape (K, 2)
        Nucleoli positions in units of the cell's semi-axes, in the cell frame.
    spread : bool
        A well-spread cell (lamellipodium and organelles).
    lamellipodium_um : float
        Mean width of the lamellipodium, µm (0: none).
    ruffles : ndarray of shape (10,), complex
        Relative amplitudes of the Fourier modes 3 to 12 of the lamellipodium's width.
    organelles : ndarray of shape (K, 3)
        Organelle positions in units of the cell's semi-axes (cell frame) and their relative
        brightness.
    """

    row_um: float
    col_um: float
    radius_um: float
    aspect: float
    angle: float
    harmonics: np.ndarray
    height_um: float
    mitotic: bool = False
    nucleoli: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 2)))
    spread: bool = False
    lamellipodium_um: float = 0.0
    ruffles: np.ndarray = dataclasses.field(
        default_factory=lambda: np.zeros(_RUFFLE_MODES.size, dtype=complex)
    )
    organelles: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 3)))

    @property
    def priority(self) -> float:
        """Weight of ``d`` in the tessellation (smaller wins)."""
        return _MITOTIC_PRIORITY if self.mitotic else 1.0

    @property
    def semi_axes_um(self) -> tuple[float, float]:
        """Long and short semi-axes of the unperturbed ellipse, µm."""
        root = float(np.sqrt(self.aspect))
        return self.radius_um * root, self.radius_um / root

    def radius_table(self) -> np.ndarray:
        """Relative outline radius at ``_N_ANGLES`` angles over ``[-pi, pi)``."""
        return np.clip(1.0 + (_BASIS @ self.harmonics).real, 0.45, None)

    def lamellipodium_table(self) -> np.ndarray:
        """Lamellipodium width (µm) at ``_N_ANGLES`` angles over ``[-pi, pi)``, cell frame."""
        relative = np.clip(1.0 + (_RUFFLE_BASIS @ self.ruffles).real, 0.1, 2.5)
        return self.lamellipodium_um * relative

    def lamellipodium_at(self, row_um: np.ndarray, col_um: np.ndarray) -> np.ndarray:
        """Lamellipodium width (µm) in the direction of the points ``(row_um, col_um)``.

        Parameters
        ----------
        row_um, col_um : ndarray
            Points, µm, in the field's coordinates.
        """
        drow, dcol = row_um - self.row_um, col_um - self.col_um
        cos, sin = np.cos(self.angle), np.sin(self.angle)
        long_axis, short_axis = self.semi_axes_um
        theta = np.arctan2(
            (drow * cos - dcol * sin) / short_axis, (dcol * cos + drow * sin) / long_axis
        )
        index = ((theta + np.pi) * (_N_ANGLES / (2 * np.pi))).astype(np.int64) % _N_ANGLES
        return self.lamellipodium_table()[index]

    def moved(self, **changes: Any) -> Cell:
        """A copy with some attributes changed.

        Parameters
        ----------
        **changes
            New values of attributes, by name.
        """
        return dataclasses.replace(self, **changes)


def random_cell(
    config: SimulationConfig, rng: np.random.Generator, *, mitotic: bool | None = None
) -> Cell:
    """Draw one cell's size, shape and height (centre at the origin).

    Parameters
    ----------
    config : SimulationConfig
        Cell size, elongation, irregularity and height distributions.
    rng : numpy.random.Generator
        Random source.
    mitotic : bool, optional
        Force a mitotic (True) or flat (False) cell; by default drawn with
        ``config.mitotic_fraction``.

    Returns
    -------
    Cell
    """
    if mitotic is None:
        mitotic = bool(rng.random() < config.mitotic_fraction)
    area = config.cell_area_um2 * np.exp(config.cell_area_sigma * rng.standard_normal())
    radius = float(np.sqrt(area / np.pi))
    height = config.cell_thickness_um * config.delta_n
    height *= float(np.exp(config.height_sigma * rng.standard_normal()))
    height *= float((area / config.cell_area_um2) ** config.height_area_exponent)
    irregularity = config.irregularity * (0.2 if mitotic else 1.0)
    scale = irregularity / (_HARMONICS - 1)
    harmonics = scale * (rng.standard_normal(5) + 1j * rng.standard_normal(5)) / np.sqrt(2)
    n_nucleoli = 0 if mitotic else int(rng.integers(1, 4))
    nucleoli = rng.uniform(-0.25, 0.25, size=(n_nucleoli, 2)) * config.nucleus_size * 2
    return Cell(
        row_um=0.0,
        col_um=0.0,
        radius_um=radius * (_MITOTIC_RADIUS if mitotic else 1.0),
        aspect=1.0 if mitotic else float(np.exp(abs(config.elongation * rng.standard_normal()))),
        angle=float(rng.uniform(-np.pi, np.pi)),
        harmonics=harmonics,
        height_um=height * (config.mitotic_height if mitotic else 1.0),
        mitotic=mitotic,
        nucleoli=nucleoli,
    )


class Tessellation:
    """Accumulates cells into an owner map and a normalized-radius map.

    Parameters
    ----------
    shape : tuple of int
        ``(rows, cols)`` of the field.
    pixel_size_um : float
        Pixel size, µm.

    Attributes
    ----------
    owner : ndarray of shape (M, N), int32
        Index of the cell each pixel belongs to, -1 for background.
    radius : ndarray of shape (M, N), float32
        Normalized radius ``d`` of the owning cell (0 at its centre, 1 on its outline).
    n_covered : int
        Pixels inside some cell.
    """

    def __init__(self, shape: tuple[int, int], pixel_size_um: float) -> None:
        self.shape = shape
        self.pixel_size_um = pixel_size_um
        self.owner = np.full(shape, -1, dtype=np.int32)
        self.radius = np.ones(shape, dtype=np.float32)
        self._weighted = np.full(shape, np.inf, dtype=np.float32)
        self.n_covered = 0

    def add(self, cell: Cell, index: int) -> int:
        """Draw ``cell`` as cell number ``index``; returns the number of newly covered pixels.

        Parameters
        ----------
        cell : Cell
            The cell to draw.
        index : int
            Its number in the tessellation.
        """
        table = cell.radius_table().astype(np.float32)
        window = _window(cell, float(table.max()), self.shape, self.pixel_size_um)
        if window is None:
            return 0
        rows, cols = window
        d = _normalized_radius(cell, table, rows, cols, self.pixel_size_um)
        box = (slice(rows[0, 0], rows[-1, 0] + 1), slice(cols[0, 0], cols[0, -1] + 1))
        weighted = self._weighted[box]
        wins = (d < 1.0) & (d * cell.priority < weighted)
        fresh = int(np.count_nonzero(wins & np.isinf(weighted)))
        weighted[wins] = d[wins] * cell.priority
        self.radius[box][wins] = d[wins]
        self.owner[box][wins] = index
        self.n_covered += fresh
        return fresh

    def is_covered(self, row_um: float, col_um: float) -> bool:
        """Whether the pixel nearest to a point (µm) is inside a cell or outside the field.

        Parameters
        ----------
        row_um, col_um : float
            The point, µm.
        """
        row = int(round(row_um / self.pixel_size_um))
        col = int(round(col_um / self.pixel_size_um))
        if not (0 <= row < self.shape[0] and 0 <= col < self.shape[1]):
            return True
        return bool(self.owner[row, col] >= 0)


def _window(
    cell: Cell, largest: float, shape: tuple[int, int], pixel_size_um: float
) -> tuple[np.ndarray, np.ndarray] | None:
    """Open grids of the pixel rows and columns the cell's outline can reach."""
    reach = cell.semi_axes_um[0] * largest / pixel_size_um + 1.0
    centre_r, centre_c = cell.row_um / pixel_size_um, cell.col_um / pixel_size_um
    r0, r1 = max(int(centre_r - reach), 0), min(int(centre_r + reach) + 2, shape[0])
    c0, c1 = max(int(centre_c - reach), 0), min(int(centre_c + reach) + 2, shape[1])
    if r0 >= r1 or c0 >= c1:
        return None
    return np.arange(r0, r1)[:, None], np.arange(c0, c1)[None, :]


def _normalized_radius(
    cell: Cell, table: np.ndarray, rows: np.ndarray, cols: np.ndarray, pixel_size_um: float
) -> np.ndarray:
    """``d``: the elliptical radius over the outline's radius at that angle (1 on the outline)."""
    drow = (rows * pixel_size_um - cell.row_um).astype(np.float32)
    dcol = (cols * pixel_size_um - cell.col_um).astype(np.float32)
    cos, sin = np.float32(np.cos(cell.angle)), np.float32(np.sin(cell.angle))
    long_axis, short_axis = cell.semi_axes_um
    along = (dcol * cos + drow * sin) / np.float32(long_axis)
    across = (drow * cos - dcol * sin) / np.float32(short_axis)
    theta = np.arctan2(across, along)
    index = ((theta + np.pi) * (_N_ANGLES / (2 * np.pi))).astype(np.int32) % _N_ANGLES
    return np.hypot(along, across) / table[index]


def place_cells(
    config: SimulationConfig, rng: np.random.Generator
) -> tuple[list[Cell], Tessellation]:
    """Grow colonies of cells until the target cover fraction is reached.

    Each new cell either joins a colony (probability ``config.clustering``) next to a random
    member, or starts a new colony at a random uncovered point. Every colony is equally likely
    to grow, so colonies hold about ``1 / (1 - clustering)`` cells. Centres may lie up to one radius
    outside the field, so cells are cut by the field edge as in real images.

    Parameters
    ----------
    config : SimulationConfig
        Field shape, pixel size, density and cell distributions.
    rng : numpy.random.Generator
        Random source.

    Returns
    -------
    cells : list of Cell
        In the order they were placed (later cells win ties in the tessellation).
    tessellation : Tessellation
        The cells drawn into the field.
    """
    tessellation = Tessellation(config.shape, config.pixel_size_um)
    target = config.cover_fraction * config.shape[0] * config.shape[1]
    max_cells = int(4 * target * config.pixel_size_um**2 / config.cell_area_um2) + 20
    colonies = _Colonies(max_cells)
    # spread cells draw from a stream of their own, made only when they are asked for
    spread_rng = _child(rng) if config.spread_fraction > 0 else None
    cells: list[Cell] = []
    n_failed = 0
    while tessellation.n_covered < target and len(cells) < max_cells and n_failed < 60:
        cell = random_cell(config, rng)
        if spread_rng is not None and spread_rng.random() < config.spread_fraction:
            cell = spread_cell(cell, config, spread_rng)
        centre, colony = _propose(cell, colonies, tessellation, config, rng)
        if centre is not None:
            cell = cell.moved(row_um=centre[0], col_um=centre[1])
        if centre is None or tessellation.add(cell, len(cells)) == 0:
            n_failed += 1
            continue
        n_failed = 0
        colonies.add(centre, cell.radius_um, colony)
        cells.append(cell)
    return cells, tessellation


def spread_cell(cell: Cell, config: SimulationConfig, rng: np.random.Generator) -> Cell:
    """A well-spread version of ``cell``: larger, flatter, a lamellipodium and organelles.

    Mitotic cells are returned unchanged (they have rounded up).

    Parameters
    ----------
    cell : Cell
        A cell from :func:`random_cell`.
    config : SimulationConfig
        ``spread_area_factor`` (area times it, height divided by its square root),
        ``lamellipodium_width_um`` and ``organelle_count``.
    rng : numpy.random.Generator
        Random source for the lamellipodium width and ruffles and the organelles.

    Returns
    -------
    Cell
    """
    width = config.lamellipodium_width_um * float(rng.uniform(0.7, 1.3))
    noise = rng.standard_normal(_RUFFLE_MODES.size) + 1j * rng.standard_normal(_RUFFLE_MODES.size)
    ruffles = _RUFFLE_AMPLITUDE * noise / np.sqrt(2)
    n_organelles = int(rng.poisson(config.organelle_count))
    radius = rng.uniform(*_ORGANELLE_RADII, size=n_organelles)
    theta = rng.uniform(-np.pi, np.pi, size=n_organelles)
    brightness = rng.uniform(0.5, 1.5, size=n_organelles)
    if cell.mitotic:
        return cell
    # at normalized radius ``radius`` of the bent outline, in units of the semi-axes
    index = ((theta + np.pi) * (_N_ANGLES / (2 * np.pi))).astype(np.int64) % _N_ANGLES
    reach = radius * cell.radius_table()[index]
    organelles = np.column_stack([reach * np.cos(theta), reach * np.sin(theta), brightness])
    factor = config.spread_area_factor
    return cell.moved(
        radius_um=cell.radius_um * float(np.sqrt(factor)),
        height_um=cell.height_um * float(factor**_SPREAD_HEIGHT_EXPONENT),
        spread=True,
        lamellipodium_um=width,
        ruffles=ruffles,
        organelles=organelles,
    )


def _child(rng: np.random.Generator) -> np.random.Generator:
    return np.random.default_rng(int(rng.integers(0, 2**63)))


class _Colonies:
    """Centres, radii and colony membership of the cells placed so far."""

    def __init__(self, capacity: int) -> None:
        self.centres = np.zeros((capacity, 2))
        self.radii = np.zeros(capacity)
        self.members: list[list[int]] = []
        self.count = 0

    def add(self, centre: tuple[float, float], radius: float, colony: int | None) -> None:
        self.centres[self.count] = centre
        self.radii[self.count] = radius
        if colony is None:
            self.members.append([self.count])
        else:
            self.members[colony].append(self.count)
        self.count += 1

    def is_free(self, centre: np.ndarray, radius: float, packing: float) -> bool:
        """No other centre closer than 85 % of the colony spacing."""
        offset = self.centres[: self.count] - centre
        distance2 = np.einsum("ij,ij->i", offset, offset)
        spacing = 0.85 * packing * (self.radii[: self.count] + radius)
        return bool(np.all(distance2 >= spacing**2))


def _propose(
    cell: Cell,
    colonies: _Colonies,
    tessellation: Tessellation,
    config: SimulationConfig,
    rng: np.random.Generator,
) -> tuple[tuple[float, float] | None, int | None]:
    """A free centre for ``cell`` and the colony it joins (None: a new colony)."""
    extent = np.array(config.shape) * config.pixel_size_um
    if colonies.members and rng.random() < config.clustering:
        for _ in range(8):
            colony = int(rng.integers(len(colonies.members)))
            members = colonies.members[colony]
            member = members[int(rng.integers(len(members)))]
            angle = rng.uniform(-np.pi, np.pi)
            step = config.packing * (colonies.radii[member] + cell.radius_um)
            step *= 1.0 + 0.08 * rng.standard_normal()
            row = colonies.centres[member, 0] + step * np.sin(angle)
            col = colonies.centres[member, 1] + step * np.cos(angle)
            margin = cell.radius_um
            inside = -margin <= row <= extent[0] + margin and -margin <= col <= extent[1] + margin
            if inside and colonies.is_free(np.array([row, col]), cell.radius_um, config.packing):
                return (float(row), float(col)), colony
    for _ in range(20):
        centre = rng.uniform(0.0, 1.0, size=2) * extent
        if tessellation.is_covered(*centre):
            continue
        if colonies.is_free(centre, cell.radius_um, config.packing):
            return (float(centre[0]), float(centre[1])), None
    return None, None
