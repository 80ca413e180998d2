"""Long work off the GUI thread: a generator in a napari thread worker, with progress and stop.

A :class:`Job` runs ``work(job)``, a generator function, in ``napari.qt.threading``'s worker
(or inline when ``NAPARI_DMQPM_NOTHREADS=1``, for debugging and tests). What it yields goes to
``on_yield`` on the GUI thread; when it ends, ``on_done`` gets a :class:`JobEnd` (the return
value, the error, or "cancelled"), so no exception ever reaches napari as a traceback.
The work reports fine-grained progress through ``job.report(done, total)`` (a Qt signal,
safe from any thread) and polls ``job.should_stop()``, which :meth:`Job.stop` sets. Warnings
the work raises (a CPU fallback, say) become napari warning notifications.

When a widget's dock or its viewer closes mid-run, :class:`CloseWatch` calls the widget, which
calls :meth:`Job.shutdown`: the work is asked to stop, its callbacks are dropped (nothing more
reaches the widget or the viewer) and the call waits, a few seconds at most, for the thread.
"""

from __future__ import annotations

import functools
import os
import threading
import warnings
import weakref
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from qtpy.QtCore import QEvent, QObject, Signal

__all__ = [
    "NOTHREADS_ENV",
    "CloseWatch",
    "Job",
    "JobEnd",
    "RunProgress",
    "close_job",
    "threads_disabled",
]

#: How long closing a widget waits for its job's thread to end, in seconds.
SHUTDOWN_WAIT_S = 5.0

#: Set to 1 to run every job synchronously on the GUI thread (stardist's NOTHREADS switch).
NOTHREADS_ENV = "NAPARI_DMQPM_NOTHREADS"


def threads_disabled() -> bool:
    """True when ``$NAPARI_DMQPM_NOTHREADS`` asks for synchronous jobs."""
    return os.environ.get(NOTHREADS_ENV, "").strip().lower() not in ("", "0", "false", "no")


@dataclass(frozen=True)
class JobEnd:
    """How a job ended: ``value`` (returned), ``error`` (raised) or ``cancelled``."""

    value: Any = None
    error: BaseException | None = None
    cancelled: bool = False


class _Signals(QObject):
    progressed = Signal(int, int)


WorkFunction = Callable[["Job"], Generator[Any, None, Any]]


class Job:
    """One run of a generator function in a worker thread.

    Parameters
    ----------
    work : callable
        ``work(job)`` returning a generator; it may call ``job.report`` and
        ``job.should_stop`` and its return value becomes ``JobEnd.value``.
    on_yield : callable
        Called on the GUI thread with every yielded value.
    on_done : callable
        Called once on the GUI thread with the :class:`JobEnd`.
    on_progress : callable, optional
        ``on_progress(done, total)`` on the GUI thread for every ``job.report``.
    """

    def __init__(
        self,
        work: WorkFunction,
        *,
        on_yield: Callable[[Any], None],
        on_done: Callable[[JobEnd], None],
        on_progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self._work, self._on_yield, self._on_done = work, on_yield, on_done
        self._stop = threading.Event()
        self._signals = _Signals()
        if on_progress is not None:
            self._signals.progressed.connect(on_progress)
        self._worker: Any = None
        self._ended = False
        self._idle = threading.Event()
        self._idle.set()
        self.running = False

    def report(self, done: int, total: int) -> None:
        """Report progress (from any thread)."""
        self._signals.progressed.emit(int(done), int(total))

    def should_stop(self) -> bool:
        """True once :meth:`stop` was called."""
        return self._stop.is_set()

    def stop(self) -> None:
        """Ask the work to stop: ``should_stop()`` turns True (the work polls it)."""
        self._stop.set()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Wait until the work is not running (at most ``timeout_s``); True when it is not."""
        return self._idle.wait(timeout_s)

    def shutdown(self, timeout_s: float = SHUTDOWN_WAIT_S) -> bool:
        """Stop for good: ask the work to stop, drop every callback, wait for the thread.

        Nothing the work yields, reports or returns afterwards reaches the widget. Safe to
        call from a ``destroyed`` handler (it touches no widget).

        Returns
        -------
        bool
            True when the work ended within ``timeout_s``.
        """
        self.stop()
        self._on_yield = self._on_done = _ignore
        try:
            self._signals.progressed.disconnect()
        except (TypeError, RuntimeError):
            pass  # nothing connected, or the signals object is gone already
        self._ended, self.running = True, False
        return self.wait(timeout_s)

    def _guarded(self) -> Generator[Any, None, JobEnd]:
        from napari_dmqpm.inference.tiling import Cancelled

        try:
            value = yield from self._work(self)
        except Cancelled:
            return JobEnd(cancelled=True)
        except Exception as error:  # noqa: BLE001 - reported to the user by on_done
            return JobEnd(error=error)
        finally:
            self._idle.set()
        return JobEnd(value=value, cancelled=self._stop.is_set())

    def start(self) -> None:
        """Start the work (and, with threads disabled, run it to the end before returning)."""
        self.running = True
        self._idle.clear()
        if threads_disabled():
            self._run_inline()
            return
        from napari.qt.threading import create_worker

        worker = create_worker(self._guarded, _start_thread=False)
        worker.yielded.connect(self._deliver)
        worker.returned.connect(self._end)
        worker.aborted.connect(lambda: self._end(JobEnd(cancelled=True)))
        worker.errored.connect(lambda error: self._end(JobEnd(error=error)))
        worker.warned.connect(self._relay_warning)  # napari's own relay is not connected
        worker.finished.connect(self._finished)
        self._worker = worker
        worker.start()

    def _deliver(self, value: Any) -> None:
        self._on_yield(value)  # looked up now: a job shut down has dropped it

    def _relay_warning(self, show_warning_args: tuple) -> None:
        """Show a warning the work raised (e.g. a CPU fallback) as a napari notification."""
        if self._ended:
            return
        from napari.utils.notifications import show_warning

        show_warning(str(show_warning_args[0]))

    def _run_inline(self) -> None:
        generator = self._guarded()
        while True:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    value = next(generator)
                except StopIteration as stop:
                    value, ended = stop.value, True
                else:
                    ended = False
            for record in caught:
                self._relay_warning((record.message,))
            if ended:
                self._end(value)
                return
            self._deliver(value)

    def _end(self, end: JobEnd) -> None:
        if self._ended:
            return
        self._ended, self.running = True, False
        self._on_done(end)

    def _finished(self) -> None:
        self._worker = None
        if not self._ended:  # pragma: no cover - a worker that ended without a signal
            self._end(JobEnd(cancelled=True))


def _ignore(*_: Any) -> None:
    """A callback that does nothing (that of a job shut down)."""


def _shut_down(jobs: list[Job]) -> None:
    for job in jobs:
        job.shutdown()


def close_job(job: Job | None, bars: RunProgress | None) -> None:
    """Close a widget's progress bars and shut its job down (see :meth:`Job.shutdown`)."""
    if bars is not None:
        bars.close()
    if job is not None:
        job.shutdown()


class CloseWatch(QObject):
    """Calls ``on_close()`` when a widget's dock is closed or its viewer window closes.

    napari closes a dock widget by taking the widget out of it (its parent becomes None) and
    a viewer by closing its main window; both are seen through event filters. Jobs passed to
    :meth:`track` are also shut down when the widget is destroyed without either.

    Parameters
    ----------
    widget : QWidget
        The dock widget (its parent: it is deleted with it).
    on_close : callable
        Called with no argument; it may run more than once.
    """

    def __init__(self, widget: Any, on_close: Callable[[], None]) -> None:
        super().__init__(widget)
        self._widget, self._on_close = widget, on_close
        self._window: Any = lambda: None  # a weak reference: the window owns the viewer
        self._docked = False
        self._jobs: list[Job] = []
        widget.installEventFilter(self)
        widget.destroyed.connect(functools.partial(_shut_down, self._jobs))

    def track(self, job: Job) -> None:
        """Watch ``job`` (instead of the previous one) and the window the widget is in now."""
        self._jobs[:] = [job]
        window = self._widget.window()
        if window is not self._widget and window is not self._window():
            window.installEventFilter(self)
            self._window = weakref.ref(window)

    def eventFilter(self, watched: Any, event: Any) -> bool:  # noqa: N802 - Qt's name
        """See the widget leave its dock and its window close (never consumes the event)."""
        kind = event.type()
        if watched is self._widget and kind == QEvent.Type.ParentChange:
            if self._widget.parent() is not None:
                self._docked = True
            elif self._docked:
                self._on_close()
        elif kind == QEvent.Type.Close and watched is self._window():
            self._on_close()
        return False


class RunProgress:
    """A napari progress bar over all the steps of a run, its text naming the current frame.

    (One bar: napari 0.9's activity dock crashes when nested bars are closed and re-made.)

    Parameters
    ----------
    n_frames : int
        Frames in the run.
    description : str
        Text of the bar.
    """

    def __init__(self, n_frames: int, description: str) -> None:
        from napari.utils import progress

        self.n_frames, self.description = max(1, int(n_frames)), description
        self.bar = progress(total=0, desc=description)
        self._done, self._frame = 0, -1

    def update(self, done: int, total: int) -> tuple[int, int, int]:
        """Move the bar to ``done`` of ``total`` steps.

        Returns
        -------
        (int, int, int)
            The current frame (0-based), the step within it and the steps per frame.
        """
        per_frame = max(1, total // self.n_frames)
        done = max(0, min(done, total))
        frame, step = divmod(done, per_frame)
        if frame >= self.n_frames:
            frame, step = self.n_frames - 1, per_frame
        if self.bar.total != total:
            self.bar.total = total
        if frame != self._frame and self.n_frames > 1:
            self.bar.set_description(f"{self.description}: frame {frame + 1}/{self.n_frames}")
            self._frame = frame
        if done != self._done:
            self.bar.update(done - self._done)
            self._done = done
        return frame, step, per_frame

    def close(self) -> None:
        """Close the bar."""
        self.bar.close()
