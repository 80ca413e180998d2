"""Segment many files on a pool of workers: this machine's cores or a dask.distributed cluster.

:func:`iter_segment_files` (and :func:`segment_files`) is the core of ``dmqpm segment``. With
one worker and no scheduler it calls :func:`~napari_dmqpm.inference.segment_file` per file in
this process. Otherwise it submits one task per file, and one per frame of a multi-frame file,
to a dask.distributed cluster (a local one of ``workers`` processes, or the one at
``scheduler``); the client streams each frame into its file's outputs as it comes back, with
the same atomic writer as the in-process path, so the files are identical to its own and the
client's memory does not grow with the number of frames (the client's side is in
:mod:`~napari_dmqpm.inference.batch_client`, the workers' in
:mod:`~napari_dmqpm.inference.batch_worker`).
Workers read inputs and model folders at the absolute paths the client gives them: on a
cluster both must be on a shared file system. See docs/cluster.md.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

from napari_dmqpm.io import inspect_file
from napari_dmqpm.io.labels import without_labels
from napari_dmqpm.model.registry import LoadedModel, default_model_for, find_model

from .batch_client import (
    FileFailure,
    SchedulerConnectError,
    connect,
    file_failure,
    iter_on_cluster,
)
from .batch_worker import _Job, _n_cores, _pin_threads, _Spec
from .config import InferenceConfig, PostprocessConfig
from .outputs import check_out_dir, output_paths
from .segment import ModelLike, SegmentFileResult, segment_file
from .tiling import ProgressCallback

__all__ = [
    "FileFailure",
    "SchedulerConnectError",
    "cap_workers",
    "iter_segment_files",
    "segment_files",
]

_INSTALL_HINT = "pip install napari-dmqpm[cluster]"
_log = logging.getLogger(__name__)


def segment_files(
    paths: Sequence[str | os.PathLike], **options: Any
) -> list[SegmentFileResult | FileFailure]:
    """Segment files into ``<stem>_labels.tif`` and ``<stem>_cells.csv``, on a pool if asked.

    Parameters
    ----------
    paths : sequence of str or path-like
        Input files (any format of docs/formats.md).
    **options
        The keyword-only options of :func:`iter_segment_files`.

    Returns
    -------
    list of SegmentFileResult (and FileFailure with ``keep_going``)
        One per input, in the order of ``paths``.
    """
    order = {output_paths(path, options.get("out_dir", "."))[0]: i for i, path in enumerate(paths)}
    order.update({Path(path): i for i, path in enumerate(paths)})  # failures name the input
    results = list(iter_segment_files(paths, **options))

    def position(result: SegmentFileResult | FileFailure) -> int:
        if isinstance(result, FileFailure):
            return order[result.path]
        return order[result.labels_path]

    return sorted(results, key=position)


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
    frames: Sequence[int] | None = None,
    keep_going: bool = False,
) -> Generator[SegmentFileResult | FileFailure, None, None]:
    """Segment files, yielding each file's result once all of its outputs are written.

    Parameters
    ----------
    paths : sequence of str or path-like
        Input files; their output names (:func:`~napari_dmqpm.inference.output_paths`) must
        differ. Labels images among them (``*_labels.tif``) are skipped with a logged
        warning each (:func:`napari_dmqpm.io.labels.without_labels`).
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
    frames : sequence of int, optional
        Time points to segment in every file, as in ``segment_file`` (all when None). In
        process only: a pool with ``frames`` is a ``ValueError``.
    keep_going : bool
        A file that fails with a ``ValueError`` or ``OSError`` (unreadable, a background that
        cannot be fitted, ...) yields a :class:`FileFailure` naming it, and the other files
        are segmented; a full or read-only disk still ends the batch. In process and on a
        pool alike (there, a task that fails so after its retries fails its file; the
        file's other frames are dropped). Default: any error ends the batch.

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
    Each file's outputs are written by the client when its last task is done: all complete or
    all absent. On the first failed task (without ``keep_going``, or a failure that ends the
    batch), or Ctrl+C, the remaining tasks are cancelled and the client is closed; the files
    finished by then stay, the others are not written.
    """
    _check_pool_options(scheduler, scheduler_file, workers, torch_threads, retries, connect_timeout)
    config = config or InferenceConfig()
    out_dir = Path(out_dir)
    paths = without_labels(paths, kind=(read_options or {}).get("kind"))
    targets = _check_targets(paths, out_dir, overwrite)
    if scheduler is None and scheduler_file is None and workers == 1:
        if isinstance(model, (str, os.PathLike)):
            find_model(model)  # a wrong --model fails once, before any file is read
        _pin_threads(torch_threads)
        return _iter_in_process(
            paths, out_dir, model, config, postprocess, read_options, alpha_um3_per_pg,
            overwrite, progress, frames, keep_going,
        )  # fmt: skip
    if frames is not None:
        raise ValueError(
            f"frames are segmented in this process only; got frames={list(frames)!r} with "
            f"workers={workers}, scheduler={scheduler!r}, scheduler_file={scheduler_file!r}"
        )
    distributed = _import_distributed()
    read_options = dict(read_options or {})
    jobs, failures = _plan_jobs(paths, model, read_options, keep_going=keep_going)
    if not jobs:  # every file failed before any work (keep_going): no pool to start
        return (failure for failure in failures)  # a generator: closing() closes it
    if scheduler is None and scheduler_file is None:  # our own pool: no larger than useful
        workers, note = cap_workers(workers, n_tasks=len(jobs))
        if note is not None:
            _log.warning(note)
    if torch_threads is None and scheduler is None and scheduler_file is None:
        torch_threads = max(1, _n_cores() // workers)  # our own local pool
    spec = _Spec(config, postprocess, read_options, alpha_um3_per_pg, torch_threads)
    connection = connect(distributed, scheduler, scheduler_file, workers, connect_timeout)
    return iter_on_cluster(
        connection, jobs, spec, targets, overwrite, retries, progress,
        paths=paths, failures=failures, keep_going=keep_going,
    )  # fmt: skip


#: Memory of one local worker process (torch, a model, a tile's buffers; 12 used 3.5 GB).
WORKER_BYTES = 512 * 2**20


def cap_workers(workers: int, *, n_tasks: int | None = None) -> tuple[int, str | None]:
    """The size of a local pool: ``workers`` at most the cores, the memory and the tasks.

    Parameters
    ----------
    workers : int
        The processes asked for.
    n_tasks : int, optional
        Tasks to run (no more workers than tasks).

    Returns
    -------
    n_workers : int
        At least 1.
    note : str or None
        Why ``workers`` was lowered (cores, memory at :data:`WORKER_BYTES` each); None when it
        was not, or only to the number of tasks.
    """
    from napari_dmqpm.io.limits import format_bytes, memory_budget

    cores = _n_cores()
    budget, why = memory_budget()
    by_memory = max(1, budget // WORKER_BYTES)
    n_workers = max(1, min(workers, cores, by_memory))
    reasons = []
    if cores < workers:
        reasons.append(f"{cores} cores")
    if by_memory < workers:
        reasons.append(f"{why} at about {format_bytes(WORKER_BYTES)} per worker")
    note = None
    if n_workers < workers:
        note = f"workers={workers} lowered to {n_workers}: {' and '.join(reasons)}"
    if n_tasks is not None:
        n_workers = max(1, min(n_workers, n_tasks))
    return n_workers, note


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


def _check_targets(paths, out_dir: Path, overwrite: bool) -> list[tuple[Path, Path, Path]]:
    """Every input's output names: distinct, and free unless ``overwrite`` (before any work)."""
    if not paths:
        raise ValueError("paths must name at least one input file; got none")
    targets = [output_paths(path, out_dir) for path in paths]
    seen: dict[Path, str | os.PathLike] = {}
    for path, (labels_path, *_) in zip(paths, targets, strict=True):
        if labels_path in seen:
            raise ValueError(
                f"inputs {seen[labels_path]} and {path} would both write {labels_path.name}; "
                "segment them into different output folders"
            )
        seen[labels_path] = path
    check_out_dir(out_dir, tuple(p for pair in targets for p in pair), overwrite)
    return targets


def _iter_in_process(
    paths, out_dir, model, config, postprocess, read_options, alpha, overwrite, progress, frames,
    keep_going=False,
) -> Generator[SegmentFileResult | FileFailure, None, None]:  # fmt: skip
    for path in paths:
        try:
            result = segment_file(
                path, out_dir=out_dir, model=model, config=config, postprocess=postprocess,
                read_options=read_options, alpha_um3_per_pg=alpha, overwrite=overwrite,
                progress=progress, frames=frames,
            )  # fmt: skip
        except (ValueError, OSError) as error:
            failure = file_failure(path, error) if keep_going else None
            if failure is None:
                raise
            yield failure
            continue
        yield result


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


def _plan_jobs(
    paths, model: ModelLike, read_options: dict[str, Any], *, keep_going: bool = False
) -> tuple[list[_Job], list[FileFailure]]:
    """One job per single-frame file, one per frame of a multi-frame file (headers only).

    With ``keep_going`` a file whose header cannot be read is a :class:`FileFailure` instead.
    """
    jobs: list[_Job] = []
    failures: list[FileFailure] = []
    for index, path in enumerate(paths):
        try:
            info = inspect_file(path, kind=read_options.get("kind"))
        except (ValueError, OSError) as error:
            failure = file_failure(path, error) if keep_going else None
            if failure is None:
                raise
            failures.append(failure)
            continue
        folder = _model_folder(model, info.kind)
        where = str(Path(path).resolve())
        jobs.extend(_Job(index, where, folder, t, info.n_frames) for t in range(info.n_frames))
    return jobs, failures
