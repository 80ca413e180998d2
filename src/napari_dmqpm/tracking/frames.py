"""Labels time-lapses one frame at a time: tracking a long movie without its stack in memory.

:class:`LabelFrames` reads the frames of a labels TIFF when they are indexed (a plain,
uncompressed (T, M, N) stack, as ``dmqpm segment`` writes it); :class:`RelabelledFrames` maps
each frame of the input labels to track ids when it is indexed. With both,
:func:`~napari_dmqpm.tracking.files.track_file` holds one frame and the tables, never the
stack: its memory does not grow with the number of frames beyond the tracks themselves
(benchmarks/bench_timelapse_memory.py). Both behave as read-only arrays where tracking needs
them: ``shape``, ``dtype``, ``len``, integer indexing, iteration, and ``np.asarray`` (which
reads every frame).
"""

from __future__ import annotations

import os
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

__all__ = ["LabelFrames", "RelabelledFrames"]


class _Frames(Sequence[np.ndarray]):
    """Shape, iteration and ``__array__`` from ``len`` and ``frame``."""

    shape: tuple[int, int, int]
    dtype: np.dtype

    @property
    def ndim(self) -> int:
        """3: time, rows, columns."""
        return 3

    def __len__(self) -> int:
        return self.shape[0]

    @abstractmethod
    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` (0 <= index < T) as an (M, N) array; each subclass reads its own."""

    def __getitem__(self, index):
        if isinstance(index, (int, np.integer)) and -len(self) <= index < len(self):
            return self.frame(int(index) % len(self))
        if isinstance(index, (int, np.integer)):
            raise IndexError(f"frame {index} is out of range for {len(self)} frames")
        return np.asarray(self)[index]  # anything else: the whole stack, read

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self.frame(index) for index in range(len(self)))

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = np.empty(self.shape, dtype=self.dtype)
        for index in range(len(self)):
            out[index] = self.frame(index)
        return out if dtype is None else out.astype(dtype)


class LabelFrames(_Frames):
    """The frames of a labels TIFF, each read from the file when it is indexed.

    Open one with :meth:`open`; ``frame(t)`` reads the bytes of frame ``t`` only.

    Parameters
    ----------
    path : Path
        The labels TIFF (uncompressed, contiguous pixels).
    shape : (int, int, int)
        Frames, rows and columns.
    stored : numpy dtype
        The stored dtype.
    offset : int
        Byte offset of the first frame's pixels in the file.

    Attributes
    ----------
    path : Path
    shape : tuple of int
        (T, M, N).
    dtype : numpy.dtype
        The stored integer type, native byte order.
    """

    def __init__(self, path: Path, shape: tuple[int, int, int], stored: np.dtype, offset: int):
        self.path, self.shape, self._stored, self._offset = path, shape, stored, offset
        self.dtype = stored.newbyteorder("=")
        self._frame_values = shape[1] * shape[2]

    @classmethod
    def open(cls, path: str | os.PathLike) -> LabelFrames | None:
        """The frames of ``path``, or None when it is not a plain, contiguous (T, M, N) stack.

        Parameters
        ----------
        path : str or path-like
            A labels TIFF (e.g. ``dmqpm segment``'s ``<stem>_labels.tif``). Only the header
            is read. Compressed or scattered files give None: read them whole
            (:func:`napari_dmqpm.io.read_labels`).
        """
        import tifffile

        try:
            with tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                shape, offset = tuple(series.shape), series.dataoffset
                stored = np.dtype(series.dtype).newbyteorder(tif.byteorder)
        except (OSError, ValueError, IndexError):
            return None
        if len(shape) != 3 or offset is None or stored.kind not in "ui":
            return None
        if os.path.getsize(path) < offset + int(np.prod(shape)) * stored.itemsize:
            return None  # truncated: let the full reader say what is wrong
        return cls(Path(path), (int(shape[0]), int(shape[1]), int(shape[2])), stored, offset)

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` as an (M, N) array, read from the file.

        Parameters
        ----------
        index : int
            Frame index, from 0.
        """
        with open(self.path, "rb") as handle:
            handle.seek(self._offset + index * self._frame_values * self._stored.itemsize)
            values = np.fromfile(handle, dtype=self._stored, count=self._frame_values)
        return values.reshape(self.shape[1:]).astype(self.dtype, copy=False)


class RelabelledFrames(_Frames):
    """Input labels mapped to track ids, frame by frame when indexed.

    Parameters
    ----------
    labels : LabelFrames or ndarray of shape (T, M, N)
        The input labels.
    frames, labels_in, track_ids : ndarray of shape (n_cells,)
        The frame, input label and track id of every cell.
    """

    def __init__(
        self,
        labels: _Frames | np.ndarray,
        frames: np.ndarray,
        labels_in: np.ndarray,
        track_ids: np.ndarray,
    ) -> None:
        self.labels, self.shape, self.dtype = labels, tuple(labels.shape), np.dtype(np.int32)
        order = np.argsort(frames, kind="stable")
        self._labels_in, self._track_ids = labels_in[order], track_ids[order]
        self._starts = np.searchsorted(frames[order], np.arange(len(labels) + 1))

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` of the input labels in track ids (int32; 0 background).

        Parameters
        ----------
        index : int
            Frame index, from 0.
        """
        labels = np.asarray(self.labels[index])
        rows = slice(self._starts[index], self._starts[index + 1])
        lookup = np.zeros(int(labels.max(initial=0)) + 1, dtype=np.int32)
        lookup[self._labels_in[rows]] = self._track_ids[rows]
        return lookup[labels]
