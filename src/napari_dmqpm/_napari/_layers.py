"""Turn an :class:`~napari_dmqpm.io.Acquisition` into napari layer data, without napari.

The reader, the sample data and the widgets all build their layers here, so a file, a
simulated field and a segmentation result look the same in the viewer. Everything in this
module is pure: arrays and dicts in, ``(data, meta, layer_type)`` tuples out; no napari or Qt
import, so it is tested without a display.

Layer layout
------------
========================  =====================  ===========================
layer                     single frame           time-lapse
========================  =====================  ===========================
``"<name> angles"``       ``(4, M, N)``          ``(4, T, M, N)``
``"<name> phase"``        ``(M, N)``             ``(T, M, N)``
``"<name> ground truth"`` ``(M, N)``             ``(T, M, N)``
========================  =====================  ===========================

The angle axis leads, so the trailing ``(T, M, N)`` axes of every layer line up and the time
slider moves the angles, the phase and the labels together.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from napari_dmqpm import __version__
from napari_dmqpm.io.acquisition import ANGLES_DEG, Acquisition

__all__ = [
    "ANGLES_COLORMAP",
    "PHASE_COLORMAP",
    "LayerDataTuple",
    "acquisition_to_layer_data",
    "known_phase_unit",
    "labels_to_layer_data",
    "layer_metadata",
    "robust_contrast_limits",
    "spatial_kwargs",
]

#: ``(data, meta, layer_type)`` as napari's readers and sample-data functions return it.
LayerDataTuple = tuple[np.ndarray, dict[str, Any], str]

#: Colormap of the polarized intensities.
ANGLES_COLORMAP = "gray"
#: Colormap of the unwrapped phase: sequential and perceptually uniform; cells are bright.
PHASE_COLORMAP = "magma"

#: Percentiles (of the finite values) that set the contrast limits.
CONTRAST_PERCENTILES = (0.5, 99.5)

# Percentiles are estimated on at most this many values (a regular sub-sample).
_MAX_CONTRAST_SAMPLES = 1_000_000


def robust_contrast_limits(
    data: np.ndarray, *, percentiles: tuple[float, float] = CONTRAST_PERCENTILES
) -> tuple[float, float]:
    """Contrast limits from percentiles of the finite values, ignoring NaN and Inf.

    Parameters
    ----------
    data : ndarray of any shape
        Image values (not modified).
    percentiles : (float, float), optional
        Lower and upper percentile, in ``[0, 100]``.

    Returns
    -------
    (float, float)
        ``(low, high)`` with ``low < high``; ``(0.0, 1.0)`` when no value is finite, and
        a unit-wide window around a constant image.

    Examples
    --------
    >>> robust_contrast_limits(np.arange(1001.0), percentiles=(1, 99))
    (10.0, 990.0)
    >>> robust_contrast_limits(np.full((3, 3), np.nan))
    (0.0, 1.0)
    """
    low_pct, high_pct = percentiles
    if not 0 <= low_pct < high_pct <= 100:
        raise ValueError(
            f"percentiles must satisfy 0 <= low < high <= 100; got percentiles={percentiles!r}"
        )
    flat = np.asarray(data).reshape(-1)
    step = max(1, flat.size // _MAX_CONTRAST_SAMPLES)
    values = flat[::step]
    values = values[np.isfinite(values)]
    if values.size == 0:
        return (0.0, 1.0)
    low, high = (float(v) for v in np.percentile(values, [low_pct, high_pct]))
    if not high > low:
        return (low - 0.5, low + 0.5)
    return (low, high)


def spatial_kwargs(acq: Acquisition, *, leading: tuple[str, ...] = ()) -> dict[str, Any]:
    """``scale``, ``units`` and ``axis_labels`` for a layer on the acquisition's grid.

    Parameters
    ----------
    acq : Acquisition
        Gives the pixel size (µm) and whether there is a time axis.
    leading : tuple of str, optional
        Labels of extra axes before the time axis (``("angle",)`` for the angles layer);
        their scale is 1 and their unit ``"pixel"`` (an index).

    Returns
    -------
    dict
        ``scale`` (``pixel_size_um`` on the row and column axes, 1 where the pixel size is
        unknown and on every other axis), ``units`` (``"µm"`` on the row and column axes
        when the pixel size is known, otherwise ``"pixel"``) and ``axis_labels``
        (``*leading, ["t",] "y", "x"``).
    """
    index_axes = (*leading, "t") if acq.is_timelapse else tuple(leading)
    pixel = acq.pixel_size_um
    spatial_scale = float(pixel) if pixel is not None else 1.0
    spatial_unit = "µm" if pixel is not None else "pixel"
    return {
        "scale": (1.0,) * len(index_axes) + (spatial_scale, spatial_scale),
        "units": ("pixel",) * len(index_axes) + (spatial_unit, spatial_unit),
        "axis_labels": (*index_axes, "y", "x"),
    }


def layer_metadata(acq: Acquisition) -> dict[str, Any]:
    """Provenance carried by every layer made from ``acq`` (``layer.metadata``).

    Parameters
    ----------
    acq : Acquisition
        The recording.

    Returns
    -------
    dict
        ``angles_deg``, ``wavelength_um``, ``pixel_size_um``, ``source``, ``kind``,
        ``phase_source``, ``is_timelapse``, ``n_frames``, ``napari_dmqpm_version`` and
        ``file_metadata`` (a copy of ``acq.metadata``). JSON-serialisable.
    """
    return {
        "angles_deg": list(ANGLES_DEG) if acq.angles is not None else None,
        "wavelength_um": acq.wavelength_um,
        "pixel_size_um": acq.pixel_size_um,
        "source": acq.source,
        "kind": acq.kind,
        "phase_source": acq.phase_source,
        "is_timelapse": acq.is_timelapse,
        "n_frames": acq.n_frames,
        "napari_dmqpm_version": __version__,
        "file_metadata": dict(acq.metadata),
    }


def _frames(array: np.ndarray, *, is_timelapse: bool) -> np.ndarray:
    """Drop the time axis of a single-frame recording: ``(1, ...)`` -> ``(...)``."""
    return array if is_timelapse else array[0]


def acquisition_to_layer_data(acq: Acquisition, *, name: str) -> list[LayerDataTuple]:
    """Layer data for one recording: an angles Image layer (if any) and a phase Image layer.

    Parameters
    ----------
    acq : Acquisition
        The recording; its arrays are not modified (the layers hold views or copies).
    name : str
        Prefix of the layer names, usually the file stem: the layers are called
        ``"<name> angles"`` and ``"<name> phase"``.

    Returns
    -------
    list of (ndarray, dict, str)
        ``[(angles, meta, "image"), (phase, meta, "image")]``, or only the phase layer for a
        phase-only map. ``angles`` has shape ``(4, M, N)``, or ``(4, T, M, N)`` for a
        time-lapse (angle axis first); ``phase`` has shape ``(M, N)`` or ``(T, M, N)``,
        in radians, with ``metadata["unit"] = "rad"``; a phase map whose file states no
        unit is as stored, with ``metadata["unit"] = None`` (see :func:`known_phase_unit`).
        Each ``meta`` holds ``name``, ``scale``, ``units``, ``axis_labels``,
        ``colormap``, ``contrast_limits`` and ``metadata`` (see :func:`layer_metadata`).

    Examples
    --------
    >>> from napari_dmqpm.io.acquisition import Acquisition
    >>> acq = Acquisition(
    ...     phase=np.zeros((1, 8, 8), np.float32),
    ...     angles=np.ones((1, 4, 8, 8), np.float32),
    ...     pixel_size_um=0.5,
    ... )
    >>> [(meta["name"], data.shape) for data, meta, _ in acquisition_to_layer_data(acq, name="a")]
    [('a angles', (4, 8, 8)), ('a phase', (8, 8))]
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string; got name={name!r}")
    metadata = layer_metadata(acq)
    layers: list[LayerDataTuple] = []
    if acq.angles is not None:
        angles = np.moveaxis(acq.angles, 1, 0)  # (T, 4, M, N) -> (4, T, M, N), a view
        angles = angles if acq.is_timelapse else angles[:, 0]
        meta = {
            "name": f"{name} angles",
            **spatial_kwargs(acq, leading=("angle",)),
            "colormap": ANGLES_COLORMAP,
            "contrast_limits": robust_contrast_limits(angles),
            "metadata": {**metadata, "quantity": "intensity", "unit": "camera counts"},
        }
        layers.append((angles, meta, "image"))
    phase = _frames(acq.phase, is_timelapse=acq.is_timelapse)
    meta = {
        "name": f"{name} phase",
        **spatial_kwargs(acq),
        "colormap": PHASE_COLORMAP,
        "contrast_limits": robust_contrast_limits(phase),
        "metadata": {**metadata, "quantity": "phase", "unit": known_phase_unit(acq)},
    }
    layers.append((phase, meta, "image"))
    return layers


def known_phase_unit(acq: Acquisition) -> str | None:
    """The unit of ``acq.phase`` as far as it is known: "rad", or None when nobody said.

    A phase map read as it is (``phase_unit="rad"``, the default, because its file states
    no unit; e.g. the Q-PHASE maps in pg/µm²) gives None, and the widgets then ask for the
    unit. Retrieved, simulated and converted phases, and the phase channel of ssQPM stacks
    (radians by definition of the format), give "rad".

    Examples
    --------
    >>> from napari_dmqpm.io.acquisition import Acquisition
    >>> phase = np.zeros((1, 8, 8), np.float32)
    >>> known_phase_unit(Acquisition(phase=phase, kind="phase-map",
    ...                               metadata={"phase_unit": "rad"}))
    >>> known_phase_unit(Acquisition(phase=phase, kind="phase-map",
    ...                               metadata={"phase_unit": "pg_per_um2"}))
    'rad'
    """
    as_is = acq.metadata.get("phase_unit") == "rad"
    return None if acq.kind == "phase-map" and as_is else "rad"


def labels_to_layer_data(
    labels: np.ndarray, acq: Acquisition, *, name: str, visible: bool = True
) -> LayerDataTuple:
    """A Labels layer on the grid of ``acq`` (same scale, units and axis labels as its phase).

    Parameters
    ----------
    labels : ndarray of shape (M, N) or (T, M, N), integer
        Instance labels, background 0, with the frame shape of ``acq``; a single-frame
        recording also accepts ``(1, M, N)``.
    acq : Acquisition
        The recording the labels belong to.
    name : str
        Layer name, e.g. ``"<stem> ground truth"`` or ``"<stem> cells"``.
    visible : bool, optional
        Whether the layer is shown when added.

    Returns
    -------
    (ndarray, dict, str)
        ``(labels, meta, "labels")`` with ``labels`` of shape ``(M, N)`` or ``(T, M, N)``.
    """
    labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must have an integer dtype; got labels.dtype={labels.dtype}")
    expected = (acq.n_frames, *acq.frame_shape)
    if labels.shape == expected:
        labels = _frames(labels, is_timelapse=acq.is_timelapse)
    elif acq.is_timelapse or labels.shape != acq.frame_shape:
        raise ValueError(
            f"labels must have shape {expected} or, for one frame, {acq.frame_shape}; "
            f"got labels.shape={labels.shape}"
        )
    meta = {
        "name": name,
        **spatial_kwargs(acq),
        "metadata": {**layer_metadata(acq), "quantity": "instance labels"},
        "visible": visible,
    }
    return (labels, meta, "labels")
