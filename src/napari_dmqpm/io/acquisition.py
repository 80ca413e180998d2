"""The in-memory form of one ssQPM file: four polarized intensities and a phase map."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

#: Polarizer angles of the four intensity channels, in degrees, in channel order.
ANGLES_DEG: tuple[int, int, int, int] = (0, 45, 90, 135)

#: The kinds of input file the reader understands (see docs/formats.md).
FileKind = Literal["ssqpm-stack", "angles-stack", "raw-mosaic", "phase-map"]
FILE_KINDS: tuple[str, ...] = ("ssqpm-stack", "angles-stack", "raw-mosaic", "phase-map")


class FormatError(ValueError):
    """A file or array is not one of the formats of docs/formats.md, or is damaged.

    The message always names the file (when there is one) and the problem.
    """


class DataWarning(UserWarning):
    """The data were readable but had to be repaired (e.g. NaN or Inf pixels replaced).

    The message says what was changed and how many pixels it touched. Silence it with
    ``warnings.simplefilter("ignore", DataWarning)``; turn it into an error with
    ``"error"``.
    """


@dataclass(frozen=True, kw_only=True)
class Acquisition:
    """One ssQPM recording: polarized intensities (optional) and phase, with a time axis.

    The arrays are numpy arrays, or dask arrays when the file was opened lazily
    (``read_acquisition(..., lazy=True)``, see :mod:`napari_dmqpm.io.lazy`): then
    ``np.asarray(acquisition.phase[t])`` reads frame ``t`` only, and ``is_lazy`` is True.

    Parameters
    ----------
    phase : ndarray or dask array of shape (T, M, N), float32
        Phase in radians, unwrapped, background-corrected. ``T == 1`` for a single frame.
    angles : ndarray or dask array of shape (T, 4, M, N), float32, or None
        Intensities at polarizer angles 0, 45, 90 and 135 degrees (``ANGLES_DEG``).
        None for a phase-only map.
    kind : str
        One of ``FILE_KINDS``: what the source file was.
    pixel_size_um : float or None
        Pixel size in the sample plane, in µm, where the file states it.
    wavelength_um : float or None
        Illumination wavelength in µm, where known.
    is_timelapse : bool
        True when the source had a time axis (even of length 1).
    modulation : ndarray or dask array of shape (T, M, N), float32, or None
        Fringe modulation (per-pixel quality signal) where the phase was retrieved.
    phase_source : str
        How the phase was obtained, in words (e.g. ``"read from channel 4"``,
        ``"four-step retrieval from the angle images"``).
    source : str
        The path or description the data came from.
    metadata : dict
        Anything else worth keeping (tags, units, conversion factors). JSON-serialisable.
    """

    phase: np.ndarray
    angles: np.ndarray | None = None
    kind: str = "ssqpm-stack"
    pixel_size_um: float | None = None
    wavelength_um: float | None = None
    is_timelapse: bool = False
    modulation: np.ndarray | None = None
    phase_source: str = ""
    source: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in FILE_KINDS:
            raise ValueError(f"kind must be one of {FILE_KINDS}; got kind={self.kind!r}")
        if self.phase.ndim != 3:
            raise ValueError(f"phase must have shape (T, M, N); got phase.shape={self.phase.shape}")
        n_frames, n_rows, n_cols = self.phase.shape
        if self.angles is not None and self.angles.shape != (n_frames, 4, n_rows, n_cols):
            raise ValueError(
                "angles must have shape (T, 4, M, N) matching phase (T, M, N)="
                f"{self.phase.shape}; got angles.shape={self.angles.shape}"
            )
        if self.modulation is not None and self.modulation.shape != self.phase.shape:
            raise ValueError(
                f"modulation must match phase.shape={self.phase.shape}; "
                f"got modulation.shape={self.modulation.shape}"
            )
        if self.pixel_size_um is not None and not self.pixel_size_um > 0:
            raise ValueError(f"pixel_size_um must be positive; got {self.pixel_size_um!r}")

    @property
    def n_frames(self) -> int:
        """Number of time points ``T``."""
        return int(self.phase.shape[0])

    @property
    def is_lazy(self) -> bool:
        """True when the arrays are read on demand (dask arrays), not held in memory."""
        return not isinstance(self.phase, np.ndarray)

    @property
    def frame_shape(self) -> tuple[int, int]:
        """``(M, N)``: rows and columns of one frame."""
        return (int(self.phase.shape[1]), int(self.phase.shape[2]))

    def replace(self, **changes: Any) -> Acquisition:
        """Return a copy with some fields changed (the original is untouched).

        Parameters
        ----------
        **changes
            New values of fields, by name.
        """
        return dataclasses.replace(self, **changes)
