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
    same = good | scores(**{bench.NNUNET: 0.992, bench.FAST: 0.9918})  # equal to 3 decimals
    assert bench.ratios(measured, same)[-1].endswith(f"**met** by {bench.FAST}.")
    below = good | scores(**{bench.NNUNET: 0.992, bench.FAST: 0.9914})
    assert bench.ratios(measured, below)[-1].endswith("**missed**.")
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


# --- issue 17 item 4: the networks through each backend against the peak of the same run ---

TILE_MP, FRAME_MP = 512 * 512 / 1e6, 1024 * 1224 / 1e6


def backend_run(bench, ms_per_mp):
    """A run of ``measure_backends`` from ms per megapixel (tile, frame) per backend and net.

    GFLOP/MP: nnU-Net 450 (divisor 128: the frame pads to 1024×1280), dmqpm-default 250 and
    dmqpm-fast 25 (divisor 8: no padding). Peaks: torch 150, OpenVINO 250 GFLOP/s.
    """
    gflop_mp = {bench.NNUNET: 450.0, bench.SHIPPED: 250.0, bench.FAST: 25.0}
    return {
        "peaks": {
            "torch": {"64→64, 128², NCHW": 100.0, "64→64, 128², channels_last": 150.0},
            "openvino": {"64→64, 64²": 200.0, "128→128, 64²": 250.0},
        },
        "seconds": {
            backend: {
                name: {"tile": tile * TILE_MP / 1e3, "frame": frame * FRAME_MP / 1e3}
                for name, (tile, frame) in by_name.items()
            }
            for backend, by_name in ms_per_mp.items()
        },
        "gflop_tile": {name: g * TILE_MP for name, g in gflop_mp.items()},
        "divisor": {bench.NNUNET: 128, bench.SHIPPED: 8, bench.FAST: 8},
        "versions": {"torch": "2.13.0", "openvino": "2026.4"},
        "profile": {},
        "repeats": 3,
    }


def timings(bench):
    return {
        "torch": {
            bench.NNUNET: (4000.0, 5000.0),
            bench.SHIPPED: (2000.0, 3000.0),  # 125 / 83 GFLOP/s: 83 % / 56 % of 150
            bench.FAST: (250.0, 500.0),  # 16x / 10x
        },
        "openvino": {
            bench.NNUNET: (3600.0, 4500.0),
            bench.SHIPPED: (1000.0, 1400.0),  # 250 / 179 GFLOP/s: 100 % / 71 % of 250; 3.6x / 3.2x
            bench.FAST: (150.0, 200.0),  # 167 / 125 GFLOP/s: 67 % / 50 %; 24x / 22.5x
        },
    }


def test_backend_rows_are_per_megapixel_against_the_same_backends_peak(bench):
    run = backend_run(bench, timings(bench))
    rows = bench.backend_rows(run)
    shipped = rows["torch", bench.SHIPPED]
    assert shipped["tile_gflops"] == pytest.approx(125.0)
    assert shipped["frame_gflops"] == pytest.approx(250.0 / 3.0)
    assert shipped["frame_share"] == pytest.approx(250.0 / 3.0 / 150.0)  # torch's peak
    assert rows["openvino", bench.SHIPPED]["tile_share"] == pytest.approx(1.0)  # OpenVINO's
    assert rows["openvino", bench.FAST]["frame_speedup"] == pytest.approx(22.5)
    # nnU-Net pads the frame to 1024×1280: its GFLOP/s count the padded work
    nnunet = rows["torch", bench.NNUNET]
    assert nnunet["frame_gflops"] == pytest.approx(450.0 * 1024 * 1280 / 1e6 / (5.0 * FRAME_MP))


def test_the_peak_target_needs_the_share_on_tile_and_frame_per_backend(bench):
    run = backend_run(bench, timings(bench))
    lines = bench.peak_verdicts(bench.backend_rows(run), run)
    assert lines == [
        f"- Target: {bench.SHIPPED} at ≥ 60% of the measured peak of the same backend, on the "
        "tile and on the frame: **met** on OpenVINO fp32, **missed** on torch (oneDNN) "
        "(torch (oneDNN) 83% / 56% (125 / 83 of 150 GFLOP/s); OpenVINO fp32 100% / 71% "
        "(250 / 179 of 250 GFLOP/s)).",
        f"- Target: {bench.FAST} at ≥ 60% of the measured peak of the same backend, on the tile "
        "and on the frame: **missed** (torch (oneDNN) 67% / 33% (100 / 50 of 150 GFLOP/s); "
        "OpenVINO fp32 67% / 50% (167 / 125 of 250 GFLOP/s)).",
    ]
    fast_everywhere = timings(bench)
    fast_everywhere["torch"][bench.SHIPPED] = (2000.0, 2500.0)  # 100 GFLOP/s: 67 %
    run = backend_run(bench, fast_everywhere)
    line = bench.peak_verdicts(bench.backend_rows(run), run)[0]
    assert "the frame: **met** (torch (oneDNN) 83% / 67%" in line


def test_the_speedup_target_needs_the_ratio_on_tile_and_frame_and_no_worse_dice(bench):
    run = backend_run(bench, timings(bench))
    rows = bench.backend_rows(run)
    good = scores(**{bench.NNUNET: 0.987, bench.NNUNET_WALL: 0.992, bench.SHIPPED: 0.992})
    good |= scores(**{bench.FAST: 0.995})
    assert bench.speedup_verdicts(rows, run, good) == [
        f"- Target: {bench.SHIPPED} ≥ 3× faster per megapixel than nnU-Net's default network "
        "through the same backend, on the tile and on the frame, at equal or better Dice: "
        "**met** on OpenVINO fp32, **missed** on torch (oneDNN) (torch (oneDNN) 2.0× / 1.7×; "
        "OpenVINO fp32 3.6× / 3.2×, tile / frame; Dice 0.992 against 0.992 "
        f"({bench.NNUNET_WALL})).",
        f"- Target: {bench.FAST} ≥ 20× faster per megapixel than nnU-Net's default network "
        "through the same backend, on the tile and on the frame, at equal or better Dice: "
        "**met** on OpenVINO fp32, **missed** on torch (oneDNN) (torch (oneDNN) 16.0× / 10.0×; "
        "OpenVINO fp32 24.0× / 22.5×, tile / frame; Dice 0.995 against 0.992 "
        f"({bench.NNUNET_WALL})).",
    ]
    # equal at the 3 reported decimals (the recorded scores have no more)
    assert bench.speedup_verdicts(rows, run, good | scores(**{bench.FAST: 0.9918})) == (
        bench.speedup_verdicts(rows, run, good | scores(**{bench.FAST: 0.992}))
    )
    worse = good | scores(**{bench.FAST: 0.991})
    line = bench.speedup_verdicts(rows, run, worse)[1]
    assert ": **missed** (torch (oneDNN) 16.0×" in line and "Dice 0.991 against 0.992" in line
    untrained = {k: v for k, v in good.items() if k not in bench.NNUNETS}
    line = bench.speedup_verdicts(rows, run, untrained)[0]
    assert ": **missed** (" in line and "Dice not compared" in line
    slow_frame = timings(bench)
    slow_frame["openvino"][bench.FAST] = (150.0, 230.0)  # 19.6x on the frame
    run = backend_run(bench, slow_frame)
    line = bench.speedup_verdicts(bench.backend_rows(run), run, good)[1]
    assert ": **missed** (torch (oneDNN) 16.0× / 10.0×; OpenVINO fp32 24.0× / 19.6×" in line


def test_the_backend_section_renders_its_paragraph_and_tables(bench):
    run = backend_run(bench, timings(bench))
    good = scores(**{bench.NNUNET: 0.987, bench.SHIPPED: 0.992, bench.FAST: 0.995})
    lines = bench.backend_section(run, good, (1.2, 2.3))
    assert lines[0] == (
        "### Through each backend, against the peak of the same run (issue 17 item 4)"
    )
    paragraph = lines[2]
    assert paragraph.startswith("One process at one thread (`torch.set_num_threads(1)`;")
    assert "median of 3 round(s) after a warm-up round;" in paragraph
    assert "Backends: torch (oneDNN) 2.13.0, OpenVINO fp32 2026.4; the networks run" in paragraph
    assert "Load average 1.2 when this part started and 2.3 when it ended." in paragraph
    assert (
        "as inside a network), in GFLOP/s (2 FLOP per multiply-add): torch (oneDNN) **150 "
        "GFLOP/s** (64→64, 128², "
        "channels_last); OpenVINO fp32 **250 GFLOP/s** (128→128, 64²)." in paragraph
    )
    assert (
        "Peak: the fastest of the stacks below on the same backend, each 8 identical 3×3 "
        "convolutions (channels to channels," in paragraph
    )
    assert "| backend | stack of 8 convolutions (3×3, batch 1) | GFLOP/s |" in lines
    assert "| torch (oneDNN) | 64→64, 128², channels_last | **150** |" in lines
    assert "| torch (oneDNN) | 64→64, 128², NCHW | 100 |" in lines
    assert (
        f"| {bench.SHIPPED} | OpenVINO fp32 | 250 | 1000 | 1400 | 250 / 179 | 100% / 71% "
        "| 3.6× / 3.2× | 0.992 |" in lines
    )
    assert (
        f"| {bench.NNUNET} | torch (oneDNN) | 450 | 4000 | 5000 | 112 / 94 | 75% / 63% | - "
        "| 0.987 |" in lines
    )
    assert not any("$" in line for line in lines)
    failed = bench.backend_section({"error": "no openvino"}, good, (1.0, 1.0))
    assert "Not measured: no openvino" in failed


def test_the_profile_table_rates_convolutions_against_openvinos_peak(bench):
    run = backend_run(bench, timings(bench))
    run["profile"] = {
        bench.FAST: {
            "convolution → 16 channels": {"ms": 30.0, "gflop": 3.0},
            "InstanceNorm (MVN)": {"ms": 15.0, "gflop": 0.0},
            "convolution → 64 channels": {"ms": 4.0, "gflop": 1.0},
            "Reorder": {"ms": 0.5, "gflop": 0.0},
            "Add": {"ms": 0.5, "gflop": 0.0},
        }
    }
    lines = bench.profile_lines(run)
    assert lines[0] == (
        f"Where the time goes, {bench.FAST} on OpenVINO fp32: OpenVINO's per-layer counters "
        "of a 512² forward at one thread (median per kind of layer over 5 forwards, each after "
        "a forward of the peak stack profiled the same way) sum to 50 ms (the counters add time "
        "of their own: "
        "read the shares); the convolutions take 68% of it at 118 GFLOP/s together (47% of the "
        "peak above), InstanceNorm and the other layers (concatenation, attention, layout "
        "changes, ...) the other 32%."
    )
    assert lines[4:8] == [
        "| convolution → 16 channels | 30.0 | 60% | 3.0 | 100 | 40% |",
        "| InstanceNorm (MVN) | 15.0 | 30% | - | - | - |",
        "| convolution → 64 channels | 4.0 | 8% | 1.0 | 250 | 100% |",
        "| 2 other kinds of layer, each under 3% | 1.0 | 2% | - | - | - |",
    ]
    assert bench.profile_lines(run | {"profile": {}}) == []
    # with the peak stack profiled beside it, the shares are of that peak
    lines = bench.profile_lines(run | {"profile_peaks": {bench.FAST: 200.0}})
    assert (
        "at 118 GFLOP/s together (59% of the peak stack profiled the same way, 200 GFLOP/s), "
        "InstanceNorm" in lines[0]
    )
    assert "| convolution → 64 channels | 4.0 | 8% | 1.0 | 250 | 125% |" in lines


def test_recorded_scores_are_marked_as_recorded_in_the_text(bench):
    budget = {"iterations": 800, "batch_size": 2, "patch_size": [256, 256], "minutes": 15.0}
    budget |= {"cpu_count": 2, "threads": 2, "tuned": True, "n": 16}
    measured = {bench.SHIPPED: {"dice": 0.99, "f1": 0.95, **budget}}
    recorded = {bench.NNUNET: bench.RECORDED_SCORES[bench.NNUNET] | {"recorded": "somewhere"}}
    text = bench._scores_text(recorded | measured)
    assert f"({bench.NNUNET}: best checkpoint after 800 training iterations" in text
    assert "thresholds tuned; recorded: somewhere), (" in text
    assert text.endswith("(15 min on 2 CPU cores, 2 torch thread(s)), thresholds tuned).")
