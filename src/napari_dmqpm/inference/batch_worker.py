"""The worker side of :mod:`napari_dmqpm.inference.batch`: what one dask task runs.

A task segments one frame of one file (:func:`_segment_task`) and sends back a :class:`_Part`;
the model is loaded once per worker process (the registry's cache). :func:`dask_setup` is the
preload hook of the local pool's workers. Nothing here writes a file: the client does.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from typing import Any

import numpy as np

from napari_dmqpm.io import Acquisition, read_acquisition
from napari_dmqpm.model.checkpoint import CheckpointError

from .config import InferenceConfig, PostprocessConfig
from .frames import FrameStatus
from .segment import resolve_model, segment_acquisition

#: Errors of the input (file, model, options): a task returns them instead of raising, so
#: dask does not retry what would fail again. Anything else (OSError, out of memory) is retried.
_INPUT_ERRORS = (ValueError, FileNotFoundError, CheckpointError)


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
    """What a task sends back: one frame's labels, table and status, and the file's layout."""

    frame: int
    labels: np.ndarray
    table: dict[str, np.ndarray]
    n_frames: int
    is_timelapse: bool
    pixel_size_um: float | None
    status: FrameStatus | None = None  # None: what the labels alone say


def _n_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS says, as under SLURM)."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else os.cpu_count() or 1


def dask_setup(worker: Any) -> None:
    """Preload hook of the local pool's workers: they ignore Ctrl+C (SIGINT).

    A terminal sends Ctrl+C to every process of the pool; the client alone handles it,
    cancelling the tasks and closing the pool. Not meant for the workers of a shared cluster.

    Parameters
    ----------
    worker : distributed.Worker
        The worker starting.
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
        acquisition.is_timelapse, acquisition.pixel_size_um, result.status,
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
