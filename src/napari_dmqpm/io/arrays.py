"""Arrays -> :class:`Acquisition`: validation, NaN/Inf repair and phase retrieval.

Both the file reader and arrays coming from napari layers or the API go through
:func:`assemble`, so that a phase map means the same whatever its origin.
"""

from __future__ import annotations

import warnings
from typing import Any, TypeGuard

import numpy as np

from napari_dmqpm import phase as _phase
from napari_dmqpm.io._layout import check_dtype
from napari_dmqpm.io.acquisition import ANGLES_DEG, Acquisition, DataWarning, FormatError
from napari_dmqpm.io.units import radians_per_unit

__all__ = ["acquisition_from_arrays", "assemble", "check_retrieval_options"]


def check_retrieval_options(*, sign: int, background: str | None) -> None:
    """ValueError for a ``sign`` or ``background`` that :func:`retrieve_phase` would refuse.

    Parameters
    ----------
    sign : int
        1 or -1.
    background : str or None
        A background order of :func:`~napari_dmqpm.phase.retrieve_phase`, or None.
    """
    if sign not in (1, -1):
        raise ValueError(f"sign must be 1 or -1; got sign={sign!r}")
    if not _is_background_name(background):
        raise _background_error(background)


def _is_background_name(value: str | None) -> TypeGuard[_phase.BackgroundName | None]:
    """Whether ``value`` is None or a background that :func:`retrieve_phase` knows."""
    return value is None or value in _phase.BACKGROUND_ORDERS


def _background_error(background: str | None) -> ValueError:
    return ValueError(
        f"background must be None or one of {tuple(_phase.BACKGROUND_ORDERS)}; "
        f"got background={background!r}"
    )


def clean_intensities(angles: np.ndarray, where: str) -> np.ndarray:
    """Replace NaN/Inf in ``(..., C, M, N)`` intensities by the median of their plane.

    Returns float32; a copy only when something was replaced or the dtype changed.
    Warns with :class:`DataWarning` saying how many pixels were replaced.

    Parameters
    ----------
    angles : ndarray of shape (..., C, M, N)
        Intensities.

    where : str
        The source named in the warning (a file path, ``"arrays"``).
    """
    angles = angles.astype(np.float32, copy=False)
    bad = ~np.isfinite(angles)
    n_bad = int(bad.sum())
    if n_bad == 0:
        return angles
    angles = angles.copy()
    planes = angles.reshape(-1, *angles.shape[-2:])
    for plane, mask in zip(planes, bad.reshape(planes.shape), strict=True):
        if mask.any():
            finite = plane[~mask]
            plane[mask] = np.median(finite) if finite.size else 0.0
    warnings.warn(
        f"{where}: replaced {n_bad} NaN/Inf intensity pixel(s) by the median of their angle image",
        DataWarning,
        stacklevel=4,
    )
    return angles


def clean_phase(phase: np.ndarray, where: str) -> np.ndarray:
    """Replace NaN/Inf in a phase map by 0 (the background level), with a DataWarning.

    Parameters
    ----------
    phase : ndarray
        Phase map(s).

    where : str
        The source named in the warning (a file path, ``"arrays"``).
    """
    phase = phase.astype(np.float32, copy=False)
    bad = ~np.isfinite(phase)
    n_bad = int(bad.sum())
    if n_bad == 0:
        return phase
    phase = np.where(bad, np.float32(0), phase)
    warnings.warn(
        f"{where}: replaced {n_bad} NaN/Inf phase pixel(s) by 0 (the background level)",
        DataWarning,
        stacklevel=4,
    )
    return phase


def _retrieve(
    angles: np.ndarray, *, sign: int, background: str | None
) -> tuple[np.ndarray, np.ndarray]:
    """Four-step retrieval of every frame of ``(T, 4, M, N)`` -> phase and modulation (T, M, N)."""
    if not _is_background_name(background):
        raise _background_error(background)
    phase = np.empty((angles.shape[0], *angles.shape[-2:]), dtype=np.float32)
    modulation = np.empty_like(phase)
    for index, frame in enumerate(angles):
        result = _phase.retrieve_phase(frame, sign=sign, background=background)
        phase[index], modulation[index] = result.phase, result.modulation
    return phase, modulation


def assemble(
    *,
    angles: np.ndarray | None,
    phase: np.ndarray | None,
    where: str,
    sign: int = 1,
    background: str | None = "plane",
    radians: float = 1.0,
) -> dict[str, Any]:
    """Clean the arrays and retrieve the phase when it is missing.

    Parameters
    ----------
    angles : ndarray of shape (T, 4, M, N), or None
        Intensities at 0, 45, 90, 135 degrees, any real dtype.
    phase : ndarray of shape (T, M, N), or None
        Phase in stored units; multiplied by ``radians``.
    where : str
        The file or "arrays", for messages.
    sign, background : optional
        Passed to :func:`napari_dmqpm.phase.retrieve_phase` when ``phase`` is None.
    radians : float, optional
        Factor from the stored phase unit to radians.

    Returns
    -------
    dict
        ``angles``, ``phase``, ``modulation`` (float32 arrays or None) and
        ``phase_source`` (str), ready for :class:`Acquisition`.
    """
    if angles is not None:
        angles = clean_intensities(angles, where)
    if phase is not None:
        phase = clean_phase(phase, where)
        if radians != 1.0:
            phase = (phase * np.float32(radians)).astype(np.float32)
        return {"angles": angles, "phase": phase, "modulation": None, "phase_source": ""}
    if angles is None:
        raise ValueError("angles and phase cannot both be None")
    phase, modulation = _retrieve(angles, sign=sign, background=background)
    source = (
        f"four-step retrieval from the angle images (sign={sign:+d}, unwrapped, "
        f"background {background!r} removed)"
    )
    return {"angles": angles, "phase": phase, "modulation": modulation, "phase_source": source}


def _as_real(array: Any, name: str) -> np.ndarray:
    array = np.asarray(array)
    check_dtype(array.dtype, name)
    return array


def _angles_to_canonical(angles: np.ndarray, angle_axis: int) -> np.ndarray:
    """``angles`` with the angle axis moved to position -3, as (T, 4, M, N)."""
    if angles.ndim not in (3, 4):
        raise FormatError(
            f"angles must have shape (4, M, N) or (T, 4, M, N); got angles.shape={angles.shape}"
        )
    if not -angles.ndim <= angle_axis < angles.ndim or angle_axis % angles.ndim >= angles.ndim - 2:
        raise ValueError(
            f"angle_axis must be one of the leading axes of angles.shape={angles.shape}; "
            f"got angle_axis={angle_axis}"
        )
    moved = np.moveaxis(angles, angle_axis, -3)
    if moved.shape[-3] != 4:
        hint = " (5 channels: pass angles=stack[:4] and phase=stack[4])" * (moved.shape[-3] == 5)
        raise FormatError(
            f"angles must hold 4 images (0, 45, 90, 135 degrees) along axis {angle_axis}; "
            f"got {moved.shape[-3]} in angles.shape={angles.shape}{hint}"
        )
    return moved if moved.ndim == 4 else moved[np.newaxis]


def _phase_to_canonical(phase: np.ndarray) -> np.ndarray:
    if phase.ndim not in (2, 3):
        raise FormatError(
            f"phase must have shape (M, N) or (T, M, N); got phase.shape={phase.shape}"
        )
    return phase if phase.ndim == 3 else phase[np.newaxis]


def acquisition_from_arrays(
    *,
    angles: np.ndarray | None = None,
    phase: np.ndarray | None = None,
    pixel_size_um: float | None = None,
    wavelength_um: float | None = None,
    angle_axis: int = -3,
    phase_unit: str = "rad",
    alpha_um3_per_pg: float = 0.18,
    sign: int = 1,
    background: str | None = "plane",
    is_timelapse: bool | None = None,
    source: str = "arrays",
) -> Acquisition:
    """Validate arrays (from napari layers or the API) and build an :class:`Acquisition`.

    Parameters
    ----------
    angles : array-like of shape (4, M, N) or (T, 4, M, N), optional
        Intensities at 0, 45, 90 and 135 degrees, any real dtype. Not modified.
    phase : array-like of shape (M, N) or (T, M, N), optional
        Phase in ``phase_unit``. When None, it is retrieved from ``angles`` frame by frame.
    pixel_size_um, wavelength_um : float, optional
        Pixel size and illumination wavelength in µm.
    angle_axis : int, optional
        Axis of ``angles`` that holds the four angles: -3 (default, ``(T, 4, M, N)``) or
        0 for napari's angle-leading ``(4, T, M, N)`` layers.
    phase_unit : {"rad", "opd_um", "opd_nm", "pg_per_um2"}, optional
        Unit of ``phase`` (see :func:`napari_dmqpm.io.units.radians_per_unit`).
    alpha_um3_per_pg : float, optional
        Specific refraction increment for "pg_per_um2".
    sign, background : optional
        Retrieval options of :func:`napari_dmqpm.phase.retrieve_phase`.
    is_timelapse : bool, optional
        Default: True when the arrays have a time axis.
    source : str, optional
        Provenance, stored in ``Acquisition.source``.

    Returns
    -------
    Acquisition
        ``kind`` is "ssqpm-stack" (angles and phase), "angles-stack" or "phase-map".

    Raises
    ------
    FormatError
        Wrong channel count, mismatched shapes, complex or non-numeric data.

    Warns
    -----
    DataWarning
        When NaN/Inf pixels are replaced (phase by 0, intensities by the plane median).

    Examples
    --------
    >>> import numpy as np
    >>> from napari_dmqpm.phase import synthesize_angles
    >>> acq = acquisition_from_arrays(angles=synthesize_angles(np.zeros((8, 8))))
    >>> acq.kind, acq.phase.shape, acq.angles.shape
    ('angles-stack', (1, 8, 8), (1, 4, 8, 8))
    """
    if angles is None and phase is None:
        raise ValueError("give angles, phase or both; got neither")
    check_retrieval_options(sign=sign, background=background)
    radians = radians_per_unit(
        phase_unit, wavelength_um=wavelength_um, alpha_um3_per_pg=alpha_um3_per_pg
    )
    stack = plane = None
    if angles is not None:
        stack = _angles_to_canonical(_as_real(angles, "angles"), angle_axis)
    if phase is not None:
        plane = _phase_to_canonical(_as_real(phase, "phase"))
    if (
        angles is not None
        and phase is not None
        and stack is not None
        and plane is not None
        and stack[:, 0].shape != plane.shape
    ):
        raise FormatError(
            f"phase must match the angles: phase.shape={np.shape(phase)} gives (T, M, N)="
            f"{plane.shape}, angles.shape={np.shape(angles)} gives {stack[:, 0].shape}"
        )
    parts = assemble(
        angles=stack, phase=plane, where=source, sign=sign, background=background, radians=radians
    )
    if plane is not None:
        parts["phase_source"] = f"given as an array ({phase_unit})"
    kind = "phase-map" if stack is None else "angles-stack" if plane is None else "ssqpm-stack"
    timelapse = (
        is_timelapse
        if is_timelapse is not None
        else bool(
            (angles is not None and np.ndim(angles) == 4)
            or (phase is not None and np.ndim(phase) == 3)
        )
    )
    return Acquisition(
        kind=kind,
        pixel_size_um=pixel_size_um,
        wavelength_um=wavelength_um,
        is_timelapse=timelapse,
        source=source,
        metadata={
            "angles_deg": list(ANGLES_DEG),
            "phase_unit": phase_unit,
            "radians_per_unit": radians,
        },
        **parts,
    )
