"""Segmentation results into layers: one Labels layer ``"<stem> cells"`` and its probability.

A run gathers its frames in a :class:`FrameStage`, off the layers (so Cancel changes none),
frame by frame as they arrive. The Labels layer is created once per recording (uint32, the
phase layer's shape); later runs change it through ``Labels.data_setitem`` inside one
``block_history()``, so a single Ctrl+Z restores the previous result (painted corrections
included). Its ``features`` hold the per-cell table (the columns of the CLI's CSV, plus
napari's ``index`` column = label), and its ``metadata`` records the model, its sha256, the
phase unit and every parameter. The foreground probability goes into a hidden Image layer
``"<stem> cell probability"``, stored as float16 (2 bytes a pixel, 3 significant digits).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ._frame_rows import follow_frame
from ._inputs import PROBABILITY_QUANTITY, InputError, PhaseUnit, phase_in_radians, stem

__all__ = [
    "PROBABILITY_DTYPE",
    "FrameStage",
    "check_outputs",
    "compact_probabilities",
    "labels_name",
    "measure_layer",
    "save_features_csv",
    "segmentation_record",
    "probability_name",
    "set_features",
    "expand_probabilities",
    "update_labels",
    "write_results",
]


#: dtype of the probability layer and of the probabilities kept for re-thresholding.
PROBABILITY_DTYPE = np.float16


def compact_probabilities(probabilities: Any) -> Any:
    """A float16 copy of a :class:`~napari_dmqpm.inference.Probabilities` (half the memory).

    Re-thresholding turns it back to float32 (:func:`expand_probabilities`); on the
    simulated fields the labels come out the same pixel for pixel.
    """
    return _cast(probabilities, PROBABILITY_DTYPE)


def expand_probabilities(probabilities: Any) -> Any:
    """The float32 :class:`~napari_dmqpm.inference.Probabilities` post-processing needs."""
    return _cast(probabilities, np.float32)


def _cast(probabilities: Any, dtype: Any) -> Any:
    import dataclasses

    distance = probabilities.distance
    return dataclasses.replace(
        probabilities,
        classes=probabilities.classes.astype(dtype, copy=False),
        distance=None if distance is None else distance.astype(dtype, copy=False),
    )


class FrameStage:
    """The results of one run, gathered frame by frame until they go into the layers.

    Parameters
    ----------
    shape : tuple of int
        The phase layer's shape, ``(M, N)`` or ``(T, M, N)``.

    Attributes
    ----------
    labels : ndarray of the phase shape, uint32
        Labels of the frames received so far, 0 elsewhere. Made with ``np.zeros``, whose
        pages cost memory only where a frame is written.
    probability : ndarray of the phase shape, float16
        Foreground probability of the frames received so far.
    tables : dict of int to dict
        Per-cell table of each frame received (time index -> columns).
    kept : dict of int to Probabilities
        float16 probabilities of each frame, kept for re-thresholding (none for a
        featureless frame: the network was not run on it).
    statuses : dict of int to FrameStatus
        Each frame's status (ok, empty, featureless; see napari_dmqpm.inference.frames).
    """

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = tuple(int(n) for n in shape)
        self.labels = np.zeros(self.shape, np.uint32)
        self.probability = np.zeros(self.shape, PROBABILITY_DTYPE)
        self.tables: dict[int, dict[str, np.ndarray]] = {}
        self.kept: dict[int, Any] = {}
        self.diameters: dict[int, Any] = {}  # time index -> DiameterEstimate
        self.statuses: dict[int, Any] = {}  # time index -> FrameStatus

    def add(self, result: Any) -> None:
        """Store one :class:`~napari_dmqpm.inference.FrameResult` (``frame``: layer time)."""
        where = (result.frame,) if len(self.shape) == 3 else ()
        from napari_dmqpm.inference.frames import frame_status

        self.labels[where] = result.labels
        if result.probabilities is not None:  # None: a featureless frame, no network output
            self.kept[result.frame] = compact_probabilities(result.probabilities)
            self.probability[where] = self.kept[result.frame].foreground
        self.tables[result.frame] = result.table
        status = result.status or frame_status(result.frame, result.labels)
        self.statuses[result.frame] = status
        if result.diameter is not None:
            self.diameters[result.frame] = result.diameter

    @property
    def frames(self) -> list[int]:
        """Time indices received, in order."""
        return sorted(self.tables)

    @property
    def n_cells(self) -> int:
        """Cells over all frames received."""
        return sum(int(table["label"].size) for table in self.tables.values())

    def frames_words(self) -> str | None:
        """The frames without cells in words (``describe_frames``), or None."""
        from napari_dmqpm.inference.frames import describe_frames

        return describe_frames([self.statuses[t] for t in self.frames])

    def frame_labels(self) -> dict[int, np.ndarray]:
        """Time index -> that frame's labels (views into :attr:`labels`)."""
        return {t: self.labels[t] if len(self.shape) == 3 else self.labels for t in self.frames}


def labels_name(phase: Any) -> str:
    """``"<stem> cells"`` for a phase layer."""
    return f"{stem(phase.name)} cells"


def probability_name(phase: Any) -> str:
    """``"<stem> cell probability"`` for a phase layer."""
    return f"{stem(phase.name)} cell probability"


def _spatial(phase: Any) -> dict[str, Any]:
    return {
        "scale": tuple(phase.scale),
        "translate": tuple(phase.translate),
        "units": tuple(str(u) for u in phase.units),
        "axis_labels": tuple(phase.axis_labels),
    }


def _existing(viewer: Any, name: str, phase: Any, kind: str) -> Any | None:
    """The layer called ``name`` if it exists; InputError when it cannot take the result."""
    if name not in viewer.layers:
        return None
    layer = viewer.layers[name]
    if layer.__class__.__name__.lower() != kind or layer.data.shape != phase.data.shape:
        raise InputError(
            f"a layer named {name!r} exists but is not a {kind} layer of shape "
            f"{phase.data.shape}; rename or delete it, then run again"
        )
    return layer


def check_outputs(viewer: Any, phase: Any) -> None:
    """Raise :class:`InputError` when an output name is taken by a layer that cannot take it."""
    _existing(viewer, labels_name(phase), phase, "labels")
    _existing(viewer, probability_name(phase), phase, "image")


def update_labels(layer: Any, frames: Mapping[int, np.ndarray]) -> int:
    """Write new labels into ``layer`` as one undoable step (one Ctrl+Z undoes it all).

    Parameters
    ----------
    layer : napari Labels layer, ``(M, N)`` or ``(T, M, N)``
    frames : mapping of int to ndarray of shape (M, N)
        Time index -> new labels of that frame (index 0 for a single frame).

    Returns
    -------
    int
        Number of pixels that changed.
    """
    changed = 0
    with layer.block_history():
        for frame, new in frames.items():
            old = np.asarray(layer.data[frame] if layer.ndim == 3 else layer.data)
            where = np.nonzero(old != new)
            if not where[0].size:
                continue
            values = np.asarray(new)[where]
            if layer.ndim == 3:
                where = (np.full(where[0].size, frame, dtype=np.intp), *where)
            layer.data_setitem(where, values, refresh=False)
            changed += int(values.size)
    layer.refresh()
    return changed


def set_features(layer: Any, tables: Mapping[int, dict[str, np.ndarray]]) -> None:
    """Replace the rows of the given frames in ``layer.features`` (other frames are kept).

    Parameters
    ----------
    layer : napari Labels layer
    tables : mapping of int to dict of columns
        Frame -> its per-cell table (see :func:`napari_dmqpm.inference.measure_cells`).
    """
    import pandas as pd

    new = pd.concat([pd.DataFrame(table) for table in tables.values()], ignore_index=True)
    old = layer.features
    if len(old) and "frame" in old.columns and list(old.columns) == [*new.columns, "index"]:
        kept = old[~old["frame"].isin(list(tables))].drop(columns="index")
        new = pd.concat([kept, new], ignore_index=True)
    new = new.sort_values(["frame", "label"], kind="stable").reset_index(drop=True)
    new["index"] = new["label"].to_numpy()
    layer.features = new


def _update_probability(layer: Any, stage: FrameStage, segmentation: dict[str, Any]) -> None:
    """Write the stage's frames into an existing probability layer (no undo history)."""
    data = layer.data
    in_place = isinstance(data, np.ndarray) and data.flags.writeable
    if not (in_place and data.dtype == PROBABILITY_DTYPE):
        data = np.array(data, dtype=PROBABILITY_DTYPE)  # e.g. a float32 layer of an old session
    for t in stage.frames:
        where = (t,) if data.ndim == 3 else ()
        data[where] = stage.probability[where]
    if data is layer.data:
        layer.refresh()
    else:
        layer.data = data
    layer.metadata = {"quantity": PROBABILITY_QUANTITY, "segmentation": segmentation}


def write_results(
    viewer: Any, phase: Any, stage: FrameStage, *, segmentation: dict[str, Any]
) -> tuple[Any, bool]:
    """Put the result of a run into the viewer: create or update the output layers.

    Parameters
    ----------
    viewer : napari.Viewer
    phase : napari Image layer
        The input; the outputs copy its scale, translate, units and axis labels.
    stage : FrameStage
        The frames of the run. A new Labels or probability layer takes its arrays as they
        are (no copy): do not use the stage afterwards.
    segmentation : dict
        Provenance (model, sha256, phase unit, parameters); stored as
        ``metadata["segmentation"]``.

    Returns
    -------
    (napari Labels layer, bool)
        The output layer, and whether it existed before (it was updated).

    Raises
    ------
    InputError
        When a layer with an output name exists but cannot take the result; nothing is
        changed then.
    """
    layer = _existing(viewer, labels_name(phase), phase, "labels")
    prob_layer = _existing(viewer, probability_name(phase), phase, "image")
    metadata = {
        **{k: v for k, v in phase.metadata.items() if k not in ("quantity", "unit")},
        "quantity": "instance labels",
        "segmentation": segmentation,
    }
    if prob_layer is None:
        viewer.add_image(
            stage.probability,
            name=probability_name(phase),
            visible=False,
            colormap="inferno",
            contrast_limits=(0.0, 1.0),
            metadata={"quantity": PROBABILITY_QUANTITY, "segmentation": segmentation},
            **_spatial(phase),
        )
    else:
        _update_probability(prob_layer, stage, segmentation)
    existed = layer is not None
    if layer is None:
        layer = viewer.add_labels(
            stage.labels, name=labels_name(phase), metadata=metadata, **_spatial(phase)
        )
    else:
        update_labels(layer, stage.frame_labels())
        layer.metadata = metadata
    set_features(layer, stage.tables)
    follow_frame(viewer, layer)
    return layer, existed


def describe_diameters(diameters: dict[int, Any]) -> str:
    """The status-line words for the diameters of a run (first frame; range if it changed)."""
    if not diameters:
        return "cell diameter: not resampled"
    ordered = [d for _, d in sorted(diameters.items())]
    text = ordered[0].describe()
    values = sorted({d.diameter_px for d in ordered if d.diameter_px is not None})
    if len(values) > 1:
        text += f"; {values[0]:.1f}-{values[-1]:.1f} px over the frames"
    return text


def short_diameter(diameters: dict[int, Any]) -> str:
    """The read-only field beside "Cell diameter": e.g. ``"48.2 px (estimated)"``."""
    values = sorted({d.diameter_px for d in diameters.values() if d.diameter_px is not None})
    if not values:
        return "not resampled"
    first = diameters[min(diameters)]
    span = f"{values[0]:.1f}" if len(values) == 1 else f"{values[0]:.1f}-{values[-1]:.1f}"
    return f"{span} px ({first.source})"


def segmentation_record(
    loaded: Any,
    *,
    config: Any,
    postprocess: Any,
    frames: list[int],
    inputs: list[str],
    phase_unit: PhaseUnit | None = None,
    diameters: dict[int, Any] | None = None,
) -> dict[str, Any]:
    """The provenance stored with a result (``metadata["segmentation"]``), JSON-native.

    Parameters
    ----------
    loaded : LoadedModel
        The model that ran (name, sha256, source, device).
    config : InferenceConfig
    postprocess : PostprocessConfig
    frames : list of int
        Time indices segmented.
    inputs : list of str
        Names of the input layers.
    phase_unit : PhaseUnit, optional
        How the phase layer's values were read (radians when None).
    diameters : dict of int to DiameterEstimate, optional
        The cell diameter each frame was resampled for (``cell_diameter``: one entry per
        frame, with its time index).

    Notes
    -----
    ``backend`` and ``precision`` say what ran the network (``config.backend`` resolved, see
    :mod:`napari_dmqpm.inference.backends`).
    """
    import datetime as dt

    from napari_dmqpm import __version__
    from napari_dmqpm.inference.backends import describe

    info = loaded.info
    backend, precision = describe(loaded, config.backend)
    return {
        "model": info.name,
        "model_sha256": info.sha256,
        "model_source": info.source,
        "device": str(loaded.device),
        "backend": backend,
        "precision": precision,
        "inference": config.to_dict(),
        "postprocess": postprocess.to_dict(),
        "frames": list(frames),
        "inputs": list(inputs),
        "phase_unit": (phase_unit or PhaseUnit()).to_dict(),
        "cell_diameter": [
            {"frame": int(t), **d.to_dict()} for t, d in sorted((diameters or {}).items())
        ],
        "napari_dmqpm_version": __version__,
        "date": dt.datetime.now().isoformat(timespec="seconds"),
    }


def measure_layer(
    labels: Any, phase: Any, *, pixel_size_um: float | None, phase_unit: PhaseUnit | None = None
) -> dict[int, dict]:
    """The per-cell table of every frame of ``labels`` as painted now, by time index.

    Frames are read one at a time; ``phase_unit`` (a :class:`~._inputs.PhaseUnit`, radians
    and the layer's wavelength when None) converts the phase and gives the wavelength.
    """
    from napari_dmqpm.inference import measure_cells

    unit = phase_unit or PhaseUnit(wavelength_um=phase.metadata.get("wavelength_um"))
    frames = range(labels.data.shape[0]) if labels.ndim == 3 else range(1)
    return {
        t: measure_cells(
            np.asarray(labels.data[t] if labels.ndim == 3 else labels.data),
            phase_in_radians(phase, t, unit),
            pixel_size_um=pixel_size_um,
            wavelength_um=unit.wavelength_um,
            alpha_um3_per_pg=unit.alpha_um3_per_pg,
            frame=t,
        )
        for t in frames
    }


def save_features_csv(layer: Any, path: str) -> int:
    """Write ``layer.features`` (without napari's ``index``) as CSV; returns the row count."""
    from napari_dmqpm.inference import write_table_csv

    features = layer.features.drop(columns="index", errors="ignore")
    write_table_csv(
        path, {name: features[name].to_numpy() for name in features.columns}, overwrite=True
    )
    return len(features)
