"""Lazy reading: a TIFF as dask arrays whose frames are read (and processed) when used.

:func:`napari_dmqpm.io.read_acquisition` with ``lazy=True`` (or, by default, for a time-lapse
whose pixels exceed :data:`LAZY_THRESHOLD_BYTES`) returns an :class:`Acquisition` whose
``phase``, ``angles`` and ``modulation`` are dask arrays built here. Nothing but the header is
read when the file is opened; indexing a frame and converting it with ``np.asarray`` reads
that frame only:

- uncompressed TIFFs whose image data are contiguous (what ImageJ, tifffile and
  :func:`~napari_dmqpm.io.write_stack` write) are read by byte offset, one band of rows at a
  time, so the arrays come in row strips of about :data:`STRIP_BYTES` per plane and a part of
  a frame costs only its rows;
- other TIFFs (compressed, or with scattered pages) are read page by page through tifffile,
  one chunk per frame and angle;
- angle stacks and raw mosaics get their phase (and modulation) by the same four-step
  retrieval as the eager reader, frame by frame, when a frame of the phase is computed.

Every value equals what the eager reader returns for the same file and options; NaN and Inf
pixels are replaced the same way, with the :class:`DataWarning` raised when the frame is
computed rather than when the file is opened.
"""

from __future__ import annotations

import functools
import math
import threading
from pathlib import Path
from typing import Any

import numpy as np

from napari_dmqpm.io._layout import arrange
from napari_dmqpm.io._series import first_series
from napari_dmqpm.io.acquisition import FormatError
from napari_dmqpm.io.arrays import assemble, clean_intensities
from napari_dmqpm.io.detect import FileInfo, is_tiff, tifffile_errors
from napari_dmqpm.io.limits import (
    WORK_BYTES_PER_VALUE,
    check_declared,
    check_retrieval,
    memory_budget,
)
from napari_dmqpm.io.mosaic import demosaic

__all__ = ["LAZY_THRESHOLD_BYTES", "STRIP_BYTES", "PlaneReader", "lazy_parts", "wants_lazy"]

#: ``lazy=None``: time-lapses whose stored pixels take more than this are read lazily.
LAZY_THRESHOLD_BYTES = 256 * 2**20
#: Target size of one row-strip chunk of one plane (float32), for row-readable files.
STRIP_BYTES = 16 * 2**20
#: Float32 planes of one frame of the kinds whose planes are stored (read in row strips).
_STORED_PLANES = {"phase-map": 1, "ssqpm-stack": 5}
# One phase retrieval at a time: it is multi-threaded itself (BLAS), and concurrent BLAS calls
# from dask's threads can round differently from the eager reader's.
_RETRIEVAL_LOCK = threading.Lock()


def stored_bytes(info: FileInfo) -> int:
    """Bytes of the stored pixels of an inspected file (header numbers; nothing is read).

    Parameters
    ----------
    info : FileInfo
        The inspected file (:func:`~napari_dmqpm.io.inspect_file`).
    """
    return math.prod(info.shape) * np.dtype(info.dtype).itemsize


def wants_lazy(lazy: bool | None, info: FileInfo) -> bool:
    """Whether ``read_acquisition(lazy=lazy)`` reads ``info``'s file lazily.

    ``True`` and ``False`` are obeyed for TIFFs (other images are small and always eager);
    ``None`` means lazy for a TIFF time-lapse of more than :data:`LAZY_THRESHOLD_BYTES` (or a
    quarter of the memory budget), and for a single stored frame (phase map, stack) whose eager
    read would not fit in the memory budget: it is then read in row strips when used.

    Parameters
    ----------
    lazy : bool or None
        True or False as asked; None: lazily when the file is large.

    info : FileInfo
        The inspected file (:func:`~napari_dmqpm.io.inspect_file`).
    """
    if lazy not in (None, True, False):
        raise ValueError(f"lazy must be None, True or False; got lazy={lazy!r}")
    if not is_tiff(info.path):
        return False
    if lazy is None:  # a time-lapse too large to read whole is read frame by frame
        budget = memory_budget()[0]
        large = stored_bytes(info) > min(LAZY_THRESHOLD_BYTES, budget // 4)
        if info.n_frames > 1:
            return large
        eager = stored_bytes(info) + WORK_BYTES_PER_VALUE * math.prod(info.shape)
        return eager > budget and info.kind in _STORED_PLANES
    return bool(lazy)


class PlaneReader:
    """Reads stored 2-D planes of a TIFF's first series, whole or a band of rows.

    Holds no open file: every read opens the file, so the reader can be pickled and used
    from several threads (dask's).

    Parameters
    ----------
    info : FileInfo
        From :func:`~napari_dmqpm.io.inspect_file` (a TIFF).

    Attributes
    ----------
    plane_shape : (int, int)
        Rows and columns of one stored plane.
    n_planes : int
        Planes of the series, in stored (C) order of its leading axes.
    offset : int or None
        Byte offset of the contiguous, uncompressed image data; None when the data are
        compressed or scattered (then planes are decoded page by page).
    """

    def __init__(self, info: FileInfo) -> None:
        import tifffile

        self.path = Path(info.path)
        has_samples = info.axes.endswith("S")
        rows, cols = info.shape[-3:-1] if has_samples else info.shape[-2:]
        self.plane_shape = (rows, cols)
        self.n_planes = math.prod(info.shape[: -3 if has_samples else -2])
        with tifffile_errors(), tifffile.TiffFile(self.path) as tif:
            series = first_series(tif)[0]
            self.dtype = np.dtype(series.dtype).newbyteorder(tif.byteorder)
            self.offset = series.dataoffset
            n_pages = len(series.pages) if self.offset is None else self.n_planes
        if n_pages != self.n_planes:
            raise FormatError(
                f"{self.path}: {n_pages} pages for {self.n_planes} planes; cannot read it lazily"
            )

    @property
    def row_readable(self) -> bool:
        """True when a band of rows costs only its bytes (contiguous, uncompressed data)."""
        return self.offset is not None

    def read(self, planes: Any, rows: slice = slice(None)) -> np.ndarray:
        """Planes ``planes`` (stored indices), rows ``rows``, as (k, r, N) in native byte order.

        Parameters
        ----------
        planes : int or sequence of int
            Stored plane indices.
        rows : slice
            The rows to read.

        Raises
        ------
        FormatError
            The file changed, is truncated or cannot be decoded.
        """
        start, stop, _ = rows.indices(self.plane_shape[0])
        planes = [int(p) for p in np.ravel(planes)]
        try:
            if self.offset is not None:
                data = self._read_bytes(planes, start, stop)
            else:
                data = self._read_pages(planes, start, stop)
        except FormatError:
            raise
        except Exception as error:  # decoders raise many types for damaged data
            raise FormatError(
                f"{self.path}: cannot decode the pixel data, the file is truncated or corrupt "
                f"({type(error).__name__}: {error})"
            ) from error
        return data.astype(self.dtype.newbyteorder("="), copy=False)

    def _read_bytes(self, planes: list[int], start: int, stop: int) -> np.ndarray:
        n_rows, n_cols = self.plane_shape
        out = np.empty((len(planes), stop - start, n_cols), dtype=self.dtype)
        count = (stop - start) * n_cols
        with open(self.path, "rb") as handle:
            for index, plane in enumerate(planes):
                handle.seek(self.offset + (plane * n_rows + start) * n_cols * self.dtype.itemsize)
                values = np.fromfile(handle, dtype=self.dtype, count=count)
                if values.size != count:
                    raise FormatError(f"{self.path}: truncated image data in plane {plane}")
                out[index] = values.reshape(stop - start, n_cols)
        return out

    def _read_pages(self, planes: list[int], start: int, stop: int) -> np.ndarray:
        import tifffile

        with tifffile_errors(), tifffile.TiffFile(self.path) as tif:
            pages = first_series(tif)[0].pages
            data = [pages[p].asarray().reshape(self.plane_shape)[start:stop] for p in planes]
        return np.stack(data)


def plane_indices(info: FileInfo) -> np.ndarray:
    """``(T, C)`` stored plane index of every frame and channel, following ``info.layout``.

    Parameters
    ----------
    info : FileInfo
        The inspected file (:func:`~napari_dmqpm.io.inspect_file`).
    """
    has_samples = info.axes.endswith("S")
    leading = info.shape[: -3 if has_samples else -2]
    index_shape = (*leading, 1, 1, *((1,) if has_samples else ()))
    index = np.arange(math.prod(leading)).reshape(index_shape)
    assert info.layout is not None  # inspect_file plans the layout of every file it accepts
    return arrange(index, info.layout, info.axes)[:, :, 0, 0]


def _name(kind: str, info: FileInfo, options: dict[str, Any]) -> str:
    from dask.base import tokenize

    stat = info.path.stat()
    token = tokenize(str(info.path), stat.st_mtime_ns, stat.st_size, sorted(options.items()))
    return f"dmqpm-{kind}-{token}"


def _array(function, shape: tuple[int, ...], chunks: tuple, name: str):
    """A dask array whose block at ``array-location`` ``loc`` is ``function(loc)``."""
    import dask.array as da

    def block(block_info=None):
        return function(block_info[None]["array-location"])

    empty = np.empty((0,) * len(shape), dtype=np.float32)
    array = da.map_blocks(block, chunks=chunks, dtype=np.float32, meta=empty, name=name)
    assert array.shape == shape, (array.shape, shape)
    return array


class _Frames:
    """The per-block functions of one lazily read file (kept small: it travels in the graph)."""

    def __init__(self, info: FileInfo, options: dict[str, Any]) -> None:
        self.info, self.options, self.where = info, options, str(info.path)
        self.reader = PlaneReader(info)
        self.planes = plane_indices(info)
        self.kind = info.kind
        self._last: tuple[int | None, Any] = (None, None)  # the last frame retrieved

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_last"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _last=(None, None))

    def _all_rows(self, loc) -> bool:
        return loc[-2] == (0, self.reader.plane_shape[0])

    def stored_angles(self, loc) -> np.ndarray:
        """Angles of stored-angle kinds (ssqpm-stack, angles-stack): (1, c, r, N) float32."""
        (t, _), (c0, c1), rows = loc[0], loc[1], slice(*loc[-2])
        block = self.reader.read(self.planes[t, c0:c1], rows).astype(np.float32)
        if self._all_rows(loc) or np.isfinite(block).all():
            return clean_intensities(block, self.where)[None]
        # the NaN fill is the median of the whole angle image: clean the full planes
        full = self.reader.read(self.planes[t, c0:c1]).astype(np.float32)
        return clean_intensities(full, self.where)[None][..., rows, :]

    def stored_phase(self, loc) -> np.ndarray:
        """Phase read from the file (phase maps, channel 4 of ssQPM stacks): (1, r, N)."""
        (t, _), rows = loc[0], slice(*loc[-2])
        block = self.reader.read(self.planes[t, -1:], rows)
        radians = self.options["radians"]
        return assemble(angles=None, phase=block, where=self.where, radians=radians)["phase"]

    def retrieved(self, t: int) -> dict[str, Any]:
        """Angles, retrieved phase and modulation of frame ``t`` (what ``assemble`` gives).

        The last frame's result is kept, so that its phase, modulation and strips of its
        angles cost one retrieval; retrievals run one at a time.
        """
        with _RETRIEVAL_LOCK:
            if self._last[0] != t:
                stack = self.reader.read(self.planes[t])
                if self.kind == "raw-mosaic":
                    origin = self.options["mosaic_origin"]
                    method = self.options["demosaic_method"]
                    stack = demosaic(stack[0], origin=origin, method=method)
                sign, background = self.options["sign"], self.options["background"]
                parts = assemble(
                    angles=stack[None], phase=None, where=self.where, sign=sign,
                    background=background,
                )  # fmt: skip
                self._last = (t, parts)
            return self._last[1]

    def retrieved_part(self, part: str):
        def block(loc) -> np.ndarray:
            value = self.retrieved(loc[0][0])[part]
            return value[:, loc[1][0] : loc[1][1]] if part == "angles" else value

        return block


def _row_chunks(n_rows: int, n_cols: int, row_readable: bool) -> tuple[int, ...]:
    """Row strips of about STRIP_BYTES (float32) when rows are cheap to read; else one."""
    per_chunk = max(1, STRIP_BYTES // (4 * n_cols)) if row_readable else n_rows
    sizes = [per_chunk] * (n_rows // per_chunk)
    return tuple(sizes + ([n_rows % per_chunk] if n_rows % per_chunk else []))


def retrieved_frame_shape(info: FileInfo, options: dict) -> tuple[int, int] | None:
    """Rows and columns of one frame's phase as retrieved (a raw mosaic's after demosaicing).

    Read from the header alone; None when the planes hold no full super-pixel (the readers
    say so).

    Parameters
    ----------
    info : FileInfo
        The inspected file (:func:`~napari_dmqpm.io.inspect_file`).
    options : dict
        The read options (``demosaic_method``, ``mosaic_origin``).
    """
    has_samples = info.axes.endswith("S")
    rows, cols = info.shape[-3:-1] if has_samples else info.shape[-2:]
    plane = (int(rows), int(cols))
    try:
        return _frame_shape(info, plane, options)
    except FormatError:
        return None


def _frame_shape(info: FileInfo, plane_shape: tuple[int, int], options: dict) -> tuple[int, int]:
    if info.kind != "raw-mosaic":
        return plane_shape
    factor = 1 if options["demosaic_method"] == "superpixel" else 2
    shape = tuple(
        (n - o) // 2 * factor for n, o in zip(plane_shape, options["mosaic_origin"], strict=True)
    )
    if min(shape) < 1:
        raise FormatError(
            f"{info.path}: raw must hold at least one full 2x2 super-pixel after "
            f"origin={tuple(options['mosaic_origin'])}; got a plane of {plane_shape}"
        )
    return shape


def lazy_parts(info: FileInfo, **options: Any) -> dict[str, Any]:
    """``angles``, ``phase``, ``modulation`` (dask arrays or None) and ``phase_source``.

    Parameters
    ----------
    info : FileInfo
        An inspected TIFF.
    **options
        ``radians`` (stored phase unit to radians), ``sign``, ``background``,
        ``demosaic_method`` and ``mosaic_origin``, as for the eager reader.

    Returns
    -------
    dict
        What :func:`~napari_dmqpm.io.arrays.assemble` returns, with dask arrays of float32:
        ``phase`` (T, M, N), ``angles`` (T, 4, M, N) or None, ``modulation`` (T, M, N) or
        None; and ``"lazy"``, a JSON-serialisable description of the chunks.

    Raises
    ------
    FormatError
        A header that claims more than the file can hold, a frame whose planes take more
        than the memory budget (:func:`~napari_dmqpm.io.limits.memory_budget`), a mosaic
        smaller than one super-pixel, or a series whose pages do not map onto planes.
    """
    frames = _Frames(info, options)
    n_frames = info.n_frames
    shape = _frame_shape(info, frames.reader.plane_shape, options)
    # before decoding: what the file can hold, then one frame's float32 planes in memory
    check_declared(info.path, info.shape, info.dtype, compression=info.compression, memory=False)
    planes = _STORED_PLANES.get(info.kind, 5)  # computed at once: a frame's float32 planes
    check_declared(
        info.path, (planes, *shape), np.float32, what="one frame takes", work_bytes_per_value=0
    )
    if info.kind not in _STORED_PLANES:  # the phase is retrieved from whole frames
        check_retrieval(info.path, shape)
    stored = info.kind in ("ssqpm-stack", "phase-map", "angles-stack")
    strips = _row_chunks(shape[0], shape[1], frames.reader.row_readable and stored)
    whole = (shape[0],)
    per_frame = ((1,) * n_frames,)
    name = functools.partial(_name, info=info, options=options)
    angles = phase = modulation = None
    if info.kind in ("ssqpm-stack", "angles-stack"):
        chunks: tuple[tuple[int, ...], ...] = (*per_frame, (1,) * 4, strips, (shape[1],))
        angles = _array(frames.stored_angles, (n_frames, 4, *shape), chunks, name("angles"))
    if info.kind in ("ssqpm-stack", "phase-map"):
        chunks = (*per_frame, strips, (shape[1],))
        phase = _array(frames.stored_phase, (n_frames, *shape), chunks, name("phase"))
        return {"angles": angles, "phase": phase, "modulation": None, "phase_source": "",
                "lazy": _describe(frames, strips)}  # fmt: skip
    if angles is None:  # raw mosaic: the angles come from demosaicing whole frames
        chunks = (*per_frame, (4,), whole, (shape[1],))
        angles = _array(frames.retrieved_part("angles"), (n_frames, 4, *shape), chunks,
                        name("angles"))  # fmt: skip
    chunks = (*per_frame, whole, (shape[1],))
    phase = _array(frames.retrieved_part("phase"), (n_frames, *shape), chunks, name("phase"))
    modulation = _array(frames.retrieved_part("modulation"), (n_frames, *shape), chunks,
                        name("modulation"))  # fmt: skip
    source = (  # the words of the eager reader: the values are the same
        f"four-step retrieval from the angle images (sign={options['sign']:+d}, unwrapped, "
        f"background {options['background']!r} removed)"
    )
    return {"angles": angles, "phase": phase, "modulation": modulation, "phase_source": source,
            "lazy": _describe(frames, strips)}  # fmt: skip


def _describe(frames: _Frames, strips: tuple[int, ...]) -> dict[str, Any]:
    return {
        "reader": "by byte offset" if frames.reader.row_readable else "page by page",
        "rows_per_chunk": int(strips[0]),
    }
