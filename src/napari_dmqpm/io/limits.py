"""How much memory a file may make the reader allocate, decided from its header before decoding.

A header can declare any size: a 1.6 MB deflate TIFF can declare a 40000 x 40000 mosaic, and
a few hundred bytes can claim 13 GiB. Before pixels are decoded, :func:`check_declared` compares
the declared size

- with what the file's compression can expand its bytes to (deflate at most 1032:1, LZW about
  1400:1, PackBits 64:1): a header that claims more is corrupt or a decompression bomb;
- with the memory the read needs (the decoded pixels plus float32 working copies, about
  :data:`WORK_BYTES_PER_VALUE` bytes per stored value) against the budget: the memory
  available now, and at most ``$NAPARI_DMQPM_MAX_GIB`` GiB when that is set
  (:func:`memory_budget`);
- for files whose phase is retrieved (angle stacks, raw mosaics), with what retrieving the
  phase of one frame needs at its peak (:func:`check_retrieval`): the unwrapper works on the
  whole frame, so such a frame cannot be read in strips.

All raise the reader's :class:`~napari_dmqpm.io.acquisition.FormatError`, naming the file and
the declared size.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from napari_dmqpm.io.acquisition import FormatError

__all__ = [
    "LIMIT_ENV",
    "MAX_EXPANSION",
    "WORK_BYTES_PER_VALUE",
    "RETRIEVAL_BYTES_PER_PIXEL",
    "available_memory",
    "check_declared",
    "check_retrieval",
    "format_bytes",
    "memory_budget",
]

#: Environment variable: the most memory, in GiB, one file may make the reader allocate.
LIMIT_ENV = "NAPARI_DMQPM_MAX_GIB"
#: The budget where the memory available cannot be found (and no limit is set).
FALLBACK_BYTES = 16 * 2**30
#: Float32 working copies a read makes per stored value (angles, phase, modulation).
WORK_BYTES_PER_VALUE = 12
#: Peak bytes per pixel of one frame's phase retrieval: its four float32 angle planes (16)
#: and what :func:`napari_dmqpm.phase.retrieve_phase` allocates above them, 122-124 bytes per
#: pixel measured on noisy 1-9 MP frames (scikit-image's float64 unwrapper and its records).
RETRIEVAL_BYTES_PER_PIXEL = 144
#: Most output bytes per compressed byte, by compression (with a margin for LZW).
MAX_EXPANSION = {"deflate": 1032, "LZW": 1400, "PackBits": 64}


def format_bytes(n_bytes: float) -> str:
    """``"13.4 GiB"``, ``"164 bytes"``: a size in words.

    Parameters
    ----------
    n_bytes : float
        A size in bytes.
    """
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n_bytes >= size:
            return f"{n_bytes / size:.1f} {unit}"
    return f"{int(n_bytes)} bytes"


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation now (psutil, /proc/meminfo), or None."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except (ImportError, OSError, AttributeError):
        pass
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _limit() -> int | None:
    text = os.environ.get(LIMIT_ENV, "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{LIMIT_ENV} must be a positive number of GiB; got {text!r}")
    return int(value * 2**30)


def memory_budget() -> tuple[int, str]:
    """The bytes one read may allocate, and what sets them, in words.

    The memory available now, lowered to ``$NAPARI_DMQPM_MAX_GIB`` when that is set; 16 GiB
    where neither is known.
    """
    limit, available = _limit(), available_memory()
    if limit is not None and (available is None or limit <= available):
        return limit, f"the limit {LIMIT_ENV}={os.environ[LIMIT_ENV].strip()} GiB"
    if available is not None:
        return available, f"the memory available ({format_bytes(available)})"
    return FALLBACK_BYTES, f"{format_bytes(FALLBACK_BYTES)} (set {LIMIT_ENV} to change it)"


def check_declared(
    path: str | os.PathLike,
    shape: tuple[int, ...],
    dtype,
    *,
    compression: str = "none",
    work_bytes_per_value: int = WORK_BYTES_PER_VALUE,
    memory: bool = True,
    what: str = "the header claims",
) -> int:
    """Refuse a declared image the file cannot hold or the memory cannot take, before decoding.

    Parameters
    ----------
    path : path-like
        The file (its size on disk bounds what a compressed file can hold).
    shape, dtype
        The declared pixels about to be decoded.
    compression : str
        The compression's name (``FileInfo.compression``); see :data:`MAX_EXPANSION`.
    work_bytes_per_value : int
        Working memory per value besides the decoded pixels.
    memory : bool
        Also compare with :func:`memory_budget` (False: only with what the file can hold,
        for a file read lazily, frame by frame).
    what : str
        Who declares it, for the message.

    Returns
    -------
    int
        The bytes of the declared pixels.

    Raises
    ------
    FormatError
        Naming the file, the declared size and shape, and what it exceeds.
    """
    n_values = math.prod(int(n) for n in shape)
    n_bytes = n_values * np.dtype(dtype).itemsize
    declared = f"{format_bytes(n_bytes)} of pixels (shape {tuple(shape)}, {np.dtype(dtype)})"
    claim = f"{Path(path)}: {what} {declared}"
    expansion = MAX_EXPANSION.get(compression)
    if expansion is not None:
        size = os.stat(path).st_size
        if n_bytes > expansion * size:
            raise FormatError(
                f"{claim} in a file of {format_bytes(size)}, more than {compression} can expand "
                f"(at most {expansion}:1): a corrupt header or a decompression bomb; not decoded"
            )
    if not memory:
        return n_bytes
    budget, why = memory_budget()
    needed = n_bytes + work_bytes_per_value * n_values
    if needed > budget:
        raise FormatError(
            f"{claim}; reading it needs about {format_bytes(needed)}, more than {why}; not decoded"
        )
    return n_bytes


def check_retrieval(path: str | os.PathLike, frame_shape: tuple[int, int]) -> int:
    """Refuse a frame whose phase retrieval needs more than the memory budget, before decoding.

    Parameters
    ----------
    path : path-like
        The file, for the message.
    frame_shape : (int, int)
        Rows and columns of one frame's retrieved phase (after demosaicing a raw mosaic).

    Returns
    -------
    int
        The bytes of one float32 plane of that shape.

    Raises
    ------
    FormatError
        Naming the file, the frame's shape and the memory the retrieval needs
        (:data:`RETRIEVAL_BYTES_PER_PIXEL` per pixel) against :func:`memory_budget`.
    """
    return check_declared(
        path,
        tuple(frame_shape),
        np.float32,
        work_bytes_per_value=RETRIEVAL_BYTES_PER_PIXEL - 4,
        what="retrieving the phase of one frame works on",
    )
