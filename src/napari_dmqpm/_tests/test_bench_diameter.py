"""benchmarks/bench_diameter.py: old against new estimate, and what its page says."""

from __future__ import annotations

BENCHMARK = "bench_diameter"


def _row(bench, case, group, old, new, old_s=2.0, new_s=1.0):
    return bench.Row(case, group, "phase", 20.0, old, new, old_s, new_s, 3, 3)


def test_the_page_counts_the_changes_and_lists_the_large_ones(bench):
    rows = [
        _row(bench, "a", "D20", 20.0, 20.1),  # +0.5 %
        _row(bench, "b", "x1", 30.0, 31.2),  # +4.0 %
        _row(bench, "c", "camera D20", 20.0, 18.8, old_s=12.0, new_s=4.0),  # -6.0 %
    ]
    page = bench.section(rows, baseline="abc1234", commit="def5678",
                         load=((1, 1, 1), (2, 2, 2)), seconds=60.0)  # fmt: skip
    assert "3 estimates: median change 4.00 %, 1 within 1 %, 1 within 3 %, 2 within 5 %" in page
    assert "largest 6.0 %" in page
    assert "On the camera-sized frames: 3.00× less (12.00 s → 4.00 s per frame)" in page
    moved = page.split("more than 3 %:")[1].split("<details>")[0]
    assert "- b (phase)" in moved and "- c (phase)" in moved and "- a (phase)" not in moved
    # groups in order: simulated, real, camera
    assert page.index("| D20 |") < page.index("| x1 |") < page.index("| camera D20 |")


def test_the_baseline_is_the_estimate_as_it_was_at_a_commit(bench):
    old = bench.baseline_module("HEAD")
    from napari_dmqpm.inference import diameter

    assert old is not diameter and old.__name__.endswith("_diameter_baseline")
    assert callable(old.estimate_diameter) and old.MAX_PASSES == diameter.MAX_PASSES
