"""Segment many files on a pool of workers: this machine's cores or a dask.distributed cluster.

:func:`iter_segment_files` (and :func:`segment_files`) is the core of ``dmqpm segment``. With
one worker and no scheduler it calls :func:`~napari_dmqpm.inference.segment_file` per file in
this process. Otherwise it submits one task per file, and one per frame of a multi-frame file,
to a dask.distributed cluster (a local one of ``workers`` processes, or the one at
``scheduler``); the client gathers each file's frames in order and writes its outputs with the
same atomic writer, so the files are identical to the in-process ones. Workers read inputs and
model folders at the absolute paths the client gives them: on a cluster both must be on a
shared file system. See docs/cluster.md.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from napari_dmqpm.io import Acquisition, inspect_file, read_acquisition
from napari_dmqpm.model.checkpoint import CheckpointError
from napari_dmqpm.model.registry import LoadedModel, default_model_for, find_model

from .config import InferenceConfig, PostprocessConfig
from .measure import concat_tables
from .outputs import check_out_dir, output_paths, write_outputs
from .segment import ModelLike, SegmentFileResult, resolve_model, segment_acquisition, segment_file
from .tiling import ProgressCallback

#: Errors of the input (file, model, options): a task returns them instead of raising, so
#: dask does not retry what would fail again. Anything else (OSError, out of memory) is retried.
_INPUT_ERRORS = (ValueError, FileNotFoundError, CheckpointError)
_INSTALL_HINT = "pip install napari-dmqpm[cluster]"


class SchedulerConnectError(RuntimeError):
    """The dask scheduler could not be reached within the connect timeout."""


@dataclass(frozen=True)
class _Job:
    """One task: one frame of one file, with the model folder to run on it."""

    index: int
    path: str
    model: str
    frame: int
    n_frames: int


@dataclass(frozen=True)
class _Spec:
    """What every task shares (pickled once per task; small)."""

    config: InferenceConfig
    postprocess: PostprocessConfig | None
    read_options: dict[str, Any]
    alpha_um3_per_pg: float
    threads: int | dict[str, int] | None  # torch threads, or dask task slots per host


@dataclass(frozen=True)
class _Part:
    """What a task sends back: one frame's labels and table, and how the file is laid out."""

    frame: int
    labels: np.ndarray
    table: dict[str, np.ndarray]
    n_frames: int
    is_timelapse: bool
    pixel_size_um: float | None


def segment_files(paths: Sequence[str | os.PathLike], **options: Any) -> list[SegmentFileResult]:
    """Segment files into ``<stem>_labels.tif`` and ``<stem>_cells.csv``, on a pool if asked.

    Parameters
    ----------
    paths : sequence of str or path-like
        Input files (any format of docs/formats.md).
    **options
        The keyword-only options of :func:`iter_segment_files`.

    Returns
    -------
    list of SegmentFileResult
        One per input, in the order of ``paths``.
    """
    order = {output_paths(path, options.get("out_dir", "."))[0]: i for i, path in enumerate(paths)}
    results = list(iter_segment_files(paths, **options))
    return sorted(results, key=lambda result: order[result.labels_path])


def iter_segment_files(
    paths: Sequence[str | os.PathLike],
    *,
    out_dir: str | os.PathLike,
    model: ModelLike = None,
    config: InferenceConfig | None = None,
    postprocess: PostprocessConfig | None = None,
    read_options: dict[str, Any] | None = None,
    alpha_um3_per_pg: float = 0.18,
    overwrite: bool = False,
    scheduler: Any = None,
    scheduler_file: str | os.PathLike | None = None,
    workers: int = 1,
    torch_threads: int | None = None,
    retries: int = 2,
    connect_timeout: float = 10.0,
    progress: ProgressCallback | None = None,
) -> Iterator[SegmentFileResult]:
    """Segment files, yielding each file's result once both of its outputs are written.

    Parameters
    ----------
    paths : sequence of str or path-like
        Input files; their output names (:func:`~napari_dmqpm.inference.output_paths`) must
        differ.
    out_dir : str or path-like
        Existing, writable folder, seen by this process (the client), which writes the outputs.
    model, config, postprocess, read_options, alpha_um3_per_pg, overwrite
        As in :func:`~napari_dmqpm.inference.segment_file`. On a pool ``model`` must be a name,
        a checkpoint folder or a ``LoadedModel`` (its folder is used), not a bare network.
    scheduler : str or distributed.Client, optional
        Address of a dask scheduler (``"tcp://host:8786"``), or a connected client (not closed
        here). None: no cluster; ``workers`` says how many local processes.
    scheduler_file : str or path-like, optional
        A dask scheduler file (``dask scheduler --scheduler-file``), instead of ``scheduler``.
    workers : int
        Local worker processes when there is no scheduler (default 1: run in this process).
    torch_threads : int, optional
        Torch threads of each worker process. Default: the cores this process may use divided
        by ``workers``; on a cluster, each host's cores divided by the dask threads of all
        workers on that host at submission (1 on hosts that join later). In process (one
        worker) torch is left alone unless this is given.
    retries : int
        How many times a task that raised an unexpected error (OSError, out of memory) is run
        again. A task whose worker died is rescheduled by dask itself (``allowed-failures``).
    connect_timeout : float
        Seconds to wait for the scheduler (or its scheduler file) before giving up.
    progress : callable, optional
        ``progress(done, total)``. In process: per file, in tiles, as ``segment_file``. On a
        pool: tasks finished over all tasks of the batch.

    Returns
    -------
    iterator of SegmentFileResult
        In the order the files finish (input order in process). Options, inputs, output names
        and the model are checked before this returns, before any work.

    Raises
    ------
    FileExistsError
        An output exists and ``overwrite`` is False.
    SchedulerConnectError
        The scheduler at ``scheduler`` did not answer within ``connect_timeout`` seconds.
    ImportError
        A pool is asked for but dask.distributed is not installed.

    Notes
    -----
    Each file's outputs are written by the client when its last task is done: both complete or
    both absent. On the first failed task, or Ctrl+C, the remaining tasks are cancelled and the
    client is closed; the files finished by then stay, the others are not written.
    """
    _check_pool_options(scheduler, scheduler_file, workers, torch_threads, retries, connect_timeout)
    config = config or InferenceConfig()
    out_dir = Path(out_dir)
    targets = _check_targets(paths, out_dir, overwrite)
    if scheduler is None and scheduler_file is None and workers == 1:
        _pin_threads(torch_threads)
        return _iter_in_process(
            paths, out_dir, model, config, postprocess, read_options, alpha_um3_per_pg,
            overwrite, progress,
        )  # fmt: skip
    distributed = _import_distributed()
    read_options = dict(read_options or {})
    jobs = _plan_jobs(paths, model, read_options)
    if torch_threads is None and scheduler is None and scheduler_file is None:
        torch_threads = max(1, _n_cores() // workers)  # our own local pool
    spec = _Spec(config, postprocess, read_options, alpha_um3_per_pg, torch_threads)
    connection = _connect(distributed, scheduler, scheduler_file, workers, connect_timeout)
    return _iter_on_cluster(connection, jobs, spec, targets, overwrite, retries, progress)


def _check_pool_options(scheduler, scheduler_file, workers, torch_threads, retries, timeout):
    for name, value, low in (("workers", workers, 1), ("retries", retries, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}; got {name}={value!r}")
    if torch_threads is not None and (type(torch_threads) is not int or torch_threads < 1):
        raise ValueError(f"torch_threads must be None or an integer >= 1; got {torch_threads!r}")
    if not (isinstance(timeout, (int, float)) and 0 < timeout < float("inf")):
        raise ValueError(f"connect_timeout must be a positive number of seconds; got {timeout!r}")
    if scheduler is not None and scheduler_file is not None:
        raise ValueError(f"give scheduler or scheduler_file, not both; got {scheduler=!r}")
    if (scheduler is not None or scheduler_file is not None) and workers != 1:
        raise ValueError(
            f"workers={workers} sets the size of a local pool; with a scheduler the cluster's "
            "own workers run the tasks"
        )


def _check_targets(paths, out_dir: Path, overwrite: bool) -> list[tuple[Path, Path]]:
    """Every input's output names: distinct, and free unless ``overwrite`` (before any work)."""
    if not paths:
        raise ValueError("paths must name at least one input file; got none")
    targets = [output_paths(path, out_dir) for path in paths]
    seen: dict[Path, str | os.PathLike] = {}
    for path, (labels_path, _) in zip(paths, targets, strict=True):
        if labels_path in seen:
            raise ValueError(
                f"inputs {seen[labels_path]} and {path} would both write {labels_path.name}; "
                "segment them into different output folders"
            )
        seen[labels_path] = path
    check_out_dir(out_dir, tuple(p for pair in targets for p in pair), overwrite)
    return targets


def _iter_in_process(
    paths, out_dir, model, config, postprocess, read_options, alpha, overwrite, progress
) -> Iterator[SegmentFileResult]:
    for path in paths:
        yield segment_file(
            path, out_dir=out_dir, model=model, config=config, postprocess=postprocess,
            read_options=read_options, alpha_um3_per_pg=alpha, overwrite=overwrite,
            progress=progress,
        )  # fmt: skip


def _import_distributed():
    try:
        import distributed
    except ImportError as err:
        raise ImportError(
            f"running on several workers or a cluster needs dask.distributed: {_INSTALL_HINT}"
        ) from err
    return distributed


def _model_folder(model: ModelLike, kind: str) -> str:
    """The absolute checkpoint folder a worker loads (a name is looked up here, once)."""
    if not isinstance(model, (str, os.PathLike, LoadedModel, type(None))):
        raise ValueError(
            "a pool of workers loads the model from a folder; pass a model name or checkpoint "
            f"folder, not a network object; got model of type {type(model).__name__}"
        )
    if isinstance(model, LoadedModel):
        return str(model.info.path.resolve())
    return str(find_model(default_model_for(kind) if model is None else model).path.resolve())


def _plan_jobs(paths, model: ModelLike, read_options: dict[str, Any]) -> list[_Job]:
    """One job per single-frame file, one per frame of a multi-frame file (headers only)."""
    jobs = []
    for index, path in enumerate(paths):
        info = inspect_file(path, kind=read_options.get("kind"))
        folder = _model_folder(model, info.kind)
        where = str(Path(path).resolve())
        jobs.extend(_Job(index, where, folder, t, info.n_frames) for t in range(info.n_frames))
    return jobs


def _n_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS says, as under SLURM)."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else os.cpu_count() or 1


def _connect(distributed, scheduler, scheduler_file, workers: int, timeout: float):
    """A client of the given scheduler, or of a new local cluster of ``workers`` processes."""
    if scheduler is not None and not isinstance(scheduler, str):
        return contextlib.nullcontext(scheduler)  # the caller's client: not ours to close
    if scheduler is None and scheduler_file is None:
        return _local_cluster(distributed, workers)
    where = scheduler
    if scheduler_file is not None:  # read here: distributed waits for a missing file forever
        scheduler = _address_in(os.fspath(scheduler_file), timeout)
        where = f"{scheduler} (from {os.fspath(scheduler_file)})"
    try:
        return distributed.Client(scheduler, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as err:
        raise SchedulerConnectError(
            f"could not reach the dask scheduler at {where!r} within {timeout:g} s ({err}); "
            "is `dask scheduler` running there and its port open from here?"
        ) from err


def _address_in(scheduler_file: str, timeout: float) -> str:
    """The address in a dask scheduler file, waiting up to ``timeout`` s for it to appear."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with open(scheduler_file) as handle:
                return str(json.load(handle)["address"])
        except (FileNotFoundError, ValueError, KeyError, TypeError) as err:
            if time.monotonic() >= deadline:
                raise SchedulerConnectError(
                    f"no dask scheduler address in the scheduler file {scheduler_file!r} after "
                    f"{timeout:g} s ({type(err).__name__}: {err})"
                ) from err
        time.sleep(0.1)


@contextlib.contextmanager
def _local_cluster(distributed, workers: int):
    cluster = distributed.LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=":0",  # no fixed port: 8787 may be taken
        worker_dashboard_address=None,
        silence_logs=logging.ERROR,
        preload=[__name__],  # dask_setup below: Ctrl+C is the client's to handle
    )
    with cluster, distributed.Client(cluster, set_as_default=False) as client:
        yield client


def _slots_by_host(client) -> dict[str, int]:
    """Dask threads (tasks that run at once) of all workers on each host."""
    from distributed.comm import get_address_host

    slots: dict[str, int] = {}
    for address, nthreads in client.nthreads().items():
        host = get_address_host(address)
        slots[host] = slots.get(host, 0) + int(nthreads)
    return slots


def _iter_on_cluster(
    connection, jobs: list[_Job], spec: _Spec, targets, overwrite: bool, retries: int, progress
) -> Iterator[SegmentFileResult]:
    with connection as client:
        if spec.threads is None:
            spec = dataclasses.replace(spec, threads=_slots_by_host(client))
        batch = uuid.uuid4().hex[:8]
        futures = {}
        try:
            for job in jobs:
                key = f"dmqpm-segment-{batch}-{job.index}-{job.frame}"
                future = client.submit(_segment_task, job, spec, key=key, retries=retries)
                futures[future] = job
            yield from _collect(client, futures, targets, overwrite, retries, progress)
        finally:
            with contextlib.suppress(Exception):  # keep the error that got us here
                client.cancel(list(futures))  # the unfinished ones (Ctrl+C, a failed task)


def _collect(client, futures: dict, targets, overwrite: bool, retries: int, progress):
    """Write each file once all its tasks are back; raise the first failure."""
    from distributed import as_completed

    remaining = Counter(job.index for job in futures.values())
    parts: dict[int, list[_Part]] = {}
    total = len(futures)
    if progress is not None:
        progress(0, total)
    for done, future in enumerate(as_completed(list(futures), loop=client.loop), start=1):
        job = futures.pop(future)
        part = _result(future, job, retries)
        parts.setdefault(job.index, []).append(part)
        if progress is not None:
            progress(done, total)
        remaining[job.index] -= 1
        if not remaining[job.index]:
            yield _write_file(parts.pop(job.index), targets[job.index], job.model, overwrite)


def _result(future, job: _Job, retries: int) -> _Part:
    try:
        part = future.result()
    except Exception as err:
        where = job.path if job.n_frames == 1 else f"{job.path} (frame {job.frame})"
        raise RuntimeError(
            f"segmenting {where} failed on the cluster (after {retries} retries): "
            f"{type(err).__name__}: {err}"
        ) from err
    if isinstance(part, BaseException):
        raise part  # an input error, raised where the in-process loop would raise it
    return part


def _write_file(parts: list[_Part], targets, model_folder: str, overwrite: bool):
    """Assemble a file's frames in order and write both outputs atomically."""
    parts = sorted(parts, key=lambda part: part.frame)
    first = parts[0]
    labels = np.stack([part.labels for part in parts]).astype(np.uint32, copy=False)
    table = concat_tables([part.table for part in parts])
    stack = labels if first.is_timelapse or first.n_frames > 1 else labels[0]
    write_outputs(targets, stack, table, first.pixel_size_um, overwrite=overwrite)
    info = find_model(Path(model_folder))
    return SegmentFileResult(
        labels_path=targets[0],
        table_path=targets[1],
        n_frames=first.n_frames,
        n_cells=int(table["label"].size),
        model=info.name,
        model_sha256=info.sha256,
    )


# ----------------------------------------------------------------------------- worker side


def dask_setup(worker: Any) -> None:
    """Preload hook of the local pool's workers: they ignore Ctrl+C (SIGINT).

    A terminal sends Ctrl+C to every process of the pool; the client alone handles it,
    cancelling the tasks and closing the pool. Not meant for the workers of a shared cluster.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _segment_task(job: _Job, spec: _Spec) -> _Part | BaseException:
    """Run on a worker: segment one frame of one file (the model is cached per process)."""
    try:
        _pin_threads(_worker_threads(spec.threads))
        acquisition = _read_frame(job.path, spec.read_options, job.frame)
        model = resolve_model(job.model, kind=acquisition.kind, device=spec.config.device)
        (result,) = segment_acquisition(
            acquisition, model, config=spec.config, postprocess=spec.postprocess,
            frames=(job.frame,), alpha_um3_per_pg=spec.alpha_um3_per_pg,
            keep_probabilities=False,
        )  # fmt: skip
    except _INPUT_ERRORS as err:
        return err
    return _Part(
        result.frame, result.labels, result.table, acquisition.n_frames,
        acquisition.is_timelapse, acquisition.pixel_size_um,
    )  # fmt: skip


def _read_frame(path: str, options: dict[str, Any], frame: int) -> Acquisition:
    """Open a file lazily, as ``segment_file`` does, and read one frame only, here and now.

    The frame is computed with dask's synchronous scheduler: inside a task the default would
    be the cluster itself (a task waiting on tasks). It then stands for every frame (a
    broadcast view), so shapes are those of the file and memory is that of one frame.
    """
    acquisition = read_acquisition(path, **{"lazy": True, **options})
    if not acquisition.is_lazy:
        return acquisition
    import dask

    names = [
        name for name in ("phase", "angles", "modulation") if getattr(acquisition, name) is not None
    ]
    lazy = [getattr(acquisition, name) for name in names]
    read = dask.compute(*(array[frame] for array in lazy), scheduler="synchronous")
    views = (np.broadcast_to(np.asarray(f), a.shape) for f, a in zip(read, lazy, strict=True))
    return acquisition.replace(**dict(zip(names, views, strict=True)))


def _worker_threads(threads: int | dict[str, int] | None) -> int | None:
    """Torch threads for this worker: as given, else its host's cores over the host's slots.

    A worker on a host the client did not see at submission (a SLURM job that started later)
    gets one thread per task, as dask's own ``OMP_NUM_THREADS=1``: it never oversubscribes.
    """
    if not isinstance(threads, dict):
        return threads
    from distributed import get_worker
    from distributed.comm import get_address_host

    slots = threads.get(get_address_host(get_worker().address))
    return 1 if slots is None else max(1, _n_cores() // slots)


def _pin_threads(threads: int | None) -> None:
    """Set torch's intra-op threads of this process (left alone for None)."""
    if threads is None:
        return
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
