"""benchmarks/bench_gpu.py: runs only where CUDA is, and never overwrites a measured section."""

from __future__ import annotations

import pytest
import torch

BENCHMARK = "bench_gpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: it would measure")
def test_without_cuda_it_measures_nothing_and_says_so(bench, capsys):
    assert bench.main(["--iterations", "1"]) == 3
    out, err = capsys.readouterr()
    assert out == "" and "no CUDA device" in err


def test_run_all_runs_it_only_when_named_and_keeps_its_section(bench, tmp_path):
    from benchmarks import run_all

    names = ["bench_gpu", "bench_inference", "bench_memory"]
    assert "bench_gpu" not in run_all.chosen_benchmarks(names, None)
    assert run_all.chosen_benchmarks(names, ["bench_gpu"]) == ["bench_gpu"]
    old = ["## A\n\nold a\n", "## GPU (bench_gpu)\n\nmeasured\n"]
    merged = run_all.merge_sections(old, ["## A\n\nnew a\n"])
    assert merged == ["## A\n\nnew a\n", "## GPU (bench_gpu)\n\nmeasured\n"]


def test_frames_are_padded_to_the_divisor(bench):
    assert bench.padded(bench.FRAME, 32) == (1024, 1248)
    assert bench.padded((1, 33), 16) == (16, 48)
