"""The prose of docs/performance.md's generated parts, from benchmarks/templates, on fixed records.

Each test renders a page or section from made-up numbers (nothing is measured) and checks one
sentence word for word and that no ``$field`` of the templates is left unfilled.
"""

from __future__ import annotations

import re

#: The script under test (the ``bench`` fixture of conftest imports it).
BENCHMARK = "run_all"


def _unfilled(text: str) -> list[str]:
    return re.findall(r"\$\{?[A-Za-z_]\w*", text)


def test_the_performance_header_names_the_run_and_the_older_sections(bench):
    sections = ["## A (bench_a)\n\na\n", "## B (bench_b)\n\nb\n"]
    fields = dict(machine="CPU X, 2 cores", commit="abc1234", date="2026-12-06 08:00 UTC")
    fresh = bench.report(sections, **fields)
    assert fresh == (
        "# Performance\n\n"
        "Measured by `python benchmarks/run_all.py` (or `make bench`); do not edit by hand.\n\n"
        "- Machine: CPU X, 2 cores\n- Commit: abc1234\n- Date: 2026-12-06 08:00 UTC\n\n"
        "## A (bench_a)\n\na\n\n## B (bench_b)\n\nb\n"
    )
    kept = bench.report(sections, **fields, reran=["bench_a", "bench_b"], previous="no record")
    assert (
        "- Date: 2026-12-06 08:00 UTC\n- Sections re-run at that date: bench_a, bench_b; the "
        "others are older (no record).\n\n## A (bench_a)" in kept
    )
    assert not _unfilled(fresh) and not _unfilled(kept)
