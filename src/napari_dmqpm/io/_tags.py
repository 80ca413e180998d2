"""Pixel size and wavelength from TIFF, ImageJ, OME and PNG metadata (header only).

Each function returns ``(value, source)``: the value in µm, or None, and the rule that gave
it in words, so that ``dmqpm info`` can say where a number came from.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from typing import Any

#: Length units found in OME, ImageJ and TIFF metadata, in µm.
LENGTH_UNITS_UM: dict[str, float] = {
    "m": 1e6,
    "meter": 1e6,
    "cm": 1e4,
    "centimeter": 1e4,
    "mm": 1e3,
    "millimeter": 1e3,
    "um": 1.0,
    "µm": 1.0,  # micro sign U+00B5
    "μm": 1.0,  # Greek small letter mu U+03BC
    "\\u00b5m": 1.0,  # the escaped form some ImageJ headers carry
    "micron": 1.0,
    "microns": 1.0,
    "micrometer": 1.0,
    "micrometre": 1.0,
    "nm": 1e-3,
    "nanometer": 1e-3,
    "å": 1e-4,
    "angstrom": 1e-4,
    "inch": 25400.0,
    "in": 25400.0,
}

# TIFF ResolutionUnit codes (2 and 3 are baseline TIFF; 4 and 5 are written by some tools).
_RESOLUTION_UNITS_UM: dict[int, tuple[float, str]] = {
    2: (25400.0, "inch"),
    3: (10000.0, "cm"),
    4: (1000.0, "mm"),
    5: (1.0, "µm"),
}


def length_to_um(value: Any, unit: Any) -> float | None:
    """``value`` in ``unit`` converted to µm; None when either is missing or unusable."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    factor = LENGTH_UNITS_UM.get(str(unit).strip().lower()) if unit is not None else None
    if factor is None or not number > 0 or number == float("inf"):
        return None
    return number * factor


def _local(tag: str) -> str:
    """An XML tag without its ``{namespace}``."""
    return tag.rsplit("}", 1)[-1]


def ome_pixels(ome_xml: str | None) -> tuple[dict[str, str], list[dict[str, str]]]:
    """Attributes of the first OME ``Pixels`` element and of its ``Channel`` children."""
    if not ome_xml:
        return {}, []
    try:
        root = ElementTree.fromstring(ome_xml)
    except ElementTree.ParseError:
        return {}, []
    for element in root.iter():
        if _local(element.tag) == "Pixels":
            channels = [dict(c.attrib) for c in element if _local(c.tag) == "Channel"]
            return dict(element.attrib), channels
    return {}, []


def ome_pixel_size(ome_xml: str | None) -> tuple[float | None, str]:
    """``PhysicalSizeX`` (+ ``PhysicalSizeXUnit``, default µm) of an OME-XML header."""
    pixels, _ = ome_pixels(ome_xml)
    if "PhysicalSizeX" not in pixels:
        return None, ""
    unit = pixels.get("PhysicalSizeXUnit", "µm")
    size = length_to_um(pixels["PhysicalSizeX"], unit)
    return size, (f"OME PhysicalSizeX {pixels['PhysicalSizeX']} {unit}" if size else "")


def ome_wavelength(ome_xml: str | None) -> tuple[float | None, str]:
    """The first channel's ``ExcitationWavelength`` (+ unit, default nm) of an OME header."""
    _, channels = ome_pixels(ome_xml)
    for channel in channels:
        if "ExcitationWavelength" in channel:
            unit = channel.get("ExcitationWavelengthUnit", "nm")
            value = length_to_um(channel["ExcitationWavelength"], unit)
            if value:
                return value, f"OME ExcitationWavelength {channel['ExcitationWavelength']} {unit}"
    return None, ""


#: The ImageJ header line (``key=value``) napari-dmqpm's writers put in a labels TIFF.
LABELS_TAG: tuple[str, str] = ("dmqpm_content", "labels")


def is_labels_description(description: str | None) -> bool:
    """True when an ImageDescription carries :data:`LABELS_TAG` (on a line or between spaces).

    Examples
    --------
    >>> is_labels_description("ImageJ=1.11a unit=um dmqpm_content=labels")
    True
    >>> is_labels_description("ImageJ=1.11a unit=um"), is_labels_description(None)
    (False, False)
    """
    key, value = LABELS_TAG
    return f"{key}={value}" in (description or "").split()


def _rational(value: Any) -> float | None:
    """A TIFF RATIONAL tag value, ``(numerator, denominator)``, as a float."""
    try:
        numerator, denominator = value
        result = float(numerator) / float(denominator)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return result if result > 0 and result != float("inf") else None


def imagej_properties(metadata: dict[str, Any] | None, description: str | None) -> dict[str, Any]:
    """The ImageJ metadata tifffile parsed, plus ``key=value`` pairs separated by spaces.

    Some exporters write the ImageJ description on one line (``"ImageJ=1.49m unit=um"``,
    e.g. the Q-PHASE maps of Vicar et al.); tifffile, like ImageJ, then sees no ``unit``.
    The pairs are recovered here so that the intended calibration is not lost.
    """
    if metadata is None:
        return {}
    properties: dict[str, Any] = {}
    for token in (description or "").split():
        key, sep, value = token.partition("=")
        if sep and key and value:
            properties[key] = value
    properties.update((k, v) for k, v in metadata.items() if k != "ImageJ")
    return properties


def imagej_pixel_size(imagej: dict[str, Any] | None, x_resolution: Any) -> tuple[float | None, str]:
    """ImageJ calibration: ``unit=`` of the description and XResolution in pixels per unit."""
    if not imagej or "unit" not in imagej:
        return None, ""
    per_unit = _rational(x_resolution)
    if per_unit is None:
        return None, ""
    size = length_to_um(1.0 / per_unit, imagej["unit"])
    return size, (f"ImageJ unit={imagej['unit']} and XResolution" if size else "")


def imagej_wavelength(imagej: dict[str, Any] | None) -> tuple[float | None, str]:
    """``wavelength_um=`` or ``wavelength_nm=`` keys of an ImageJ description."""
    for key, unit in (("wavelength_um", "um"), ("wavelength_nm", "nm")):
        if imagej and key in imagej:
            value = length_to_um(imagej[key], unit)
            if value:
                return value, f"ImageJ {key}={imagej[key]}"
    return None, ""


def resolution_pixel_size(x_resolution: Any, resolution_unit: Any) -> tuple[float | None, str]:
    """Baseline TIFF XResolution with ResolutionUnit inch or cm (also mm, µm) in µm per pixel.

    ResolutionUnit 1 ("none") gives no size; a missing ResolutionUnit means inch, as the
    TIFF specification says.
    """
    per_unit = _rational(x_resolution)
    code = 2 if resolution_unit is None else int(resolution_unit)
    if per_unit is None or code not in _RESOLUTION_UNITS_UM:
        return None, ""
    factor, name = _RESOLUTION_UNITS_UM[code]
    return factor / per_unit, f"TIFF XResolution {per_unit:g} pixels per {name}"


def png_pixel_size(info: dict[str, Any]) -> tuple[float | None, str]:
    """PNG ``pHYs`` (as Pillow's ``dpi``) in µm per pixel."""
    dpi: Any = info.get("dpi")  # whatever Pillow read from the file
    try:
        per_inch = float(dpi[0])
    except (TypeError, ValueError, IndexError):
        return None, ""
    if not per_inch > 0:
        return None, ""
    return 25400.0 / per_inch, f"PNG pHYs {per_inch:g} dots per inch"
