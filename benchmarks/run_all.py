"""Regenerate docs/performance.md: run every benchmark script and collect its markdown.

Each ``benchmarks/bench_*.py`` prints a markdown section on stdout. This script runs them one
after the other (never in parallel: they time things) in fresh interpreters and writes
``docs/performance.md`` with the machine and the commit they ran on.

Usage: ``python benchmarks/run_all.py [--only NAME ...] [--out docs/performance.md]``
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ORDER = ["bench_read_raw", "bench_sample_data", "bench_attention", "bench_inference"]


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="run only these benchmarks (names without .py)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "performance.md")
    args = parser.parse_args()
    available = sorted(p.stem for p in (ROOT / "benchmarks").glob("bench_*.py"))
    names = [n for n in ORDER if n in available] + [n for n in available if n not in ORDER]
    if args.only:
        names = [n for n in names if n in args.only]
    sections = []
    for name in names:
        print(f"running {name} ...", flush=True)
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / f"{name}.py")],
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
    header = (
        "# Performance\n\n"
        "Measured by `python benchmarks/run_all.py` (or `make bench`); do not edit by hand.\n\n"
        f"- Machine: {machine_description()}\n"
        f"- Commit: {commit_description()}\n"
        f"- Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n\n"
    )
    args.out.write_text(header + "\n".join(sections))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
