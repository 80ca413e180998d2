"""Deterministic, header-only format detection: :func:`inspect_file` and :func:`describe_file`.

The rules, in order (docs/formats.md explains each and says which are heuristics):

1. an explicit ``kind=`` wins (the shape is still checked);
2. TIFF axes declared by OME, ImageJ or tifffile metadata: C of 5 -> ssqpm-stack,
   C of 4 -> angles-stack (with an optional T); a declared T without C -> a time-lapse
   of phase maps (float) or raw mosaics (integer);
3. by shape: (5, M, N) / (T, 5, M, N) -> ssqpm-stack, (4, M, N) / (T, 4, M, N) ->
   angles-stack, 2-D integer -> raw-mosaic, 2-D float -> phase-map, (T, M, N) float ->
   phase-map time-lapse, (T, M, N) integer -> raw-mosaic time-lapse;
4. PNG and other Pillow images (2-D integer) -> raw-mosaic;
5. anything else -> FormatError naming the file and what was found.

Labels images come before rules 2 to 4: a file tagged ``dmqpm_content=labels`` (napari-dmqpm's
writers), or one that rules 2 to 4 would call a raw mosaic and whose first frame has the
structure of a label image (:func:`napari_dmqpm.io.labels.label_structure`, the one rule that
reads pixels), is ``kind="labels"``. An explicit ``kind=`` skips this too.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_dmqpm.io import _tags
from napari_dmqpm.io._layout import Layout, plan_layout
from napari_dmqpm.io._series import first_series
from napari_dmqpm.io.acquisition import FILE_KINDS, FormatError
from napari_dmqpm.io.labels import LABELS_KIND, TAGGED_REASON, label_structure, labels_layout
from napari_dmqpm.io.limits import MAX_EXPANSION, format_bytes, memory_budget

__all__ = ["FileInfo", "inspect_file"]

_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
# tifffile logs (instead of raising) when an IFD chain or a data offset points nowhere:
# a truncated or corrupt file that would otherwise read as fewer pages, silently.
_FATAL_LOG = ("page offset", "next page", "data offset", "ByteCounts", "TiffTag.fromfile")
_PILLOW_DTYPES = {"L": "uint8", "I;16": "uint16", "I;16L": "uint16", "I;16B": "uint16"}
_PILLOW_DTYPES |= {"I;16N": "uint16", "I": "int32", "F": "float32"}
# The first frame is decoded to look for label structure only below this size.
_MAX_FRAME_BYTES = 2**30
_OVERRIDE_HINT = "a heuristic; override with kind= or --kind"


@dataclass(frozen=True, kw_only=True)
class FileInfo:
    """What :func:`inspect_file` found in a file's header, and what the reader will do.

    Attributes
    ----------
    path : Path
        The file.
    kind : str
        One of ``FILE_KINDS``, or ``"labels"`` (``LABELS_KIND``) for an instance label image.
    shape : tuple of int
        Shape of the stored image data (as in the file, before any rearranging).
    dtype : str
        Stored dtype, e.g. ``"uint16"``.
    axes : str
        Stored axes, one letter per axis (T time, C channel, Y rows, X columns; I, Q, Z
        for stack axes the file does not name).
    n_frames : int
        Time points ``T`` the reader will return.
    pixel_size_um : float or None
        Pixel size stated by the file, in µm (before any demosaicing).
    compression : str
        TIFF compression ("none", "LZW", "deflate", "zstd", ...) or the image format's.
    reason : str
        The detection rule that fired, in words.
    file_format : str
        "TIFF", "ImageJ TIFF", "OME-TIFF", "PNG", ...
    pixel_size_source : str
        Where ``pixel_size_um`` came from.
    wavelength_um, wavelength_source : float or None, str
        Illumination wavelength stated by the file, in µm, and where it came from.
    is_timelapse : bool
        The file has a time axis.
    ignored : str
        What the reader leaves out, in words: ``""`` when it reads the whole file, else the
        series and pages besides series 0 (e.g. ``"reads series 0 (1 of 20000 pages); the
        other 19999 pages ignored"``).
    layout : Layout
        How the reader maps the stored array onto ``(T, C, M, N)`` (internal).
    """

    path: Path
    kind: str
    shape: tuple[int, ...]
    dtype: str
    axes: str
    n_frames: int
    pixel_size_um: float | None
    compression: str
    reason: str
    file_format: str = "TIFF"
    pixel_size_source: str = ""
    wavelength_um: float | None = None
    wavelength_source: str = ""
    is_timelapse: bool = False
    ignored: str = ""
    layout: Layout | None = field(default=None, repr=False, compare=False)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def tifffile_errors() -> Iterator[list[str]]:
    """Collect the errors tifffile logs (and keep them off stderr) while inside."""
    logger = logging.getLogger("tifffile")
    handler = _Collect()
    logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)


def check_file(path: str | os.PathLike) -> Path:
    """The path as a Path, or FileNotFoundError / FormatError for a missing, odd or empty file.

    Parameters
    ----------
    path : str or path-like
        The file.
    """
    path = Path(path)
    try:
        os.stat(path)
    except FileNotFoundError:
        if os.path.lexists(path):
            target = os.readlink(path)
            raise FileNotFoundError(
                f"{path}: a broken symbolic link (its target {target} does not exist)"
            ) from None
        raise FileNotFoundError(f"no such file: {path}") from None
    except OSError as error:  # a symbolic link loop, a name too long, no permission
        raise FormatError(f"{path}: cannot be opened ({error.strerror})") from None
    if not path.is_file():
        raise FormatError(f"{path}: not a regular file")
    if path.stat().st_size == 0:
        raise FormatError(f"{path}: the file is empty (0 bytes)")
    return path


def is_tiff(path: Path) -> bool:
    """True when the file starts with a TIFF or BigTIFF signature.

    Parameters
    ----------
    path : Path
        The file.
    """
    with open(path, "rb") as handle:
        return handle.read(4) in _TIFF_MAGIC


_COMPRESSION_NAMES = {"NONE": "none", "ADOBE_DEFLATE": "deflate", "DEFLATE": "deflate"}
_COMPRESSION_NAMES |= {"LZW": "LZW", "LZMA": "LZMA", "PACKBITS": "PackBits", "JPEG": "JPEG"}


def _compression_name(page) -> str:
    name = str(page.compression.name)
    return _COMPRESSION_NAMES.get(name, name.lower())


def _declared(tif, series) -> tuple[str, str]:
    """(file format in words, the metadata that declares the axes or "")."""
    kind = str(getattr(series, "kind", "")).lower()
    if kind == "ome":
        return "OME-TIFF", "OME"
    if kind == "imagej":
        return "ImageJ TIFF", "ImageJ"
    if kind == "shaped" and "Q" not in series.axes and tif.is_shaped:
        return "TIFF (tifffile)", "tifffile"
    return "TIFF", ""


def _check_extent(series, size: int, path: Path) -> None:
    """FormatError when the image data would lie beyond the end of the file."""
    if series.dataoffset is not None:
        end = int(series.dataoffset) + int(series.nbytes)
    else:
        ends = [
            max((o + c for o, c in zip(p.dataoffsets, p.databytecounts, strict=False)), default=0)
            for p in series.pages
            if p is not None
        ]
        end = max(ends, default=0)
    if end > MAX_EXPANSION["deflate"] * size:  # far beyond any truncation: the header lies
        declared = f"{format_bytes(series.nbytes)} of pixels (shape {tuple(series.shape)})"
        raise FormatError(
            f"{path}: the header claims {declared} in a file of {format_bytes(size)}: a corrupt "
            "header or a decompression bomb, not a truncated file; not decoded"
        )
    if end > size:
        raise FormatError(
            f"{path}: truncated TIFF: the image data run to byte {end}, the file has {size}"
        )


def _tiff_metadata(tif, page) -> dict:
    """Pixel size and wavelength, by precedence OME > ImageJ > TIFF resolution tags."""
    x_resolution = page.tags["XResolution"].value if "XResolution" in page.tags else None
    unit = page.tags["ResolutionUnit"].value if "ResolutionUnit" in page.tags else None
    ome = tif.ome_metadata if tif.is_ome else None
    imagej = None
    if tif.is_imagej:
        imagej = _tags.imagej_properties(tif.imagej_metadata, page.description)
    size, size_source = _tags.ome_pixel_size(ome)
    if size is None:
        size, size_source = _tags.imagej_pixel_size(imagej, x_resolution)
    if size is None and x_resolution is not None and not (imagej and "unit" in imagej):
        size, size_source = _tags.resolution_pixel_size(x_resolution, unit)
    wavelength, wavelength_source = _tags.ome_wavelength(ome)
    if wavelength is None:
        wavelength, wavelength_source = _tags.imagej_wavelength(imagej)
    return {
        "pixel_size_um": size,
        "pixel_size_source": size_source,
        "wavelength_um": wavelength,
        "wavelength_source": wavelength_source,
    }


def _first_frame(page) -> np.ndarray | None:
    """The pixels of the first page as (M, N), or None when they cannot be had cheaply."""
    try:
        n_bytes = math.prod(page.shape) * np.dtype(page.dtype).itemsize
        expansion = MAX_EXPANSION.get(_compression_name(page), math.inf)
        if n_bytes > min(_MAX_FRAME_BYTES, memory_budget()[0] // 4):
            return None
        if n_bytes > expansion * page.parent.filehandle.size:  # a bomb: the reader says so
            return None
        frame = np.asarray(page.asarray())
    except Exception:  # noqa: BLE001 - damaged data: the reader itself reports them
        return None
    kept = [n for n in frame.shape if n > 1]
    if frame.ndim > 2 and len(kept) == 2:
        frame = frame.reshape(kept)  # a samples or depth axis of length 1
    return frame if frame.ndim == 2 else None


def _tiff_layout(page, series, *, declared: str, kind: str | None, where: str) -> Layout:
    """The detection rules for a TIFF, the labels rules first (see the module docstring)."""
    shape, axes, dtype = tuple(int(s) for s in series.shape), str(series.axes), series.dtype
    tagged = kind is None and _tags.is_labels_description(page.description)
    if kind == LABELS_KIND or tagged:
        reason = f"kind={kind!r} given (detection skipped)" if kind else TAGGED_REASON
        return labels_layout(shape, axes, dtype, declared=declared, reason=reason, where=where)
    layout = plan_layout(shape, axes, dtype, declared=declared, kind=kind, where=where)
    if kind is None and layout.kind == "raw-mosaic":
        frame = _first_frame(page)
        structure = None if frame is None else label_structure(frame)
        if structure is not None:
            reason = f"{structure} (frame 0; {_OVERRIDE_HINT})"
            return labels_layout(shape, axes, dtype, declared=declared, reason=reason, where=where)
    return layout


def _inspect_tiff(path: Path, kind: str | None) -> FileInfo:
    import tifffile

    size = path.stat().st_size
    with tifffile_errors() as errors, tifffile.TiffFile(path) as tif:
        series, ignored = first_series(tif) if tif.pages else (None, "")
        if series is None:
            raise FormatError(f"{path}: TIFF without image data")
        _check_extent(series, size, path)  # walks the page directories: may log more
        fatal = [m for m in errors if any(p in m for p in _FATAL_LOG)]
        if fatal:
            raise FormatError(f"{path}: corrupt or truncated TIFF ({fatal[0]})")
        page = series.pages[0] if series.pages and series.pages[0] is not None else tif.pages[0]
        file_format, declared = _declared(tif, series)
        shape, axes = tuple(int(s) for s in series.shape), str(series.axes)
        layout = _tiff_layout(page, series, declared=declared, kind=kind, where=str(path))
        return FileInfo(
            path=path,
            kind=layout.kind,
            shape=shape,
            dtype=str(series.dtype),
            axes=axes,
            n_frames=layout.n_frames,
            compression=_compression_name(page),
            reason=layout.reason,
            file_format=file_format,
            is_timelapse=layout.is_timelapse,
            layout=layout,
            ignored=ignored,
            **_tiff_metadata(tif, page),
        )


def open_pillow(path: Path):
    """Open an image with Pillow (header only), turning every failure into FormatError.

    Parameters
    ----------
    path : Path
        An image file Pillow can read (PNG, JPEG, BMP ...).
    """
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
    except Exception as error:  # Pillow raises many types for foreign or damaged files
        raise FormatError(
            f"{path}: neither a TIFF nor an image Pillow can read ({type(error).__name__}: {error})"
        ) from error
    if getattr(image, "n_frames", 1) > 1:
        image.close()
        raise FormatError(f"{path}: multi-frame {image.format} image; save a time-lapse as TIFF")
    if image.mode not in _PILLOW_DTYPES:
        image.close()
        raise FormatError(
            f"{path}: {image.format} image in mode {image.mode!r} (colour, palette or "
            "1-bit); expected a single-channel grey image of 8, 16 or 32 bits"
        )
    return image


def _pillow_layout(image, shape, dtype, *, kind: str | None, where: str) -> Layout:
    """The detection rules for a Pillow image: labels when asked or when it looks like one."""
    if kind == LABELS_KIND:
        reason = f"kind={kind!r} given (detection skipped)"
        return labels_layout(shape, "YX", dtype, declared="", reason=reason, where=where)
    layout = plan_layout(shape, "YX", dtype, kind=kind, where=where)
    if kind is not None or layout.kind != "raw-mosaic":
        return layout
    try:
        frame = np.asarray(image)
    except Exception:  # noqa: BLE001 - damaged data: the reader itself reports them
        frame = None
    structure = None if frame is None else label_structure(frame)
    if structure is not None:
        reason = f"{structure} ({_OVERRIDE_HINT})"
        return labels_layout(shape, "YX", dtype, declared="", reason=reason, where=where)
    return Layout(**{**layout.__dict__, "reason": f"2-D integer {image.format} -> raw-mosaic"})


def _inspect_pillow(path: Path, kind: str | None) -> FileInfo:
    image = open_pillow(path)
    with image:
        shape = (int(image.height), int(image.width))
        dtype = np.dtype(_PILLOW_DTYPES[image.mode])
        file_format = str(image.format or "image")
        size, size_source = _tags.png_pixel_size(dict(image.info))
        layout = _pillow_layout(image, shape, dtype, kind=kind, where=str(path))
    return FileInfo(
        path=path,
        kind=layout.kind,
        shape=shape,
        dtype=str(dtype),
        axes="YX",
        n_frames=1,
        pixel_size_um=size,
        compression=file_format,
        reason=layout.reason,
        file_format=file_format,
        pixel_size_source=size_source,
        layout=layout,
    )


def inspect_file(path: str | os.PathLike, *, kind: str | None = None) -> FileInfo:
    """Detect a file's kind and layout from its header, without reading the pixels.

    Parameters
    ----------
    path : str or path-like
        A TIFF (plain, ImageJ, OME; any compression tifffile reads) or an image Pillow
        reads (PNG, ...).
    kind : {"ssqpm-stack", "angles-stack", "raw-mosaic", "phase-map", "labels"}, optional
        Skip detection and read the file as this kind; the shape must still allow it.

    Returns
    -------
    FileInfo
        Kind, stored shape, dtype, axes, frames, pixel size, compression and the rule
        that fired (``reason``). Reads the header only, except for an untagged integer
        image that would be a raw mosaic: its first frame is decoded to tell a label image
        from a camera frame (docs/formats.md, "Labels images").

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    FormatError
        The file is empty, truncated, corrupt, or none of the formats of docs/formats.md.
    """
    if kind is not None and kind not in (*FILE_KINDS, LABELS_KIND):
        raise ValueError(
            f"kind must be None or one of {(*FILE_KINDS, LABELS_KIND)}; got kind={kind!r}"
        )
    path = check_file(path)
    if not is_tiff(path):
        return _inspect_pillow(path, kind)
    try:
        return _inspect_tiff(path, kind)
    except FormatError:
        raise
    except Exception as error:  # tifffile raises many types for damaged headers
        raise FormatError(
            f"{path}: unreadable TIFF header ({type(error).__name__}: {error})"
        ) from error
