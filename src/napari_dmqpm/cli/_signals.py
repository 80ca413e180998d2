"""The ``dmqpm`` command line and its process: SIGTERM, and temporaries left by killed runs.

SIGTERM (``kill``, a cluster's time limit, ``docker stop``) is handled like Ctrl+C: it raises
:class:`Terminated`, a ``KeyboardInterrupt``, in the main thread, so every writer removes its
temporary file and no output is left half-written. SIGKILL cannot be handled: a run killed so
leaves its hidden temporaries (``.<name>.<random>.tmp``) in ``--out``; :func:`stale_temporaries`
finds them when the next command starts there, removes those untouched for an hour and names
the others (a run still writing them).
"""

from __future__ import annotations

import contextlib
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["STALE_AFTER_S", "Terminated", "handle_sigterm", "stale_temporaries"]

#: A temporary untouched for this long is left over from a killed run, and removed.
STALE_AFTER_S = 3600.0

# tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp") of io.write and inference.outputs
_TEMPORARY = re.compile(r"\..+\.(tif|tiff|csv|json|md|txt)\.[A-Za-z0-9_]{8}\.tmp")


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: stop like Ctrl+C (clean-up runs, no output is left half-written)."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated(f"signal {signum}")


@contextlib.contextmanager
def handle_sigterm() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` (main thread only; else a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def stale_temporaries(folder: Path | None, *, now: float | None = None) -> list[str]:
    """Remove our temporaries left in ``folder`` by killed runs; one line on each found.

    Returns
    -------
    list of str
        E.g. ``"removed .a_labels.tif.k2j4_x9a.tmp (800.0 MiB), left by an interrupted run"``,
        or ``"... is recent (a run writing into this folder?); left in place"``.
    """
    from napari_dmqpm.io.limits import format_bytes

    if folder is None or not folder.is_dir():
        return []
    now = time.time() if now is None else now
    lines = []
    for path in sorted(folder.iterdir()):
        if not _TEMPORARY.fullmatch(path.name) or not path.is_file() or path.is_symlink():
            continue
        stat = path.stat()
        size = format_bytes(stat.st_size)
        if now - stat.st_mtime < STALE_AFTER_S:
            lines.append(
                f"{path} ({size}) is recent (a run writing into this folder?); left in place"
            )
            continue
        try:
            path.unlink()
        except OSError as error:
            lines.append(f"cannot remove {path} ({size}), left by an interrupted run: {error}")
        else:
            lines.append(f"removed {path} ({size}), left by an interrupted run")
    return lines
