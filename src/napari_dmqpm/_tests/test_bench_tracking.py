"""Tests of benchmarks/bench_tracking.py: one tiny movie end to end, and the report's verdicts."""

from __future__ import annotations

import json

import pytest

BENCHMARK = "bench_tracking"


def test_one_tiny_movie_gives_ctc_scores_for_every_linker(bench):
    record = bench.run_condition("dense", 30.0, 0, use_model=False, shape=(64, 64), n_frames=4)
    for linker in bench.LINKERS:
        scores = record[f"truth|{linker}"]
        assert 0.0 <= scores["det"] <= 1.0 and scores["det"] == 1.0  # truth labels: all found
        assert 0.9 <= scores["tra"] <= 1.0


def _record(density, tra, errors):
    scores = {
        "tra": tra,
        "det": 1.0,
        "div_tp": 1.0,
        "div_fp": 0.0,
        "div_fn": 1.0,
        "errors_k": errors,
        "errors_pg": errors,
        "k": [0.03] * len(errors),
        "k_true": [0.03] * len(errors),
    }
    return {"density": density, "interval": 30.0, "cpu_s": 1.0, "truth|lap-mass": scores}


def test_report_says_met_or_missed_against_the_issue_targets(bench):
    records = {"a": _record("sparse", 0.97, [0.01, 0.03]), "b": _record("confluent", 0.85, [0.2])}
    text = bench.report(
        records, seconds=60.0, command="python benchmarks/bench_tracking.py", quick=False
    )
    assert (
        "truth labels, sparse: lowest TRA over the intervals 0.970 (target >= 0.95): **met**"
        in text
    )
    assert "confluent: lowest TRA over the intervals 0.850 (target >= 0.9): **missed**" in text
    assert "median growth-rate error 2.0 % over 2 tracks: met" in text
    assert "| sparse | 30 min | lap-mass | 0.970 | 1.000 | 0.50 | 1.00 | 2 |" in text


def test_btrack_links_a_tiny_movie_and_its_section_replaces_only_itself(
    bench, tmp_path, monkeypatch
):
    pytest.importorskip("btrack")
    movie = bench.simulate("dense", 30.0, 0, shape=(64, 64), n_frames=4)
    tracks = bench.link_btrack(movie.labels, movie)
    scores = bench.ctc_scores(movie, tracks)
    assert scores["det"] == 1.0 and scores["tra"] >= 0.9
    assert tracks.metadata["linker"] == "btrack"
    monkeypatch.setattr(bench, "CACHE_DIR", tmp_path / "cache")
    bench.CACHE_DIR.mkdir()
    record = {"density": "sparse", "interval": 10.0, "seconds": {"btrack": 1.0, "lap-mass": 2.0}}
    for linker, tra in (("btrack", 0.91), ("lap-mass", 0.99)):
        record[f"truth|{linker}"] = {
            "tra": tra, "det": 1.0, "div_tp": 1.0, "div_fp": 1.0, "div_fn": 0.0,
            "errors_k": [0.02], "errors_pg": [0.02], "k": [0.03], "k_true": [0.03],
        }  # fmt: skip
    path = bench.CACHE_DIR / f"btrack-sparse-10min-0-v{bench.CACHE_VERSION}.json"
    path.write_text(json.dumps(record))
    page = tmp_path / "results.md"
    page.write_text("# T\n\n" + bench.OLD_NOT_COMPARED + "\n## Ground-truth labels\n\nrows\n")
    bench.update_btrack_section(page)
    text = page.read_text()
    assert "| sparse | btrack | 0.910 | 1.000 | 1.00 | 0.50 | 1 | 2.0 % | 1.0 |" in text
    assert "btrack, run on a subset, below" in text and "Not compared: btrack" not in text
    assert text.index(bench.BTRACK_TITLE) < text.index("\n\n## Ground-truth labels\n\nrows\n")
    again = page.read_text()
    bench.update_btrack_section(page)  # a second update replaces the section, nothing else
    assert page.read_text() == again
