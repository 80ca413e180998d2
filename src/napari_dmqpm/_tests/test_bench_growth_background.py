"""Tests of benchmarks/bench_growth_background.py: what one row of its table says."""

from __future__ import annotations

import math

BENCHMARK = "bench_growth_background"


def test_a_row_compares_both_fits_on_the_tracks_with_a_flagged_frame_only(bench):
    tracks = [
        {"n_flagged": 0, "k_true": 0.05, "k_all": 0.051, "k_trusted": 0.051},  # untouched
        {"n_flagged": 2, "k_true": 0.05, "k_all": 0.10, "k_trusted": 0.052},
        {"n_flagged": 9, "k_true": 0.05, "k_all": 0.02, "k_trusted": math.nan},  # no fit left
    ]
    record = {
        "mass_errors": {"ok": [0.01, -0.03], "flagged": [0.2, -0.4, 0.3]},
        "tracks": tracks, "n_points": 40, "n_flagged_points": 10,
    }  # fmt: skip
    row = bench.row("confluent", 10.0, "truth", 8, record)
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[:6] == ["truth", "confluent", "10 min", "8 px", "25.0 %", "2.0 % / 30.0 %"]
    # affected tracks: errors 100 % and 60 % fitted on all frames; 4 % on the trusted (1 fit)
    assert cells[6:10] == ["2 of 3", "80.0 %", "4.0 % (1)", "1"]
    # every track: all frames 2 %, 100 %, 60 %; trusted: 2 %, 4 % (the one without a fit out)
    assert cells[10:] == ["60.0 %", "3.0 % (2)"]
