"""From the layers a user picked to checked arrays: which layers fit, and what is wrong.

The widgets read their inputs here. Every problem a user can cause (no layer chosen, labels
of the wrong shape, empty labels, a frame too small, a model that needs the angle images)
raises :class:`InputError` with a message naming the layer and the problem; the widget shows
it as a notification and changes nothing.

Layers are read one frame at a time (``np.asarray(layer.data[t])``), so a time-lapse held as
a lazy (dask) array is never loaded whole. Phase values are turned into radians with
:class:`PhaseUnit`, through :func:`napari_dmqpm.io.units.radians_per_unit` as in the CLI.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from napari_dmqpm.io.acquisition import Acquisition
from napari_dmqpm.io.units import PHASE_UNITS, radians_per_unit

__all__ = [
    "MIN_FRAME_PX",
    "UNIT_NAMES",
    "InputError",
    "PhaseUnit",
    "acquisition_from_layers",
    "angles_layers",
    "check_frame_size",
    "current_frame",
    "frames_of",
    "labels_for_training",
    "labels_layers",
    "partner_angles",
    "partner_labels",
    "phase_in_radians",
    "phase_layers",
    "layer_pixel_size_um",
    "stated_phase_unit",
    "stem",
]

#: Smallest frame side the widgets accept, in pixels (the network's smallest input).
MIN_FRAME_PX = 32
#: ``metadata["quantity"]`` of the probability layers the segment widget makes.
PROBABILITY_QUANTITY = "cell probability"


#: How the widgets name the phase units of :data:`napari_dmqpm.io.units.PHASE_UNITS`.
UNIT_NAMES = {
    "rad": "rad",
    "pg_per_um2": "pg/µm² (dry mass)",
    "opd_nm": "nm (optical path)",
    "opd_um": "µm (optical path)",
}


class InputError(ValueError):
    """A problem with the layers or values the user chose; the message says which and why."""


@dataclass(frozen=True, kw_only=True)
class PhaseUnit:
    """The unit of a phase layer's values, and the wavelength that converts them to radians.

    Parameters
    ----------
    unit : {"rad", "pg_per_um2", "opd_nm", "opd_um"}
        What the layer's values are (see :mod:`napari_dmqpm.io.units`).
    wavelength_um : float or None
        Illumination wavelength in µm; needed for every unit but "rad", and for dry mass.
    alpha_um3_per_pg : float
        Specific refraction increment in µm³/pg, for "pg_per_um2" and dry mass.

    Raises
    ------
    InputError
        An unknown unit, a unit other than "rad" without a wavelength, or a wavelength
        that is not a positive number.

    Examples
    --------
    >>> round(PhaseUnit(unit="pg_per_um2", wavelength_um=0.65).radians, 3)
    1.74
    """

    unit: str = "rad"
    wavelength_um: float | None = None
    alpha_um3_per_pg: float = 0.18

    def __post_init__(self) -> None:
        if self.unit not in PHASE_UNITS:
            raise InputError(f"phase unit must be one of {PHASE_UNITS}; got {self.unit!r}")
        if self.unit != "rad" and self.wavelength_um is None:
            raise InputError(
                f"a phase in {UNIT_NAMES[self.unit]} needs the wavelength: set it "
                "(e.g. 0.65 µm for 650 nm)"
            )
        try:
            self.radians  # noqa: B018 - checks the numbers with the core's own rules
        except ValueError as error:
            raise InputError(str(error)) from error

    @property
    def radians(self) -> float:
        """The factor from the layer's values to radians (1 for "rad")."""
        if self.unit == "rad":
            return 1.0
        return radians_per_unit(
            self.unit, wavelength_um=self.wavelength_um, alpha_um3_per_pg=self.alpha_um3_per_pg
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-native record (stored with a result): unit, wavelength, alpha and the factor."""
        return {
            "unit": self.unit,
            "wavelength_um": self.wavelength_um,
            "alpha_um3_per_pg": self.alpha_um3_per_pg,
            "radians_per_unit": self.radians,
        }


def stated_phase_unit(layer: Any) -> str | None:
    """The unit a layer's metadata states for its values (``metadata["unit"]``), or None.

    The reader states "rad" for phases it retrieved from angle images or converted; a phase
    map whose file states no unit (e.g. a Q-PHASE export in pg/µm²), and any layer from
    elsewhere, state none: the user says which.
    """
    unit = layer.metadata.get("unit")
    return unit if unit in PHASE_UNITS else None


def phase_in_radians(layer: Any, frame: int, phase_unit: PhaseUnit | None = None) -> np.ndarray:
    """One frame of a phase layer, read alone and converted to radians.

    Parameters
    ----------
    layer : napari Image layer, ``(M, N)`` or ``(T, M, N)``
        Any array type (numpy, dask, zarr): only ``layer.data[frame]`` is read.
    frame : int
        Time index (ignored for an ``(M, N)`` layer).
    phase_unit : PhaseUnit, optional
        The unit of the values (radians when None).

    Returns
    -------
    ndarray of shape (M, N), float32
        A new array in radians; the layer is not modified.
    """
    factor = np.float32(1.0 if phase_unit is None else phase_unit.radians)
    data = layer.data[frame] if layer.ndim == 3 else layer.data
    return np.asarray(data, dtype=np.float32) * factor


def _kind(layer: Any) -> str:
    return layer.__class__.__name__.lower()  # __class__: napari may pass a proxy


def _is_angles(layer: Any) -> bool:
    labels = tuple(getattr(layer, "axis_labels", ()) or ())
    marked = layer.metadata.get("quantity") == "intensity" or (labels[:1] == ("angle",))
    return _kind(layer) == "image" and layer.ndim in (3, 4) and layer.data.shape[0] == 4 and marked


def phase_layers(layers: Iterable[Any]) -> list[Any]:
    """Image layers that can be a phase input: one channel, ``(M, N)`` or ``(T, M, N)``.

    Angle stacks, RGB images and the widget's own probability layers are left out.
    """
    return [
        layer
        for layer in layers
        if _kind(layer) == "image"
        and not getattr(layer, "rgb", False)
        and layer.ndim in (2, 3)
        and not _is_angles(layer)
        and layer.metadata.get("quantity") != PROBABILITY_QUANTITY
    ]


def angles_layers(layers: Iterable[Any]) -> list[Any]:
    """Image layers holding the four angle images: ``(4, M, N)`` or ``(4, T, M, N)``."""
    return [layer for layer in layers if _is_angles(layer)]


def labels_layers(layers: Iterable[Any]) -> list[Any]:
    """All Labels layers."""
    return [layer for layer in layers if _kind(layer) == "labels"]


def stem(name: str) -> str:
    """The recording's name in a layer name: ``"cells_01 phase"`` -> ``"cells_01"``.

    Examples
    --------
    >>> stem("sparse field phase"), stem("my image")
    ('sparse field', 'my image')
    """
    for suffix in (" phase", " angles"):
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def _frame_shape(layer: Any) -> tuple[int, ...]:
    return tuple(layer.data.shape[-2:])


def partner_angles(phase: Any, layers: Sequence[Any]) -> Any | None:
    """The angles layer of the same recording as ``phase`` (same name stem or source), or None."""
    source = phase.metadata.get("source")
    candidates = [a for a in angles_layers(layers) if a.data.shape[1:] == phase.data.shape]
    for layer in candidates:
        if layer.name == f"{stem(phase.name)} angles":
            return layer
    for layer in candidates:
        if source and layer.metadata.get("source") == source:
            return layer
    return None


def partner_labels(phase: Any, layers: Sequence[Any]) -> Any | None:
    """``"<stem> cells"`` if it fits ``phase``, else another Labels layer of its shape."""
    fitting = [lab for lab in labels_layers(layers) if lab.data.shape == phase.data.shape]
    for layer in fitting:
        if layer.name == f"{stem(phase.name)} cells":
            return layer
    return fitting[0] if fitting else None


def frames_of(layer: Any) -> int:
    """Number of time points of a phase or labels layer (1 for ``(M, N)``)."""
    return 1 if layer.ndim == 2 else int(layer.data.shape[0])


def current_frame(layer: Any, world_point: Sequence[float]) -> int:
    """The time index of ``layer`` at the viewer's current position (0 for one frame)."""
    if layer.ndim == 2:
        return 0
    index = int(np.round(layer.world_to_data(world_point)[0]))
    return int(np.clip(index, 0, frames_of(layer) - 1))


def layer_pixel_size_um(layer: Any) -> float | None:
    """Pixel size in µm: from the reader's metadata, else from a µm-scaled layer."""
    value = layer.metadata.get("pixel_size_um")
    if isinstance(value, int | float) and value > 0:
        return float(value)
    units = [str(u) for u in (getattr(layer, "units", None) or ())]
    if units and units[-1] in ("µm", "um", "micrometer", "micron"):
        return float(layer.scale[-1])
    return None


def check_frame_size(layer: Any, *, minimum: int = MIN_FRAME_PX) -> None:
    """Raise :class:`InputError` when a frame of ``layer`` is smaller than ``minimum`` px."""
    rows, cols = _frame_shape(layer)
    if min(rows, cols) < minimum:
        raise InputError(
            f"{layer.name!r}: a frame of {rows} x {cols} px is smaller than the smallest tile "
            f"the network takes ({minimum} x {minimum} px); use a larger image"
        )


def _chosen(layer: Any, what: str) -> Any:
    if layer is None:
        raise InputError(f"no {what} layer chosen: open an image (or sample data) and pick one")
    return layer


def acquisition_from_layers(
    phase: Any,
    angles: Any | None = None,
    *,
    frames: Sequence[int] | None = None,
    phase_unit: PhaseUnit | None = None,
    pixel_size_um: float | None = None,
) -> Acquisition:
    """An :class:`Acquisition` of the chosen frames of the phase (and angles) layers.

    Parameters
    ----------
    phase : napari Image layer, ``(M, N)`` or ``(T, M, N)``
        Phase in ``phase_unit``.
    angles : napari Image layer, ``(4, M, N)`` or ``(4, T, M, N)``, optional
        The four angle images, angle axis first (as the reader makes them).
    frames : sequence of int, optional
        Time points to keep (all when None); the acquisition holds only those, in order.
        Each is read on its own (``layer.data[t]``), so lazy layers load only these frames.
    phase_unit : PhaseUnit, optional
        Unit of the phase values and the wavelength (radians, the layer's wavelength when
        None); converted by :func:`napari_dmqpm.io.acquisition_from_arrays`, as the CLI does.
    pixel_size_um : float, optional
        Pixel size in µm where the layer states none (or to override it); else the layer's.

    Returns
    -------
    Acquisition
        ``T = len(frames)``; ``is_timelapse`` follows the phase layer.

    Raises
    ------
    InputError
        No phase layer, or an angles layer that does not fit the phase.
    """
    from napari_dmqpm.io import FormatError, acquisition_from_arrays

    phase = _chosen(phase, "phase image")
    check_frame_size(phase)
    unit = phase_unit or PhaseUnit(wavelength_um=phase.metadata.get("wavelength_um"))
    if angles is not None and tuple(angles.data.shape[1:]) != tuple(phase.data.shape):
        raise InputError(
            f"{phase.name} and {angles.name}: the angle images have shape "
            f"{tuple(angles.data.shape)}, which does not fit the phase {tuple(phase.data.shape)}"
            " (expected 4 followed by the phase shape)"
        )
    is_timelapse = phase.ndim == 3
    chosen = list(range(frames_of(phase)) if frames is None else frames)
    if is_timelapse:
        phase_data = np.stack([np.asarray(phase.data[t]) for t in chosen])
        angles_data = None
        if angles is not None:
            angles_data = np.stack([np.asarray(angles.data[:, t]) for t in chosen], axis=1)
    else:
        phase_data = np.asarray(phase.data)
        angles_data = None if angles is None else np.asarray(angles.data)
    try:
        return acquisition_from_arrays(
            phase=phase_data,
            angles=angles_data,
            angle_axis=0,
            pixel_size_um=pixel_size_um or layer_pixel_size_um(phase),
            wavelength_um=unit.wavelength_um,
            phase_unit=unit.unit,
            alpha_um3_per_pg=unit.alpha_um3_per_pg,
            is_timelapse=is_timelapse,
            background=None,
            source=str(phase.metadata.get("source") or phase.name),
        )
    except (FormatError, ValueError) as error:
        names = phase.name if angles is None else f"{phase.name} and {angles.name}"
        raise InputError(f"{names}: {error}") from error


def labels_for_training(
    labels: Any, phase: Any, frames: Sequence[int] | None, *, minimum: int = MIN_FRAME_PX
) -> np.ndarray:
    """The corrected labels of the chosen frames, checked against the phase layer.

    Returns
    -------
    ndarray of shape (T', M, N), int64 copy
        One frame per entry of ``frames`` (all frames when None), read one at a time.

    Raises
    ------
    InputError
        No layer chosen, labels of another shape than the phase, frames smaller than
        ``minimum`` pixels, or no painted cell.
    """
    phase = _chosen(phase, "phase image")
    labels = _chosen(labels, "labels")
    if labels.data.shape != phase.data.shape:
        raise InputError(
            f"labels {labels.name!r} have shape {labels.data.shape} but the image "
            f"{phase.name!r} has shape {phase.data.shape}; pick the labels of that image"
        )
    check_frame_size(phase, minimum=minimum)
    if labels.ndim == 2:
        stack = np.array(labels.data, dtype=np.int64, copy=True)[None]
    else:  # frame by frame: a lazy stack is read only where asked
        chosen = range(frames_of(labels)) if frames is None else frames
        stack = np.stack([np.asarray(labels.data[t], dtype=np.int64) for t in chosen])
    if not stack.any():
        where = "" if frames is None else f" in frame(s) {list(frames)}"
        raise InputError(
            f"labels {labels.name!r} are empty{where}: paint or segment some cells first"
        )
    return stack
