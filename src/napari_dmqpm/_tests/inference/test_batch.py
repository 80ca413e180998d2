"""Batch segmentation on a dask.distributed cluster: same files as in process, and the faults.

A loopback cluster of two in-process (thread) workers serves most tests (it starts in about a
second and lets a test patch what the workers call); the worker-crash test needs real worker
processes, so it starts its own.
"""

import errno
import json
import logging
import os
import socket
import sys
import time

import numpy as np
import pytest
import tifffile
import torch

from napari_dmqpm.inference import InferenceConfig, backends, batch_worker
from napari_dmqpm.inference.batch import SchedulerConnectError, segment_files
from napari_dmqpm.model import THREE_CLASS, DMQPMNet, ModelConfig, save_checkpoint
from napari_dmqpm.simulation import write_dataset

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A 3-frame time-lapse and two single frames, a tiny checkpoint, the in-process outputs."""
    root = tmp_path_factory.mktemp("batch")
    write_dataset(root / "lapse", n=1, seed=0, shape=(48, 56), n_frames=3)
    write_dataset(root / "single", n=2, seed=1, shape=(40, 48))
    paths = [root / "lapse" / "sim_0000.tif", root / "single" / "sim_0000.tif"]
    paths[1] = paths[1].rename(root / "single" / "field_a.tif")
    paths.append(root / "single" / "sim_0001.tif")
    torch.manual_seed(0)
    config = ModelConfig(
        features=(4, 8, 16), strides=(1, 2, 2), fusion_stage=1, n_heads=2, heads=(THREE_CLASS,)
    )
    model = save_checkpoint(root / "tiny", DMQPMNet(config).eval())
    reference = root / "reference"
    reference.mkdir()
    with pytest.MonkeyPatch.context() as patch:  # module scope: conftest's pin is not on yet
        patch.setattr(backends, "AUTO_ORDER", ())  # auto is torch, as in the tests (the CSV
        segment_files(paths, out_dir=reference, model=str(model))  # says which ran)
    return paths, model, reference


@pytest.fixture(scope="module")
def cluster():
    """Two single-threaded workers on loopback TCP, in this process."""
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=False,
        protocol="tcp://",
        host="127.0.0.1",
        dashboard_address=":0",  # no fixed port: 8787 may be taken
        silence_logs=logging.CRITICAL,
    ) as local:
        yield local


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    """Workers in this process pin torch's (process-wide) threads; put them back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _same_as_reference(out, reference, names=None):
    names = names or sorted(path.name for path in reference.iterdir())
    for name in names:
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name
    return True


def _complete_or_absent(out, reference, paths):
    """Each input's three outputs are all there (and right) or all missing."""
    written = 0
    for path in paths:
        pair = [f"{path.stem}_labels.tif", f"{path.stem}_cells.csv", f"{path.stem}_frames.csv"]
        present = [(out / name).exists() for name in pair]
        assert present[0] == present[1] == present[2], pair
        if present[0]:
            written += _same_as_reference(out, reference, pair)
    return written


def _temporary_files(out):
    return [path.name for path in out.iterdir() if path.name.startswith(".")]


def test_cluster_writes_the_in_process_files_with_one_task_per_frame(inputs, cluster, tmp_path):
    paths, model, reference = inputs
    calls = []
    results = segment_files(
        paths,
        out_dir=tmp_path,
        model=str(model),
        scheduler=cluster.scheduler_address,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert _same_as_reference(tmp_path, reference)
    assert calls[0] == (0, 5) and calls[-1] == (5, 5)  # 3 frames + 2 single files
    assert [r.labels_path.name for r in results] == [f"{p.stem}_labels.tif" for p in paths]
    assert [r.n_frames for r in results] == [3, 1, 1] and results[0].model == "tiny"


def test_the_model_is_loaded_once_not_per_task(inputs, cluster, tmp_path, monkeypatch):
    from napari_dmqpm.model import checkpoint, registry

    paths, model, reference = inputs
    registry.clear_model_cache()
    loads = []
    original = checkpoint.load_checkpoint

    def counted(*args, **kwargs):
        loads.append(args)
        return original(*args, **kwargs)

    for module in (checkpoint, registry):  # the registry may import it at the top or lazily
        if hasattr(module, "load_checkpoint"):
            monkeypatch.setattr(module, "load_checkpoint", counted)
    segment_files(paths, out_dir=tmp_path, model=str(model), scheduler=cluster.scheduler_address)
    assert len(loads) == 1  # both workers live in this process: one cache, one load
    assert _same_as_reference(tmp_path, reference)


def test_a_failing_task_is_retried_and_an_exhausted_one_names_the_frame(
    inputs, cluster, tmp_path, monkeypatch
):
    paths, model, reference = inputs
    failures = []
    original = batch_worker.read_acquisition

    def flaky(path, **options):
        if len(failures) < 2:
            failures.append(path)
            raise OSError(errno.EIO, "Input/output error", path)
        return original(path, **options)

    monkeypatch.setattr(batch_worker, "read_acquisition", flaky)
    address = cluster.scheduler_address
    (tmp_path / "a").mkdir()
    segment_files(paths, out_dir=tmp_path / "a", model=str(model), scheduler=address, retries=2)
    assert len(failures) == 2 and _same_as_reference(tmp_path / "a", reference)

    failures.clear()
    (tmp_path / "b").mkdir()
    with pytest.raises(RuntimeError, match=r"field_a.tif failed on the cluster \(after 0 retries"):
        segment_files(
            paths[1:2], out_dir=tmp_path / "b", model=str(model), scheduler=address, retries=0
        )
    assert not any((tmp_path / "b").iterdir())


def test_input_errors_are_raised_as_in_process(inputs, cluster, tmp_path):
    paths, model, _ = inputs
    phase_map = tmp_path / "phase.tif"
    tifffile.imwrite(phase_map, np.zeros((32, 32), np.float32))
    (tmp_path / "out").mkdir()
    with pytest.raises(ValueError, match="needs the four angle images"):
        segment_files(
            [phase_map],
            out_dir=tmp_path / "out",
            model=str(model),
            scheduler=cluster.scheduler_address,
        )
    assert not any((tmp_path / "out").iterdir())


def _fill_the_disk_at_the_second_table(monkeypatch):
    """Rows of the second CSV written stop part-way with ENOSPC, as on a full disk."""
    from napari_dmqpm.inference.outputs import OutputStream

    original = OutputStream.append_rows
    streams = []

    def fill_up(self, table):
        if self not in streams:
            streams.append(self)
        if len(streams) == 2:
            self.table.write("0,1,")
            raise OSError(errno.ENOSPC, "No space left on device", self.table.name)
        return original(self, table)

    monkeypatch.setattr(OutputStream, "append_rows", fill_up)
    return _count_placed(monkeypatch)


def _count_placed(monkeypatch):
    """A list that gets the targets of every pair of outputs moved into place."""
    from napari_dmqpm.inference import outputs

    original, placed = outputs._place_all, []

    def place_all(staged, overwrite):
        original(staged, overwrite)
        placed.append([target for _, target in staged])

    monkeypatch.setattr(outputs, "_place_all", place_all)
    return placed


def test_a_full_disk_leaves_nothing_under_the_final_names(inputs, cluster, tmp_path, monkeypatch):
    paths, model, reference = inputs
    placed = _fill_the_disk_at_the_second_table(monkeypatch)
    address = cluster.scheduler_address
    with pytest.raises(OSError, match="No space left") as info:
        segment_files(paths, out_dir=tmp_path, model=str(model), scheduler=address)
    assert info.value.errno == errno.ENOSPC
    # files are streamed side by side: those placed before the failure are whole and right,
    # the one that failed and those still open are absent
    assert len(placed) < len(paths)
    assert _complete_or_absent(tmp_path, reference, paths) == len(placed)
    assert not _temporary_files(tmp_path)


def test_ctrl_c_cancels_the_tasks_and_leaves_outputs_complete_or_absent(inputs, cluster, tmp_path):
    paths, model, reference = inputs

    def interrupt(done, total):
        if done == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        segment_files(
            paths,
            out_dir=tmp_path,
            model=str(model),
            scheduler=cluster.scheduler_address,
            progress=interrupt,
        )
    assert _complete_or_absent(tmp_path, reference, paths) >= 1
    assert not _temporary_files(tmp_path)
    deadline = time.monotonic() + 5
    while cluster.scheduler.tasks and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not cluster.scheduler.tasks  # cancelled and released, nothing left running
    assert not cluster.scheduler.clients.keys() - {"fire-and-forget"}


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_scheduler_fails_within_the_timeout_naming_it(inputs, tmp_path):
    paths, model, _ = inputs
    address = f"tcp://127.0.0.1:{_free_port()}"
    start = time.monotonic()
    with pytest.raises(SchedulerConnectError, match=address):
        segment_files(
            paths, out_dir=tmp_path, model=str(model), scheduler=address, connect_timeout=1
        )
    assert time.monotonic() - start < 5
    assert not any(tmp_path.iterdir())


def test_a_scheduler_file_is_read_and_a_missing_one_is_a_clear_error(inputs, cluster, tmp_path):
    paths, model, reference = inputs
    scheduler_file = tmp_path / "scheduler.json"
    run = {"model": str(model), "scheduler_file": scheduler_file, "connect_timeout": 0.5}
    start = time.monotonic()
    with pytest.raises(SchedulerConnectError, match="scheduler.json"):
        segment_files(paths[1:], out_dir=tmp_path, **run)
    assert time.monotonic() - start < 5 and not any(tmp_path.iterdir())
    scheduler_file.write_text(json.dumps({"address": cluster.scheduler_address}))
    (tmp_path / "out").mkdir()
    segment_files(paths[1:], out_dir=tmp_path / "out", **run)
    assert _same_as_reference(tmp_path / "out", reference, [f"{paths[1].stem}_labels.tif"])


def test_options_and_outputs_are_checked_before_any_work(inputs, tmp_path, monkeypatch, helpers):
    paths, model, _ = inputs
    run = {"out_dir": tmp_path, "model": str(model)}
    with pytest.raises(ValueError, match="workers must be an integer >= 1; got workers=0"):
        segment_files(paths, **run, workers=0)
    with pytest.raises(ValueError, match="workers=2 sets the size of a local pool"):
        segment_files(paths, **run, workers=2, scheduler="tcp://127.0.0.1:1")
    with pytest.raises(ValueError, match="would both write sim_0000_labels.tif"):
        segment_files([paths[0], paths[0]], **run)
    with pytest.raises(ValueError, match="not a network object"):
        segment_files(paths, out_dir=tmp_path, model=helpers.tiny_net(), workers=2)
    (tmp_path / "sim_0001_cells.csv").write_text("mine")
    with pytest.raises(FileExistsError, match="sim_0001_cells.csv"):
        segment_files(paths, **run, workers=2)
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if it were not installed
    (tmp_path / "x").mkdir()
    with pytest.raises(ImportError, match=r"pip install napari-dmqpm\[cluster\]"):
        segment_files(paths[:1], out_dir=tmp_path / "x", model=str(model), workers=2)
    assert sorted(os.listdir(tmp_path)) == ["sim_0001_cells.csv", "x"]
    assert not any((tmp_path / "x").iterdir())


class CrashOnce(distributed.WorkerPlugin):
    """Kills the worker process the first time any worker starts one of our tasks."""

    def __init__(self, marker):
        self.marker = str(marker)

    def transition(self, key, start, finish, **kwargs):
        if finish != "executing" or "dmqpm-segment" not in str(key):
            return
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
        os._exit(1)  # the worker dies with the task running; its nanny starts a new one


@pytest.mark.slow
def test_a_task_whose_worker_dies_runs_again_elsewhere(inputs, tmp_path):
    paths, model, reference = inputs
    marker = tmp_path / "crashed"
    with (
        distributed.LocalCluster(
            n_workers=2,  # faster than waiting for the nanny to restart a lone worker
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",  # no fixed port: 8787 may be taken
            worker_dashboard_address=None,
            silence_logs=logging.CRITICAL,
        ) as local,
        distributed.Client(local, set_as_default=False) as client,
    ):
        client.register_plugin(CrashOnce(marker))
        config = InferenceConfig(device="cpu", backend="torch")  # worker processes: unpinned
        out = tmp_path / "out"
        out.mkdir()
        segment_files(paths, out_dir=out, model=str(model), config=config, scheduler=client)
        assert marker.exists()  # a worker did die
        assert _same_as_reference(out, reference)
        assert client.status == "running"  # the caller's client is left open


def _frame_part(frame: int, n_frames: int):
    from napari_dmqpm.inference import measure_cells
    from napari_dmqpm.inference.batch_worker import _Part

    labels = np.zeros((16, 24), np.uint32)
    labels[2 : 6 + frame, 3:9], labels[9:14, 12 : 14 + frame] = 1, 2
    phase = np.linspace(0.0, 1.0, labels.size, dtype=np.float32).reshape(labels.shape)
    table = measure_cells(labels, phase, pixel_size_um=0.5, frame=frame)
    return _Part(frame, labels, table, n_frames, True, 0.5)


def test_frames_arriving_out_of_order_stream_into_the_in_order_files(tmp_path, monkeypatch):
    """The client writes each frame's labels at once and the rows in frame order."""
    from napari_dmqpm.inference.batch_client import _FileOutputs
    from napari_dmqpm.inference.measure import concat_tables
    from napari_dmqpm.inference.outputs import output_paths, write_outputs

    parts = [_frame_part(t, 4) for t in range(4)]
    (tmp_path / "expected").mkdir()
    (tmp_path / "streamed").mkdir()
    expected = output_paths("lapse.tif", tmp_path / "expected")
    labels = np.stack([p.labels for p in parts])
    write_outputs(expected, labels, concat_tables([p.table for p in parts]), 0.5, overwrite=False)
    monkeypatch.setattr("napari_dmqpm.inference.batch_client.find_model", lambda folder: _Info())
    targets = output_paths("lapse.tif", tmp_path / "streamed")
    outputs = _FileOutputs(parts[2], targets, overwrite=False)
    for t in (2, 0, 3, 1):
        outputs.add(parts[t])
        assert not targets[0].exists()  # placed only when the file is whole
    result = outputs.close("model-folder")
    assert result.n_frames == 4 and result.n_cells == 8
    for made, wanted in zip(targets, expected, strict=True):
        assert made.read_bytes() == wanted.read_bytes(), made.name
    assert not _temporary_files(tmp_path / "streamed")


def test_an_aborted_file_leaves_nothing(tmp_path):
    from napari_dmqpm.inference.batch_client import _FileOutputs
    from napari_dmqpm.inference.outputs import output_paths

    targets = output_paths("lapse.tif", tmp_path)
    outputs = _FileOutputs(_frame_part(0, 3), targets, overwrite=False)
    outputs.add(_frame_part(0, 3))
    outputs.abort(KeyboardInterrupt, KeyboardInterrupt(), None)
    assert not any(tmp_path.iterdir())


class _Info:
    name, sha256 = "tiny", "0" * 64


def test_with_keep_going_a_failing_file_does_not_stop_the_others_on_a_cluster(
    inputs, cluster, tmp_path
):
    from napari_dmqpm.inference.batch import FileFailure, iter_segment_files

    paths, model, reference = inputs
    corrupt = tmp_path / "corrupt.tif"  # its header cannot be read: fails before any task
    corrupt.write_bytes(b"II*\x00" + b"\xff" * 200)
    phase_map = tmp_path / "phase.tif"  # read on a worker, refused by the angles model
    tifffile.imwrite(phase_map, np.zeros((32, 32), np.float32))
    out = tmp_path / "out"
    out.mkdir()
    given = [paths[0], corrupt, paths[1], phase_map, paths[2]]
    results = list(
        iter_segment_files(
            given, out_dir=out, model=str(model), scheduler=cluster.scheduler_address,
            keep_going=True,
        )
    )  # fmt: skip
    failures = [result for result in results if isinstance(result, FileFailure)]
    assert [failure.path for failure in failures] == [corrupt, phase_map]
    assert failures[0].message.startswith(f"{corrupt}: ")
    assert str(phase_map) in failures[1].message
    assert "needs the four angle images" in failures[1].message
    assert len(results) == 5 and _same_as_reference(out, reference)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in reference.iterdir())


def test_a_task_that_fails_after_its_retries_fails_its_file_only(
    inputs, cluster, tmp_path, monkeypatch
):
    from napari_dmqpm.inference.batch import FileFailure, iter_segment_files

    paths, model, reference = inputs
    original = batch_worker._read_frame

    def broken_frame(path, options, frame):  # frame 1 of the time-lapse cannot be read, ever
        if "lapse" in path and frame == 1:
            raise OSError(errno.EIO, "Input/output error", path)
        return original(path, options, frame)

    monkeypatch.setattr(batch_worker, "_read_frame", broken_frame)
    out = tmp_path / "out"
    out.mkdir()
    results = list(
        iter_segment_files(
            paths, out_dir=out, model=str(model), scheduler=cluster.scheduler_address,
            retries=0, keep_going=True,
        )
    )  # fmt: skip
    failures = [result for result in results if isinstance(result, FileFailure)]
    assert [failure.path for failure in failures] == [paths[0]]
    assert "(frame 1) failed on the cluster (after 0 retries): OSError" in failures[0].message
    assert _temporary_files(out) == []
    names = sorted(p.name for p in out.iterdir())  # nothing of the time-lapse, not even a part
    assert names == [f"{stem}_{end}" for stem in ("field_a", "sim_0001")
                     for end in ("cells.csv", "frames.csv", "labels.tif")]  # fmt: skip
    assert _same_as_reference(out, reference, names)


def test_segment_files_keeps_the_input_order_with_a_failing_file(inputs, tmp_path):
    paths, model, reference = inputs
    corrupt = tmp_path / "corrupt.tif"
    corrupt.write_bytes(b"II*\x00" + b"\xff" * 200)
    (tmp_path / "out").mkdir()
    results = segment_files(
        [paths[2], corrupt, paths[1]], out_dir=tmp_path / "out", model=str(model), keep_going=True
    )
    assert [type(result).__name__ for result in results] == [
        "SegmentFileResult", "FileFailure", "SegmentFileResult"]  # fmt: skip
    assert results[1].path == corrupt and results[2].labels_path.name == "field_a_labels.tif"
