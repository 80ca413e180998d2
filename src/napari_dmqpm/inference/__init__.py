"""Inference: tiled prediction, post-processing to instance labels, per-cell measurements.

One core function serves the napari widget, the ``dmqpm segment`` command and the tests:
:func:`segment_acquisition` (a generator over frames); :func:`segment_file` writes a file's
labels and per-cell table. See docs/inference.md.
"""

from napari_dmqpm.model.device import DeviceFallbackWarning

from .batch import iter_segment_files, segment_files
from .config import InferenceConfig, PostprocessConfig
from .diameter import DiameterEstimate, cell_diameters, estimate_diameter
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

__all__ = [
    "DEFAULT_CLASS_NAMES",
    "DeviceFallbackWarning",
    "iter_segment_files",
    "segment_files",
    "TABLE_COLUMNS",
    "Cancelled",
    "DiameterEstimate",
    "FrameResult",
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
    "empty_table",
    "estimate_diameter",
    "frame_plan",
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
