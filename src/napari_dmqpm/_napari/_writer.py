"""napari writer: a Labels layer as an ImageJ TIFF (uint16, uint32 when needed) with its pixel size.

*File > Save Selected Layers...* with a Labels layer and a ``.tif``/``.tiff`` name ends here.
The pixel size comes from the layer's scale and units (a layer in µm, nm or mm is converted
to µm; a layer in pixels is written without a pixel size), so Fiji/ImageJ opens the labels
at the size of the image they were drawn on. The file is tagged as labels
(``dmqpm_content=labels`` in its ImageJ header), so napari-dmqpm's reader opens it again as a
Labels layer at the same scale.

Overwriting: napari's save dialog asks before it replaces a file, but this writer still
never writes over a file (napari-dmqpm never writes over a user file): when ``path`` exists
it raises :class:`FileExistsError` and the old file is untouched. The TIFF is written to a
temporary file and renamed into place by :func:`napari_dmqpm.io.write_labels`, so a failure
never leaves a half-written file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["pixel_size_from_meta", "write_labels"]


def pixel_size_from_meta(meta: Mapping[str, Any]) -> float | None:
    """Pixel size in µm from a layer's ``scale`` and ``units`` (its last two axes).

    Parameters
    ----------
    meta : mapping
        Layer attributes as napari passes them to writers (``layer.as_layer_data_tuple()[1]``):
        ``scale`` (sequence of float) and ``units`` (sequence of str or ``pint.Unit``,
        optional).

    Returns
    -------
    float or None
        The row/column pixel size in µm; None when the axes are in pixels (no physical
        unit) or there is no scale.

    Raises
    ------
    ValueError
        When rows and columns have different pixel sizes (an ImageJ label image has one).
    """
    scale = meta.get("scale")
    if scale is None or len(scale) < 2:
        return None
    units: Sequence[Any] = meta.get("units") or ("pixel",) * len(scale)
    sizes = [_to_micrometre(float(s), u) for s, u in zip(scale[-2:], units[-2:], strict=True)]
    if sizes[0] is None or sizes[1] is None:
        return None
    if not np.isclose(sizes[0], sizes[1], rtol=1e-6):
        raise ValueError(
            "labels need square pixels to be saved with one pixel size; got row and column "
            f"pixel sizes {sizes[0]:g} µm and {sizes[1]:g} µm (layer scale {tuple(scale)})"
        )
    return float(sizes[1])


def _to_micrometre(size: float, unit: Any) -> float | None:
    """``size`` in ``unit`` as µm; None for pixels or a unit that is not a length."""
    import pint

    registry = pint.get_application_registry()
    unit = registry.parse_units(unit) if isinstance(unit, str) else unit
    if unit is None:
        return None
    quantity = size * registry.Quantity(1, unit)
    if not quantity.check("[length]"):
        return None
    return float(quantity.to("micrometer").magnitude)


def write_labels(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """Write one Labels layer to ``path`` as an ImageJ-compatible TIFF.

    Parameters
    ----------
    path : str
        Destination, ending in ``.tif`` or ``.tiff``; must not exist yet.
    data : ndarray of shape (M, N) or (T, M, N), integer
        Instance labels, background 0.
    meta : dict
        The layer's attributes; ``scale`` and ``units`` give the pixel size
        (see :func:`pixel_size_from_meta`).

    Returns
    -------
    list of str
        The path written (napari's writer contract).

    Raises
    ------
    FileExistsError
        When ``path`` exists (nothing is written over).
    """
    from napari_dmqpm.io import write_labels as io_write_labels

    target = Path(path)
    if target.exists():
        raise FileExistsError(
            f"{target} exists; napari-dmqpm never writes over a file, so save the labels "
            "under a new name"
        )
    written = io_write_labels(
        target, np.asarray(data), pixel_size_um=pixel_size_from_meta(meta), overwrite=False
    )
    return [str(written)]
