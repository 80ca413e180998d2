"""A time-lapse held as a dask array is segmented frame by frame, never loaded whole."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")
pytest.importorskip("torch")
da = pytest.importorskip("dask.array")

pytestmark = pytest.mark.gui
N_FRAMES, SHAPE = 6, (64, 80)


class CountingFrames:
    """An array-like stack that records how many frames each read covers."""

    def __init__(self, data: np.ndarray) -> None:
        self.data, self.shape, self.dtype, self.ndim = data, data.shape, data.dtype, data.ndim
        self.reads: list[tuple[int, ...]] = []  # the frames of each read

    def __getitem__(self, key):
        first = key[0] if isinstance(key, tuple) else key
        frames = (first,) if isinstance(first, int) else tuple(range(self.shape[0]))[first]
        if frames:  # dask's zero-size probe reads nothing
            self.reads.append(frames)
        return self.data[key]


@pytest.fixture
def movie():
    rng = np.random.default_rng(3)
    return CountingFrames(rng.normal(size=(N_FRAMES, *SHAPE)).astype(np.float32))


def test_a_dask_time_lapse_is_read_one_frame_at_a_time(
    make_napari_viewer, qtbot, tiny_model, dock, movie
):
    tiny_model()
    viewer = make_napari_viewer()
    lazy = da.from_array(movie, chunks=movie.shape)  # one chunk: a whole read would show
    phase = viewer.add_image(
        lazy, name="movie phase", contrast_limits=(-3.0, 3.0), metadata={"unit": "rad"}
    )
    widget = dock(viewer)
    widget.device.setCurrentText("cpu")
    widget.scope.setCurrentText("all frames")
    movie.reads.clear()  # napari's own read of the frame on screen
    widget.run()
    qtbot.waitUntil(lambda: not widget.running, timeout=60_000)
    assert max(len(frames) for frames in movie.reads) == 1  # never more than one frame
    assert sorted({frames[0] for frames in movie.reads}) == list(range(N_FRAMES))
    assert len(movie.reads) <= 2 * N_FRAMES  # segmentation, plus what napari shows
    cells = viewer.layers["movie cells"]
    assert cells.data.dtype == np.uint32 and cells.data.shape == (N_FRAMES, *SHAPE)
    assert cells.metadata["segmentation"]["frames"] == list(range(N_FRAMES))
    probability = viewer.layers["movie cell probability"]
    assert probability.data.dtype == np.float16 and not probability.visible
    assert probability.data.shape == (N_FRAMES, *SHAPE)
    assert 0.0 <= float(probability.data.min()) and float(probability.data.max()) <= 1.0
    # the kept probabilities for new thresholds are float16 too, and need no phase stack
    kept = widget._last.probabilities  # noqa: SLF001
    assert sorted(kept) == list(range(N_FRAMES))
    assert all(p.classes.dtype == np.float16 for p in kept.values())
    movie.reads.clear()
    widget.foreground.setValue(0.9)
    widget.reapply_thresholds()
    qtbot.waitUntil(lambda: not widget.running, timeout=30_000)
    assert cells.metadata["segmentation"]["postprocess"]["foreground_threshold"] == 0.9
    assert max(len(frames) for frames in movie.reads) == 1
    movie.reads.clear()
    widget.update_table()
    assert movie.reads and max(len(frames) for frames in movie.reads) == 1
    assert phase.data is lazy  # the layer was left as it was


def test_the_frame_stage_takes_frames_as_they_come():
    from napari_dmqpm._napari._widgets._outputs import FrameStage
    from napari_dmqpm.inference import FrameResult, Probabilities
    from napari_dmqpm.inference.postprocess import DEFAULT_CLASS_NAMES

    stage = FrameStage((3, 4, 5))
    classes = np.full((3, 4, 5), 1 / 3, np.float32)
    labels = np.arange(20, dtype=np.uint32).reshape(4, 5)
    table = {"label": np.arange(1, 20)}
    stage.add(FrameResult(2, labels, Probabilities(classes, DEFAULT_CLASS_NAMES), table))
    assert stage.frames == [2] and stage.n_cells == 19
    np.testing.assert_array_equal(stage.labels[2], labels)
    assert not stage.labels[:2].any() and stage.probability.dtype == np.float16
    np.testing.assert_allclose(stage.probability[2], 2 / 3, atol=1e-3)
    assert stage.kept[2].classes.dtype == np.float16 and classes.dtype == np.float32
    assert list(stage.frame_labels()) == [2]
