"""Writing a file's segmentation: labels TIFF, per-cell CSV and per-frame CSV, all or none.

``<stem>_frames.csv`` gives each frame's cell count and status (ok, empty, featureless; see
:mod:`~napari_dmqpm.inference.frames`), so that a frame without cells is said in a table.
The files are written to temporary names in the output folder and moved into place only when
all are complete. Without ``overwrite`` they are linked into place (``os.link`` fails when the
name exists), so an existing file is never replaced; on any error, or Ctrl+C, the files placed
so far and the temporary files are removed.

:func:`write_outputs` writes a finished stack; :func:`stream_outputs` takes the frames one at a
time (the labels go into the TIFF page by page, the rows into the CSV), so that memory does not
grow with the number of frames.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from napari_dmqpm.io import write_labels
from napari_dmqpm.io.write import LabelsStream, name_os_error, place_file

from .frames import FrameStatus, frame_status, frames_to_csv
from .measure import empty_table, table_to_csv, write_table_csv

_STEMS = (".ome.tiff", ".ome.tif", ".tiff", ".tif", ".png")


def output_paths(path: str | os.PathLike, out_dir: str | os.PathLike) -> tuple[Path, Path, Path]:
    """``<out_dir>/<stem>_labels.tif``, ``<stem>_cells.csv`` and ``<stem>_frames.csv``.

    Parameters
    ----------
    path : str or path-like
        The input file.
    out_dir : str or path-like
        The output folder.
    """
    name = Path(path).name
    stem = next((name[: -len(s)] for s in _STEMS if name.lower().endswith(s)), Path(name).stem)
    out_dir = Path(out_dir)
    return (
        out_dir / f"{stem}_labels.tif",
        out_dir / f"{stem}_cells.csv",
        out_dir / f"{stem}_frames.csv",
    )


def check_out_dir(out_dir: Path, targets: tuple[Path, ...], overwrite: bool) -> None:
    """Fail early: a missing or unwritable folder, or an existing output without overwrite.

    Parameters
    ----------
    out_dir : Path
        The output folder.
    targets : tuple of Path
        The files that will be written.
    overwrite : bool
        Existing outputs may be replaced.
    """
    if not out_dir.is_dir():
        raise FileNotFoundError(f"the output folder {out_dir} does not exist")
    for target in targets:
        if target.exists() and not overwrite:
            raise FileExistsError(f"{target} exists; pass overwrite=True to replace it")
    try:
        with tempfile.TemporaryFile(dir=out_dir):
            pass
    except OSError as err:
        raise PermissionError(f"cannot write to the output folder {out_dir}: {err}") from err


def _temporary_name(out_dir: Path, target: Path) -> Path:
    """A fresh hidden name next to ``target`` (no file under it: the writers create it)."""
    handle, name = tempfile.mkstemp(dir=out_dir, prefix=f".{target.name}.", suffix=".tmp")
    os.close(handle)
    os.unlink(name)  # the writers refuse to write over an existing file
    return Path(name)


def _stage(out_dir: Path, target: Path, write: Callable[[Path], Any]) -> Path:
    """``write`` to a temporary name next to ``target``; a failed write leaves nothing."""
    name = _temporary_name(out_dir, target)
    try:
        write(name)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            name.unlink()
        raise
    return name


def _place_all(staged: list[tuple[Path, Path]], overwrite: bool) -> None:
    """Move staged files to their targets; on failure remove those already placed."""
    placed: list[Path] = []
    try:
        for temporary, target in staged:
            place_file(temporary, target, overwrite)
            placed.append(target)
    except BaseException:
        if not overwrite:
            for target in placed:
                with contextlib.suppress(OSError):
                    target.unlink()
        raise


def _statuses(labels: np.ndarray) -> list[FrameStatus]:
    """Frame statuses from labels alone (frames 0..T-1; no frame known to be featureless)."""
    frames = labels if labels.ndim == 3 else labels[None]
    return [frame_status(t, plane) for t, plane in enumerate(frames)]


def write_outputs(
    targets: tuple[Path, ...],
    labels: np.ndarray,
    table: dict[str, np.ndarray],
    pixel_size_um: float | None,
    *,
    overwrite: bool,
    statuses: list[FrameStatus] | None = None,
) -> None:
    """Write the labels TIFF and the CSVs to temporary files, then move them all into place.

    ``targets`` as :func:`output_paths` gives them (the frames CSV is left out when only two
    are given); ``statuses`` default to what the labels alone say, frames numbered from 0.

    Parameters
    ----------
    targets : tuple of Path
        The labels TIFF, the cells CSV and the frames CSV (:func:`output_paths`).
    labels : ndarray of shape (M, N) or (T, M, N)
        The label images.

    table : dict of str to ndarray
        Columns of equal length (as :func:`~napari_dmqpm.inference.measure_cells` returns).
    pixel_size_um : float or None
        Written into the TIFF's resolution tags.
    overwrite : bool
        Existing outputs may be replaced.
    statuses : list of FrameStatus, optional
        One per frame, for the frames CSV.
    """
    out_dir = targets[0].parent

    def write_labels_to(path: Path) -> None:
        write_labels(path, labels, pixel_size_um=pixel_size_um)

    def write_frames_to(path: Path) -> None:
        text = frames_to_csv(_statuses(labels) if statuses is None else statuses)
        with open(path, "x", encoding="utf-8", newline="") as handle:
            handle.write(text)

    staged: list[tuple[Path, Path]] = []
    try:
        staged.append((_stage(out_dir, targets[0], write_labels_to), targets[0]))
        staged.append(
            (_stage(out_dir, targets[1], lambda p: write_table_csv(p, table)), targets[1])
        )
        if len(targets) > 2:
            staged.append((_stage(out_dir, targets[2], write_frames_to), targets[2]))
        _place_all(staged, overwrite)
    finally:
        for temporary, _ in staged:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()


class OutputStream:
    """The outputs of :func:`stream_outputs`, filled one frame at a time.

    Parameters
    ----------
    labels : LabelsStream
        The labels TIFF being written.
    table : file-like
        The cells CSV, open for writing.
    frames : file-like, optional
        The frames CSV, open for writing.
    """

    def __init__(self, labels: LabelsStream, table: Any, frames: Any = None) -> None:
        self.labels, self.table, self.frames, self.n_rows = labels, table, frames, 0
        self.diameters: set[float] = set()  # cell_diameter_px values of the rows written
        self.statuses: list[FrameStatus] = []  # the frames' statuses, in the order given

    def add(
        self,
        index: int,
        labels: np.ndarray,
        table: dict[str, np.ndarray],
        status: FrameStatus | None = None,
    ) -> None:
        """Write frame ``index`` of the labels, append its rows and its status to the CSVs.

        Without a ``status``, the labels alone give it (``ok`` or ``empty``), numbered
        ``index``.

        Parameters
        ----------
        index : int
            Frame index.
        labels : ndarray of shape (M, N)
            Its labels.

        table : dict of str to ndarray
            Columns of equal length (as :func:`~napari_dmqpm.inference.measure_cells` returns).
        status : FrameStatus, optional
            Its status (for the frames CSV).
        """
        self.labels.write(index, labels)
        self.append_rows(table)
        self.append_status(frame_status(index, labels) if status is None else status)

    def append_status(self, status: FrameStatus) -> None:
        """Append a frame's status to the frames CSV (frames in the order of the labels).

        Parameters
        ----------
        status : FrameStatus
            One frame's status.
        """
        self.statuses.append(status)
        if self.frames is not None:
            self.frames.write(frames_to_csv([status], header=False))

    def append_rows(self, table: dict[str, np.ndarray]) -> None:
        """Append rows to the CSV (frames' rows go in frame order; labels in any order).

        Parameters
        ----------
        table : dict of str to ndarray
            Columns of equal length (as :func:`~napari_dmqpm.inference.measure_cells` returns).
        """
        self.table.write(table_to_csv(table, header=False))
        self.n_rows += len(table["label"])
        values = np.asarray(table.get("cell_diameter_px", ()), dtype=np.float64)
        self.diameters.update(float(v) for v in np.unique(values[np.isfinite(values)]))


@contextlib.contextmanager
def stream_outputs(
    targets: tuple[Path, ...],
    *,
    shape: tuple[int, ...],
    pixel_size_um: float | None,
    overwrite: bool,
) -> Iterator[OutputStream]:
    """Write the labels TIFF and the CSV frame by frame, then move both into place.

    Parameters
    ----------
    targets : (Path, Path, Path) or (Path, Path)
        Final labels TIFF, cells CSV and frames CSV (from :func:`output_paths`), in one
        existing folder; without the third, no frames CSV is written.
    shape : (M, N) or (T, M, N)
        Shape of the labels image; every frame must be added.
    pixel_size_um : float or None
        Pixel size written into the TIFF, in µm.
    overwrite : bool
        Replace existing outputs; without it an existing name is never written over.

    Yields
    ------
    OutputStream
        ``add(index, labels, table, status)`` per frame. When the ``with`` block ends normally
        the files are flushed, fsync'ed and placed (all or none); when it raises (any error,
        Ctrl+C) nothing is left under the final names and the temporaries are removed. The
        result is byte for byte what :func:`write_outputs` writes for the same frames.
    """
    out_dir = targets[0].parent
    names = [_temporary_name(out_dir, target) for target in targets]
    try:
        with contextlib.ExitStack() as files:
            labels = files.enter_context(
                LabelsStream(names[0], shape=shape, pixel_size_um=pixel_size_um)
            )
            texts = [files.enter_context(open(name, "x", encoding="utf-8", newline=""))
                     for name in names[1:]]  # fmt: skip
            texts[0].write(table_to_csv(empty_table()))
            if len(texts) > 1:
                texts[1].write(frames_to_csv([]))
            yield OutputStream(labels, *texts)
            for text in texts:
                text.flush()
                os.fsync(text.fileno())
        _place_all(list(zip(names, targets, strict=True)), overwrite)
    except OSError as error:  # a full disk: name the output, not a removed temporary
        written = [str(name) for name in names]
        where = str(error.filename or written[0])  # numpy's short write names no file
        named = name_os_error(error, targets[written.index(where)]) if where in written else error
        if named is error:
            raise
        raise named from error
    finally:
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                name.unlink()
