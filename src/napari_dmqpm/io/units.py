r"""Phase units of QPM instruments, converted to radians.

.. math:: \varphi = \frac{2\pi}{\lambda}\,\mathrm{OPD}, \qquad
          \mathrm{OPD} = \alpha\,\sigma,

with the optical path difference OPD and the wavelength :math:`\lambda` in µm, the dry-mass
surface density :math:`\sigma` in pg/µm² and the specific refraction increment
:math:`\alpha` in µm³/pg (0.18 for proteins; 0.18-0.21 in the literature).

References
----------
.. [1] R. Barer, "Interference microscopy and mass determination", Nature 169, 366 (1952).
.. [2] G. Popescu et al., "Optical imaging of cell mass and growth dynamics",
   Am. J. Physiol. Cell Physiol. 295, C538 (2008).
"""

from __future__ import annotations

import math

__all__ = ["PHASE_UNITS", "radians_per_unit"]

#: Units a phase map may be stored in: radians, OPD in µm or nm, dry mass in pg/µm².
PHASE_UNITS: tuple[str, ...] = ("rad", "opd_um", "opd_nm", "pg_per_um2")


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
