"""Regenerate docs/performance.md: run every benchmark script and collect its markdown.

Each ``benchmarks/bench_*.py`` prints a markdown section on stdout. This script runs them one
after the other (never in parallel: they time things) in fresh interpreters and writes
``docs/performance.md`` with the machine and the commit they ran on. With ``--only`` the
sections of the other benchmarks already in the file are kept: a section (from its ``## ``
heading to the next one) is replaced by the new output with the same heading, or added.

Usage: ``python benchmarks/run_all.py [--only NAME ...] [--args "--quick"] [--out FILE]``
(``--args``: options passed to every benchmark run, e.g. ``--only bench_nnunet --args=--quick``).
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

if not __package__:  # run as a file: the repository root makes `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.templates import render

ROOT = Path(__file__).resolve().parents[1]
ORDER = [
    "bench_read_raw",
    "bench_sample_data",
    "bench_attention",
    "bench_inference",
    "bench_timelapse_speed",
    "bench_backends",
    "bench_nnunet",
    "bench_memory",
]
#: Benchmarks run only when named with --only (they need hardware this machine may lack).
ON_REQUEST = ("bench_gpu",)


def machine_description() -> str:
    """One line naming the CPU, cores, memory, Python, numpy and torch versions."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{mem_kb / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        memory = "unknown memory"
    import numpy

    versions = f"Python {platform.python_version()}, numpy {numpy.__version__}"
    try:
        import torch

        versions += f", torch {torch.__version__} ({torch.get_num_threads()} threads)"
    except ImportError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {memory}; {versions}"


def commit_description() -> str:
    """The commit the benchmarks ran on, marked dirty when the tree has changes."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + (" (with uncommitted changes)" if git("status", "--porcelain") else "")


def split_sections(text: str) -> tuple[str, list[str]]:
    """The text before the first ``## `` heading, and the sections from each one to the next."""
    header, sections = [], []
    for line in text.splitlines(keepends=True):
        if line.startswith("## "):
            sections.append(line)
        elif sections:
            sections[-1] += line
        else:
            header.append(line)
    return "".join(header), sections


def merge_sections(old: list[str], new: list[str]) -> list[str]:
    """``old`` with each section of ``new`` replacing the one of the same heading (or added)."""
    merged = list(old)
    for section in new:
        heading = section.splitlines()[0].strip() if section.strip() else ""
        same = [i for i, s in enumerate(merged) if s.splitlines()[0].strip() == heading]
        if same:
            merged[same[0]] = section
        else:
            merged.append(section)
    return [s.rstrip("\n") + "\n" for s in merged]


def previous_run(header: str) -> str:
    """Machine, commit and date of the file's previous header, for the sections it keeps."""
    fields = {}
    for line in header.splitlines():
        for key in ("Machine", "Commit", "Date"):
            if line.startswith(f"- {key}: ") and key not in fields:
                fields[key] = line.removeprefix(f"- {key}: ").strip()
    if not fields:
        return "no record of where"
    return "last full header: " + "; ".join(f"{k.lower()} {v}" for k, v in fields.items())


def chosen_benchmarks(available: list[str], only: list[str] | None) -> list[str]:
    """The benchmarks to run, in ``ORDER``: those named by ``only``, else all but ``ON_REQUEST``.

    Examples
    --------
    >>> chosen_benchmarks(["bench_gpu", "bench_memory", "bench_read_raw"], None)
    ['bench_read_raw', 'bench_memory']
    >>> chosen_benchmarks(["bench_gpu", "bench_memory"], ["bench_gpu"])
    ['bench_gpu']
    """
    names = [n for n in ORDER if n in available] + [n for n in available if n not in ORDER]
    if only:
        return [n for n in names if n in only]
    return [n for n in names if n not in ON_REQUEST]


def report(
    sections: Sequence[str],
    *,
    machine: str,
    commit: str,
    date: str,
    reran: Sequence[str] | None = None,
    previous: str = "",
) -> str:
    """The text of docs/performance.md: its header (``run_all/*.md``), then the sections.

    Parameters
    ----------
    sections : sequence of str
        The benchmarks' markdown sections, each from its ``## `` heading, in page order.
    machine : str
        The machine line (:func:`machine_description`).
    commit : str
        The commit line (:func:`commit_description`).
    date : str
        When the benchmarks ran, e.g. ``"2026-12-06 08:00 UTC"``.
    reran : sequence of str, optional
        The benchmarks re-run at that date when the page keeps older sections; None when every
        section is new (no line about it).
    previous : str, optional
        Where the kept sections were measured (:func:`previous_run`); used with ``reran``.

    Returns
    -------
    str
        The page: the header, a blank line and the sections joined by newlines.
    """
    lines = render("run_all/header.md", machine=machine, commit=commit, date=date)
    if reran is not None:
        lines += render("run_all/reran.md", names=", ".join(reran), previous=previous)
    return "\n".join(lines) + "\n\n" + "\n".join(sections)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="run only these benchmarks (names without .py)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "performance.md")
    parser.add_argument("--args", default="", help="options for each benchmark run (quoted)")
    args = parser.parse_args()
    available = sorted(p.stem for p in (ROOT / "benchmarks").glob("bench_*.py"))
    names = chosen_benchmarks(available, args.only)
    sections = []
    for name in names:
        print(f"running {name} ...", flush=True)
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / f"{name}.py"), *shlex.split(args.args)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            print(done.stderr, file=sys.stderr)
            sections.append(f"## {name}\n\nFailed (exit {done.returncode}); see its output.\n")
        else:
            sections.append(done.stdout.strip() + "\n")
        print(f"  {name}: {seconds:.0f} s", flush=True)
    machine, commit = machine_description(), commit_description()
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    reran, previous = None, ""
    if args.out.is_file():  # sections not re-run (bench_gpu on a CPU machine) are kept
        old_header, old = split_sections(args.out.read_text())
        new = [s for text in sections for s in split_sections(text)[1]]
        kept = len(merge_sections(old, new)) > len(new)
        sections = merge_sections(old, new)
        if args.only or kept:
            reran, previous = names, previous_run(old_header)
    page = report(
        sections, machine=machine, commit=commit, date=date, reran=reran, previous=previous
    )
    args.out.write_text(page)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
