"""Read any file of docs/formats.md into an :class:`Acquisition`."""

from __future__ import annotations

import math
import os
import warnings
from typing import Any

import numpy as np

from napari_dmqpm.io._layout import arrange
from napari_dmqpm.io._series import first_series
from napari_dmqpm.io.acquisition import ANGLES_DEG, Acquisition, DataWarning, FormatError
from napari_dmqpm.io.arrays import assemble, check_retrieval_options
from napari_dmqpm.io.detect import FileInfo, inspect_file, is_tiff, open_pillow, tifffile_errors
from napari_dmqpm.io.labels import LABELS_KIND, LabelImage
from napari_dmqpm.io.lazy import (
    LAZY_THRESHOLD_BYTES,
    lazy_parts,
    retrieved_frame_shape,
    wants_lazy,
)
from napari_dmqpm.io.limits import check_declared, check_retrieval
from napari_dmqpm.io.mosaic import DEMOSAIC_METHODS, DemosaicMethod, demosaic
from napari_dmqpm.io.units import radians_per_unit

__all__ = ["read_acquisition", "read_labels"]


def _read_tiff(info: FileInfo) -> np.ndarray:
    import tifffile

    with tifffile_errors(), tifffile.TiffFile(info.path) as tif:
        data = first_series(tif)[0].asarray()
    return data


def _read_pillow(info: FileInfo) -> np.ndarray:
    image = open_pillow(info.path)
    with image:
        image.load()
        data = np.asarray(image)
    return data.astype(data.dtype.newbyteorder("="), copy=False)


def read_pixels(info: FileInfo) -> np.ndarray:
    """The stored array of an inspected file, every decoding failure a FormatError.

    Parameters
    ----------
    info : FileInfo
        The inspected file (:func:`~napari_dmqpm.io.inspect_file`).
    """
    # before decoding: what the file can hold, and the memory (io.limits)
    check_declared(info.path, info.shape, info.dtype, compression=info.compression)
    try:
        data = _read_tiff(info) if is_tiff(info.path) else _read_pillow(info)
    except FormatError:
        raise
    except Exception as error:  # decoders raise many types for truncated or corrupt data
        raise FormatError(
            f"{info.path}: cannot decode the pixel data, the file is truncated or corrupt "
            f"({type(error).__name__}: {error})"
        ) from error
    if tuple(data.shape) != info.shape:
        raise FormatError(
            f"{info.path}: the pixel data have shape {data.shape}, the header says {info.shape}"
        )
    return data


#: The kinds whose phase is retrieved from the angle images when they are read.
_RETRIEVED = ("angles-stack", "raw-mosaic")


def _check_options(
    demosaic_method: str, mosaic_origin: Any, sign: int, background: str | None
) -> None:
    if demosaic_method not in DEMOSAIC_METHODS:
        raise ValueError(
            f"demosaic_method must be one of {DEMOSAIC_METHODS}; got {demosaic_method!r}"
        )
    if len(tuple(mosaic_origin)) != 2 or any(o not in (0, 1) for o in mosaic_origin):
        raise ValueError(f"mosaic_origin must be (0 or 1, 0 or 1); got {mosaic_origin!r}")
    check_retrieval_options(sign=sign, background=background)


def _metadata(info: FileInfo, options: dict[str, Any], phase_unit: str, alpha: float) -> dict:
    metadata: dict[str, Any] = {
        "file_format": info.file_format,
        "compression": info.compression,
        "stored_shape": list(info.shape),
        "stored_dtype": info.dtype,
        "stored_axes": info.axes,
        "detection": info.reason,
        "pixel_size_source": info.pixel_size_source,
        "wavelength_source": info.wavelength_source,
        "angles_deg": list(ANGLES_DEG),
    }
    if info.kind in ("phase-map", "ssqpm-stack"):
        metadata.update(phase_unit=phase_unit, radians_per_unit=options["radians"])
        if phase_unit == "pg_per_um2":
            metadata["alpha_um3_per_pg"] = alpha
        return metadata
    metadata["retrieval"] = {"sign": options["sign"], "background": options["background"]}
    if info.kind == "raw-mosaic":
        origin = list(options["mosaic_origin"])
        metadata["demosaic"] = {"method": options["demosaic_method"], "origin": origin}
    return metadata


def _phase_source(info: FileInfo, retrieval: str, phase_unit: str, options: dict) -> str:
    """How the phase was obtained, in words (``retrieval``: the words of ``assemble``)."""
    if info.kind in ("phase-map", "ssqpm-stack"):
        radians = options["radians"]
        unit = "radians" if phase_unit == "rad" else f"{phase_unit}, x{radians:.4g} to radians"
        where = "the phase map" if info.kind == "phase-map" else "channel 4"
        return f"read from {where} ({unit})"
    if info.kind == "raw-mosaic":
        return f"{retrieval}, after {options['demosaic_method']} demosaicing"
    return retrieval


def read_acquisition(
    path: str | os.PathLike,
    *,
    kind: str | None = None,
    mosaic_origin: tuple[int, int] = (0, 0),
    demosaic_method: str = "superpixel",
    phase_unit: str = "rad",
    wavelength_um: float | None = None,
    alpha_um3_per_pg: float = 0.18,
    sign: int = 1,
    background: str | None = "plane",
    pixel_size_um: float | None = None,
    lazy: bool | None = None,
) -> Acquisition:
    """Read an ssQPM stack, an angles stack, a raw mosaic or a phase map.

    Parameters
    ----------
    path : str or path-like
        TIFF (plain, ImageJ, OME; uncompressed, LZW, deflate, zstd, ...) or PNG.
    kind : {"ssqpm-stack", "angles-stack", "raw-mosaic", "phase-map"}, optional
        Skip detection (see docs/formats.md for the rules).
    mosaic_origin : (int, int), optional
        Raw mosaics: ``(row, col)``, each 0 or 1, where the first full super-pixel starts.
    demosaic_method : {"superpixel", "interpolate"}, optional
        Raw mosaics: halve the resolution (default; the pixel size doubles) or
        interpolate each angle bilinearly at full resolution.
    phase_unit : {"rad", "opd_um", "opd_nm", "pg_per_um2"}, optional
        Unit of a stored phase (phase maps, channel 4 of ssQPM stacks); converted to radians.
    wavelength_um : float, optional
        Illumination wavelength in µm; overrides the file's. Needed for non-"rad" units.
    alpha_um3_per_pg : float, optional
        Specific refraction increment in µm³/pg for "pg_per_um2" (default 0.18).
    sign : {1, -1}, optional
        Phase retrieval sign (angles stacks and raw mosaics).
    background : {"plane", "quadratic", "offset"} or None, optional
        Background surface removed after retrieval. Stored phases are kept as they are.
    pixel_size_um : float, optional
        Pixel size of the stored image in µm, overriding the file's (superpixel
        demosaicing still doubles it).
    lazy : bool or None, optional
        Return dask arrays that read (and, for angle stacks and raw mosaics, retrieve the
        phase of) a frame only when it is used; see :mod:`napari_dmqpm.io.lazy`. None
        (default): lazy for a TIFF time-lapse whose stored pixels exceed
        ``LAZY_THRESHOLD_BYTES`` (256 MiB). PNG files are always read at once.

    Returns
    -------
    Acquisition
        ``phase`` (T, M, N) float32 radians; ``angles`` (T, 4, M, N) float32 or None;
        ``modulation`` where the phase was retrieved; pixel size and wavelength in µm;
        ``metadata`` with the detection rule, units and sources (and ``"lazy"``, the chunk
        layout, when the arrays are dask arrays).

    Raises
    ------
    FileNotFoundError
        No such file.
    FormatError
        Empty, truncated, corrupt or unsupported file, a ``kind`` the shape cannot hold, or
        a labels image (read it with :func:`read_labels`).
    ValueError
        An option out of range, or a non-"rad" ``phase_unit`` without any wavelength.

    Warns
    -----
    DataWarning
        NaN/Inf pixels replaced: by 0 in the phase, by the plane median in intensities
        (when a frame is computed, for lazy arrays).
    """
    _check_options(demosaic_method, mosaic_origin, sign, background)
    if pixel_size_um is not None and not (math.isfinite(pixel_size_um) and pixel_size_um > 0):
        raise ValueError(f"pixel_size_um must be a positive number; got {pixel_size_um!r}")
    info = inspect_file(path, kind=kind)
    if info.kind == LABELS_KIND:
        raise FormatError(
            f"{info.path}: is a labels image, not an ssQPM recording ({info.reason}); read it "
            "with napari_dmqpm.io.read_labels, or pass kind= to read it as a recording"
        )
    wavelength = wavelength_um if wavelength_um is not None else info.wavelength_um
    stores_phase = info.kind in ("phase-map", "ssqpm-stack")
    radians = radians_per_unit(
        phase_unit if stores_phase else "rad",
        wavelength_um=wavelength,
        alpha_um3_per_pg=alpha_um3_per_pg,
    )
    options: dict[str, Any] = {"radians": radians, "sign": sign, "background": background}
    options |= {"demosaic_method": demosaic_method, "mosaic_origin": tuple(mosaic_origin)}
    metadata = _metadata(info, options, phase_unit, alpha_um3_per_pg)
    if info.ignored:  # said, not silent: series 0 only
        metadata["ignored"] = info.ignored
        warnings.warn(f"{info.path}: {info.ignored}", DataWarning, stacklevel=2)
    if wants_lazy(lazy, info):
        parts = lazy_parts(info, **options)
        metadata["lazy"] = {**parts.pop("lazy"), "threshold_bytes": LAZY_THRESHOLD_BYTES}
    else:
        parts = _eager_parts(info, **options)
    parts["phase_source"] = _phase_source(info, parts["phase_source"], phase_unit, options)
    size = pixel_size_um if pixel_size_um is not None else info.pixel_size_um
    if size is not None and info.kind == "raw-mosaic" and demosaic_method == "superpixel":
        size *= 2  # one output pixel per 2x2 super-pixel
    return Acquisition(
        kind=info.kind,
        pixel_size_um=size,
        wavelength_um=wavelength,
        is_timelapse=info.is_timelapse,
        source=str(info.path),
        metadata=metadata,
        **parts,
    )


def _eager_parts(info: FileInfo, **options: Any) -> dict[str, Any]:
    """Read every pixel now: ``angles``, ``phase``, ``modulation`` and ``phase_source``."""
    shape = retrieved_frame_shape(info, options) if info.kind in _RETRIEVED else None
    if shape is not None:  # before decoding: the stored pixels, then one frame's retrieval
        check_declared(info.path, info.shape, info.dtype, compression=info.compression)
        check_retrieval(info.path, shape)
    assert info.layout is not None  # inspect_file plans the layout of every file it accepts
    stack = arrange(read_pixels(info), info.layout, info.axes)
    where = str(info.path)
    if info.kind == "phase-map":
        return assemble(angles=None, phase=stack[:, 0], where=where, radians=options["radians"])
    if info.kind == "ssqpm-stack":
        return assemble(
            angles=stack[:, :4], phase=stack[:, 4], where=where, radians=options["radians"]
        )
    if info.kind == "raw-mosaic":
        method, origin = options["demosaic_method"], options["mosaic_origin"]
        stack = _demosaic(info, stack, method=method, origin=origin)
    sign, background = options["sign"], options["background"]
    return assemble(angles=stack, phase=None, where=where, sign=sign, background=background)


def _demosaic(
    info: FileInfo, stack: np.ndarray, *, method: DemosaicMethod, origin: tuple[int, int]
) -> np.ndarray:
    """(T, 1, M, N) mosaics -> (T, 4, M', N') angles; a too small mosaic is a FormatError."""
    try:
        return demosaic(stack[:, 0], origin=origin, method=method)
    except ValueError as error:  # the options were checked: this is about the data
        raise FormatError(f"{info.path}: {error}") from error


def read_labels(
    path: str | os.PathLike, *, force: bool = False, pixel_size_um: float | None = None
) -> LabelImage:
    """Read a labels image: napari-dmqpm's own, or another tool's that looks like one.

    Parameters
    ----------
    path : str or path-like
        A TIFF or PNG of instance labels (docs/formats.md, "Labels images").
    force : bool, optional
        Read any integer ``(M, N)`` or ``(T, M, N)`` image as labels, even one that the
        detection takes for something else (a camera frame, say).
    pixel_size_um : float, optional
        Pixel size in µm, overriding the file's.

    Returns
    -------
    LabelImage
        ``labels`` (T, M, N) integers of the stored dtype (uint16 or uint32 for
        napari-dmqpm's files), the pixel size and the rule that recognised the file.

    Raises
    ------
    FileNotFoundError
        No such file.
    FormatError
        Not a labels image (without ``force``), negative labels, not integers, or damaged.
    ValueError
        ``pixel_size_um`` not a positive number.
    """
    if pixel_size_um is not None and not (math.isfinite(pixel_size_um) and pixel_size_um > 0):
        raise ValueError(f"pixel_size_um must be a positive number; got {pixel_size_um!r}")
    info = inspect_file(path, kind=LABELS_KIND if force else None)
    if info.kind != LABELS_KIND:
        raise FormatError(
            f"{info.path}: not a labels image ({info.reason}); pass force=True to read it as one"
        )
    assert info.layout is not None  # inspect_file plans the layout of every file it accepts
    labels = arrange(read_pixels(info), info.layout, info.axes)[:, 0]
    if labels.size and int(labels.min()) < 0:
        raise FormatError(f"{info.path}: labels must be >= 0; got minimum {int(labels.min())}")
    labels = labels.astype(labels.dtype.newbyteorder("="), copy=False)
    metadata = {
        "detection": info.reason,
        "pixel_size_source": info.pixel_size_source if pixel_size_um is None else "given",
        "stored_dtype": info.dtype,
        "stored_shape": list(info.shape),
        "file_format": info.file_format,
    }
    return LabelImage(
        labels=labels,
        pixel_size_um=pixel_size_um if pixel_size_um is not None else info.pixel_size_um,
        is_timelapse=info.is_timelapse,
        source=str(info.path),
        metadata=metadata,
    )
