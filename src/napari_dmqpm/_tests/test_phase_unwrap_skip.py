"""Unwrapping is skipped exactly where the unwrapper would change nothing (issue 17)."""

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


@pytest.mark.parametrize("where", ["rows", "columns", "last row", "next to a NaN"])
def test_one_jump_anywhere_runs_the_unwrapper(monkeypatch, where):
    wrapped = np.zeros((600, 64), np.float32)  # taller than one block of the test
    if where == "rows":
        wrapped[300:, :] = 3.2  # a step of more than pi between rows 299 and 300
    elif where == "columns":
        wrapped[:, 40:] = -3.2
    elif where == "last row":
        wrapped[-1, 10] = 3.5
    else:
        wrapped[100, 5] = np.nan
        wrapped[100, 6:] = 3.3
    # (scikit-image's unwrapper does not return on a map with NaN: count, do not run it)
    calls = _count_unwrapper_calls(monkeypatch, run=False)
    phase.unwrap(wrapped)
    assert calls == [1]


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
