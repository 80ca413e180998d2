"""Overlapped time-lapse frames (``InferenceConfig.overlap_frames``, issue 17 item 2).

Frame t's post-processing and measurement run on a worker thread while the network runs on
frame t+1. These tests check that the results equal the one-after-the-other path's, that
errors and cancels reach the caller with the worker joined, and that at most two frames are
in flight.
"""

from __future__ import annotations

import os
import sys
import threading
import time

import numpy as np
import pytest

from napari_dmqpm.inference import (
    Cancelled,
    InferenceConfig,
    output_paths,
    segment_acquisition,
    segment_file,
)
from napari_dmqpm.inference import segment as segment_module
from napari_dmqpm.inference.pipeline import THREAD_NAME, WORKER_NICENESS, FramePipeline
from napari_dmqpm.io import write_stack
from napari_dmqpm.model.registry import load_model
from napari_dmqpm.simulation import SimulationConfig, simulate_field, simulate_timelapse

# tiled, at 50 % overlap and batches of 4: 2 batches of tiles per 48 x 64 frame
CONFIG = InferenceConfig(tile_size=32, overlap=0.5, whole_frame_px=0, batch_size=4, device="cpu")
SEQUENTIAL = CONFIG.replace(overlap_frames=False)


def workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == THREAD_NAME]


@pytest.fixture(scope="module")
def movie():
    """A 5-frame 48 x 64 time-lapse of a dense field (frames differ by noise only)."""
    field = simulate_field(SimulationConfig(shape=(48, 64), density="dense"), rng=0)
    acquisition = field.to_acquisition()
    rng = np.random.default_rng(1)
    noise = rng.normal(0.0, 0.05, (5, 48, 64)).astype(np.float32)
    return acquisition.replace(
        phase=np.repeat(acquisition.phase, 5, axis=0) + noise,
        angles=np.repeat(acquisition.angles, 5, axis=0),
        modulation=None,
        is_timelapse=True,
    )


@pytest.fixture
def movie_file(movie, tmp_path):
    return write_stack(tmp_path / "movie.tif", movie)


def assert_same_results(expected, got):
    assert [r.frame for r in got] == [r.frame for r in expected]
    for a, b in zip(expected, got, strict=True):
        np.testing.assert_array_equal(b.labels, a.labels)
        assert list(b.table) == list(a.table)
        for column in a.table:
            np.testing.assert_array_equal(b.table[column], a.table[column], err_msg=column)
        assert (b.status, b.diameter) == (a.status, a.diameter)
        if a.probabilities is not None:
            np.testing.assert_array_equal(b.probabilities.classes, a.probabilities.classes)


def test_overlapped_frames_equal_sequential_ones_with_rechecks_on_the_same_frames(monkeypatch):
    """Shipped phase-only model, drifting cells, an empty frame, re-checks every 2 frames."""
    movie = simulate_timelapse(SimulationConfig(shape=(160, 160), density="dense"), 5, rng=4)
    acquisition = movie.to_acquisition()
    phase = np.asarray(acquisition.phase).copy()
    phase[3] = 0.0  # a featureless frame: no network, measured all the same
    acquisition = acquisition.replace(phase=phase)
    model = load_model("phase-only", device="cpu")
    rechecked, post_threads = [], []
    real_estimate, real_post = segment_module._estimate, segment_module.probabilities_to_labels

    def estimate(acquisition, frame, *args):
        rechecked.append(frame)
        return real_estimate(acquisition, frame, *args)

    def post(*args, **kwargs):
        post_threads.append(threading.current_thread().name)
        return real_post(*args, **kwargs)

    monkeypatch.setattr(segment_module, "_estimate", estimate)
    monkeypatch.setattr(segment_module, "probabilities_to_labels", post)
    runs = {}
    for overlap in (False, True):
        rechecked.clear(), post_threads.clear()
        calls = []
        config = InferenceConfig(device="cpu", recheck_every=2, overlap_frames=overlap)
        runs[overlap] = list(
            segment_acquisition(
                acquisition, model, config=config, progress=lambda d, t, c=calls: c.append((d, t))
            )
        )
        assert rechecked == [0, 2, 4]
        assert post_threads == ([THREAD_NAME] if overlap else ["MainThread"]) * 4  # not frame 3
        assert [d for d, _ in calls] == sorted(d for d, _ in calls)  # monotone
        assert calls[-1][0] == calls[-1][1]
    assert_same_results(runs[False], runs[True])
    assert runs[True][3].status.status == "featureless"
    assert sum(len(r.table["label"]) for r in runs[True]) > 20
    assert not workers()


def test_segment_file_writes_the_same_bytes_with_and_without_overlap(helpers, movie_file, tmp_path):
    written = {}
    for overlap in (False, True):
        out = tmp_path / f"out_{overlap}"
        out.mkdir()
        config = CONFIG.replace(overlap_frames=overlap)
        segment_file(movie_file, out_dir=out, model=helpers.tiny_net(), config=config)
        written[overlap] = [p.read_bytes() for p in output_paths(movie_file, out)]
    assert written[True] == written[False]
    assert not workers()


def test_a_single_frame_takes_the_plain_path(helpers, movie, monkeypatch):
    threads = []
    real = segment_module.probabilities_to_labels
    monkeypatch.setattr(
        segment_module,
        "probabilities_to_labels",
        lambda *a, **k: threads.append(threading.current_thread().name) or real(*a, **k),
    )
    list(segment_acquisition(movie, helpers.tiny_net(), config=CONFIG, frames=[2]))
    assert threads == ["MainThread"]


@pytest.mark.parametrize("overlap", [False, True])
def test_an_error_in_post_processing_propagates_at_once_and_leaves_no_thread(
    helpers, movie, monkeypatch, overlap
):
    real = segment_module.probabilities_to_labels
    post = []

    def failing(*args, **kwargs):
        post.append(1)
        if len(post) == 3:  # frame 2
            raise RuntimeError("post-processing broke")
        return real(*args, **kwargs)

    polls = []

    def should_stop():  # 2 polls a frame; from frame 3 on, time for the worker to fail
        polls.append(1)
        if len(polls) > 6:
            time.sleep(0.3)
        return False

    monkeypatch.setattr(segment_module, "probabilities_to_labels", failing)
    config = CONFIG.replace(overlap_frames=overlap)
    results = segment_acquisition(movie, helpers.tiny_net(), config=config, should_stop=should_stop)
    assert [next(results).frame, next(results).frame] == [0, 1]
    with pytest.raises(RuntimeError, match="post-processing broke"):
        next(results)
    assert not workers()
    # overlapped, frame 3's network stops at its next batch (of 2), sequential it never starts
    assert len(polls) <= 7 if overlap else len(polls) == 6


def test_an_error_in_post_processing_leaves_no_file(helpers, movie_file, tmp_path, monkeypatch):
    def failing(*args, **kwargs):
        raise RuntimeError("post-processing broke")

    monkeypatch.setattr(segment_module, "probabilities_to_labels", failing)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(RuntimeError, match="post-processing broke"):
        segment_file(movie_file, out_dir=out, model=helpers.tiny_net(), config=CONFIG)
    assert list(out.iterdir()) == [] and not workers()


@pytest.mark.parametrize("overlap", [False, True])
def test_cancel_mid_run_yields_the_same_frames_and_leaves_no_thread(
    helpers, movie, overlap, movie_file, tmp_path
):
    def stop_after(n_polls):
        polls = []
        return lambda: polls.append(1) or len(polls) > n_polls

    config = CONFIG.replace(overlap_frames=overlap)
    results = segment_acquisition(
        movie, helpers.tiny_net(), config=config, should_stop=stop_after(5)
    )  # stops in frame 2's second batch
    assert [next(results).frame, next(results).frame] == [0, 1]
    with pytest.raises(Cancelled):
        next(results)
    assert not workers()
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(Cancelled):
        segment_file(
            movie_file, out_dir=out, model=helpers.tiny_net(), config=config,
            should_stop=stop_after(7),
        )  # fmt: skip
    assert list(out.iterdir()) == [] and not workers()


@pytest.mark.parametrize(("overlap", "most"), [(False, 1), (True, 2)])
def test_at_most_two_frames_are_in_flight(helpers, movie, monkeypatch, overlap, most):
    """A frame is in flight from the start of its network to the end of its measurement."""
    in_flight, peak = [0], [0]
    lock = threading.Lock()
    real_predict, real_post = segment_module._predict, segment_module.probabilities_to_labels
    real_measure = segment_module.measure_cells

    def predict(*args, **kwargs):
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        return real_predict(*args, **kwargs)

    def slow_post(*args, **kwargs):
        time.sleep(0.2)  # slower than the network: a queue would fill up
        return real_post(*args, **kwargs)

    def measure(*args, **kwargs):
        table = real_measure(*args, **kwargs)
        with lock:
            in_flight[0] -= 1
        return table

    monkeypatch.setattr(segment_module, "_predict", predict)
    monkeypatch.setattr(segment_module, "probabilities_to_labels", slow_post)
    monkeypatch.setattr(segment_module, "measure_cells", measure)
    config = CONFIG.replace(overlap_frames=overlap)
    results = list(segment_acquisition(movie, helpers.tiny_net(), config=config))
    assert len(results) == 5 and in_flight == [0] and peak == [most]


def test_the_pipeline_keeps_the_order_and_raises_an_earlier_frames_error_first():
    def stages(fail_second_stage_of=None, fail_first_stage_of=None):
        for frame in range(4):
            if frame == fail_first_stage_of:
                raise ValueError(f"first stage of {frame}")

            def finish(frame=frame):
                if frame == fail_second_stage_of:
                    raise KeyError(f"second stage of {frame}")
                time.sleep(0.01 * (4 - frame))  # later frames finish sooner: order still holds
                return frame

            yield finish

    assert list(FramePipeline().run(stages())) == [0, 1, 2, 3]
    got = []
    with pytest.raises(ValueError, match="first stage of 2"):
        got.extend(FramePipeline().run(stages(fail_first_stage_of=2)))
    assert got == [0, 1]  # frame 1 finished and given before the error, as one by one
    got.clear()
    with pytest.raises(KeyError, match="second stage of 1"):
        got.extend(FramePipeline().run(stages(fail_second_stage_of=1, fail_first_stage_of=2)))
    assert got == [0]
    results = FramePipeline().run(stages())
    assert next(results) == 0
    results.close()  # frame 1 was on the worker: joined
    assert not workers()


def test_overlap_frames_is_checked_and_round_trips():
    config = InferenceConfig(overlap_frames=False)
    assert InferenceConfig.from_dict(config.to_dict()) == config
    assert InferenceConfig().overlap_frames is True
    with pytest.raises(ValueError, match="overlap_frames must be True or False"):
        InferenceConfig(overlap_frames=1)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="thread niceness is Linux's")
def test_the_worker_is_nicer_than_the_caller():
    def niceness():
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    def stages():
        yield niceness

    mine = niceness()
    assert list(FramePipeline().run(stages())) == [min(mine + WORKER_NICENESS, 19)]
    assert niceness() == mine
