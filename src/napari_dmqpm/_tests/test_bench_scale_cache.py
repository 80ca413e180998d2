"""bench_scale's cache serves no automatic-size record of another estimate (issue 17)."""

from __future__ import annotations

import json

import numpy as np

BENCHMARK = "bench_scale"


def _case(bench):
    labels = np.zeros((32, 32), np.int64)
    labels[4:12, 4:12], labels[18:28, 16:26] = 1, 2
    phase = (labels > 0).astype(np.float32)
    return bench.Case("tiny-0", "D20", phase, labels, None, pixel_size_um=0.5)


def _run(bench, monkeypatch, cache, fingerprint):
    calls = []

    def runner(name):
        def run(case, mode):
            calls.append(mode)
            extra = {"estimate": {"diameter_px": 9.0}} if mode == "auto" else {}
            return case.labels, extra

        return run

    monkeypatch.setattr(bench, "model_runner", runner)
    monkeypatch.setattr(bench, "estimate_fingerprint", lambda: fingerprint)
    bench.run_method("phase-only", [_case(bench)], cache=cache, say=lambda _: None)
    return calls


def test_auto_records_of_another_estimate_are_computed_again(bench, tmp_path, monkeypatch):
    cache = tmp_path / "phase-only.json"
    assert sorted(_run(bench, monkeypatch, cache, "estimate-a")) == ["auto", "none", "oracle"]
    assert _run(bench, monkeypatch, cache, "estimate-a") == []  # all current: nothing to do
    assert _run(bench, monkeypatch, cache, "estimate-b") == ["auto"]  # only auto depends on it
    records = json.loads(cache.read_text())
    assert records["tiny-0|auto"]["estimate_fingerprint"] == "estimate-b"


def test_stale_auto_records_are_not_reported(bench):
    records = {
        "a|auto": {"mode": "auto", "estimate_fingerprint": "old"},
        "b|auto": {"mode": "auto"},  # written before records carried a fingerprint
        "c|auto": {"mode": "auto", "estimate_fingerprint": "new"},
        "a|oracle": {"mode": "oracle"},
    }
    assert sorted(bench.current_records(records, "new")) == ["a|oracle", "c|auto"]


def test_the_fingerprint_follows_the_estimate_code(bench, monkeypatch):
    import inspect

    from napari_dmqpm.inference import diameter

    before = bench.estimate_fingerprint()
    assert bench.estimate_fingerprint() == before  # stable
    source = inspect.getsource

    def edited(module):
        text = source(module)
        if module is diameter:
            return text.replace("WINDOW_CELLS = ", "WINDOW_CELLS = 1 + ")
        return text

    monkeypatch.setattr(inspect, "getsource", edited)
    assert bench.estimate_fingerprint() != before
