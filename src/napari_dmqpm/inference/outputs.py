"""Writing a file's segmentation: labels TIFF and per-cell CSV, both complete or both absent.

Both files are written to temporary names in the output folder and moved into place only when
both are complete. Without ``overwrite`` they are linked into place (``os.link`` fails when the
name exists), so an existing file is never replaced; on any error, or Ctrl+C, the files placed
so far and the temporary files are removed.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from napari_dmqpm.io import write_labels
from napari_dmqpm.io.write import place_file

from .measure import write_table_csv

_STEMS = (".ome.tiff", ".ome.tif", ".tiff", ".tif", ".png")


def output_paths(path: str | os.PathLike, out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """``(<out_dir>/<stem>_labels.tif, <out_dir>/<stem>_cells.csv)`` for an input file."""
    name = Path(path).name
    stem = next((name[: -len(s)] for s in _STEMS if name.lower().endswith(s)), Path(name).stem)
    return Path(out_dir) / f"{stem}_labels.tif", Path(out_dir) / f"{stem}_cells.csv"


def check_out_dir(out_dir: Path, targets: tuple[Path, ...], overwrite: bool) -> None:
    """Fail early: a missing or unwritable folder, or an existing output without overwrite."""
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


def _stage(out_dir: Path, target: Path, write: Callable[[Path], Any]) -> Path:
    handle, name = tempfile.mkstemp(dir=out_dir, prefix=f".{target.name}.", suffix=".tmp")
    os.close(handle)
    os.unlink(name)  # the writers refuse to write over an existing file
    write(Path(name))
    return Path(name)


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


def write_outputs(
    targets: tuple[Path, Path],
    labels: np.ndarray,
    table: dict[str, np.ndarray],
    pixel_size_um: float | None,
    *,
    overwrite: bool,
) -> None:
    """Write the labels TIFF and the CSV to temporary files, then move both into place."""
    out_dir = targets[0].parent

    def write_labels_to(path: Path) -> None:
        write_labels(path, labels, pixel_size_um=pixel_size_um)

    staged: list[tuple[Path, Path]] = []
    try:
        staged.append((_stage(out_dir, targets[0], write_labels_to), targets[0]))
        staged.append(
            (_stage(out_dir, targets[1], lambda p: write_table_csv(p, table)), targets[1])
        )
        _place_all(staged, overwrite)
    finally:
        for temporary, _ in staged:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
