"""The client's side of a batch on a dask cluster: connect, submit, collect, write.

:func:`napari_dmqpm.inference.batch.iter_segment_files` plans the tasks and calls
:func:`connect` and :func:`iter_on_cluster`. The client streams each frame that comes back
into its file's outputs (:class:`_FileOutputs`), and :func:`file_failure` decides, here and for
the in-process loop, which errors fail one file and which end the batch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import logging
import os
import time
import uuid
from collections import Counter
from collections.abc import Generator
from pathlib import Path
from typing import Any

from napari_dmqpm.model.registry import find_model

from . import batch_worker
from .batch_worker import _Job, _Part, _segment_task, _Spec
from .frames import frame_status
from .outputs import stream_outputs
from .scheduler_probe import probe_scheduler
from .segment import SegmentFileResult

__all__ = ["FileFailure", "SchedulerConnectError", "connect", "file_failure", "iter_on_cluster"]

#: OSErrors of the output disk, which end a batch even with ``keep_going``.
_DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


class SchedulerConnectError(RuntimeError):
    """The dask scheduler could not be reached within the connect timeout."""


@dataclasses.dataclass(frozen=True)
class FileFailure:
    """An input that failed with a user error while the batch went on (``keep_going=True``).

    Attributes
    ----------
    path : Path
        The input.
    message : str
        What went wrong, naming the file.
    """

    path: Path
    message: str


class _TaskError(RuntimeError):
    """A task failed on the cluster after its retries; its cause is the task's exception."""


def file_failure(path, error: BaseException) -> FileFailure | None:
    """The :class:`FileFailure` naming ``path``, or None for an error that ends the batch.

    An input's ``ValueError`` or ``OSError`` (also as the cause of a :class:`_TaskError`) fails
    its file; a full or read-only disk fails every file, and anything else is not the input's.

    Parameters
    ----------
    path : str or path-like
        The input file.
    error : BaseException
        What segmenting it raised.
    """
    cause = error.__cause__ if isinstance(error, _TaskError) else error
    if not isinstance(cause, (ValueError, OSError)):
        return None
    if getattr(cause, "errno", None) in _DISK_ERRNOS:
        return None
    message = str(error) or type(error).__name__
    if isinstance(error, OSError) and error.strerror and error.filename:
        message = f"{error.filename}: {error.strerror}"
    named = str(path) in message or Path(path).name in message
    return FileFailure(Path(path), message if named else f"{path}: {message}")


def connect(distributed, scheduler, scheduler_file, workers: int, timeout: float):
    """A client of the given scheduler, or of a new local cluster of ``workers`` processes.

    Parameters
    ----------
    distributed : module
        The ``distributed`` package (imported by the caller).
    scheduler : str, distributed.Client or None
        A scheduler address, a client of the caller's, or None for a local cluster.
    scheduler_file : str or path-like or None
        A scheduler file to read the address from.
    workers : int
        Processes of a new local cluster.
    timeout : float
        Seconds to wait for the scheduler.
    """
    if scheduler is not None and not isinstance(scheduler, str):
        return contextlib.nullcontext(scheduler)  # the caller's client: not ours to close
    if scheduler is None and scheduler_file is None:
        return _local_cluster(distributed, workers)
    where = scheduler
    if scheduler_file is not None:  # read here: distributed waits for a missing file forever
        scheduler = _address_in(os.fspath(scheduler_file), timeout)
        where = f"{scheduler} (from {os.fspath(scheduler_file)})"
    try:
        probe_scheduler(scheduler, timeout)  # a banner or silence: one line, within the timeout
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
        preload=[batch_worker.__name__],  # its dask_setup: Ctrl+C is the client's
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


def iter_on_cluster(
    connection, jobs: list[_Job], spec: _Spec, targets, overwrite: bool, retries: int, progress,
    *, paths, failures: list[FileFailure], keep_going: bool,
) -> Generator[SegmentFileResult | FileFailure, None, None]:  # fmt: skip
    """Submit one task per job, yield each file's result (or failure) as it completes.

    ``failures`` (files whose header could not be read) are yielded first. On an error that
    ends the batch, or Ctrl+C, the unfinished tasks are cancelled; see :func:`_collect`.

    Parameters
    ----------
    connection : context manager of distributed.Client
        What :func:`connect` returned.
    jobs : list of _Job
        One task per file (or per frame of a time-lapse).
    spec : _Spec
        What every task does (model, options, threads).
    targets : list of tuple of Path
        Each file's outputs (:func:`~napari_dmqpm.inference.outputs.output_paths`).
    overwrite : bool
        Existing outputs may be replaced.
    retries : int
        Times a failed task is resubmitted.
    progress : callable or None
        Called with the files done and their total.
    paths : sequence of path-like
        The input files.
    failures : list of FileFailure
        Files whose header could not be read, yielded first.
    keep_going : bool
        A file that fails with an input error fails alone.
    """
    yield from failures  # files whose header could not be read (keep_going)
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
            yield from _collect(
                client, futures, targets, overwrite, retries, progress,
                paths=paths, keep_going=keep_going,
            )  # fmt: skip
        finally:
            with contextlib.suppress(Exception):  # keep the error that got us here
                client.cancel(list(futures))  # the unfinished ones (Ctrl+C, a failed task)


def _collect(
    client, futures: dict, targets, overwrite: bool, retries: int, progress,
    *, paths, keep_going: bool = False,
):  # fmt: skip
    """Stream each file's frames into its outputs as they come back; raise the first failure.

    With ``keep_going`` a task that fails with an input error (:func:`_file_failure`) fails
    its file only: its outputs are dropped, a :class:`FileFailure` is yielded, and its other
    frames are ignored as they come back.

    A frame's labels go into the file's labels TIFF at once, in any order; its rows wait only
    for the frames before it (the CSV is in frame order). The client thus holds no file's
    labels: its memory does not grow with the number of frames. A file's outputs are placed
    when its last frame is in; on a failure or Ctrl+C every file still open is dropped (its
    temporaries removed), and the files already placed stay.
    """
    from distributed import as_completed

    remaining = Counter(job.index for job in futures.values())
    total = len(futures)
    if progress is not None:
        progress(0, total)
    with contextlib.ExitStack() as opened:
        files: dict[int, _FileOutputs] = {}
        failed: set[int] = set()
        for done, future in enumerate(as_completed(list(futures), loop=client.loop), start=1):
            job = futures.pop(future)
            part = None if job.index in failed else _part_or_failure(future, job, retries)
            if not isinstance(part, _Part):
                if progress is not None:
                    progress(done, total)
                if part is None:
                    continue  # a frame of a file that has failed
                failure = file_failure(paths[job.index], part) if keep_going else None
                if failure is None:
                    raise part
                failed.add(job.index)
                if job.index in files:
                    files.pop(job.index).abort(None, None, None)
                yield failure
                continue
            if job.index not in files:
                files[job.index] = _FileOutputs(part, targets[job.index], overwrite)
                opened.push(files[job.index].abort)
            files[job.index].add(part)
            if progress is not None:
                progress(done, total)
            remaining[job.index] -= 1
            if not remaining[job.index]:
                yield files.pop(job.index).close(job.model)


def _part_or_failure(future, job: _Job, retries: int) -> _Part | Exception:
    """The task's part, or the error it ended with (the in-process loop's, for an input error)."""
    try:
        part = future.result()
    except Exception as err:
        where = job.path if job.n_frames == 1 else f"{job.path} (frame {job.frame})"
        failure = _TaskError(
            f"segmenting {where} failed on the cluster (after {retries} retries): "
            f"{type(err).__name__}: {err}"
        )
        failure.__cause__ = err
        return failure
    return part


class _FileOutputs:
    """The labels TIFF and CSVs of one file, filled frame by frame (see :func:`_collect`)."""

    def __init__(self, first: _Part, targets: tuple[Path, ...], overwrite: bool) -> None:
        self.stack = first.is_timelapse or first.n_frames > 1
        shape = (first.n_frames, *first.labels.shape) if self.stack else first.labels.shape
        self.targets, self._exits = targets, contextlib.ExitStack()
        self.outputs = self._exits.enter_context(
            stream_outputs(
                targets, shape=shape, pixel_size_um=first.pixel_size_um, overwrite=overwrite
            )
        )
        self.n_frames, self._next = first.n_frames, 0
        self._waiting: dict[int, Any] = {}

    def add(self, part: _Part) -> None:
        """Write the part's labels now, and every table and status whose turn has come."""
        self.outputs.labels.write(part.frame if self.stack else 0, part.labels)
        status = part.status or frame_status(part.frame, part.labels)
        self._waiting[part.frame] = (part.table, status)
        while self._next in self._waiting:
            table, status = self._waiting.pop(self._next)
            self.outputs.append_rows(table)
            self.outputs.append_status(status)
            self._next += 1

    def close(self, model_folder: str) -> SegmentFileResult:
        """Place the outputs (every frame is in) and describe them."""
        self._exits.close()
        info = find_model(Path(model_folder))
        return SegmentFileResult(
            labels_path=self.targets[0],
            table_path=self.targets[1],
            n_frames=self.n_frames,
            n_cells=self.outputs.n_rows,
            model=info.name,
            model_sha256=info.sha256,
            frames_path=self.targets[2] if len(self.targets) > 2 else None,
            frames=tuple(self.outputs.statuses),
            cell_diameter_px=tuple(sorted(self.outputs.diameters)),
        )

    def abort(self, *exc_info: Any) -> bool:
        """Drop the outputs (an ``ExitStack`` callback: a no-op once :meth:`close` ran)."""
        return bool(self._exits.__exit__(*exc_info))
