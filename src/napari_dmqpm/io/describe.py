"""``dmqpm info FILE``: what kind of file this is and what the reader will make of it."""

from __future__ import annotations

import math
import os

from napari_dmqpm.io.detect import FileInfo, inspect_file
from napari_dmqpm.io.labels import LABELS_KIND
from napari_dmqpm.io.mosaic import DEMOSAIC_METHODS
from napari_dmqpm.io.units import PHASE_UNITS, radians_per_unit

__all__ = ["describe_file"]


def _frame_shape(info: FileInfo) -> tuple[int, int]:
    shape = info.shape[:-1] if info.axes.endswith("S") else info.shape
    return int(shape[-2]), int(shape[-1])


def _mosaic_shape(frame: tuple[int, int], origin: tuple[int, int], method: str) -> tuple[int, int]:
    rows, cols = (frame[0] - origin[0]) // 2, (frame[1] - origin[1]) // 2
    return (rows, cols) if method == "superpixel" else (2 * rows, 2 * cols)


def _size_line(info: FileInfo, given: float | None) -> str:
    if given is not None:
        return f"{given:.6g} µm (given; overrides the file)"
    if info.pixel_size_um is None:
        return (
            "not stated (layers get scale 1, areas in µm² and dry mass unknown; give the "
            "pixel size: --pixel-size-um, or pixel_size_um=... in Python)"
        )
    return f"{info.pixel_size_um:.6g} µm ({info.pixel_size_source})"


def _unit_words(info: FileInfo, options: dict) -> str:
    unit = options["phase_unit"]
    if unit is None:  # nobody said: phase maps state no unit, ssQPM stacks are radians
        return "unit not stated (assumed rad)" if info.kind == "phase-map" else "radians"
    if unit == "rad":
        return "radians"
    wavelength = options["wavelength_um"] or info.wavelength_um
    if wavelength is None:
        return (
            f"{unit}: cannot be read without the wavelength, which the file does not state "
            "(--wavelength-um, or wavelength_um=... in Python)"
        )
    factor = radians_per_unit(
        unit, wavelength_um=wavelength, alpha_um3_per_pg=options["alpha_um3_per_pg"]
    )
    return f"{unit} x {factor:.4g} -> radians at {wavelength:g} µm"


def _reader_line(info: FileInfo, options: dict) -> str:
    method, origin = options["demosaic_method"], options["mosaic_origin"]
    rows, cols = _frame_shape(info)
    if info.kind == LABELS_KIND:
        shape = (info.n_frames, rows, cols) if info.is_timelapse else (rows, cols)
        return (
            f"Labels layer {shape} ({info.dtype}, 0 = background); a labels image, "
            "not an ssQPM recording: no angles or phase, and dmqpm segment skips it"
        )
    steps = ""
    if info.kind == "raw-mosaic":
        rows, cols = _mosaic_shape((rows, cols), origin, method)
        steps = f"{method} demosaic (origin {tuple(origin)}) -> "
        size = options.get("pixel_size_um") or info.pixel_size_um
        if method == "superpixel" and size is not None:
            steps += f"pixel size {2 * size:.6g} µm, "
    lead = (info.n_frames,) if info.is_timelapse else ()
    phase_shape = (*lead, rows, cols)
    if info.kind == "phase-map":
        return f"phase Image {phase_shape} ({_unit_words(info, options)}); no angle images"
    angles = f"angles Image {(4, *phase_shape)}"
    if info.kind == "ssqpm-stack":
        unit = _unit_words(info, options)
        return f"{angles} + phase Image {phase_shape} read from channel 4 ({unit})"
    return f"{steps}{angles} + phase Image {phase_shape} retrieved by four-step"


def describe_file(
    path: str | os.PathLike,
    *,
    kind: str | None = None,
    demosaic_method: str = "superpixel",
    mosaic_origin: tuple[int, int] = (0, 0),
    phase_unit: str | None = None,
    wavelength_um: float | None = None,
    alpha_um3_per_pg: float = 0.18,
    pixel_size_um: float | None = None,
) -> str:
    """A few lines saying what a file is and what :func:`read_acquisition` will make of it.

    Reads the header only. This is what ``dmqpm info FILE`` prints.

    Parameters
    ----------
    path : str or path-like
        The file.
    kind : str, optional
        Override the detection, as in :func:`inspect_file`.
    demosaic_method : {"superpixel", "interpolate"}, optional
        For raw mosaics: the demosaicing the reader will use (changes the output shape).
    mosaic_origin : (int, int), optional
        For raw mosaics: where the first full super-pixel starts.
    phase_unit : {"rad", "opd_um", "opd_nm", "pg_per_um2"} or None, optional
        For stored phases: the unit the values will be converted from. None (default):
        not given; a phase map, whose file states no unit, is then said to be taken as
        radians by assumption ("unit not stated (assumed rad)"), as ``read_acquisition``
        reads it.
    wavelength_um, alpha_um3_per_pg : float, optional
        As in :func:`read_acquisition`, for the unit conversion.
    pixel_size_um : float, optional
        As in :func:`read_acquisition`: a pixel size in µm that overrides the file's.

    Returns
    -------
    str
        Several lines: file format and compression, stored shape, dtype and axes, pixel
        size and wavelength with their sources, the kind with the rule that fired, and
        the napari layers the reader will return (angle axis leading).

    Raises
    ------
    FormatError
        As :func:`inspect_file`.
    """
    if demosaic_method not in DEMOSAIC_METHODS:
        raise ValueError(
            f"demosaic_method must be one of {DEMOSAIC_METHODS}; got {demosaic_method!r}"
        )
    if phase_unit is not None and phase_unit not in PHASE_UNITS:
        raise ValueError(f"phase_unit must be one of {PHASE_UNITS}; got {phase_unit!r}")
    if pixel_size_um is not None and not (math.isfinite(pixel_size_um) and pixel_size_um > 0):
        raise ValueError(f"pixel_size_um must be a positive number; got {pixel_size_um!r}")
    info = inspect_file(path, kind=kind)
    options = {
        "demosaic_method": demosaic_method,
        "mosaic_origin": tuple(mosaic_origin),
        "phase_unit": phase_unit,
        "wavelength_um": wavelength_um,
        "alpha_um3_per_pg": alpha_um3_per_pg,
        "pixel_size_um": pixel_size_um,
    }
    frames = f"{info.n_frames} frame{'s' if info.n_frames != 1 else ''}"
    frames += " (time-lapse)" if info.is_timelapse else ""
    if wavelength_um is not None:
        wavelength = f"{wavelength_um:.6g} µm (given; overrides the file)"
    elif info.wavelength_um is not None:
        wavelength = f"{info.wavelength_um:.6g} µm ({info.wavelength_source})"
    else:
        wavelength = "not stated"
    lines = [
        f"{info.path}",
        f"  file:        {info.file_format}, compression {info.compression}",
        f"  stored:      shape {info.shape}, {info.dtype}, axes {info.axes}; {frames}",
        f"  pixel size:  {_size_line(info, pixel_size_um)}",
        f"  wavelength:  {wavelength}",
        f"  kind:        {info.kind}  [{info.reason}]",
        f"  reader:      {_reader_line(info, options)}",
    ]
    if info.ignored:
        lines.append(f"  ignored:     {info.ignored}")
    return "\n".join(lines)
