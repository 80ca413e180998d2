"""Physics-based ssQPM simulator with instance ground truth.

Phantoms (cells with nuclei, nucleoli, mitotic cells, debris; sparse to confluent) ->
optics (optical path difference to phase, reference wavefront, illumination, edge
scattering, fringe visibility) -> detector (shot and read noise, quantization) -> the phase
retrieved by :func:`napari_dmqpm.phase.retrieve_phase`. See docs/simulator.md.
"""

from napari_dmqpm.simulation.config import DENSITY_PRESETS, SimulationConfig
from napari_dmqpm.simulation.dataset import write_dataset
from napari_dmqpm.simulation.field import (
    SimulatedField,
    SimulatedTimelapse,
    image_phase,
    simulate_field,
    simulate_timelapse,
)
from napari_dmqpm.simulation.phantoms import Phantom, make_phantom
from napari_dmqpm.simulation.timelapse import SimulatedGrowth, simulate_growth

__all__ = [
    "DENSITY_PRESETS",
    "Phantom",
    "SimulatedField",
    "SimulatedGrowth",
    "SimulatedTimelapse",
    "SimulationConfig",
    "image_phase",
    "make_phantom",
    "simulate_field",
    "simulate_growth",
    "simulate_timelapse",
    "write_dataset",
]
