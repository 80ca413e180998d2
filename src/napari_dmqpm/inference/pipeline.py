"""Overlap the frames of a time-lapse: two stages, one worker thread, at most two frames in flight.

A frame is segmented in two stages. The first (read the inputs, retrieve the phase, estimate
the diameter where due, run the network) runs in the caller's thread; it ends with a callable,
the second stage (post-process the maps into labels, measure the cells), which
:class:`FramePipeline` runs on a worker thread while the caller runs the first stage of the
next frame and writes the result of the previous one. The network (torch, OpenVINO, ONNX
Runtime) and most of scipy's post-processing release the GIL, so on two cores the
single-threaded post-processing no longer leaves a core idle between two networks.

The worker runs at a lower priority (:data:`WORKER_NICENESS`, on Linux): it takes the core
time the network leaves idle instead of preempting the network's threads, whose barriers make
the whole network wait for a preempted one; when the network is done first, the caller waits
for the worker and it has the cores to itself.

Memory stays bounded: there is no queue. The worker holds one frame (its maps, phase and
labels), the caller builds the next; the second stage of frame t+1 starts only when that of
frame t has been collected, so at most two frames' maps are alive.

The results come out in the frames' order, exactly as the stages would give them one after
the other; an error in either stage, and ``Cancelled``, reach the caller with the worker
thread joined. A failed second stage stops the next first stage at its next poll of
``should_stop`` (:meth:`FramePipeline.failed`), so it is raised within one batch of tiles.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Generator, Iterator
from typing import Generic, TypeVar

__all__ = ["THREAD_NAME", "WORKER_NICENESS", "FramePipeline"]

T = TypeVar("T")

#: The name of the worker threads (one at a time), for tests and debugging.
THREAD_NAME = "dmqpm-frame-stage2"
#: How much nicer than the caller's thread the worker runs (Linux; capped at 19 by the kernel).
WORKER_NICENESS = 10


def _lower_priority() -> None:
    """Make the calling thread :data:`WORKER_NICENESS` nicer (Linux; elsewhere nothing)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError):
        thread = threading.get_native_id()
        niceness = os.getpriority(os.PRIO_PROCESS, thread) + WORKER_NICENESS
        os.setpriority(os.PRIO_PROCESS, thread, min(niceness, 19))


class _Job(threading.Thread, Generic[T]):
    """The second stage of one frame, run on its own thread; keeps its result or error."""

    def __init__(self, function: Callable[[], T]) -> None:
        super().__init__(name=THREAD_NAME, daemon=True)
        self.function: Callable[[], T] | None = function
        self.result: T | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            _lower_priority()
            assert self.function is not None
            self.result = self.function()
        except BaseException as error:  # handed to the caller by collect()
            self.error = error
        finally:
            self.function = None  # the frame's maps go as soon as the stage is done

    def collect(self) -> T:
        """Wait for the stage; its result, or its error raised in the caller's thread."""
        self.join()
        if self.error is not None:
            error, self.error = self.error, None
            raise error
        return self.result  # type: ignore[return-value]


class FramePipeline(Generic[T]):
    """Run each frame's second stage on a worker thread while the caller makes the next.

    A thread is started for each frame's second stage and joined before the next one starts,
    so at most one worker thread exists, and none is left once :meth:`run` returns, raises or
    is closed.

    Examples
    --------
    >>> def stages():
    ...     for frame in range(3):
    ...         maps = frame * 10  # the first stage, in this thread
    ...         yield lambda maps=maps: maps + 1  # the second, on the worker
    >>> list(FramePipeline().run(stages()))
    [1, 11, 21]
    """

    def __init__(self) -> None:
        self._running: _Job[T] | None = None

    def failed(self) -> bool:
        """Whether the frame on the worker raised (poll it with ``should_stop``)."""
        running = self._running
        return running is not None and not running.is_alive() and running.error is not None

    def settle(self) -> None:
        """Wait until the worker is idle (its result or error is kept for :meth:`run`).

        A first stage that needs all the memory (a frame cut into strips) calls this first,
        so that it does not overlap the previous frame.
        """
        if self._running is not None:
            self._running.join()

    def _collect(self) -> T:
        running, self._running = self._running, None
        assert running is not None
        return running.collect()

    def _start(self, function: Callable[[], T]) -> None:
        self._running = _Job(function)
        self._running.start()

    def run(self, stages: Iterator[Callable[[], T]]) -> Generator[T, None, None]:
        """The second stages' results, in order, each computed while the next first stage ran.

        Parameters
        ----------
        stages : iterator of callable
            Each ``next()`` runs a frame's first stage in this thread and gives its second
            stage, a callable without arguments (run on the worker thread).

        Yields
        ------
        object
            What each second stage returned, in the order of ``stages``.

        Notes
        -----
        When a first stage raises an ``Exception``, the frame before it is finished and
        yielded first (as the stages one after the other would); when that frame's second
        stage raised too, its error is raised instead (it came first). Other exceptions
        (``KeyboardInterrupt``) are raised at once. Closing the iterator waits for the worker.
        """
        try:
            while True:
                try:
                    finish = next(stages)
                except StopIteration:
                    break
                except Exception:  # Ctrl+C and the like go at once (the worker joined)
                    if self._running is not None:
                        result = self._collect()  # an earlier frame's error comes first
                        yield result
                    raise
                if self._running is None:  # the first frame
                    self._start(finish)
                    del finish  # the worker holds the frame's maps, and drops them when done
                    continue
                result = self._collect()  # the previous frame (its error raised here)
                self._start(finish)
                del finish
                yield result
                del result
            if self._running is not None:
                yield self._collect()
        finally:
            if self._running is not None:  # closed, or an error: leave no thread behind
                self._running.join()
                self._running = None
            close = getattr(stages, "close", None)
            if close is not None:
                close()
