"""The parameters of the simulator: one frozen, JSON-round-tripping dataclass.

The defaults were fitted to the real Q-PHASE phase maps of Vicar et al. (PC-3 / PNT1A cells,
0.627 µm per pixel, 650 nm) by ``scripts/calibrate_simulator.py``; docs/simulator.md shows the
comparison. Parameters marked "(calibrated)" below come from that fit; the optical and
detector parameters describe a polarization camera of the IMX250MZR kind.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from napari_dmqpm._config import config_from_dict, config_to_dict

__all__ = ["DENSITY_PRESETS", "SimulationConfig"]

#: Target cover fraction (share of the field inside cells) of each named density.
DENSITY_PRESETS: dict[str, float] = {
    "sparse": 0.06,
    "medium": 0.15,
    "dense": 0.3,
    "confluent": 0.85,
}

# name -> (low, high, low_inclusive, high_inclusive): the allowed range of each number.
_RANGES: dict[str, tuple[float, float, bool, bool]] = {
    "pixel_size_um": (0.0, math.inf, False, False),
    "wavelength_um": (0.0, math.inf, False, False),
    "cell_area_um2": (0.0, math.inf, False, False),
    "cell_area_sigma": (0.0, 2.0, True, True),
    "elongation": (0.0, 2.0, True, True),
    "irregularity": (0.0, 0.5, True, True),
    "clustering": (0.0, 1.0, True, True),
    "packing": (0.3, 1.5, True, True),
    "mitotic_fraction": (0.0, 1.0, True, True),
    "mitotic_height": (0.0, math.inf, False, False),
    "cell_thickness_um": (0.0, math.inf, False, False),
    "delta_n": (0.0, 1.0, False, True),
    "height_sigma": (0.0, 2.0, True, True),
    "height_area_exponent": (-2.0, 2.0, True, True),
    "dome_exponent": (0.0, 5.0, False, True),
    "edge_width_um": (0.0, math.inf, False, False),
    "border_dip": (0.0, 1.0, True, True),
    "border_width_um": (0.0, math.inf, False, False),
    "nucleus_size": (0.0, 1.0, True, False),
    "nucleus_contrast": (0.0, 5.0, True, True),
    "nucleolus_contrast": (0.0, 5.0, True, True),
    "texture": (0.0, 1.0, True, True),
    "spread_fraction": (0.0, 1.0, True, True),
    "spread_area_factor": (1.0, 10.0, True, True),
    "lamellipodium_width_um": (0.0, math.inf, True, False),
    "lamellipodium_rad": (0.0, 3.0, True, True),
    "organelle_count": (0.0, 50.0, True, True),
    "organelle_contrast": (0.0, 5.0, True, True),
    "psf_sigma_um": (0.0, math.inf, True, False),
    "fringe_visibility": (0.0, 1.0, False, True),
    "tilt_rad_per_um": (0.0, math.inf, True, False),
    "curvature_rad": (0.0, math.inf, True, False),
    "background_aberration_rad": (0.0, math.inf, True, False),
    "illumination_falloff": (0.0, 1.0, True, False),
    "edge_scattering": (0.0, 1.0, True, False),
    "full_well_e": (0.0, math.inf, False, False),
    "exposure": (0.0, 1.0, False, True),
    "read_noise_e": (0.0, math.inf, True, False),
    "residual_offset_rad": (0.0, math.inf, True, False),
    "residual_tilt_rad": (0.0, math.inf, True, False),
    "residual_curvature_rad": (0.0, math.inf, True, False),
}


@dataclass(frozen=True, kw_only=True)
class SimulationConfig:
    """Everything that defines a simulated ssQPM field, in physical units.

    Parameters
    ----------
    shape : tuple of int
        ``(rows, cols)`` of the field in pixels.
    pixel_size_um : float
        Pixel size in the sample plane, µm (the real Q-PHASE maps have 0.627).
    wavelength_um : float
        Illumination wavelength, µm.
    density : str or float
        "sparse", "medium", "dense", "confluent" (see ``DENSITY_PRESETS``) or a target cover
        fraction in (0, 0.95].
    cell_area_um2, cell_area_sigma : float
        Median footprint area of one cell (µm²) and the sd of its logarithm (calibrated).
    elongation : float
        Sd of the log aspect ratio: a cell's aspect ratio is ``exp(|N(0, elongation)|)``.
    irregularity : float
        Relative amplitude of the random Fourier modes (2 to 6) that bend the outline.
    clustering : float
        Probability that a new cell grows onto an existing colony instead of starting one.
    packing : float
        Centre distance of neighbours in a colony relative to the sum of their radii; below 1
        their footprints overlap and they share a border (calibrated).
    mitotic_fraction, mitotic_height : float
        Share of rounded mitotic cells, and their peak height relative to a flat cell.
    cell_thickness_um, delta_n : float
        Median peak thickness of a cell (µm) and its refractive-index difference to the
        medium; the peak optical path difference is their product (calibrated).
    height_sigma : float
        Sd of the logarithm of the cell heights.
    height_area_exponent : float
        Heights scale as ``(area / cell_area_um2) ** height_area_exponent``: spread cells are
        thinner (calibrated).
    dome_exponent : float
        ``p`` of the dome profile ``(1 - d**2) ** p`` over the normalized radius ``d``.
    edge_width_um : float
        Width of the roll-off at the cell edge, µm (calibrated to the real edge profile).
    border_dip, border_width_um : float
        Relative depth and width (µm) of the dip along the shared border of touching cells.
    nucleus_size, nucleus_contrast, nucleolus_contrast : float
        Nucleus radius relative to the cell, and the extra optical path of the nucleus and of
        the nucleoli relative to the cell's peak.
    texture : float
        Relative amplitude of the granular cytoplasm texture.
    psf_sigma_um : float
        Sd of the Gaussian point-spread function of the imaging optics, µm.
    debris_count : int
        Number of unlabelled debris particles in the field.
    spread_fraction : float
        Share of the (non-mitotic) cells that are well spread, in [0, 1]: large and flat, with
        a thin lamellipodium around the body, a stronger texture and bright organelles. 0 (the
        default) draws exactly the fields of earlier versions.
    spread_area_factor : float
        Body area of a spread cell relative to the area it was drawn with (>= 1); its height
        is divided by the square root of this factor (a flatter cell).
    lamellipodium_width_um : float
        Mean width of the thin periphery of a spread cell, µm (each cell draws 0.7-1.3 times
        it; it varies along the outline, ruffled). It grows into the background around the
        body and is part of the cell's label; ``density`` counts the bodies only.
    lamellipodium_rad : float
        Phase of the lamellipodium, radians (before the point-spread blur; a smooth
        modulation keeps it within 0.3-2 times this value).
    organelle_count, organelle_contrast : float
        Mean number (Poisson) of bright organelles in the cytoplasm of a spread cell, and
        their peak extra optical path relative to the cell's peak (before the blur). They are
        part of their cell: they never get labels of their own.
    fringe_visibility : float
        ``B / A``: fringe visibility of the interferometer.
    tilt_rad_per_um, curvature_rad : float
        Reference-wavefront tilt (phase gradient, rad/µm) and curvature (phase sag at the
        field corner, rad).
    background_aberration_rad : float
        Sd of the smooth residual wavefront error that no low-order fit removes, rad.
    illumination_falloff : float
        Relative drop of the mean intensity ``A`` at the field corners.
    edge_scattering : float
        Largest relative intensity loss at steep phase gradients (light scattered out of the
        aperture at cell edges).
    full_well_e, exposure : float
        Photo-electrons at full well, and the mean intensity ``A`` as a share of it.
    read_noise_e : float
        Gaussian read noise, electrons rms.
    bit_depth : int
        Bits of the analogue-to-digital converter; counts are clipped to ``[0, 2**bit_depth - 1]``.
    sign : {1, -1}
        Handedness of the phase, as in :func:`napari_dmqpm.phase.retrieve_phase`.
    residual_offset_rad, residual_tilt_rad, residual_curvature_rad : float
        Range of the background left in the retrieved ``phase`` after the simulator's own
        background removal, as another instrument's processing leaves it, radians: each field
        draws a constant offset, a plane and a bowl of amplitudes uniform in ``±range`` (the
        plane's value one half-diagonal from the centre along its random direction, the
        bowl's sag at the field corners; both zero-mean over the field, so the offset is the
        mean). 0 (the default): none.

    Examples
    --------
    >>> config = SimulationConfig(shape=(128, 128), density="confluent")
    >>> config.cover_fraction
    0.85
    >>> SimulationConfig.from_dict(config.to_dict()) == config
    True
    """

    shape: tuple[int, int] = (256, 256)
    pixel_size_um: float = 0.627
    wavelength_um: float = 0.65
    density: str | float = "dense"
    # cells: fitted to the real Q-PHASE maps with scripts/calibrate_simulator.py (the matched
    # statistics are in docs/simulator.md); the physical scale is set by pixel_size_um
    cell_area_um2: float = 340.0
    cell_area_sigma: float = 0.45
    elongation: float = 0.5
    irregularity: float = 0.12
    clustering: float = 0.86
    packing: float = 0.7
    mitotic_fraction: float = 0.06
    mitotic_height: float = 1.8
    cell_thickness_um: float = 5.0
    delta_n: float = 0.04
    height_sigma: float = 0.3
    height_area_exponent: float = -0.25
    dome_exponent: float = 0.25
    edge_width_um: float = 1.5
    border_dip: float = 0.2
    border_width_um: float = 1.2
    nucleus_size: float = 0.5
    nucleus_contrast: float = 0.2
    nucleolus_contrast: float = 0.6
    texture: float = 0.15
    psf_sigma_um: float = 0.8
    debris_count: int = 6
    # well-spread cells (off by default: the fields above are drawn exactly as before)
    spread_fraction: float = 0.0
    spread_area_factor: float = 2.0
    lamellipodium_width_um: float = 4.0
    lamellipodium_rad: float = 0.15
    organelle_count: float = 8.0
    organelle_contrast: float = 1.5
    # optics
    fringe_visibility: float = 0.8
    tilt_rad_per_um: float = 0.05
    curvature_rad: float = 3.0
    background_aberration_rad: float = 0.025
    illumination_falloff: float = 0.25
    edge_scattering: float = 0.3
    # detector (IMX250MZR-like)
    full_well_e: float = 10500.0
    exposure: float = 0.5
    read_noise_e: float = 2.3
    bit_depth: int = 12
    sign: int = 1
    # what another instrument's background processing leaves in the phase (off by default)
    residual_offset_rad: float = 0.0
    residual_tilt_rad: float = 0.0
    residual_curvature_rad: float = 0.0

    def __post_init__(self) -> None:
        shape = tuple(self.shape)
        if len(shape) != 2 or not all(_is_int(n) and n >= 16 for n in shape):
            raise ValueError(
                f"shape must be (rows, cols), each an integer >= 16; got {self.shape!r}"
            )
        object.__setattr__(self, "shape", (int(shape[0]), int(shape[1])))
        object.__setattr__(self, "density", _check_density(self.density))
        for name, (low, high, low_in, high_in) in _RANGES.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{name} must be a number; got {name}={value!r}")
            above = value >= low if low_in else value > low
            below = value <= high if high_in else value < high
            if not (above and below and math.isfinite(value)):
                bounds = f"{'[' if low_in else '('}{low}, {high}{']' if high_in else ')'}"
                raise ValueError(f"{name} must lie in {bounds}; got {name}={value!r}")
        if not _is_int(self.debris_count) or self.debris_count < 0:
            raise ValueError(f"debris_count must be an integer >= 0; got {self.debris_count!r}")
        if not _is_int(self.bit_depth) or not 1 <= self.bit_depth <= 16:
            raise ValueError(f"bit_depth must be an integer in [1, 16]; got {self.bit_depth!r}")
        if self.sign not in (1, -1) or isinstance(self.sign, bool):
            raise ValueError(f"sign must be 1 or -1; got sign={self.sign!r}")
        if self.tilt_rad_per_um * self.pixel_size_um > 1.0:
            raise ValueError(
                "tilt_rad_per_um * pixel_size_um must be <= 1 rad per pixel for the phase to "
                f"unwrap; got tilt_rad_per_um={self.tilt_rad_per_um!r}"
            )

    @property
    def cover_fraction(self) -> float:
        """Target share of the field covered by cells, from ``density``."""
        if isinstance(self.density, str):
            return DENSITY_PRESETS[self.density]
        return float(self.density)

    @property
    def max_count(self) -> int:
        """Largest detector count, ``2**bit_depth - 1``."""
        return 2**self.bit_depth - 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-native dictionary of every parameter (``shape`` as a list)."""
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SimulationConfig:
        """Build a config from :meth:`to_dict` output; unknown keys are an error.

        Parameters
        ----------
        values : dict
            Parameter names and values; missing ones take their defaults.

        Returns
        -------
        SimulationConfig
        """
        return config_from_dict(cls, values)

    def replace(self, **changes: Any) -> SimulationConfig:
        """A copy with some parameters changed (validated again).

        Parameters
        ----------
        **changes
            New values of fields, by name.
        """
        return dataclasses.replace(self, **changes)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_density(density: str | float) -> str | float:
    """A density preset name, or a cover fraction (strings of numbers are accepted)."""
    if isinstance(density, str):
        if density in DENSITY_PRESETS:
            return density
        try:
            density = float(density)
        except ValueError:
            raise ValueError(
                f"density must be one of {tuple(DENSITY_PRESETS)} or a cover fraction in "
                f"(0, 0.95]; got density={density!r}"
            ) from None
    if isinstance(density, bool) or not isinstance(density, (int, float)):
        raise ValueError(f"density must be a preset name or a number; got density={density!r}")
    if not 0.0 < density <= 0.95:
        raise ValueError(f"density as a cover fraction must lie in (0, 0.95]; got {density!r}")
    return float(density)
