"""benchmarks/bench_timelapse_speed.py: what its section reads from the measurements."""

from __future__ import annotations

BENCHMARK = "bench_timelapse_speed"


def _run(wall, *, sha="a", n_frames=100, cells=12_345):
    return {"wall": wall, "cpu": 1.5 * wall, "n_frames": n_frames, "n_cells": cells,
            "backend": "openvino", "precision": "float32", "sha256": sha}  # fmt: skip


def _rss(frames, overlap, peak):
    return {"frames": frames, "overlap": overlap, "peak": peak, "before": 300.0, "wall": 10.0,
            "n_cells": 100 * frames, "anon_half": peak - 160.4,
            "anon_end": peak - 158.0}  # fmt: skip


def _result(on_sha="a"):
    return {
        "frames": 100, "size": 512, "threads": 2, "cores": 2, "repeats": 2, "commit": "abc1234",
        "load_start": 0.42, "load_end": 1.26,
        "speed": {"dmqpm-fast": {"off": [_run(50.0), _run(40.0)],
                                 "on": [_run(32.0, sha=on_sha), _run(35.0)]}},
        "rss_model": "dmqpm-fast", "rss_counts": [25, 50],
        "rss": [_rss(25, False, 700.0), _rss(25, True, 730.0), _rss(50, False, 702.0),
                {"frames": 50, "overlap": True, "error": "MemoryError"}],
    }  # fmt: skip


def test_the_section_states_the_run_the_best_rates_and_the_spread_of_the_peaks(bench):
    lines = bench.section(_result())
    text = "\n".join(lines)
    assert lines[0] == "## Time-lapse speed and memory (bench_timelapse_speed)"
    assert (
        "on a simulated 100-frame 512² time-lapse" in text
        and "2 run(s) of each setting, interleaved on the same loaded model" in text
        and "2 torch threads on 2 cores" in text
        and "Commit abc1234. Load average (1 min) 0.4 at the start and 1.3 at the end;" in text
    )
    assert (
        "| `dmqpm-fast` | openvino float32 | off (one by one) | 40.0 | 2.50 | 60.0 | 12,345 |"
        in lines
    )
    assert "| `dmqpm-fast` | openvino float32 | on | 32.0 | 3.12 | 48.0 | 12,345 |" in lines
    # the best of each setting: 100 / 32 against 100 / 40
    assert (
        "- `dmqpm-fast`: overlapped **3.12** frames per second against 2.50 one frame after the "
        "other (1.25×, +25 %); outputs identical byte for byte (labels TIFF, cells and frames "
        "CSVs, all runs)."
    ) in lines
    assert "with `dmqpm-fast` on the first T = 25, 50 frames of the same file" in text
    assert "| 25 | on | **730** | 300 | 570 → 572 | 10.0 | 2,500 |" in lines
    assert "| 50 | on | failed: MemoryError | | | | |" in lines
    assert (
        "before: the resident size after the imports and loading the model; anonymous: the "
        "memory the process itself holds, without pages of mapped files, when about half of the "
        "T frames and all of them were done, from one run: what grows within a run). It should "
        "not grow with T."
    ) in text
    assert "- overlap off: peak 700 to 702 MiB over T (spread 2 MiB)." in lines
    assert not any(line.startswith("- overlap on:") for line in lines)  # one peak: no spread


def test_different_outputs_are_said(bench):
    assert any("outputs **different** byte for byte" in line
               for line in bench.section(_result(on_sha="b")))  # fmt: skip
