"""The words of ``dmqpm`` errors: which errors are one line, and core names turned into options.

A core function names its keyword arguments (``overwrite=True``, ``diameter_px``); the
command line says the option instead (``--overwrite``, ``--diameter``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import warnings
from collections.abc import Iterator

__all__ = [
    "FLAGS",
    "READER_FLAGS",
    "THRESHOLD_FLAGS",
    "CommandError",
    "cli_words",
    "is_user_error",
    "error_words",
    "one_line_warnings",
    "package_notes",
    "quiet_stdout",
]

#: The post-processing thresholds of ``segment``: keyword of PostprocessConfig -> option.
THRESHOLD_FLAGS = {
    "foreground_threshold": "--foreground-threshold",
    "seed_threshold": "--seed-threshold",
    "min_cell_area_px": "--min-cell-area",
}


#: Keyword arguments of the core that are options of a command: errors name the option.
READER_FLAGS = {
    "kind": "--kind",
    "phase_unit": "--phase-unit",
    "wavelength_um": "--wavelength-um",
    "pixel_size_um": "--pixel-size-um",
    "alpha_um3_per_pg": "--alpha",
    "demosaic_method": "--demosaic-method",
    "mosaic_origin": "--mosaic-origin",
}
FLAGS: dict[str, dict[str, str]] = {
    "info": READER_FLAGS,
    "simulate": {
        "overwrite": "--overwrite",
        "n": "--n",
        "seed": "--seed",
        "density": "--density",
        "shape": "--size",
        "n_frames": "--frames",
        "frame_interval_min": "--frame-interval",
    },
    "track": {
        "overwrite": "--overwrite",
        "frame_interval_min": "--frame-interval",
        "pixel_size_um": "--pixel-size-um",
        "wavelength_um": "--wavelength-um",
    },
    "segment": {
        **READER_FLAGS,
        **THRESHOLD_FLAGS,
        "overwrite": "--overwrite",
        "diameter_px": "--diameter",
        "frames": "--frames",
        "device": "--device",
        "tta": "--tta",
        "backend": "--backend",
        "batch_size": "--batch-size",
        "workers": "--workers",
        "torch_threads": "--torch-threads",
        "retries": "--retries",
        "connect_timeout": "--connect-timeout",
        "scheduler_file": "--scheduler-file",
        "scheduler": "--scheduler",
    },
    "evaluate": {"iou_threshold": "--iou", "pred_dir": "--pred", "truth_dir": "--truth"},
    "train": {
        "minutes": "--minutes",
        "epochs": "--epochs",
        "device": "--device",
        "overwrite": "--overwrite",
    },
    "finetune": {
        **READER_FLAGS,
        "minutes": "--minutes",
        "epochs": "--epochs",
        "learning_rate": "--lr",
        "device": "--device",
        "overwrite": "--overwrite",
        "base_checkpoint": "--model",
        "name": "--name",
    },
}


#: Whole phrases first: a command without --overwrite says what to do instead.
PHRASES = {
    "segment": {"model must be a model name": "--model must be a model name"},
    "finetune": {
        "model must be a model name": "--model must be a model name",
        "pass overwrite=True": "choose another --name",
        "choose another name": "choose another --name",
    },
}


def cli_words(message: str, command: str) -> str:
    """A core error message with the keyword arguments it names turned into the options.

    Parameters
    ----------
    message : str
        The error's text, e.g. ``"... exists; pass overwrite=True to replace it"``.
    command : str
        The sub-command, which decides the options (``"segment"``, ...).

    Returns
    -------
    str
        E.g. ``"... exists; pass --overwrite to replace it"``.

    Examples
    --------
    >>> cli_words("frames must be indices in [0, 3); got frames=[5]", "segment")
    '--frames must be indices in [0, 3); got --frames [5]'
    >>> cli_words("pass wavelength_um=... (e.g. 0.65)", "info")
    'pass --wavelength-um (e.g. 0.65)'
    """
    for phrase, words in PHRASES.get(command, {}).items():
        message = message.replace(phrase, words)
    flags = FLAGS.get(command, {})
    for name in sorted(flags, key=len, reverse=True):  # scheduler_file before scheduler
        flag, start = flags[name], rf"(?<![\w.-]){name}"
        message = re.sub(rf"{start}=(True\b|\.\.\.)", flag, message)
        message = re.sub(rf"{start}=", f"{flag} ", message)
        message = re.sub(rf"{start}(?= (must|needs)\b)", flag, message)
        if "_" in name:  # an identifier wherever it stands ("leave diameter_px unset")
            message = re.sub(rf"{start}(?![\w'])", flag, message)
    return message


class CommandError(Exception):
    """A user error found by the command line itself (reported as one line)."""


def is_user_error(error: BaseException) -> bool:
    """Whether ``error`` is the user's input or machine (one line), not a bug (a traceback).

    One line: ``ValueError`` (the core's checks of values and formats), ``OSError`` (files,
    disks), ``MemoryError``, torch's ``OutOfMemoryError``, and every error class of this
    package (``OutOfDeviceMemory``, ``DeviceUnavailableError``, ``SchedulerConnectError``,
    ``BackendNotInstalledError``, :class:`CommandError`, ...). Anything else (a bare
    ``RuntimeError``, a ``TypeError`` or ``KeyError`` from inside torch, numpy or our code) is
    a bug: its traceback is shown. ``--debug`` shows the traceback of every error.

    Examples
    --------
    >>> is_user_error(FileNotFoundError(2, "No such file", "a.tif"))
    True
    >>> is_user_error(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    False
    >>> is_user_error(CommandError("give --model"))
    True
    """
    if isinstance(error, (ValueError, OSError, MemoryError)):
        return True
    return any(
        kind.__module__.partition(".")[0] == "napari_dmqpm" or kind.__name__ == "OutOfMemoryError"
        for kind in type(error).__mro__
    )


def error_words(error: BaseException) -> str:
    """The one line for an error: an OSError names its file and the system's reason."""
    if isinstance(error, OSError) and error.strerror and error.filename is not None:
        return f"{error.filename}: {error.strerror}"
    if isinstance(error, MemoryError):
        return f"out of memory ({error or 'an allocation failed'})"
    return str(error) or type(error).__name__


def quiet_stdout() -> None:
    """After a broken pipe (``dmqpm info ... | head -1``): drop what is left to print."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):  # no real stdout (tests): nothing to drop
        pass


@contextlib.contextmanager
def one_line_warnings(command: str, debug: bool = False) -> Iterator[None]:
    """Show this package's warnings as one ``dmqpm COMMAND: warning: ...`` line each.

    Python shows a warning as two lines, the source file and line of the ``warn`` call and
    that line of code; a user gets the message alone, in the options' words (a file read as
    its first series, NaN pixels replaced, a device fallback). Other libraries' warnings, and
    every warning with ``--debug``, keep Python's form. Only how a warning is shown changes:
    which are shown (the warning filters) is left as it is.
    """
    if debug:
        yield
        return
    previous = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if category.__module__.partition(".")[0] != "napari_dmqpm":
            previous(message, category, filename, lineno, file, line)
            return
        print(f"dmqpm {command}: warning: {cli_words(str(message), command)}", file=sys.stderr)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = previous


#: Loggers whose INFO records a user should see while a command runs (what a long silent
#: step is doing: the first run of a model on OpenVINO or ONNX Runtime exports and checks it).
NOTE_LOGGERS = ("napari_dmqpm.inference.backends",)


class _NoteLine(logging.Handler):
    def __init__(self, command: str) -> None:
        super().__init__(level=logging.INFO)
        self.command = command

    def emit(self, record: logging.LogRecord) -> None:
        print(f"dmqpm {self.command}: note: {record.getMessage()}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def package_notes(command: str) -> Iterator[None]:
    """Show the INFO records of :data:`NOTE_LOGGERS` as ``dmqpm COMMAND: note: ...`` lines.

    Parameters
    ----------
    command : str
        The subcommand, named in each line.
    """
    handler = _NoteLine(command)
    loggers = [logging.getLogger(name) for name in NOTE_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)
