"""The ``dmqpm`` command line: each sub-command is a thin call into one core function.

Run ``dmqpm --help`` or ``dmqpm COMMAND --help``. Each command is a module of this package
(``_info``, ``_simulate``, ``_track``, ``_segment``, ``_evaluate``, ``_train``,
``_finetune``) with ``add_parser`` and ``run``; :func:`main` runs one and turns a user's
error into one line. Heavy modules are imported inside the command that needs them, so
``dmqpm info`` starts fast and never imports torch.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from napari_dmqpm import __version__
from napari_dmqpm.cli import (
    _evaluate,
    _finetune,
    _info,
    _segment,
    _simulate,
    _track,
    _train,
)
from napari_dmqpm.cli._args import parse_frames
from napari_dmqpm.cli._errors import (
    cli_words,
    error_words,
    is_user_error,
    one_line_warnings,
    package_notes,
    quiet_stdout,
)
from napari_dmqpm.cli._folders import check_out_folder, new_folders, remove_if_empty
from napari_dmqpm.cli._signals import Terminated, handle_sigterm, stale_temporaries

__all__ = ["build_parser", "cli_words", "main", "parse_frames"]


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``dmqpm`` with every sub-command, each set to run its module's ``run``."""
    parser = argparse.ArgumentParser(
        prog="dmqpm",
        description="Cell segmentation for single-shot polarization QPM (napari-dmqpm).",
    )
    parser.add_argument("--version", action="version", version=f"napari-dmqpm {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an error, not one line"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    for command in (_info, _simulate, _track, _segment, _evaluate, _train, _finetune):
        command.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``dmqpm`` command line; returns the exit status.

    An error of the user's input or machine is one line naming the file, the option and the
    problem, with exit status 2; any other error is a bug and shows its traceback
    (:func:`~napari_dmqpm.cli._errors.is_user_error`; ``--debug`` shows every traceback). A
    command that fails removes the ``--out`` folder (and its parents) it created, if they are
    still empty; folders that existed before are never removed.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments (default: ``sys.argv[1:]``).
    """
    args = build_parser().parse_args(argv)
    command: Callable[[argparse.Namespace], int] = args.run
    created = new_folders(getattr(args, "out", None))
    status = 1
    try:
        check_out_folder(getattr(args, "out", None))
        for line in stale_temporaries(getattr(args, "out", None)):  # left by a killed run
            print(f"dmqpm {args.command}: {line}", file=sys.stderr)
        # like Ctrl+C: writers clean up, nothing is half-written; our warnings in one line
        with (
            handle_sigterm(),
            one_line_warnings(args.command, args.debug),
            package_notes(args.command),
        ):
            status = command(args)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return status
    except BrokenPipeError:  # the reader of our output has gone (| head -1): not an error
        quiet_stdout()
        status = 141  # as a shell reports a process ended by SIGPIPE
        return status
    except Exception as error:
        if args.debug or not is_user_error(error):
            raise  # a bug, or asked for: the traceback
        words = cli_words(error_words(error), args.command)
        print(f"dmqpm {args.command}: error: {words}", file=sys.stderr)
        status = 2
        return status
    except KeyboardInterrupt as interrupt:
        terminated = isinstance(interrupt, Terminated)
        words = "terminated (SIGTERM)" if terminated else "interrupted"
        print(f"dmqpm {args.command}: {words}", file=sys.stderr)
        status = 143 if terminated else 130  # 128 + the signal's number, as shells report
        return status
    finally:
        if status != 0:
            remove_if_empty(created)
