"""Inference: tiled prediction, post-processing to instance labels, per-cell measurements.

One core function serves the napari widget, the ``dmqpm segment`` command and the tests:
:func:`segment_acquisition` (a generator over frames); :func:`segment_file` writes a file's
labels and per-cell table. See docs/inference.md.

Importing this package imports no torch: each name is imported from its module on first use
(PEP 562), so the widgets can build an :class:`InferenceConfig` on the GUI thread without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from napari_dmqpm._lazy import attach

if TYPE_CHECKING:
    from napari_dmqpm.model.device import DeviceFallbackWarning

    from .batch import iter_segment_files, segment_files
    from .config import InferenceConfig, PostprocessConfig
    from .diameter import DiameterEstimate, cell_diameters, estimate_diameter
    from .frames import FrameStatus, describe_frames, frame_status
    from .measure import (
        TABLE_COLUMNS,
        concat_tables,
        empty_table,
        measure_cells,
        table_to_csv,
        write_table_csv,
    )
    from .outputs import output_paths
    from .postprocess import (
        DEFAULT_CLASS_NAMES,
        labels_from_probabilities,
        probabilities_to_labels,
        seed_score,
    )
    from .predict import (
        Probabilities,
        count_tiles,
        frame_plan,
        model_inputs,
        predict_probabilities,
        resize,
        resolve_scale,
    )
    from .segment import (
        FrameResult,
        SegmentFileResult,
        check_model_fits,
        default_postprocess,
        resolve_model,
        segment_acquisition,
        segment_file,
    )
    from .tiling import (
        Cancelled,
        OutOfDeviceMemory,
        TilePlan,
        gaussian_weights,
        plan_tiles,
        predict_tiled,
        tile_starts,
    )

#: Module that defines each public name (imported on first use: torch comes with most).
_WHERE = {
    "DeviceFallbackWarning": ".predict",  # defined in napari_dmqpm.model.device
    "iter_segment_files": ".batch",
    "segment_files": ".batch",
    "InferenceConfig": ".config",
    "PostprocessConfig": ".config",
    "DiameterEstimate": ".diameter",
    "cell_diameters": ".diameter",
    "estimate_diameter": ".diameter",
    "FrameStatus": ".frames",
    "describe_frames": ".frames",
    "frame_status": ".frames",
    "TABLE_COLUMNS": ".measure",
    "concat_tables": ".measure",
    "empty_table": ".measure",
    "measure_cells": ".measure",
    "table_to_csv": ".measure",
    "write_table_csv": ".measure",
    "output_paths": ".outputs",
    "DEFAULT_CLASS_NAMES": ".postprocess",
    "labels_from_probabilities": ".postprocess",
    "probabilities_to_labels": ".postprocess",
    "seed_score": ".postprocess",
    "Probabilities": ".predict",
    "count_tiles": ".predict",
    "frame_plan": ".predict",
    "model_inputs": ".predict",
    "predict_probabilities": ".predict",
    "resize": ".predict",
    "resolve_scale": ".predict",
    "FrameResult": ".segment",
    "SegmentFileResult": ".segment",
    "check_model_fits": ".segment",
    "default_postprocess": ".segment",
    "resolve_model": ".segment",
    "segment_acquisition": ".segment",
    "segment_file": ".segment",
    "Cancelled": ".tiling",
    "OutOfDeviceMemory": ".tiling",
    "TilePlan": ".tiling",
    "gaussian_weights": ".tiling",
    "plan_tiles": ".tiling",
    "predict_tiled": ".tiling",
    "tile_starts": ".tiling",
}
_SUBMODULES = frozenset(m[1:] for m in _WHERE.values() if m.startswith(".")) | {"batch_worker"}

__all__ = [
    "DEFAULT_CLASS_NAMES",
    "DeviceFallbackWarning",
    "iter_segment_files",
    "segment_files",
    "TABLE_COLUMNS",
    "Cancelled",
    "DiameterEstimate",
    "FrameResult",
    "FrameStatus",
    "InferenceConfig",
    "OutOfDeviceMemory",
    "PostprocessConfig",
    "Probabilities",
    "SegmentFileResult",
    "TilePlan",
    "cell_diameters",
    "check_model_fits",
    "concat_tables",
    "count_tiles",
    "default_postprocess",
    "describe_frames",
    "empty_table",
    "estimate_diameter",
    "frame_plan",
    "frame_status",
    "gaussian_weights",
    "labels_from_probabilities",
    "measure_cells",
    "model_inputs",
    "output_paths",
    "plan_tiles",
    "predict_probabilities",
    "predict_tiled",
    "probabilities_to_labels",
    "resize",
    "resolve_model",
    "resolve_scale",
    "seed_score",
    "segment_acquisition",
    "segment_file",
    "table_to_csv",
    "tile_starts",
    "write_table_csv",
]


__getattr__, __dir__, _ = attach(__name__, _WHERE, _SUBMODULES)
