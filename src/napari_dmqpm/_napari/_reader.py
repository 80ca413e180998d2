"""napari reader: ssQPM stacks, angle stacks, raw polarization mosaics and phase maps.

Follows the npe2 reader contract: :func:`get_reader` is cheap (file name, the first bytes and
the header through :func:`napari_dmqpm.io.inspect_file`, which decodes at most the first
frame of an untagged integer image), returns None for files that are not
TIFF or PNG images and never raises; the function it returns does the reading and raises a
:class:`~napari_dmqpm.io.FormatError` naming the file and the problem when the file is damaged
or is none of the formats of ``docs/formats.md``. napari shows that message to the user.

Labels images (napari-dmqpm's own ``*_labels.tif``, tagged by its writers, and other tools'
label exports that :func:`napari_dmqpm.io.inspect_file` recognises, see docs/formats.md) open
as one napari Labels layer at the file's pixel size, never as a raw camera frame.

Large time-lapses (see :func:`napari_dmqpm.io.read_acquisition`, ``lazy``) come back as dask
arrays: napari reads, and for angle stacks retrieves the phase of, only the frame on screen.
Their contrast limits come from the first frame, so opening reads that frame only.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_dmqpm._napari._angle_axis import follow_current_viewer
from napari_dmqpm._napari._layers import LayerDataTuple, acquisition_to_layer_data

if TYPE_CHECKING:
    from napari_dmqpm.io import Acquisition, LabelImage

__all__ = [
    "READABLE_SUFFIXES",
    "get_reader",
    "label_image_layer_data",
    "layer_name",
    "lazy_layer_data",
    "read_paths",
]

#: File name suffixes the reader claims (compared case-insensitively).
READABLE_SUFFIXES: tuple[str, ...] = (".tif", ".tiff", ".png")

# The first bytes of the files we read: classic and big TIFF, both byte orders, and PNG.
_SIGNATURES: tuple[bytes, ...] = (
    b"II*\x00",
    b"MM\x00*",
    b"II+\x00",
    b"MM\x00+",
    b"\x89PNG\r\n\x1a\n",
)

ReaderFunction = Callable[[Any], list[LayerDataTuple]]


def _as_paths(path: Any) -> list[Path] | None:
    """``path`` as a non-empty list of Paths, or None when it is neither a path nor a list."""
    if isinstance(path, str | os.PathLike):
        return [Path(path)]
    if isinstance(path, Sequence) and path and all(isinstance(p, str | os.PathLike) for p in path):
        return [Path(p) for p in path]
    return None


def _looks_like_image(path: Path) -> bool:
    """True when ``path`` is an existing file with our suffix and a TIFF or PNG signature."""
    if path.suffix.lower() not in READABLE_SUFFIXES or not path.is_file():
        return False
    with path.open("rb") as stream:
        head = stream.read(8)
    return any(head.startswith(signature) for signature in _SIGNATURES)


def get_reader(path: str | list[str]) -> ReaderFunction | None:
    """Return the reader function when napari-dmqpm can open ``path``, otherwise None.

    Cheap and safe: looks at the suffix (``.tif``, ``.tiff``, ``.png``), the first bytes
    and the image header; reads no pixels, except the first frame of an untagged integer
    image (to tell a label image from a camera frame). Never raises.

    Parameters
    ----------
    path : str or list of str
        One path, or several (napari's stack mode); every one must qualify.

    Returns
    -------
    callable or None
        :func:`read_paths` (taking ``path`` and returning a list of layer data tuples), or
        None for a foreign file: another suffix, a missing file, or bytes that are not a
        TIFF or PNG image. A TIFF or PNG that is damaged or in no supported layout still
        gets the reader, whose error message then says what is wrong with it.
    """
    try:
        paths = _as_paths(path)
        if paths is None or not all(_looks_like_image(p) for p in paths):
            return None
        _check_headers(paths)
    except Exception:  # noqa: BLE001 - the npe2 contract: get_reader never raises
        return None
    return read_paths


def _check_headers(paths: list[Path]) -> None:
    """Read each header (no pixels).

    A :class:`FormatError` (a damaged file, an unsupported layout) is left for
    :func:`read_paths` to report with the full message; any other exception propagates, and
    :func:`get_reader` then declines the file.
    """
    from napari_dmqpm.io import FormatError, inspect_file

    for one in paths:
        try:
            inspect_file(one)
        except FormatError:
            pass  # read_paths raises it again with the full message


def read_paths(path: str | list[str]) -> list[LayerDataTuple]:
    """Read one or more ssQPM files into layer data (the function :func:`get_reader` returns).

    Parameters
    ----------
    path : str or list of str
        File path(s).

    Returns
    -------
    list of (ndarray, dict, str)
        For each file, an angles Image layer ``"<stem> angles"`` (when the file has
        intensities) and a phase Image layer ``"<stem> phase"``; see
        :func:`napari_dmqpm._napari._layers.acquisition_to_layer_data`. A labels image gives
        one Labels layer ``"<stem>"`` instead (:func:`label_image_layer_data`).

    Raises
    ------
    FormatError
        When a file cannot be read; the message names the file and the problem.
    """
    paths = _as_paths(path)
    if paths is None:
        raise TypeError(f"path must be a path or a list of paths; got path={path!r}")
    layers: list[LayerDataTuple] = []
    for one in paths:
        layers.extend(_read_one(one))
    follow_current_viewer()  # the angle slider of the viewer opening them reads "angle 45°"
    return layers


def _read_one(path: Path) -> list[LayerDataTuple]:
    """Read one file, turning data warnings into napari notifications."""
    from napari_dmqpm.io import DataWarning, LabelImage

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        read = _read_file(path)
    for record in caught:
        if issubclass(record.category, DataWarning):
            _notify_warning(_with_file_name(str(record.message), path))
        else:
            warnings.warn_explicit(record.message, record.category, record.filename, record.lineno)
    if isinstance(read, LabelImage):
        return [label_image_layer_data(read, name=layer_name(path))]
    if read.is_lazy:
        return lazy_layer_data(read, name=layer_name(path))
    return acquisition_to_layer_data(read, name=layer_name(path))


def _read_file(path: Path) -> Acquisition | LabelImage:
    """A labels image (:func:`~napari_dmqpm.io.read_labels`) or a recording; FormatError else."""
    from napari_dmqpm.io import (
        LABELS_KIND,
        FormatError,
        inspect_file,
        read_acquisition,
        read_labels,
    )

    try:
        if inspect_file(path).kind == LABELS_KIND:
            return read_labels(path)
        return read_acquisition(path)
    except FormatError:
        raise
    except (OSError, ValueError, TypeError, MemoryError) as error:
        raise FormatError(
            f"{path}: could not be read as an ssQPM file ({type(error).__name__}: {error})"
        ) from error


def lazy_layer_data(acquisition: Acquisition, *, name: str) -> list[LayerDataTuple]:
    """The layers of a lazily read acquisition: dask data, styled from the first frame.

    Parameters
    ----------
    acquisition : Acquisition
        With dask arrays (``acquisition.is_lazy``).
    name : str
        Prefix of the layer names.

    Returns
    -------
    list of (dask array, dict, str)
        As :func:`~napari_dmqpm._napari._layers.acquisition_to_layer_data`, with the same
        shapes, names, scale and metadata; ``contrast_limits`` are those of frame 0, the only
        frame this function computes.
    """
    first = acquisition.replace(
        phase=np.asarray(acquisition.phase[:1]),
        angles=None if acquisition.angles is None else np.asarray(acquisition.angles[:1]),
        modulation=None,
    )
    phase, angles = acquisition.phase, acquisition.angles
    if angles is not None:
        angles = angles.transpose(1, 0, 2, 3)  # (T, 4, M, N) -> (4, T, M, N), as the layers
    if not acquisition.is_timelapse:
        phase, angles = phase[0], None if angles is None else angles[:, 0]
    layers = []
    for _, meta, layer_type in acquisition_to_layer_data(first, name=name):
        meta["metadata"]["n_frames"] = acquisition.n_frames
        data = angles if meta["metadata"]["quantity"] == "intensity" else phase
        layers.append((data, meta, layer_type))
    return layers


def label_image_layer_data(image: LabelImage, *, name: str) -> LayerDataTuple:
    """The Labels layer of a labels file, on the grid of the images it was drawn on.

    Parameters
    ----------
    image : LabelImage
        As :func:`napari_dmqpm.io.read_labels` returns it.
    name : str
        Layer name.

    Returns
    -------
    (ndarray, dict, "labels")
        Data of shape ``(M, N)``, or ``(T, M, N)`` for a time-lapse; ``scale`` the pixel size
        in µm on rows and columns (1 when unknown, and on the time axis), ``units``,
        ``axis_labels`` and ``metadata`` (``quantity="instance labels"``, ``kind="labels"``,
        ``source``, ``pixel_size_um``, ``file_metadata``), as the phase layers have them.
    """
    from napari_dmqpm import __version__

    index_axes = ("t",) if image.is_timelapse else ()
    size = image.pixel_size_um
    spatial, unit = (float(size), "µm") if size is not None else (1.0, "pixel")
    meta = {
        "name": name,
        "scale": (1.0,) * len(index_axes) + (spatial, spatial),
        "units": ("pixel",) * len(index_axes) + (unit, unit),
        "axis_labels": (*index_axes, "y", "x"),
        "metadata": {
            "quantity": "instance labels",
            "kind": "labels",
            "source": image.source,
            "pixel_size_um": size,
            "is_timelapse": image.is_timelapse,
            "n_frames": image.n_frames,
            "napari_dmqpm_version": __version__,
            "file_metadata": dict(image.metadata),
        },
    }
    data = image.labels if image.is_timelapse else image.labels[0]
    return (data, meta, "labels")


def layer_name(path: str | os.PathLike) -> str:
    """The prefix of the layer names of a file: its name without ``.tif``/``.ome.tif`` etc.

    Examples
    --------
    >>> layer_name("/data/cells_01.ome.tiff"), layer_name("frame.PNG")
    ('cells_01', 'frame')
    """
    name = Path(path).name
    for suffix in (".ome.tiff", ".ome.tif", *READABLE_SUFFIXES):
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return Path(name).stem or name


def _with_file_name(message: str, path: Path) -> str:
    return message if path.name in message else f"{path.name}: {message}"


def _notify_warning(message: str) -> None:
    """Show ``message`` as a napari warning notification (a Python warning without napari)."""
    try:
        from napari.utils.notifications import show_warning
    except ImportError:  # pragma: no cover - napari is installed wherever the reader runs
        warnings.warn(message, UserWarning, stacklevel=3)
        return
    show_warning(message)
