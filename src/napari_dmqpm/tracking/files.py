"""Track a labels file and write the results: what ``dmqpm track`` runs.

:func:`track_file` reads a labels stack (and, for dry mass, the phase stack it was segmented
from), links it with :func:`~napari_dmqpm.tracking.track_labels` and writes

- ``<stem>_tracks.csv``: one row per cell and frame (track id, frame, time, centroid, area,
  dry mass): the dry mass of each track against time;
- ``<stem>_lineage.csv``: one row per track (parent, first and last frame, division frame,
  growth rate in pg/h, doubling time in h; see ``TRACK_COLUMNS``);
- ``<stem>_ctc/``: the Cell Tracking Challenge layout (``res_track.txt`` and mask TIFFs).

``<stem>`` is the labels file's name without ``.tif`` and a trailing ``_labels``. The frame
interval comes from ``frame_interval_min`` when given, else from the files' metadata (ImageJ
``finterval``, OME ``TimeIncrement``); without either the rates are per frame only and the
result says so.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_dmqpm.inference.measure import write_table_csv
from napari_dmqpm.io.ctc import write_ctc
from napari_dmqpm.io.timing import read_frame_interval
from napari_dmqpm.tracking.frames import LabelFrames
from napari_dmqpm.tracking.link import track_labels
from napari_dmqpm.tracking.tracks import Tracks

__all__ = ["TrackFileResult", "output_stem", "track_file", "track_paths", "write_tracks"]


@dataclass(frozen=True)
class TrackFileResult:
    """What :func:`track_file` did.

    Attributes
    ----------
    tracks : Tracks
        The tracks.
    paths : list of Path
        ``<stem>_tracks.csv``, ``<stem>_lineage.csv`` and the CTC folder.
    frame_interval_min : float or None
        The interval used, minutes (None: unknown, rates per frame only).
    interval_source : str
        "given", the file it was read from, or "unknown".
    """

    tracks: Tracks
    paths: list[Path]
    frame_interval_min: float | None
    interval_source: str


def output_stem(labels_path: str | os.PathLike) -> str:
    """The file name without its suffix and a trailing ``_labels``.

    >>> output_stem("run/sim_0000_labels.tif")
    'sim_0000'

    Parameters
    ----------
    labels_path : str or path-like
        The labels file.
    """
    stem = Path(labels_path).name.split(".")[0]
    return stem.removesuffix("_labels") or stem


def track_file(
    labels_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    phase_path: str | os.PathLike | None = None,
    table_path: str | os.PathLike | None = None,
    frame_interval_min: float | None = None,
    pixel_size_um: float | None = None,
    wavelength_um: float | None = None,
    overwrite: bool = False,
) -> TrackFileResult:
    """Track the cells of a labels file and write the tables and the CTC folder.

    Parameters
    ----------
    labels_path : str or path-like
        Labels stack (T, M, N), e.g. ``dmqpm segment``'s ``<stem>_labels.tif``.
    out_dir : str or path-like
        Output folder, created when missing.
    phase_path : str or path-like, optional
        The time-lapse the labels were segmented from (any file ``dmqpm segment`` reads);
        its phase gives the dry mass, its pixel size and wavelength are used unless given.
    table_path : str or path-like, optional
        The per-cell table of the same segmentation (``dmqpm segment``'s ``<stem>_cells.csv``:
        ``frame``, ``label``, ``dry_mass_pg`` and, when present, ``background_ok``): the dry
        mass is taken from it and the phase of ``phase_path`` is not read (its file still
        gives the frame interval).
    frame_interval_min : float, optional
        Minutes between frames; overrides the files' metadata.
    pixel_size_um, wavelength_um : float, optional
        µm; override the files'.
    overwrite : bool
        Replace earlier outputs (default: raise ``FileExistsError`` before writing any).

    Returns
    -------
    TrackFileResult
    """
    from napari_dmqpm.io import read_acquisition

    labels, labels_pixel_um = _open_labels(labels_path, pixel_size_um)
    phase, table = None, None
    if table_path is not None:
        columns = _read_columns(table_path, _table_columns(table_path))
        table = {**columns, "frame": columns["frame"].astype(np.int64),
                 "label": columns["label"].astype(np.int64)}  # fmt: skip
    elif phase_path is not None:
        acquisition = read_acquisition(phase_path, pixel_size_um=pixel_size_um)
        phase = acquisition.phase  # lazy for a long time-lapse: measured frame by frame
        pixel_size_um = pixel_size_um or acquisition.pixel_size_um
        wavelength_um = wavelength_um or acquisition.wavelength_um
    pixel_size_um = pixel_size_um or labels_pixel_um
    interval, source = _interval(frame_interval_min, [labels_path, phase_path])
    stem = output_stem(labels_path)
    _refuse_existing(track_paths(out_dir, stem), overwrite)
    tracks = track_labels(
        labels,
        phase_tyx=phase,
        table=table,
        frame_interval_min=interval,
        pixel_size_um=pixel_size_um,
        wavelength_um=wavelength_um,
    )
    paths = write_tracks(tracks, out_dir, stem, overwrite=overwrite)
    return TrackFileResult(tracks, paths, interval, source)


def _table_columns(path: str | os.PathLike) -> tuple[str, ...]:
    """The columns tracking reads from a cells CSV (``background_ok`` when it has one)."""
    with open(path, encoding="utf-8") as handle:
        header = handle.readline().strip().split(",")
    return ("frame", "label", "dry_mass_pg") + (
        ("background_ok",) if "background_ok" in header else ()
    )


def track_paths(out_dir: str | os.PathLike, stem: str) -> list[Path]:
    """``<stem>_tracks.csv``, ``<stem>_lineage.csv`` and ``<stem>_ctc`` in ``out_dir``.

    Parameters
    ----------
    out_dir : str or path-like
        The output folder.
    stem : str
        The name the outputs start with (:func:`output_stem`).
    """
    out = Path(out_dir)
    return [out / f"{stem}_tracks.csv", out / f"{stem}_lineage.csv", out / f"{stem}_ctc"]


def _refuse_existing(paths: list[Path], overwrite: bool) -> None:
    existing = [str(p) for p in paths if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{existing[0]} exists; pass overwrite=True to replace it")


def write_tracks(
    tracks: Tracks, out_dir: str | os.PathLike, stem: str, *, overwrite: bool = False
) -> list[Path]:
    """Write a tracking result: the per-cell and per-track tables and the CTC folder.

    Parameters
    ----------
    tracks : Tracks
        From :func:`~napari_dmqpm.tracking.track_labels`, corrected or not.
    out_dir : str or path-like
        Output folder, created when missing.
    stem : str
        The files are ``<stem>_tracks.csv``, ``<stem>_lineage.csv`` and ``<stem>_ctc/``.
    overwrite : bool
        Replace earlier outputs (default: raise ``FileExistsError`` before writing any).

    Returns
    -------
    list of Path
        The two tables and the CTC folder. Each file is written atomically.
    """
    paths = track_paths(out_dir, stem)
    _refuse_existing(paths, overwrite)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    write_table_csv(paths[0], tracks.cells, overwrite=overwrite)
    write_table_csv(paths[1], tracks.table, overwrite=overwrite)
    parents = {child: mothers[0] for child, mothers in tracks.graph.items()}
    write_ctc(paths[2], tracks.labels, parents, overwrite=overwrite)
    return paths


def _interval(given: float | None, paths: list) -> tuple[float | None, str]:
    if given is not None:
        return given, "given"
    for path in paths:
        if path is not None and Path(path).suffix.lower() in (".tif", ".tiff"):
            found = read_frame_interval(path)
            if found is not None:
                return found, str(path)
    return None, "unknown"


def _open_labels(
    path: str | os.PathLike, pixel_size_um: float | None
) -> tuple[np.ndarray | LabelFrames, float | None]:
    """The labels stack, read frame by frame where the file allows, and its pixel size.

    A plain (T, M, N) labels TIFF (what ``dmqpm segment`` writes) is read one frame at a time
    when tracking measures and writes it; anything else is read whole by ``read_labels``,
    which also names what is wrong with a file that is not labels.
    """
    from napari_dmqpm.io import LABELS_KIND, inspect_file, read_labels

    frames = LabelFrames.open(path)
    if frames is not None:
        info = inspect_file(path)
        if info.kind == LABELS_KIND and tuple(info.shape) == frames.shape:
            return frames, pixel_size_um or info.pixel_size_um
    labels = read_labels(path, pixel_size_um=pixel_size_um)
    return labels.labels, labels.pixel_size_um


def _read_columns(path: str | os.PathLike, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Some columns of a cells CSV as float64 arrays (empty fields: NaN), row by row.

    The per-cell table of a long time-lapse has a row per cell and frame: only the columns
    named are kept, not every field of every row.
    """
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        missing = [name for name in names if name not in header]
        if missing:
            raise ValueError(f"{path} has no column {missing[0]!r}; it has {header}")
        where = [header.index(name) for name in names]
        values: list[list[float]] = [[] for _ in names]
        for line, row in enumerate(reader, start=2):
            try:
                for column, index in zip(values, where, strict=True):
                    column.append(float(row[index]) if row[index] else np.nan)
            except (ValueError, IndexError) as error:
                raise ValueError(f"{path}, line {line}: not a number ({error})") from None
    return {
        name: np.array(column, dtype=np.float64) for name, column in zip(names, values, strict=True)
    }
