"""The verdict and the frame arithmetic of benchmarks/bench_nnunet.py, on made-up timings."""

from __future__ import annotations

import pytest

#: The script under test (the ``bench`` fixture of conftest imports it).
BENCHMARK = "bench_nnunet"


def result(tile_ms, frame_ms, *, gflop=100.0, divisor=16):
    return {
        "tile_ms": tile_ms,
        "frame_ms": frame_ms,
        "frame_tiles": 1,
        "gflop_tile": gflop,
        "elements_tile": 1e8,
        "kernels": 100,
        "divisor": divisor,
        "features": [16, 32, 64, 128, 256],
        "parameters": 2e6,
        "batched_tile_ms": tile_ms,
        "batch": 1,
        "tile_peak_mib": 1.0,
        "frame_peak_mib": 2.0,
        "estimate_mib": 3.0,
        "device": "cpu",
    }


def scores(**dice):
    return {name: {"dice": value, "f1": 0.9} for name, value in dice.items()}


def test_the_goal_needs_five_times_on_tile_and_frame_and_no_worse_dice(bench):
    measured = {
        bench.NNUNET: result(600.0, 4000.0, divisor=128),
        bench.SHIPPED: result(500.0, 3000.0),
        bench.FAST: result(100.0, 700.0),
    }
    good = scores(**{bench.NNUNET: 0.987, bench.SHIPPED: 0.992, bench.FAST: 0.990})
    lines = bench.ratios(measured, good)
    assert lines[-1].endswith(f"**met** by {bench.FAST}.")
    assert "**6.0×** the time per megapixel on a 512² tile, **5.7×**" in lines[1]
    worse = good | scores(**{bench.FAST: 0.980})
    assert bench.ratios(measured, worse)[-1].endswith("**missed**.")
    slow_frame = measured | {bench.FAST: result(100.0, 900.0)}  # 4.4x on the frame
    assert bench.ratios(slow_frame, good)[-1].endswith("**missed**.")
    # a longer-trained nnU-Net default network that scores higher becomes the reference
    longer = good | scores(**{bench.NNUNET_WALL: 0.996})
    lines = bench.ratios(measured, longer)
    assert lines[-1].endswith("**missed**.")
    assert f"Dice 0.990 against 0.996 ({bench.NNUNET_WALL})" in lines[1]
    untrained = {k: v for k, v in good.items() if k != bench.NNUNET}
    lines = bench.ratios(measured, untrained)
    assert lines[-1].endswith("**missed**.") and "Dice not compared" in lines[1]


def test_a_failed_network_is_reported_not_compared(bench):
    measured = {bench.NNUNET: result(600.0, 4000.0), bench.SHIPPED: {"error": "out of memory"}}
    lines = bench.ratios(measured, {})
    assert lines[-1].endswith("**missed**.") and not any(bench.SHIPPED in line for line in lines)
    table = bench.table(measured, {})
    assert f"| {bench.SHIPPED} | failed: out of memory |" in table[3]
    assert "not trained" in table[2]


def test_frame_work_pads_to_the_divisor_and_counts_tiles(bench):
    floor = bench.frame_floor(result(100.0, 700.0, gflop=26.2144, divisor=32))
    assert floor["padded"] == (1024, 1248)
    assert floor["gflop"]["whole"] == pytest.approx(100.0 * 1024 * 1248 / 1e6)
    # 512² tiles at the default 25 % overlap (InferenceConfig's and the tiler's): 3 x 3
    assert floor["n_tiles"] == 9
    assert floor["gflop"]["tiled"] == pytest.approx(9 * 26.2144)


def test_the_equal_budget_line_needs_both_runs_and_names_the_budget(bench):
    budget = {"planned_iterations": 1000, "batch_size": 2, "patch_size": [256, 256], "n": 16}
    both = {
        bench.NNUNET: {"dice": 0.987, "f1": 0.966, "tuned": True, "iterations": 800, **budget},
        bench.STRIDED: {"dice": 0.989, "f1": 0.960, "tuned": True, "iterations": 925, **budget},
    }
    line = bench.equal_budget(both)[0]
    assert "both 1000 planned iterations of batch 2 at 256²" in line
    assert "best checkpoints at 925 and 800" in line
    assert "Dice 0.989, F1 0.960" in line and "Dice 0.987, F1 0.966" in line
    assert bench.equal_budget({bench.NNUNET: both[bench.NNUNET]}) == []
    longer = both | {bench.STRIDED: both[bench.STRIDED] | {"planned_iterations": 1200}}
    assert "1200 and 1000 planned iterations" in bench.equal_budget(longer)[0]


def test_the_equal_wall_clock_line_pairs_dmqpm_fast_with_nnunet_on_its_budget(bench):
    budget = {"budget_minutes": 50.0, "batch_size": 2, "patch_size": [256, 256], "n": 16}
    both = {
        bench.FAST: {"dice": 0.995, "f1": 0.978, "tuned": True, "iterations": 15500, **budget},
        bench.NNUNET_WALL: {"dice": 0.99, "f1": 0.97, "tuned": False, "iterations": 2600, **budget},
    }
    (line,) = [line for line in bench.equal_budget(both) if line]
    assert line.startswith("At one wall-clock budget (both 50 min on this CPU of batch 2")
    assert "15500 and 2600 iterations; thresholds tuned / default" in line
    assert f"{bench.FAST} scores Dice 0.995, F1 0.978" in line


def test_the_camera_rate_text_analyses_the_fastest_shipped_model(bench):
    measured = {
        bench.NNUNET: result(900.0, 9000.0, gflop=400.0),
        bench.SHIPPED: result(100.0, 1000.0),
        bench.FAST: result(50.0, 500.0, gflop=50.0, divisor=32),
    }
    text = "\n".join(bench.camera_rate(measured, 123.0))
    assert text.startswith("### Camera rate: 75 fps at 1224×1024\n")
    assert f"leaves **13.3 ms per frame**. {bench.FAST} (features 16..256" in text
    assert (
        "padded to 1024×1248" in text
        and "Measured here on cpu: 500 ms per frame (2.00 fps)" in text
    )
    assert "unwrapping takes 123 ms on this CPU (9× the budget)" in text
    assert "$" not in text
    untimed = "\n".join(bench.camera_rate(measured, None))
    assert "unwrapping was not timed here (--quick; see bench_read_raw)" in untimed
