r"""Phase units of QPM instruments, converted to radians.

.. math:: \varphi = \frac{2\pi}{\lambda}\,\mathrm{OPD}, \qquad
          \mathrm{OPD} = \alpha\,\sigma,

with the optical path difference OPD and the wavelength :math:`\lambda` in µm, the dry-mass
surface density :math:`\sigma` in pg/µm² and the specific refraction increment
:math:`\alpha` in µm³/pg (0.18 for proteins; 0.18-0.21 in the literature).

A file that stores a phase map rarely says in which of these units (napari-dmqpm's own
stacks are radians by definition). :func:`phase_unit_note` says which units the values of a
map are plausible in, from the range cells give in each (:data:`PLAUSIBLE_PEAKS`); it never
changes the values.

References
----------
.. [1] R. Barer, "Interference microscopy and mass determination", Nature 169, 366 (1952).
.. [2] G. Popescu et al., "Optical imaging of cell mass and growth dynamics",
   Am. J. Physiol. Cell Physiol. 295, C538 (2008).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["PHASE_UNITS", "PLAUSIBLE_PEAKS", "phase_peak", "phase_unit_note", "radians_per_unit"]

#: Units a phase map may be stored in: radians, OPD in µm or nm, dry mass in pg/µm².
PHASE_UNITS: tuple[str, ...] = ("rad", "opd_um", "opd_nm", "pg_per_um2")

#: The unit in words, for messages.
UNIT_WORDS = {
    "rad": "radians",
    "opd_um": "µm of optical path",
    "opd_nm": "nm of optical path",
    "pg_per_um2": "pg/µm² of dry mass",
}

#: Range of :func:`phase_peak` that a field of cells gives in each unit, (low, high).
#: Cells 1-20 µm thick with a refractive index 0.01-0.06 above the medium have an optical
#: path of about 0.02-1.5 µm; that is 0.1-30 rad at wavelengths of 0.4-1.1 µm (unwrapped),
#: 10-2000 nm, 0.01-2 µm, and 0.05-10 pg/µm² with alpha 0.18-0.21 µm³/pg (the real Q-PHASE
#: maps in pg/µm² peak at 1.2-3.2). The ranges overlap: values in 0.1-2 fit four units.
PLAUSIBLE_PEAKS: dict[str, tuple[float, float]] = {
    "rad": (0.1, 30.0),
    "opd_um": (0.01, 2.0),
    "opd_nm": (10.0, 2000.0),
    "pg_per_um2": (0.05, 10.0),
}


def radians_per_unit(
    unit: str, *, wavelength_um: float | None = None, alpha_um3_per_pg: float = 0.18
) -> float:
    """The factor that turns a phase map in ``unit`` into radians.

    Parameters
    ----------
    unit : {"rad", "opd_um", "opd_nm", "pg_per_um2"}
        The unit of the stored values.
    wavelength_um : float, optional
        Illumination wavelength in µm; required for every unit but "rad".
    alpha_um3_per_pg : float, optional
        Specific refraction increment in µm³/pg, for "pg_per_um2" (default 0.18).

    Returns
    -------
    float
        Multiply the stored values by this to get radians.

    Examples
    --------
    >>> round(radians_per_unit("pg_per_um2", wavelength_um=0.65), 3)
    1.74
    >>> round(radians_per_unit("opd_nm", wavelength_um=0.5), 5)
    0.01257
    """
    if unit not in PHASE_UNITS:
        raise ValueError(f"phase_unit must be one of {PHASE_UNITS}; got phase_unit={unit!r}")
    if unit == "rad":
        return 1.0
    if wavelength_um is None:
        raise ValueError(
            f"phase_unit={unit!r} needs the wavelength, and neither the file nor the "
            "call gives one; pass wavelength_um=... (e.g. 0.65 for 650 nm)"
        )
    if not (math.isfinite(wavelength_um) and wavelength_um > 0):
        raise ValueError(f"wavelength_um must be a positive number; got {wavelength_um!r}")
    per_um = 2.0 * math.pi / wavelength_um
    if unit == "opd_um":
        return per_um
    if unit == "opd_nm":
        return per_um / 1000.0
    if not (math.isfinite(alpha_um3_per_pg) and alpha_um3_per_pg > 0):
        raise ValueError(f"alpha_um3_per_pg must be positive; got {alpha_um3_per_pg!r}")
    return per_um * alpha_um3_per_pg


def phase_peak(values: np.ndarray) -> float:
    """How far a phase map rises above its background: the 99.9th percentile of ``|v - median|``.

    Robust to a background offset and to a few hot pixels; NaN and Inf are ignored.

    Parameters
    ----------
    values : ndarray
        A phase map (any shape) in its stored unit.

    Returns
    -------
    float
        The peak, in the values' unit; 0 for a flat or empty map.

    Examples
    --------
    >>> rows, cols = np.mgrid[:64, :64]
    >>> cell = 3.0 * ((rows - 32) ** 2 + (cols - 32) ** 2 < 100)
    >>> round(phase_peak(cell + 5.0), 2)
    3.0
    """
    data = np.asarray(values, dtype=np.float64).ravel()
    data = data[np.isfinite(data)]
    if data.size == 0:
        return 0.0
    return float(np.percentile(np.abs(data - np.median(data)), 99.9))


def _range_words(unit: str) -> str:
    low, high = PLAUSIBLE_PEAKS[unit]
    return f"{UNIT_WORDS[unit]} ({low:g}-{high:g})"


def phase_unit_note(values: np.ndarray, *, unit: str | None = None) -> str | None:
    """What the range of a phase map says about its unit, in words; None when nothing to say.

    Parameters
    ----------
    values : ndarray
        The stored values (e.g. the first frame), not converted.
    unit : str, optional
        The unit the values are taken to be in. When given, a note comes only where the
        values are implausible in it; when None (nobody stated one), always, saying in
        which units the values are plausible.

    Returns
    -------
    str or None
        E.g. "values reach 250 above the background: implausible as radians (0.1-30); they
        look like nm of optical path (10-2000)". The values are never changed.

    Examples
    --------
    >>> note = phase_unit_note(np.r_[np.zeros(999), 250.0 * np.ones(100)])
    >>> note.split(": ")[1]
    'implausible as radians (0.1-30); they look like nm of optical path (10-2000)'
    >>> phase_unit_note(np.r_[np.zeros(999), 2.0 * np.ones(100)], unit="rad") is None
    True
    """
    if unit is not None and unit not in PHASE_UNITS:
        raise ValueError(f"phase_unit must be one of {PHASE_UNITS}; got phase_unit={unit!r}")
    peak = phase_peak(values)
    if not peak > 0:
        return None if unit is not None else "values are flat: their unit cannot be judged"
    fits = [name for name, (low, high) in PLAUSIBLE_PEAKS.items() if low <= peak <= high]
    if unit is not None and unit in fits:
        return None
    lead = f"values reach {peak:.3g} above the background"
    assumed = unit or "rad"
    if assumed in fits:  # nobody stated a unit, and radians are plausible
        others = " or ".join(_range_words(name) for name in fits if name != assumed)
        if not others:
            return f"{lead}: plausible as {_range_words(assumed)} only"
        return f"{lead}: plausible as {_range_words(assumed)}, but also as {others}"
    lead += f": implausible as {_range_words(assumed)}"
    if not fits:
        return f"{lead}, and outside what cells give in any phase unit"
    return f"{lead}; they look like {' or '.join(_range_words(name) for name in fits)}"
