r"""Growing and dividing cells over time: time-lapses with a true lineage and growth rates.

Every cell grows by an exponential law, its dry mass :math:`m(t) = m_b\, e^{k t}` with its own
specific growth rate :math:`k` (1/h; doubling time :math:`\ln 2 / k` drawn uniformly from
``doubling_time_h``), and divides into two daughters of half its mass when it has doubled
(each daughter draws its own :math:`k` around the mother's, sd 10 %). Mass is carried by the
geometry: a cell of mass scale :math:`g` (1 at birth, 2 at division) has its footprint area
times :math:`\sqrt g` and its height times :math:`\sqrt g`, so its optical path volume, and
with it the dry mass, scales as :math:`g`. The first frame draws each cell's age uniformly
in its cycle.

Cells move by a persistent random walk (speed ``speed_um_per_min``, persistence 30 min) on top
of a common drift (``drift_um_per_min``), and their outlines wander a little; cells that come
closer than the colony spacing of the placement are pushed apart (they do not pile up). The
cells are placed on a field larger than the image, so the drift carries cells in and out of
view.

Each frame is drawn by :func:`~napari_dmqpm.simulation.phantoms.render_phantom` and imaged by
the same optics, detector and phase retrieval as :func:`~napari_dmqpm.simulation.simulate_field`.
The labels follow the Cell Tracking Challenge convention: a cell keeps its id from the frame it
is first seen, each daughter gets a new id, and ``lineage`` says whose daughter it is. Mitotic
rounding is not drawn (``mitotic_fraction`` is set to 0).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from napari_dmqpm.io.acquisition import Acquisition
from napari_dmqpm.simulation.cells import Cell, place_cells
from napari_dmqpm.simulation.config import SimulationConfig
from napari_dmqpm.simulation.field import (
    SimulatedField,
    _acquisition,
    _children,
    _image,
    _residual,
)
from napari_dmqpm.simulation.phantoms import render_phantom

__all__ = ["SimulatedGrowth", "simulate_growth"]

_PERSISTENCE_MIN = 30.0  # velocity correlation time of the random walk, min
_RATE_SPREAD = 0.1  # sd of a daughter's log growth rate around its mother's
_SEPARATION_UM_PER_MIN = 0.15  # daughters move apart at this speed after the division
_SPACING = 0.85  # closest centre distance, relative to packing times the sum of radii
_MASS_PASSES = 2  # drawings that correct the heights before the final one
_PROFILE_VOLUME = 0.8  # volume of a dome profile (1 - d^2)^0.25 over height times area
#: Specific refraction increment the true dry masses are given with, µm³/pg.
ALPHA_UM3_PER_PG = 0.18


@dataclass(frozen=True, eq=False)
class SimulatedGrowth:
    """A simulated time-lapse of growing, dividing cells with the true lineage.

    Attributes
    ----------
    angles : ndarray of shape (T, 4, M, N), float32
        Detector counts per frame.
    phase : ndarray of shape (T, M, N), float32
        Retrieved phase per frame, radians.
    true_phase : ndarray of shape (T, M, N), float32
        Object phase per frame (no noise), radians.
    labels : ndarray of shape (T, M, N), int32
        Instance labels: a cell keeps its id, daughters get new ids (0: background).
    modulation : ndarray of shape (T, M, N), float32
        Fringe modulation per frame, counts.
    lineage : dict of str to ndarray of shape (n_tracks,)
        One row per labelled cell: ``track_id``, ``parent`` (0: none seen), ``first_frame``,
        ``last_frame``, ``growth_rate_per_h`` (its true :math:`k`, 1/h) and
        ``doubling_time_h`` (h).
    mass_scale : dict of str to ndarray of shape (n_points,)
        ``track_id``, ``frame``, ``scale`` (:math:`g`, the true dry mass relative to the
        cell's birth mass) and ``dry_mass_pg`` (the true dry mass, pg, with
        ``ALPHA_UM3_PER_PG``) of every visible cell and frame.
    frame_interval_min : float
        Minutes between frames.
    config : SimulationConfig
        The parameters of every frame.
    """

    angles: np.ndarray
    phase: np.ndarray
    true_phase: np.ndarray
    labels: np.ndarray
    modulation: np.ndarray
    lineage: dict[str, np.ndarray]
    mass_scale: dict[str, np.ndarray]
    frame_interval_min: float
    config: SimulationConfig

    @property
    def graph(self) -> dict[int, list[int]]:
        """The true lineage as ``{daughter_id: [parent_id]}``."""
        pairs = zip(self.lineage["track_id"], self.lineage["parent"], strict=True)
        return {int(child): [int(parent)] for child, parent in pairs if parent > 0}

    def to_acquisition(self) -> Acquisition:
        """The time-lapse as an :class:`~napari_dmqpm.io.Acquisition` (kind "ssqpm-stack").

        Its metadata holds ``frame_interval_min``.
        """
        acquisition = _acquisition(self.angles, self.phase, self.modulation, self.config, True)
        acquisition.metadata["frame_interval_min"] = self.frame_interval_min
        return acquisition


@dataclass(eq=False)
class _Live:
    """A cell being simulated: reference geometry (at g = 1), mass scale, rate, motion."""

    node: int
    cell: Cell
    scale: float
    rate_per_h: float
    velocity: np.ndarray  # µm/min


@dataclass(eq=False)
class _Nodes:
    """Every cell that ever lived: its mother, rate, and the track id once it is seen."""

    parent: list[int] = field(default_factory=list)
    rate_per_h: list[float] = field(default_factory=list)
    track_id: list[int] = field(default_factory=list)

    def add(self, parent: int, rate_per_h: float) -> int:
        self.parent.append(parent)
        self.rate_per_h.append(rate_per_h)
        self.track_id.append(0)
        return len(self.parent) - 1


def simulate_growth(
    config: SimulationConfig | None = None,
    n_frames: int = 10,
    *,
    frame_interval_min: float = 10.0,
    doubling_time_h: tuple[float, float] = (15.0, 30.0),
    speed_um_per_min: float = 0.1,
    drift_um_per_min: float = 0.05,
    rng: np.random.Generator | int | Sequence[int] | None = None,
) -> SimulatedGrowth:
    """Simulate a time-lapse of growing cells that divide and enter and leave the field.

    Parameters
    ----------
    config : SimulationConfig, optional
        The parameters of every frame (density, optics, detector); the calibrated defaults
        when None. ``mitotic_fraction`` is ignored (set to 0).
    n_frames : int
        Number of time points ``T`` (>= 2).
    frame_interval_min : float
        Minutes between frames (> 0).
    doubling_time_h : tuple of float
        ``(low, high)``: each first-generation cell draws its doubling time uniformly in it, h.
    speed_um_per_min : float
        Sd of each velocity component of a cell's own random walk, µm/min.
    drift_um_per_min : float
        Speed of the common drift of all cells (random direction), µm/min.
    rng : int, sequence of int or numpy.random.Generator, optional
        Seed (a sequence of ints is a seed namespace, as ``numpy.random.default_rng`` takes)
        or random source: the same seed gives the same time-lapse.

    Returns
    -------
    SimulatedGrowth

    Examples
    --------
    >>> movie = simulate_growth(SimulationConfig(shape=(64, 64)), 3, rng=0)
    >>> movie.phase.shape, movie.labels.dtype.name
    ((3, 64, 64), 'int32')
    """
    config = (SimulationConfig() if config is None else config).replace(mitotic_fraction=0.0)
    _check(n_frames, frame_interval_min, doubling_time_h, speed_um_per_min, drift_um_per_min)
    source = np.random.default_rng(rng)
    placement, motion, drawing, optics, noise = _children(source, 5)
    residual = _residual(config, source)
    optics_seed, debris_seed = (int(s) for s in optics.integers(0, 2**63, size=2))
    angle = motion.uniform(-np.pi, np.pi)
    drift = drift_um_per_min * np.array([np.sin(angle), np.cos(angle)])
    nodes = _Nodes()
    live = _first_cells(
        config,
        n_frames * frame_interval_min,
        drift,
        doubling_time_h,
        speed_um_per_min,
        nodes,
        placement,
        motion,
    )
    frames: list[SimulatedField] = []
    scales: list[tuple[int, int, float, float]] = []
    for frame in range(n_frames):
        if frame > 0:
            live = _step(live, frame_interval_min, drift, speed_um_per_min, nodes, motion)
            _repel(live, config.packing)
        phantom = _render(live, config, int(drawing.integers(0, 2**63)), debris_seed)
        labels, seen = _track_labels(phantom.labels, live, nodes)
        phantom = dataclasses.replace(phantom, labels=labels)
        image = _image(phantom, config, np.random.default_rng(optics_seed), noise, residual)
        frames.append(image)
        scales.extend((nodes.track_id[c.node], frame, c.scale, _mass_pg(c, config)) for c in seen)
    return _result(frames, scales, nodes, frame_interval_min, config)


def _check(n_frames, interval, doubling, speed, drift) -> None:
    if isinstance(n_frames, bool) or not isinstance(n_frames, int) or n_frames < 2:
        raise ValueError(f"n_frames must be an integer >= 2; got n_frames={n_frames!r}")
    if not (isinstance(interval, (int, float)) and math.isfinite(interval) and interval > 0):
        raise ValueError(f"frame_interval_min must be > 0; got frame_interval_min={interval!r}")
    low, high = doubling
    if not (0 < low <= high < math.inf):
        raise ValueError(
            f"doubling_time_h must be (low, high) with 0 < low <= high; got {doubling!r}"
        )
    for name, value in (("speed_um_per_min", speed), ("drift_um_per_min", drift)):
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be >= 0; got {name}={value!r}")


def _first_cells(config, duration_min, drift, doubling, speed, nodes, placement, motion):
    """Cells placed on the image plus a margin that the drift can carry into view."""
    margin_um = float(np.hypot(*drift)) * duration_min + 2.0 * math.sqrt(
        config.cell_area_um2 / math.pi
    )
    margin = int(math.ceil(margin_um / config.pixel_size_um))
    wide = config.replace(shape=(config.shape[0] + 2 * margin, config.shape[1] + 2 * margin))
    placed, _ = place_cells(wide, placement)
    shift = margin * config.pixel_size_um
    live = []
    for cell in placed:
        age = float(motion.uniform())
        rate = math.log(2.0) / float(motion.uniform(*doubling))
        scale = 2.0**age
        base = cell.moved(  # the drawn cell stands for g = sqrt(2), the mean over a cycle
            row_um=cell.row_um - shift,
            col_um=cell.col_um - shift,
            radius_um=cell.radius_um * 2.0 ** (-1 / 8),
            height_um=cell.height_um * 2.0 ** (-1 / 4),
        )
        velocity = motion.standard_normal(2) * speed
        live.append(_Live(nodes.add(-1, rate), base, scale, rate, velocity))
    return live


def _step(live, interval_min, drift, speed, nodes, rng) -> list[_Live]:
    """Advance every cell by one frame: growth, division, motion, deformation."""
    keep = math.exp(-interval_min / _PERSISTENCE_MIN)
    moved: list[_Live] = []
    for cell in live:
        cell.scale *= math.exp(cell.rate_per_h * interval_min / 60.0)
        kick = rng.standard_normal(2) * speed * math.sqrt(1.0 - keep**2)
        cell.velocity = keep * cell.velocity + kick
        step = (cell.velocity + drift) * interval_min
        jitter = 0.01 * (rng.standard_normal(5) + 1j * rng.standard_normal(5))
        cell.cell = cell.cell.moved(
            row_um=cell.cell.row_um + float(step[0]),
            col_um=cell.cell.col_um + float(step[1]),
            angle=cell.cell.angle + 0.03 * float(rng.standard_normal()),
            harmonics=0.95 * cell.cell.harmonics + jitter,
        )
        moved.extend(_divide(cell, nodes, rng) if cell.scale >= 2.0 else [cell])
    return moved


def _repel(live: list[_Live], packing: float, n_rounds: int = 3) -> None:
    """Push apart cells whose centres came closer than the colony spacing of the placement.

    Cells do not pile up on each other: two cells closer than ``0.85 * packing`` times the sum
    of their radii (the closest :func:`~napari_dmqpm.simulation.cells.place_cells` puts them)
    are each moved half the shortfall apart, along the line of their centres.
    """
    if len(live) < 2:
        return
    centres = np.array([[c.cell.row_um, c.cell.col_um] for c in live])
    radii = np.array([_drawn(c).radius_um for c in live])
    for _ in range(n_rounds):
        offset = centres[:, None, :] - centres[None, :, :]
        distance = np.hypot(offset[..., 0], offset[..., 1])
        np.fill_diagonal(distance, np.inf)
        shortfall = np.clip(
            _SPACING * packing * (radii[:, None] + radii[None, :]) - distance, 0, None
        )
        if not shortfall.any():
            break
        unit = offset / np.where(np.isfinite(distance), np.maximum(distance, 1e-6), 1.0)[..., None]
        centres = centres + 0.5 * (shortfall[..., None] * unit).sum(axis=1)
    for cell, (row, col) in zip(live, centres, strict=True):
        cell.cell = cell.cell.moved(row_um=float(row), col_um=float(col))


def _divide(mother: _Live, nodes: _Nodes, rng: np.random.Generator) -> list[_Live]:
    """Two daughters of half the mother's mass, either side of her centre along her axis."""
    geometry = mother.cell
    radius = geometry.radius_um * (mother.scale / 2.0) ** 0.25
    axis = np.array([np.sin(geometry.angle), np.cos(geometry.angle)])
    daughters = []
    for sign in (1.0, -1.0):
        rate = mother.rate_per_h * math.exp(_RATE_SPREAD * float(rng.standard_normal()))
        shape = geometry.harmonics * float(rng.uniform(0.5, 1.0))
        cell = geometry.moved(
            row_um=geometry.row_um + sign * 0.5 * radius * float(axis[0]),
            col_um=geometry.col_um + sign * 0.5 * radius * float(axis[1]),
            angle=geometry.angle + float(rng.normal(0.0, 0.3)),
            harmonics=shape,
        )
        velocity = mother.velocity + sign * _SEPARATION_UM_PER_MIN * axis
        daughters.append(
            _Live(nodes.add(mother.node, rate), cell, mother.scale / 2.0, rate, velocity)
        )
    return daughters


def _mass_pg(cell: _Live, config: SimulationConfig) -> float:
    """The cell's true dry mass, pg: its optical path volume at its scale over alpha."""
    base = cell.cell
    volume = base.height_um * math.pi * base.radius_um**2 * _PROFILE_VOLUME * cell.scale
    return volume / ALPHA_UM3_PER_PG


def _render(live: list[_Live], config: SimulationConfig, seed: int, debris_seed: int):
    """Draw the cells so that each one's optical path volume over its label is its true one.

    Where neighbours overlap, the tessellation gives a cell less area than its outline; like
    a real cell pressed by its neighbours it is then taller. Each drawing measures the volume
    each label got (the blur moves some across borders) and the next draws each cell with its
    height scaled to match (``_MASS_PASSES`` corrections; within 0.25-4 times the drawn height).
    """
    cells = [_drawn(cell) for cell in live]
    ids = np.arange(1, len(cells) + 1)
    target = np.array([_mass_pg(cell, config) * ALPHA_UM3_PER_PG for cell in live])
    factor = np.ones(len(cells))
    for _ in range(_MASS_PASSES):
        drawn = [
            c.moved(height_um=c.height_um * float(f)) for c, f in zip(cells, factor, strict=True)
        ]
        phantom = render_phantom(drawn, config, ids=ids, rng=seed, debris_rng=debris_seed)
        volume = (
            np.bincount(
                phantom.labels.ravel(),
                weights=phantom.opd_um.ravel().astype(np.float64),
                minlength=len(cells) + 1,
            )[1:]
            * config.pixel_size_um**2
        )
        factor = np.clip(factor * target / np.where(volume > 0, volume, target), 0.25, 4.0)
    drawn = [c.moved(height_um=c.height_um * float(f)) for c, f in zip(cells, factor, strict=True)]
    return render_phantom(drawn, config, ids=ids, rng=seed, debris_rng=debris_seed)


def _drawn(cell: _Live) -> Cell:
    """The geometry of a cell at its mass scale: area and height each times sqrt(g)."""
    return cell.cell.moved(
        radius_um=cell.cell.radius_um * cell.scale**0.25,
        height_um=cell.cell.height_um * cell.scale**0.5,
    )


def _track_labels(
    provisional: np.ndarray, live: list[_Live], nodes: _Nodes
) -> tuple[np.ndarray, list[_Live]]:
    """Labels by track id (new ids for cells seen for the first time) and the cells seen."""
    present = np.unique(provisional[provisional > 0])
    lookup = np.zeros(len(live) + 1, dtype=np.int32)
    seen = []
    for label in present:
        cell = live[int(label) - 1]
        if nodes.track_id[cell.node] == 0:
            nodes.track_id[cell.node] = max(nodes.track_id) + 1
        lookup[label] = nodes.track_id[cell.node]
        seen.append(cell)
    return lookup[provisional], seen


def _result(frames, scales, nodes, interval, config) -> SimulatedGrowth:
    stacked = {
        name: np.stack([getattr(f, name) for f in frames])
        for name in ("angles", "phase", "true_phase", "labels", "modulation")
    }
    columns = list(zip(*scales, strict=True)) if scales else [()] * 4
    track_id, frame, scale, mass = (np.array(v) for v in columns)
    return SimulatedGrowth(
        lineage=_lineage(nodes, track_id, frame),
        mass_scale={
            "track_id": track_id.astype(np.int64),
            "frame": frame.astype(np.int64),
            "scale": scale.astype(np.float64),
            "dry_mass_pg": mass.astype(np.float64),
        },
        frame_interval_min=float(interval),
        config=config,
        **stacked,
    )


def _lineage(nodes: _Nodes, track_id: np.ndarray, frame: np.ndarray) -> dict[str, np.ndarray]:
    """One row per track: its parent's track (0 when the mother was never seen), frames, rate."""
    rows = []
    for node, tid in enumerate(nodes.track_id):
        if tid == 0:
            continue
        mother = nodes.parent[node]
        parent = nodes.track_id[mother] if mother >= 0 else 0
        frames = frame[track_id == tid]
        rate = nodes.rate_per_h[node]
        rows.append((tid, parent, frames.min(), frames.max(), rate, math.log(2.0) / rate))
    rows.sort()
    names = ("track_id", "parent", "first_frame", "last_frame")
    columns = list(zip(*rows, strict=True)) if rows else [()] * 6
    lineage = {n: np.array(c, dtype=np.int64) for n, c in zip(names, columns[:4], strict=True)}
    lineage["growth_rate_per_h"] = np.array(columns[4], dtype=np.float64)
    lineage["doubling_time_h"] = np.array(columns[5], dtype=np.float64)
    return lineage
