"""Tests of benchmarks/bench_timelapse_memory.py: the cut files and what the section reads."""

from __future__ import annotations

import numpy as np

BENCHMARK = "bench_timelapse_memory"


def test_first_frames_cuts_the_labels_and_the_table_to_the_same_frames(bench, tmp_path):
    from napari_dmqpm.inference.measure import write_table_csv
    from napari_dmqpm.io.write import LabelsStream

    labels = np.arange(5 * 6 * 7, dtype=np.uint16).reshape(5, 6, 7) % 9
    with LabelsStream(tmp_path / "m_labels.tif", shape=labels.shape) as stream:
        for t, frame in enumerate(labels):
            stream.write(t, frame)
    write_table_csv(tmp_path / "m_cells.csv", {"frame": np.repeat(np.arange(5), 2),
                                               "label": np.tile([1, 2], 5)})  # fmt: skip
    cut_labels, cut_table = bench.first_frames(
        tmp_path / "m_labels.tif", tmp_path / "m_cells.csv", 3, tmp_path
    )
    from napari_dmqpm.io import read_labels

    np.testing.assert_array_equal(read_labels(cut_labels).labels, labels[:3])
    rows = cut_table.read_text().splitlines()
    assert rows[0].startswith("frame,label") and len(rows) == 1 + 6
    assert {row.split(",")[0] for row in rows[1:]} == {"0", "1", "2"}


def _result():
    trace = [{"frame": f, "s": f, "peak": 1000 + f, "rss": 900.0, "anon": 800.0}
             for f in range(1, 201)]  # fmt: skip
    segment = {
        "before": {"peak": 384.0}, "trace": trace, "after_track": {"peak": 1500.0, "rss": 1400.0,
        "anon": 1300.0}, "segment_s": 600.0, "segment_cpu_s": 300.0, "track_s": 40.0,
        "track_cpu_s": 20.0, "n_frames": 200, "n_cells": 1000, "n_tracks": 10, "commit": "abc",
        "load": 1.0,
    }  # fmt: skip
    track = {
        str(n): {"before": {"rss": 100.0}, "after": {"peak": 200.0 + n}, "s": 1.0, "cpu_s": 1.0,
                 "n_tracks": 10, "n_points": 5 * n}
        for n in (50, 100, 200)
    }  # fmt: skip
    before = {"track": {"50": {"after": {"peak": 700.0}}, "200": {"after": {"peak": 2200.0}}}}
    return {"shape": [8, 8], "segment": segment, "track": track, "track_commit": "def",
            "before": before}  # fmt: skip


def test_the_section_reads_the_trace_at_the_frames_asked_and_the_growth_per_frame(bench):
    text = "\n".join(bench.section(_result()))
    for frame in (25, 50, 100, 200):
        assert f"| {frame} | {1000 + frame:,} |" in text
    assert "| 200 | 1,000 | 10 | 1 (1) | 400 | 300 | 2,200 |" in text
    # (400 - 250) / 150 frames = 1.00 MiB a frame now; (2200 - 700) / 150 = 10.0 before
    assert "grows by 1.00 MiB" in text and "grew by 10.0 MiB per frame" in text
