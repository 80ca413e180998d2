"""Segmentation results into layers: one Labels layer ``"<stem> cells"`` and its probability.

The Labels layer is created once per recording; later runs change it through
``Labels.data_setitem`` inside one ``block_history()``, so a single Ctrl+Z restores the
previous result (painted corrections included). Its ``features`` hold the per-cell table
(the columns of the CLI's CSV, plus napari's ``index`` column = label), and its ``metadata``
records the model, its sha256 and every parameter. The foreground probability goes into a
hidden Image layer ``"<stem> cell probability"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ._inputs import PROBABILITY_QUANTITY, InputError, stem

__all__ = [
    "check_outputs",
    "labels_name",
    "measure_layer",
    "save_features_csv",
    "segmentation_record",
    "probability_name",
    "set_features",
    "update_labels",
    "write_results",
]


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


def _full_stack(phase: Any, dtype: Any) -> np.ndarray:
    return np.zeros(phase.data.shape, dtype=dtype)


def _frames_into(stack: np.ndarray, frames: Mapping[int, np.ndarray]) -> np.ndarray:
    for frame, values in frames.items():
        if stack.ndim == 3:
            stack[frame] = values
        else:
            stack[...] = values
    return stack


def write_results(
    viewer: Any,
    phase: Any,
    *,
    labels: Mapping[int, np.ndarray],
    probability: Mapping[int, np.ndarray],
    tables: Mapping[int, dict[str, np.ndarray]],
    segmentation: dict[str, Any],
) -> tuple[Any, bool]:
    """Put the result of a run into the viewer: create or update the output layers.

    Parameters
    ----------
    viewer : napari.Viewer
    phase : napari Image layer
        The input; the outputs copy its scale, translate, units and axis labels.
    labels, probability : mapping of int to ndarray of shape (M, N)
        Frame -> uint32 labels, and frame -> foreground probability in [0, 1].
    tables : mapping of int to dict of columns
        Frame -> per-cell table.
    segmentation : dict
        Provenance (model, sha256, parameters); stored as ``metadata["segmentation"]``.

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
            _frames_into(_full_stack(phase, np.float32), probability),
            name=probability_name(phase),
            visible=False,
            colormap="inferno",
            contrast_limits=(0.0, 1.0),
            metadata={"quantity": PROBABILITY_QUANTITY, "segmentation": segmentation},
            **_spatial(phase),
        )
    else:
        prob_layer.data = _frames_into(np.array(prob_layer.data, dtype=np.float32), probability)
        prob_layer.metadata = {"quantity": PROBABILITY_QUANTITY, "segmentation": segmentation}
    existed = layer is not None
    if layer is None:
        data = _frames_into(_full_stack(phase, np.uint32), labels)
        layer = viewer.add_labels(
            data, name=labels_name(phase), metadata=metadata, **_spatial(phase)
        )
    else:
        update_labels(layer, labels)
        layer.metadata = metadata
    set_features(layer, tables)
    return layer, existed


def segmentation_record(
    loaded: Any, *, config: Any, postprocess: Any, frames: list[int], inputs: list[str]
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
    """
    import datetime as dt

    from napari_dmqpm import __version__

    info = loaded.info
    return {
        "model": info.name,
        "model_sha256": info.sha256,
        "model_source": info.source,
        "device": str(loaded.device),
        "inference": config.to_dict(),
        "postprocess": postprocess.to_dict(),
        "frames": list(frames),
        "inputs": list(inputs),
        "napari_dmqpm_version": __version__,
        "date": dt.datetime.now().isoformat(timespec="seconds"),
    }


def measure_layer(labels: Any, phase: Any, *, pixel_size_um: float | None) -> dict[int, dict]:
    """The per-cell table of every frame of ``labels`` as painted now, by time index."""
    from napari_dmqpm.inference import measure_cells

    frames = range(labels.data.shape[0]) if labels.ndim == 3 else range(1)
    return {
        t: measure_cells(
            np.asarray(labels.data[t] if labels.ndim == 3 else labels.data),
            np.asarray(phase.data[t] if phase.ndim == 3 else phase.data),
            pixel_size_um=pixel_size_um,
            wavelength_um=phase.metadata.get("wavelength_um"),
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
