"""Files <-> arrays: format detection, TIFF/OME/ImageJ/PNG reading, demosaicing, writers.

Every reader returns an :class:`Acquisition` (see docs/architecture.md), except
:func:`read_labels`, which reads instance label images (:class:`LabelImage`); the formats and
their detection rules are documented in docs/formats.md. No torch, no Qt.
"""

from napari_dmqpm.io.acquisition import (
    ANGLES_DEG,
    FILE_KINDS,
    Acquisition,
    DataWarning,
    FormatError,
)
from napari_dmqpm.io.arrays import acquisition_from_arrays
from napari_dmqpm.io.describe import describe_file
from napari_dmqpm.io.detect import FileInfo, inspect_file
from napari_dmqpm.io.labels import LABELS_KIND, LabelImage
from napari_dmqpm.io.mosaic import IMX250MZR_PATTERN, demosaic
from napari_dmqpm.io.read import read_acquisition, read_labels
from napari_dmqpm.io.units import PHASE_UNITS, radians_per_unit
from napari_dmqpm.io.write import STACK_CHANNELS, write_labels, write_stack

__all__ = [
    "ANGLES_DEG",
    "FILE_KINDS",
    "IMX250MZR_PATTERN",
    "LABELS_KIND",
    "PHASE_UNITS",
    "STACK_CHANNELS",
    "Acquisition",
    "DataWarning",
    "FileInfo",
    "FormatError",
    "LabelImage",
    "acquisition_from_arrays",
    "demosaic",
    "describe_file",
    "inspect_file",
    "read_acquisition",
    "read_labels",
    "radians_per_unit",
    "write_labels",
    "write_stack",
]
