"""What one diameter estimate costs: windows that hold enough cells, coarse passes at the
model's scale (issue 17). A stand-in network that sees a cell wherever the phase is high keeps
these fast and exact; the shipped model's estimates, old against new, are compared by
benchmarks/bench_scale.py (``--compare-estimates``)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from napari_dmqpm.inference import InferenceConfig, Probabilities  # noqa: E402
from napari_dmqpm.inference import diameter as diameter_module  # noqa: E402
from napari_dmqpm.inference.postprocess import DEFAULT_CLASS_NAMES  # noqa: E402
from napari_dmqpm.model.registry import load_model  # noqa: E402

#: Disks of this diameter (input px) on a square grid of this pitch.
DISK_PX, PITCH_PX = 24, 34


def disk_field(shape: tuple[int, int]) -> np.ndarray:
    """A phase map of separate disks (1 rad) on a zero background."""
    rows, cols = np.indices(shape)
    dr = (rows % PITCH_PX) - PITCH_PX / 2
    dc = (cols % PITCH_PX) - PITCH_PX / 2
    return (dr**2 + dc**2 <= (DISK_PX / 2) ** 2).astype(np.float32)


@pytest.fixture
def passes(monkeypatch):
    """Per pass: the window (input px) and the shape its labels were made at.

    The 'network' resamples like the real one and calls a pixel a cell where the phase is
    above 0.5, so the estimate must find ``DISK_PX``.
    """
    record: dict[str, list] = {"windows": [], "labels": []}

    def fake_predict(model, *, angles=None, phase=None, config=None, **_):
        scale = diameter_module.resolve_scale(model, config=config)
        target = tuple(max(1, round(n * scale)) for n in phase.shape)
        small = diameter_module.resize(phase[None], target)[0]
        inside = diameter_module.resize((small > 0.5).astype(np.float32)[None], phase.shape)[0]
        classes = np.stack([1.0 - inside, inside, np.zeros_like(inside)]).astype(np.float32)
        return Probabilities(classes, DEFAULT_CLASS_NAMES, None, scale)

    window, to_labels = diameter_module._window, diameter_module.probabilities_to_labels

    def recorded_window(shape, scale, max_pixels):
        rows, cols = window(shape, scale, max_pixels)
        record["windows"].append(((rows.stop - rows.start, cols.stop - cols.start), scale))
        return rows, cols

    def recorded_labels(probabilities, *, config):
        record["labels"].append(probabilities.shape)
        return to_labels(probabilities, config=config)

    monkeypatch.setattr(diameter_module, "predict_probabilities", fake_predict)
    monkeypatch.setattr(diameter_module, "_window", recorded_window)
    monkeypatch.setattr(diameter_module, "probabilities_to_labels", recorded_labels)
    return record


@pytest.fixture(scope="module")
def model():
    return load_model("phase-only", device="cpu")


def estimate(model, shape):
    config = InferenceConfig(backend="torch")
    return diameter_module.estimate_diameter(model, phase=disk_field(shape), config=config)


def test_later_passes_look_at_a_window_of_about_window_cells_cells(model, passes):
    shape = (1024, 1224)  # about 1,080 disks
    found = estimate(model, shape)
    assert found.converged and found.diameter_px == pytest.approx(DISK_PX, rel=0.05), found
    (first, _), *later = passes["windows"]
    assert first == shape  # the first pass looks at everything (coarse: few pixels)
    (rows, cols), scale = later[-1]
    assert scale == pytest.approx(model.info.cell_diameter_px / DISK_PX, rel=0.15)
    disks = rows * cols / PITCH_PX**2  # what the last window holds
    assert 0.7 * diameter_module.WINDOW_CELLS <= disks <= 2.0 * diameter_module.WINDOW_CELLS


def test_passes_below_the_model_scale_make_their_labels_at_the_model_scale(model, passes):
    estimate(model, (1024, 1224))
    for ((rows, cols), scale), labels_shape in zip(
        passes["windows"], passes["labels"], strict=True
    ):
        expected = (round(rows * scale), round(cols * scale)) if scale < 1 else (rows, cols)
        assert labels_shape == expected, (rows, cols, scale)
    assert passes["windows"][0][1] < 0.25  # the first pass: 16x fewer pixels to label


def test_a_small_image_is_looked_at_whole_as_before(model, passes):
    shape = (400, 380)  # about 130 disks, fewer than WINDOW_CELLS: every window is the image
    found = estimate(model, shape)
    assert found.diameter_px == pytest.approx(DISK_PX, rel=0.05), found
    assert [window for window, _ in passes["windows"]] == [shape] * len(passes["windows"])
