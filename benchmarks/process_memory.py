"""This process's memory as Linux reports it in ``/proc/self/status``, for the memory benchmarks."""

from __future__ import annotations


def status_mib() -> dict[str, float]:
    """VmRSS, RssAnon and VmHWM of this process, MiB, as ``rss``, ``anon`` and ``peak``.

    ``rss`` counts pages of mapped files (a lazily read input), which the kernel can drop;
    ``anon`` is the memory the process itself holds; ``peak`` is the highest ``rss`` so far.
    """
    wanted = {"VmRSS:": "rss", "RssAnon:": "anon", "VmHWM:": "peak"}
    found = {}
    with open("/proc/self/status") as handle:
        for line in handle:
            key = line.split(":")[0] + ":"
            if key in wanted:
                found[wanted[key]] = int(line.split()[1]) / 1024
    return found
