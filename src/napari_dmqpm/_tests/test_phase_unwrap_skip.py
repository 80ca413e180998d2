"""The unwrapper runs only where a cheaper path could not give its result (issue 17).

No jumps: the map is returned as it is. Jumps without residues: the wraps are added up along
rows and columns, which equals the unwrapper's map up to one whole turn for all pixels.
Residues or NaN: the unwrapper.
"""

import numpy as np
import pytest
from skimage.restoration import unwrap_phase

from napari_dmqpm import phase
from napari_dmqpm.simulation import SimulationConfig, simulate_field


def _count_unwrapper_calls(monkeypatch, *, run: bool = True) -> list[int]:
    calls: list[int] = []

    def counting(values, *args, **kwargs):
        calls.append(1)
        return unwrap_phase(values, *args, **kwargs) if run else np.array(values)

    monkeypatch.setattr(phase, "unwrap_phase", counting)
    return calls


def test_a_map_without_jumps_is_returned_as_the_unwrapper_would_return_it(monkeypatch):
    rng = np.random.default_rng(3)
    rows, cols = np.mgrid[:300, :280]
    smooth = 2.9 * np.sin(rows / 40.0) * np.cos(cols / 50.0)  # |phase| < pi: no wraps
    wrapped = (smooth + 0.05 * rng.standard_normal(smooth.shape)).astype(np.float32)
    assert np.abs(np.diff(wrapped.astype(np.float64), axis=0)).max() <= np.pi
    calls = _count_unwrapper_calls(monkeypatch)
    skipped = phase.unwrap(wrapped)
    assert calls == []  # the unwrapper did not run
    expected = unwrap_phase(wrapped.astype(np.float64)).astype(np.float32)
    assert skipped.dtype == np.float32
    np.testing.assert_array_equal(skipped, expected)


@pytest.mark.parametrize("slope", [(0.9, 0.0), (0.0, -1.3), (0.4, 0.7)])
def test_jumps_without_residues_are_added_up_not_unwrapped(monkeypatch, slope):
    rows, cols = np.mgrid[:600, :64].astype(np.float64)  # taller than one block of the check
    true = slope[0] * rows + slope[1] * cols + 0.3 * np.sin(rows / 30.0)  # many turns
    wrapped = np.angle(np.exp(1j * true)).astype(np.float32)
    calls = _count_unwrapper_calls(monkeypatch)
    added = phase.unwrap(wrapped).astype(np.float64)
    assert calls == []
    turns = (added - wrapped) / (2 * np.pi)
    np.testing.assert_allclose(turns, np.round(turns), atol=1e-5)  # whole turns per pixel
    shift = (added - true) / (2 * np.pi)  # the true phase, up to one whole turn for all
    np.testing.assert_allclose(shift, np.round(shift.flat[0]), atol=1e-4)
    common = np.bincount((np.round(turns) - np.round(turns).min()).astype(int).ravel()).argmax()
    assert common + np.round(turns).min() == 0  # the commonest turn count is kept at zero


def _with_residue(shape=(300, 64)) -> np.ndarray:
    """A smooth ramp with one vortex: the loop around its centre adds up to one whole turn."""
    rows, cols = np.mgrid[: shape[0], : shape[1]].astype(np.float64)
    ramp = 0.05 * cols
    vortex = np.arctan2(rows - 150.5, cols - 30.5)  # one turn around (150.5, 30.5)
    return np.angle(np.exp(1j * (ramp + vortex))).astype(np.float32)


@pytest.mark.parametrize("where", ["a residue", "next to a NaN"])
def test_a_residue_or_a_nan_runs_the_unwrapper(monkeypatch, where):
    if where == "a residue":
        wrapped = _with_residue()
    else:  # a ramp whose loops around the NaN add up to zero: only the NaN test catches it
        cols = np.mgrid[:600, :64][1].astype(np.float64)
        wrapped = np.angle(np.exp(-1.3j * cols)).astype(np.float32)
        wrapped[100, 5] = np.nan
    assert phase._has_jumps(np.nan_to_num(wrapped).astype(np.float64))
    # (scikit-image's unwrapper does not return on a map with NaN: count, do not run it)
    calls = _count_unwrapper_calls(monkeypatch, run=False)
    phase.unwrap(wrapped)
    assert calls == [1]


def test_one_residue_anywhere_is_found():
    wrapped = _with_residue((1000, 64)).astype(np.float64)  # the vortex in the first block
    assert phase._wrap_counts(wrapped) is None
    rolled = np.roll(wrapped, 700, axis=0)  # now in the third block of rows
    assert phase._wrap_counts(rolled) is None
    assert phase._wrap_counts(wrapped[200:]) is not None  # the vortex cut off: no residue


@pytest.mark.parametrize(("density", "shape", "seed"), [
    ("sparse", (256, 320), 2), ("dense", (384, 384), 1), ("confluent", (320, 448), 3)
])  # fmt: skip
def test_added_up_wraps_are_the_unwrappers_map_up_to_one_whole_turn(density, shape, seed):
    field = simulate_field(SimulationConfig(shape=shape, density=density), rng=seed)
    values = phase.wrapped_phase(field.angles).astype(np.float64)
    assert phase._has_jumps(values)  # cells of several radians: wraps inside the cells
    counts = phase._wrap_counts(values)
    assert counts is not None  # the simulator's detector noise leaves no residue
    theirs = np.round((unwrap_phase(values) - values) / (2 * np.pi)).astype(np.int64)
    offset = np.unique(theirs - counts)
    assert offset.size == 1  # the same map, up to one whole turn for every pixel
    np.testing.assert_array_equal(
        phase.unwrap(values.astype(np.float32)),
        (unwrap_phase(values) - 2 * np.pi * offset[0]).astype(np.float32),
    )


def test_retrieval_of_a_simulated_field_is_unchanged_by_the_skip():
    # a weak field whose phase stays inside (-pi, pi]: the skip applies, the result is the
    # unwrapper's to the bit
    config = SimulationConfig(shape=(128, 128), density="sparse")
    field = simulate_field(config, rng=5)
    angles = phase.synthesize_angles(0.3 * field.true_phase / max(field.true_phase.max(), 1))
    wrapped = phase.wrapped_phase(angles)
    assert not phase._has_jumps(wrapped.astype(np.float64))
    expected = phase.remove_background(
        unwrap_phase(wrapped.astype(np.float64)).astype(np.float32), surface="plane"
    )
    np.testing.assert_array_equal(phase.retrieve_phase(angles).phase, expected)
