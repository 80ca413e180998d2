"""Writers: instance labels that ImageJ/Fiji open at the right scale, and canonical ssQPM stacks.

Every write is atomic: the TIFF goes to a temporary file in the destination folder, is
flushed and fsync'ed, then moved into place. An existing file is never written over
unless ``overwrite=True``, and a failed write leaves nothing under the final name.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from napari_dmqpm.io._tags import LABELS_TAG
from napari_dmqpm.io.acquisition import Acquisition

__all__ = ["STACK_CHANNELS", "LabelsStream", "name_os_error", "write_labels", "write_stack"]

#: Channel names of the canonical ssQPM stack, in order.
STACK_CHANNELS: tuple[str, ...] = ("I0", "I45", "I90", "I135", "phase")


def _check_target(path: str | os.PathLike, overwrite: bool) -> Path:
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"the folder {path.parent} does not exist")
    return path


def _fsync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform can open a folder
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def place_file(temporary: Path, path: Path, overwrite: bool) -> None:
    """Move a finished temporary file to ``path``; never replaces a file unless ``overwrite``.

    Without ``overwrite`` the move is a hard link (atomic, and it fails if ``path`` appeared
    meanwhile), so a file that another process created is never written over.

    Parameters
    ----------
    temporary : Path
        The finished temporary file (in the same folder as ``path``).
    path : Path
        Where it goes.
    overwrite : bool
        An existing ``path`` may be replaced.
    """
    if overwrite:
        os.replace(temporary, path)
        return
    try:
        os.link(temporary, path)  # atomic, and fails if path appeared meanwhile
    except FileExistsError:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it") from None
    except OSError:  # file systems without hard links
        if path.exists():
            raise FileExistsError(f"{path} exists; pass overwrite=True to replace it") from None
        os.replace(temporary, path)
        return
    temporary.unlink()


def _read_umask() -> int:
    """The process umask, without changing it where the system can tell (Linux /proc)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    # elsewhere: set and restore once, at import, before any worker thread writes
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: Read once: setting the umask to read it, per write, races with other threads' files.
_UMASK = _read_umask()


def _umask() -> int:
    return _UMASK


_SHORT_WRITE = re.compile(r"^(\d+) requested and (\d+) written$")


def name_os_error(error: OSError, path: Path) -> OSError:
    """The same error naming ``path`` (a full disk, a read-only folder), when it has a reason.

    numpy's ``tofile`` (tifffile writes arrays with it) reports a full disk as a short write
    without an errno (``OSError("327680 requested and 51076 written")``); that one becomes
    ``ENOSPC`` naming ``path`` when the folder has less room left than was asked for, else a
    short write naming ``path``.

    Parameters
    ----------
    error : OSError
        The error of a write.
    path : Path
        The file that was being written.
    """
    if error.strerror:
        return type(error)(error.errno, error.strerror, str(path))
    short = _SHORT_WRITE.match(str(error))
    if short is None:
        return error
    requested, written = (int(n) for n in short.groups())
    try:
        status = os.statvfs(path.parent)
        free: int | None = status.f_bavail * status.f_frsize
    except (OSError, AttributeError):  # no statvfs (Windows), or the folder is gone
        free = None
    detail = f"{written} of {requested} bytes of a write stored"
    if free is not None and free < requested - written:
        return OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} ({detail})", str(path))
    return OSError(errno.EIO, f"short write: {detail}", str(path))


def atomic_write(path: Path, write: Callable[[Any], object], *, overwrite: bool) -> Path:
    """Call ``write(binary_file)`` on a temporary file, then move it to ``path``.

    Parameters
    ----------
    path : Path
        The file to write.
    write : callable
        ``write(binary_file)`` writes the content; its return value is ignored.
    overwrite : bool
        An existing ``path`` may be replaced (else ``FileExistsError``).
    """
    try:
        descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise name_os_error(error, path) from error
    os.close(descriptor)
    temporary = Path(name)
    try:
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        with open(temporary, "wb") as handle:  # by name: tifffile wants handle.name
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        place_file(temporary, path, overwrite)
    except BaseException as error:
        named = error  # the file asked for, not the temporary; found before the unlink frees room
        if isinstance(error, OSError) and str(error.filename or temporary) == str(temporary):
            named = name_os_error(error, path)
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        if named is not error:
            raise named from error
        raise
    _fsync_folder(path.parent)
    return path


def _resolution(pixel_size_um: float | None) -> dict[str, Any]:
    if pixel_size_um is None:
        return {}
    if not (math.isfinite(pixel_size_um) and pixel_size_um > 0):
        raise ValueError(f"pixel_size_um must be a positive number; got {pixel_size_um!r}")
    return {"resolution": (1.0 / pixel_size_um, 1.0 / pixel_size_um)}


def _labels_array(labels: Any) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim not in (2, 3):
        raise ValueError(
            f"labels must have shape (M, N) or (T, M, N); got labels.shape={labels.shape}"
        )
    if not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == np.bool_):
        raise ValueError(f"labels must hold integers; got labels.dtype={labels.dtype}")
    if labels.size and int(labels.min()) < 0:
        raise ValueError(f"labels must be >= 0 (0 = background); got minimum {int(labels.min())}")
    maximum = int(labels.max()) if labels.size else 0
    if maximum > np.iinfo(np.uint32).max:
        raise ValueError(f"labels above 2**32 - 1 cannot be stored; got maximum {maximum}")
    return labels.astype(np.uint16 if maximum <= np.iinfo(np.uint16).max else np.uint32)


def _imagej_description(shape: tuple[int, ...], unit: bool) -> str:
    """The ImageJ header ImageJ itself would write for a (T)YX stack."""
    lines = ["ImageJ=1.11a"]
    if len(shape) == 3:
        lines += [f"images={shape[0]}", f"frames={shape[0]}", "hyperstack=true"]
    if unit:
        lines.append("unit=um")
    lines.append("=".join(LABELS_TAG))
    return "\n".join(lines) + "\n"


def _labels_tiff_options(
    dtype: np.dtype, shape: tuple[int, ...], resolution: dict[str, Any]
) -> dict[str, Any]:
    """``tifffile.imwrite`` keywords of a labels TIFF (ImageJ uint16, or uint32 + header)."""
    if np.dtype(dtype) == np.uint16:
        axes = "TYX" if len(shape) == 3 else "YX"
        metadata = {"axes": axes, **({"unit": "um"} if resolution else {})}
        metadata[LABELS_TAG[0]] = LABELS_TAG[1]  # the reader opens the file as labels
        return {"imagej": True, "metadata": metadata, **resolution}
    description = _imagej_description(shape, unit=bool(resolution))
    # minisblack: without it tifffile stores 3 or 4 frames as the planes of one RGB(A) image
    return {"description": description, "metadata": None, "photometric": "minisblack",
            **resolution}  # fmt: skip


def write_labels(
    path: str | os.PathLike,
    labels: np.ndarray,
    *,
    pixel_size_um: float | None = None,
    overwrite: bool = False,
) -> Path:
    """Write instance labels as a TIFF that ImageJ/Fiji opens with the pixel size.

    uint16 when the largest label fits (ImageJ's 16-bit hyperstack, with
    ``unit=um`` and the resolution in pixels per µm, so Fiji shows the size in µm);
    uint32 otherwise. ImageJ's hyperstack format cannot hold uint32, so those are
    written as a plain TIFF that carries the same ImageJ header lines (``unit=um``, the
    number of frames) and resolution tags: Fiji opens it as a 32-bit image, calibrated
    in µm, and every TIFF reader gets the exact uint32 labels.

    Both carry the line ``dmqpm_content=labels`` in the ImageJ header (ImageJ ignores
    it), so that :func:`napari_dmqpm.io.inspect_file` and the napari reader open the file
    as labels, never as a raw camera frame, and ``dmqpm segment`` skips it.

    Parameters
    ----------
    path : str or path-like
        Destination; its folder must exist.
    labels : ndarray of shape (M, N) or (T, M, N), integer or bool
        0 is background. Not modified.
    pixel_size_um : float, optional
        Pixel size in µm.
    overwrite : bool, optional
        Replace an existing file (default: raise FileExistsError).

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    FileExistsError
        ``path`` exists and ``overwrite`` is False.
    ValueError
        Labels of the wrong shape, dtype or sign.
    """
    import tifffile

    target = _check_target(path, overwrite)
    data = _labels_array(labels)
    options = _labels_tiff_options(data.dtype, data.shape, _resolution(pixel_size_um))

    def write(handle: Any) -> None:
        tifffile.imwrite(handle, data, **options)

    return atomic_write(target, write, overwrite=overwrite)


class LabelsStream:
    """Write instance labels frame by frame: the same TIFF as :func:`write_labels`, in O(frame).

    The TIFF header is written first, for the whole ``shape``, with uint16 data; each
    :meth:`write` puts one frame at its place in the contiguous image data. A frame with a
    label above 65535 turns the file into the uint32 layout of :func:`write_labels` (the
    frames written so far are copied over, one at a time). Once every frame is written and
    :meth:`close` returned, the file is byte for byte what ``write_labels(path, stack,
    pixel_size_um=...)`` writes for the stacked frames.

    The file is written in place at ``path``: give a temporary name and move the finished file
    (:func:`place_file`), as :func:`napari_dmqpm.inference.segment_file` does.

    Parameters
    ----------
    path : path-like
        The file to create; it must not exist.
    shape : (M, N) or (T, M, N)
        Shape of the labels image; ``(M, N)`` takes one frame, index 0.
    pixel_size_um : float, optional
        Pixel size in µm.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> with LabelsStream(folder / "labels.tif", shape=(2, 4, 4)) as stream:
    ...     stream.write(1, np.eye(4, dtype=np.uint32))
    ...     stream.write(0, np.zeros((4, 4), np.uint32))
    >>> import tifffile
    >>> tifffile.imread(folder / "labels.tif")[1].diagonal().tolist()
    [1, 1, 1, 1]
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        shape: tuple[int, ...],
        pixel_size_um: float | None = None,
    ) -> None:
        shape = tuple(int(n) for n in shape)
        if len(shape) not in (2, 3) or min(shape) < 1:
            raise ValueError(f"shape must be (M, N) or (T, M, N) >= 1; got shape={shape}")
        self.path, self.shape = Path(path), shape
        if self.path.exists():
            raise FileExistsError(f"{self.path} exists; LabelsStream writes a new file")
        self._resolution = _resolution(pixel_size_um)
        self._written: set[int] = set()
        self._handle: Any = None
        self._create(np.dtype(np.uint16))

    @property
    def dtype(self) -> np.dtype:
        """uint16, or uint32 once a frame needed it."""
        return self._dtype

    def _create(self, dtype: np.dtype) -> None:
        import tifffile

        options = _labels_tiff_options(dtype, self.shape, self._resolution)
        written = tifffile.imwrite(
            self.path, shape=self.shape, dtype=dtype, returnoffset=True, **options
        )
        assert written is not None  # returnoffset=True: (offset, byte count) of the pixels
        self._offset = written[0]
        self._dtype = dtype
        self._handle = open(self.path, "r+b")  # noqa: SIM115 - closed by close()

    def _seek(self, index: int) -> None:
        frame_bytes = math.prod(self.shape[-2:]) * self._dtype.itemsize
        self._handle.seek(self._offset + index * frame_bytes)

    def write(self, index: int, labels: np.ndarray) -> None:
        """Write frame ``index`` (``labels`` of shape (M, N), integers >= 0; not modified).

        Parameters
        ----------
        index : int
            Frame index, from 0.
        labels : ndarray of shape (M, N)
            The frame's labels.
        """
        n_frames = self.shape[0] if len(self.shape) == 3 else 1
        if not 0 <= int(index) < n_frames:
            raise ValueError(f"index must be in [0, {n_frames}); got index={index!r}")
        data = _labels_array(labels)
        if data.shape != self.shape[-2:]:
            raise ValueError(f"labels must have shape {self.shape[-2:]}; got {data.shape}")
        if data.dtype == np.uint32 and self._dtype == np.uint16:
            self._widen()
        self._seek(int(index))
        self._handle.write(np.ascontiguousarray(data, dtype=self._dtype).data.cast("B"))
        self._written.add(int(index))

    def _widen(self) -> None:
        """Rewrite the file as uint32, copying the frames written so far."""
        old, old_offset = self._handle, self._offset
        old.flush()
        frame = math.prod(self.shape[-2:])
        try:
            self.path.unlink()  # the open handle still reads the old data
            self._create(np.dtype(np.uint32))
            for index in sorted(self._written):
                old.seek(old_offset + index * frame * 2)
                values = np.fromfile(old, dtype=np.uint16, count=frame)
                self._seek(index)
                self._handle.write(values.astype(np.uint32).data.cast("B"))
        finally:
            old.close()

    def close(self) -> Path:
        """Flush and fsync the file; returns its path."""
        if self._handle is not None and not self._handle.closed:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
        return self.path

    def __enter__(self) -> LabelsStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_stack(
    path: str | os.PathLike, acquisition: Acquisition, *, overwrite: bool = False
) -> Path:
    """Write the canonical ssQPM stack: an ImageJ hyperstack of I0, I45, I90, I135, phase.

    float32, axes CYX (one frame) or TCYX (``acquisition.is_timelapse`` with T > 1),
    channel labels ``STACK_CHANNELS``, pixel size as ImageJ calibration in µm, and
    ``wavelength_um=`` in the ImageJ header when known (and ImageJ's ``finterval``, s, for a
    time-lapse whose ``metadata`` holds ``frame_interval_min``). :func:`read_acquisition` reads
    it back as an "ssqpm-stack" with the same arrays, pixel size and wavelength.

    Parameters
    ----------
    path : str or path-like
        Destination (``.tif``); its folder must exist.
    acquisition : Acquisition
        Needs ``angles``; a phase-only acquisition has no canonical stack.
    overwrite : bool, optional
        Replace an existing file (default: raise FileExistsError).

    Returns
    -------
    Path
        The written file.
    """
    import tifffile

    if acquisition.angles is None:
        raise ValueError(
            f"write_stack needs the angle images; acquisition.kind={acquisition.kind!r} "
            "holds a phase only (write it with tifffile.imwrite as a float32 phase map)"
        )
    target = _check_target(path, overwrite)
    data = np.concatenate(
        [acquisition.angles, acquisition.phase[:, np.newaxis]], axis=1, dtype=np.float32
    )
    if data.shape[0] == 1:
        data, axes = data[0], "CYX"
    else:
        axes = "TCYX"
    metadata: dict[str, Any] = {"axes": axes, "Labels": list(STACK_CHANNELS) * acquisition.n_frames}
    if acquisition.pixel_size_um is not None:
        metadata["unit"] = "um"
    if acquisition.wavelength_um is not None:
        metadata["wavelength_um"] = float(acquisition.wavelength_um)
    metadata["phase_unit"] = "rad"
    interval = acquisition.metadata.get("frame_interval_min")
    if interval is not None and data.ndim == 4:  # ImageJ's frame interval, in seconds
        metadata.update(finterval=float(interval) * 60.0, tunit="sec")
    resolution = _resolution(acquisition.pixel_size_um)

    def write(handle: Any) -> None:
        tifffile.imwrite(handle, data, imagej=True, metadata=metadata, **resolution)

    return atomic_write(target, write, overwrite=overwrite)
