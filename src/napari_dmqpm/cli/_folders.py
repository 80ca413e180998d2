"""The ``--out`` folder of a command: checked before any work, removed if a failed run made it."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["check_out_folder", "new_folders", "remove_if_empty"]


def check_out_folder(out: Path | None) -> None:
    """Refuse an ``--out`` that cannot be made or written in, before any work.

    NotADirectoryError when ``--out`` or one of its parents is a file, not a folder;
    PermissionError when the folder, or the nearest existing parent it would be made in, cannot
    be written (a read-only file system, no permission), so that training or segmenting does
    not run first.
    """
    if out is None:
        return
    folder = Path(os.path.abspath(out))
    for place in (folder, *folder.parents):
        if os.path.lexists(place):
            if not place.is_dir():
                where = "is a file" if place == folder else f"lies in {place}, a file"
                raise NotADirectoryError(f"--out {out} {where}, not a folder")
            if not os.access(place, os.W_OK | os.X_OK):
                what = "cannot write in it" if place == folder else f"cannot make it in {place}"
                raise PermissionError(
                    f"--out {out}: {what} (a read-only file system or no permission)"
                )
            return


def new_folders(out: Path | None) -> list[Path]:
    """``out`` and those of its parents that do not exist yet, deepest first."""
    missing: list[Path] = []
    if out is None:
        return missing
    folder = Path(os.path.abspath(out))
    while not os.path.lexists(folder) and folder.parent != folder:
        missing.append(folder)
        folder = folder.parent
    return missing


def remove_if_empty(folders: list[Path]) -> None:
    """Remove the folders a failed command created, deepest first, while they are empty."""
    for folder in folders:
        if not folder.is_dir() or folder.is_symlink():
            continue  # never made (the command failed before), or not ours
        try:
            folder.rmdir()  # refuses a folder with anything in it
        except OSError:
            return
