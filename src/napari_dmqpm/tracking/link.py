r"""Link the cells of a labels stack into tracks with divisions: :func:`track_labels`.

The linking is the linear assignment problem (LAP) tracker of Jaqaman et al. (2008) as the
`laptrack` package implements it (Fukai & Kawaguchi 2023): frame-to-frame links first, then
gap closing (a cell missing for up to ``max_gap_frames`` frames) and splitting (divisions)
between the track segments. Each cell is a point

.. math::

    (r, c, w \ln m)

with its centroid ``(r, c)`` in px and its dry mass :math:`m` (its area when there is no
dry mass), weighted by ``mass_weight_px`` (:math:`w`, px per unit of log mass). The cost of a
link is the squared distance between the points: a cell's mass changes slowly, so a link to a
cell of very different mass costs more. A division halves the mass, so the cost of a
mother-daughter link is :math:`\Delta r^2 + \Delta c^2 + w^2 (\Delta\ln m + \ln 2)^2`.
Links longer than ``max_distance_px`` (with the mass term) are never made.

References
----------
.. [1] K. Jaqaman et al., "Robust single-particle tracking in live-cell time-lapse
   sequences", Nature Methods 5, 695-702 (2008).
.. [2] Y. T. Fukai and K. Kawaguchi, "LapTrack: linear assignment particle tracking with
   tunable metrics", Bioinformatics 39, btac799 (2023).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from napari_dmqpm.tracking._validate import (
    check_labels_stack,
    check_phase_stack,
    check_table,
    positive_or_none,
)
from napari_dmqpm.tracking.frames import LabelFrames
from napari_dmqpm.tracking.regions import measure_regions
from napari_dmqpm.tracking.tracks import Tracks, build_tracks

__all__ = [
    "DIVISION_TOLERANCE",
    "check_divisions",
    "default_max_distance",
    "link_regions",
    "track_labels",
]

_LN2 = math.log(2.0)
#: Relative mass mismatch (daughters' sum against the mother) a division may have.
DIVISION_TOLERANCE = 0.3


def track_labels(
    labels_tyx: np.ndarray | Sequence[np.ndarray] | LabelFrames,
    *,
    phase_tyx: np.ndarray | None = None,
    table: dict[str, np.ndarray] | None = None,
    frame_interval_min: float | None = None,
    pixel_size_um: float | None = None,
    wavelength_um: float | None = None,
    alpha_um3_per_pg: float = 0.18,
    max_distance_px: float | None = None,
    max_gap_frames: int = 2,
    divisions: bool = True,
    mass_weight_px: float = 10.0,
) -> Tracks:
    """Link per-frame instance labels into tracks, with divisions and gaps.

    Parameters
    ----------
    labels_tyx : ndarray of shape (T, M, N), or a sequence of T arrays of shape (M, N)
        Instance labels per frame (integers, 0 background), T >= 2. Not modified. A
        :class:`~napari_dmqpm.tracking.frames.LabelFrames` is read one frame at a time, and
        the result's labels are then relabelled when indexed (no stack in memory).
    phase_tyx : ndarray of shape (T, M, N), optional
        Phase in radians; with ``pixel_size_um`` and ``wavelength_um`` it gives each cell's
        dry mass (pg), used for linking and for the growth fits.
    table : dict of str to ndarray, optional
        Instead of ``phase_tyx``: a per-cell-per-frame table with ``frame``, ``label`` and
        ``dry_mass_pg`` (as :func:`napari_dmqpm.inference.measure_cells` writes it).
    frame_interval_min : float, optional
        Minutes between frames; without it the per-hour rates are NaN (never guessed).
    pixel_size_um, wavelength_um : float, optional
        µm, for the dry mass from ``phase_tyx``.
    alpha_um3_per_pg : float
        Specific refraction increment, µm³/pg.
    max_distance_px : float, optional
        Longest link in px (the mass term included); by default the median cell diameter.
    max_gap_frames : int
        Most consecutive frames a cell may be missing and keep its track (0: no gap closing).
    divisions : bool
        Link daughters to their mother (else each daughter starts a track of its own).
    mass_weight_px : float
        ``w`` of the cost: px per unit of ln(mass) (or ln(area)); 0 links on position only.

    Returns
    -------
    Tracks

    Raises
    ------
    ValueError
        On a single frame ("nothing to track"), frames of different shapes, labels that are
        negative or not integers (naming the frame), a phase of another shape, or options out
        of range.

    Examples
    --------
    A square that moves one pixel a frame keeps its track:

    >>> labels = np.zeros((3, 20, 20), np.int32)
    >>> for t in range(3):
    ...     labels[t, 5:10, 5 + t : 10 + t] = 4 + t
    >>> tracks = track_labels(labels, frame_interval_min=10)
    >>> tracks.n_tracks, np.unique(tracks.labels).tolist()
    (1, [0, 1])
    """
    labels = check_labels_stack(labels_tyx)
    if phase_tyx is not None and table is not None:
        raise ValueError("give phase_tyx or table, not both")
    phase = check_phase_stack(phase_tyx, labels.shape)
    checked_table = None if table is None else check_table(table, labels.shape[0])
    interval = positive_or_none("frame_interval_min", frame_interval_min)
    _check_options(max_distance_px, max_gap_frames, mass_weight_px)
    regions = measure_regions(
        labels,
        phase_tyx=phase,
        table=checked_table,
        pixel_size_um=positive_or_none("pixel_size_um", pixel_size_um),
        wavelength_um=positive_or_none("wavelength_um", wavelength_um),
        alpha_um3_per_pg=alpha_um3_per_pg,
    )
    if max_distance_px is None:
        max_distance_px = default_max_distance(regions["area_px"])
    edges, feature = link_regions(
        regions,
        max_distance_px=max_distance_px,
        max_gap_frames=max_gap_frames,
        divisions=divisions,
        mass_weight_px=mass_weight_px,
    )
    metadata = {
        "linker": "laptrack",
        "linking_feature": feature,
        "max_distance_px": float(max_distance_px),
        "max_gap_frames": int(max_gap_frames),
        "divisions": bool(divisions),
        "mass_weight_px": float(mass_weight_px),
    }
    return build_tracks(labels, regions, edges, frame_interval_min=interval, metadata=metadata)


def _check_options(max_distance_px: float | None, max_gap_frames: int, weight: float) -> None:
    if max_distance_px is not None:
        positive_or_none("max_distance_px", max_distance_px)
    if isinstance(max_gap_frames, bool) or not isinstance(max_gap_frames, (int, np.integer)):
        raise ValueError(f"max_gap_frames must be an integer >= 0; got {max_gap_frames!r}")
    if max_gap_frames < 0:
        raise ValueError(f"max_gap_frames must be an integer >= 0; got {max_gap_frames!r}")
    if not (isinstance(weight, (int, float)) and math.isfinite(weight) and weight >= 0):
        raise ValueError(f"mass_weight_px must be a number >= 0; got mass_weight_px={weight!r}")


def default_max_distance(area_px: np.ndarray) -> float:
    """The median equivalent diameter of the cells, px (10 px when there are none).

    Parameters
    ----------
    area_px : ndarray
        Areas of the cells, px.
    """
    if area_px.size == 0:
        return 10.0
    return float(max(2.0 * math.sqrt(float(np.median(area_px)) / math.pi), 2.0))


def link_regions(
    regions: dict[str, np.ndarray],
    *,
    max_distance_px: float,
    max_gap_frames: int,
    divisions: bool,
    mass_weight_px: float,
) -> tuple[np.ndarray, str]:
    """Links between the rows of a regions table, by laptrack.

    Parameters
    ----------
    regions : dict of str to ndarray of shape (n_cells,)
        From :func:`~napari_dmqpm.tracking.regions.measure_regions`, sorted by frame.
    max_distance_px, max_gap_frames, divisions, mass_weight_px
        As in :func:`track_labels`.

    Returns
    -------
    edges : ndarray of shape (n_links, 2), int64
        Row indices ``(earlier, later)``.
    feature : str
        "dry_mass" or "area": what the log term of the cost measured.
    """
    from laptrack import LapTrack  # imported here: it loads pandas and scikit-learn

    points, feature = _points(regions, mass_weight_px)
    frames = regions["frame"]
    if frames.size == 0:
        return np.zeros((0, 2), dtype=np.int64), feature
    n_frames = int(frames.max()) + 1
    rows_of = [np.flatnonzero(frames == t) for t in range(n_frames)]
    cutoff = float(max_distance_px) ** 2
    tracker = LapTrack(
        metric="sqeuclidean",
        cutoff=cutoff,
        gap_closing_metric="sqeuclidean",
        gap_closing_cutoff=cutoff if max_gap_frames > 0 else False,
        gap_closing_max_frame_count=max_gap_frames + 1,
        splitting_metric=_division_cost(mass_weight_px),
        splitting_cutoff=cutoff if divisions else False,
    )
    coords = [points[rows].reshape(-1, 3) for rows in rows_of]
    tree = tracker.predict(coords)
    pairs = sorted(
        (int(rows_of[f1][i1]), int(rows_of[f2][i2]))
        for (f1, i1), (f2, i2) in ((min(a, b), max(a, b)) for a, b in tree.edges())
    )
    edges = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    mass = _feature_values(regions, feature)
    return check_divisions(edges, mass, edge=regions["touches_border"]), feature


def check_divisions(
    edges: np.ndarray,
    mass: np.ndarray | None,
    *,
    edge: np.ndarray | None = None,
    tolerance: float = DIVISION_TOLERANCE,
) -> np.ndarray:
    """Links of the divisions that conserve mass; a split that does not is cut.

    Dry mass is conserved at a division: the daughters together weigh what the mother did,
    and each about half. A split whose daughters' sum is off by more than ``tolerance``
    (relative, in log) or in which one daughter has under 20 % of the sum is no division:
    the daughter least like the mother in mass loses its link and starts a track of its own.
    A division in which the mother or a daughter touches the field edge is kept as it is (the
    edge cuts their mass).

    Parameters
    ----------
    edges : ndarray of shape (n_links, 2), int
        Row indices ``(earlier, later)``.
    mass : ndarray of shape (n_cells,) or None
        The mass (or area) of each row; None keeps every split.
    edge : ndarray of shape (n_cells,), bool, optional
        Rows that touch the field edge.
    tolerance : float
        Largest ``|ln(sum of daughters / mother)|`` accepted is ``ln(1 + tolerance)``.

    Returns
    -------
    ndarray of shape (n_kept, 2), int64
    """
    if mass is None or edges.size == 0:
        return edges
    earlier, counts = np.unique(edges[:, 0], return_counts=True)
    cut = np.zeros(len(edges), dtype=bool)
    for mother in earlier[counts >= 2]:
        rows = np.flatnonzero(edges[:, 0] == mother)
        if edge is not None and (edge[mother] or edge[edges[rows, 1]].any()):
            continue
        daughters = mass[edges[rows, 1]]
        total = daughters.sum()
        balanced = daughters.min() >= 0.2 * total
        if balanced and abs(math.log(total / mass[mother])) <= math.log1p(tolerance):
            continue
        keep = np.argmin(np.abs(np.log(np.maximum(daughters, 1e-12) / mass[mother])))
        cut[np.delete(rows, keep)] = True
    return edges[~cut]


def _feature_values(regions: dict[str, np.ndarray], feature: str) -> np.ndarray:
    return regions["dry_mass_pg" if feature == "dry_mass" else "area_px"].astype(np.float64)


def _points(regions: dict[str, np.ndarray], weight: float) -> tuple[np.ndarray, str]:
    """``(row, col, w ln m)`` per cell, with the area for ``m`` where a dry mass is missing."""
    mass = regions["dry_mass_pg"]
    usable = mass.size > 0 and bool(np.all(np.isfinite(mass) & (mass > 0)))
    feature = "dry_mass" if usable else "area"
    values = _feature_values(regions, feature)
    log_values = np.log(np.maximum(values.astype(np.float64), 1e-12))
    points = np.column_stack(
        [regions["centroid_row"], regions["centroid_col"], weight * log_values]
    )
    return points, feature


def _division_cost(weight: float):
    """The squared distance of a daughter to its mother, the mother's log mass less ln 2."""
    shift = weight * _LN2

    def cost(daughter: np.ndarray, mother: np.ndarray) -> float:
        d_row, d_col = daughter[0] - mother[0], daughter[1] - mother[1]
        d_mass = daughter[2] - mother[2] + shift
        return float(d_row * d_row + d_col * d_col + d_mass * d_mass)

    return cost
