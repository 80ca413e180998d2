"""The pages of the last benchmark scripts moved to benchmarks/templates, rendered on fixed records.

Each test renders a page (or a section) from made-up numbers, checks its paragraphs word for
word and that no template field is left unfilled (a ``$`` in the text).
"""

from __future__ import annotations

import importlib

#: The script the ``bench`` fixture imports; the others are imported from the same checkout.
BENCHMARK = "bench_scale"


def _script(name: str):
    return importlib.import_module(f"benchmarks.{name}")


# ----------------------------------------------------------------------------- bench_scale


def _scale_records() -> dict[str, dict[str, dict]]:
    """dmqpm-default in three modes and iit-dense, two images at D20 and two at x1.

    At x1 the automatic size loses 0.300 and 0.020 F1 against the oracle (mean 0.160: the goal
    is missed because of img_001-x1, estimated 30 px for 40 px).
    """
    model: dict[str, dict] = {}
    classic: dict[str, dict] = {}
    cases = {
        "sim-D20-0": ("D20", 20.0, 0.0), "sim-D20-1": ("D20", 20.0, 0.01),
        "img_001-x1": ("x1", 40.0, 0.3), "img_002-x1": ("x1", 40.0, 0.02),
    }  # fmt: skip
    for case, (group, true_d, gap) in cases.items():
        base = {"case": case, "group": group, "true_diameter_px": true_d, "cpu_s": 30.0}
        estimate = {"diameter_px": 30.0 if case == "img_001-x1" else true_d}
        model[f"{case}|auto"] = {
            **base, "mode": "auto", "f1": 0.9 - gap, "dice": 0.95, "estimate": estimate,
            "commit": "aaa1111",
        }  # fmt: skip
        model[f"{case}|oracle"] = {**base, "mode": "oracle", "f1": 0.9, "dice": 0.96}
        model[f"{case}|none"] = {**base, "mode": "none", "f1": 0.5, "dice": 0.9}
        classic[f"{case}|none"] = {**base, "mode": "none", "f1": 0.6, "dice": 0.8}
    return {"dmqpm-default": model, "iit-dense": classic}


def test_the_scale_page_renders_its_paragraphs_word_for_word(bench):
    text = bench.report(_scale_records(), header=["HEADER"])
    assert "$" not in text
    lines = text.splitlines()
    assert lines[:4] == ["# Results across magnifications (scale sweep)", "", "HEADER", ""]
    assert lines.count("F1 at IoU 0.5, mean over images (foreground Dice below).") == 2
    assert (
        "**`dmqpm-default`, automatic size against the oracle** (goal: F1 within 0.03 of the "
        "oracle and median diameter error under 10 %):" in lines
    )
    assert (
        "- x1: missed because of `img_001-x1` (F1 0.300 below the oracle; estimated 30 px for "
        "40 px); without it the gap is +0.020 (within 0.03)." in lines
    )
    assert (
        "Why the real-map targets are missed: not the cell size. With the true diameter given "
        "(oracle) no shipped model passes F1 0.900 at any resampling, so the automatic size "
        "costs at most what the rows above show. IIT (both presets) reaches 0.60-0.60 there. "
        "The foreground Dice is 0.960-0.960 (the cells are found); what is lost are touching "
        "cells merged or split (docs/results.md, real maps), which needs training on real or "
        "more realistic touching cells, not resampling. Part of it is the watershed's "
        "thresholds, tuned on simulated fields: tuned on 14 real maps instead, they lift F1 on "
        "the 15th (docs/results_loo.md, leave-one-out)." in lines
    )
    simulated_only = {
        method: {k: r for k, r in records.items() if r["group"] == "D20"}
        for method, records in _scale_records().items()
    }
    text = bench.report(simulated_only, header=[])
    assert "## Real Q-PHASE maps, resampled\n\nNot run (the real data folder is absent).\n" in text
    assert "Why the real-map" not in text and "$" not in text


def test_one_scale_table_serves_the_scale_page_and_the_results_page(bench):
    records = _scale_records()
    page = bench.report(records, header=[]).splitlines()
    start = page.index("## Simulated fields") + 4
    assert page[start : start + 4] == [
        "| scale | true diameter, px | `dmqpm-default` auto | `dmqpm-default` oracle "
        "| `dmqpm-default` none | iit-dense |",
        "|---|---|---|---|---|---|",
        "| D20 | 20.0 | 0.895 | 0.900 | 0.500 | 0.600 |",
        "| D20 (Dice) | 20.0 | 0.950 | 0.960 | 0.900 | 0.800 |",
    ]
    numbers = {"scale": {"summary": bench.summarize(records), "cpu_minutes": 4.0, "records": "r"}}
    section = _script("results_report").scale_section(numbers)
    assert "$" not in "\n".join(section)
    start = section.index("Foreground Dice, mean over images:") + 2
    assert section[start : start + 4] == [
        "| images | true diameter, px | `dmqpm-default` auto | `dmqpm-default` oracle "
        "| iit-dense |",
        "|---|---|---|---|---|",
        "| D20 | 20.0 | 0.950 | 0.960 | 0.800 |",
        "| x1 | 40.0 | 0.950 | 0.960 | 0.800 |",
    ]


def test_the_scale_header_fills_every_field(bench, monkeypatch):
    import torch

    monkeypatch.setattr(bench, "_commit", lambda: "c0ffee1")
    monkeypatch.setattr(bench.platform, "processor", lambda: "cpu9")
    monkeypatch.setattr(bench.os, "cpu_count", lambda: 3)
    monkeypatch.setattr(bench.time, "strftime", lambda fmt, t=None: "2026-01-02 03:04 UTC")
    lines = bench.header_lines(600.0, "python benchmarks/bench_scale.py", "4 at aaa1111 (auto)")
    assert "$" not in "\n".join(lines)
    assert lines[0] == (
        "Generated by `python benchmarks/bench_scale.py`; do not edit by hand. Records "
        "computed in 10 min of CPU time (cached per method and image)."
    )
    assert lines[2].startswith("- Machine: cpu9, 3 cores; Python ")
    assert lines[2].endswith(f"torch {torch.__version__} ({torch.get_num_threads()} threads)")
    assert lines[3] == (
        "- Commit: c0ffee1; date 2026-01-02 03:04 UTC; cached records computed: 4 at aaa1111 (auto)"
    )
    assert lines[5] == (
        '- The estimate: docs/inference.md ("Cell size"). The models: each checkpoint\'s model '
        "card; the shipped ones were fine-tuned with scale augmentation over cell diameters of "
        "10-120 px (docs/training.md), which is what the `none` columns test."
    )
    assert bench.header_lines(60.0, "c")[3] == "- Commit: c0ffee1; date 2026-01-02 03:04 UTC"


# ----------------------------------------------------------------------------- bench_diameter


def test_the_diameter_page_renders_its_paragraphs_word_for_word(bench):
    diameter = _script("bench_diameter")
    rows = [
        diameter.Row("sim-D12-0", "D12", "phase", 12.0, 12.0, 12.06, 2.0, 1.0, 3, 2),
        diameter.Row("img_1-x2", "x2", "angle phase", 40.0, 40.0, 36.0, 3.0, 1.0, 4, 3),
        diameter.Row("camera-D20", "camera D20", "phase", 20.0, 20.0, 20.0, 12.0, 4.0, 3, 3),
    ]
    page = diameter.section(rows, baseline="7c3cae2", commit="abc1234",
                            load=((0.5, 1.25, 2.0), (3.1, 2.2, 1.05)), seconds=754.0)  # fmt: skip
    assert "$" not in page
    lines = page.splitlines()
    assert lines[2] == (
        "The estimate (`napari_dmqpm.inference.diameter`) at abc1234 against its version at "
        "7c3cae2 (before the windows sized to about `WINDOW_CELLS` cells and the coarse passes "
        "labelled at the model's scale; the rest of the code is today's), on the images of the "
        "scale sweep (`bench_scale.py`) and on dense simulated 1024×1224 frames: the shipped "
        "`phase-only` sizes every shipped model, on torch, one thread, process CPU seconds, the "
        "two interleaved. 'angle phase': the phase the dual models see on a real map (retrieved "
        "from synthesized angles). Load average (1, 5, 15 min) 0.50, 1.25, 2.00 at the start "
        "and 3.10, 2.20, 1.05 at the end (13 min)."
    )
    assert (
        "3 estimates: median change 0.50 %, 2 within 1 %, 2 within 3 %, 2 within 5 %, largest "
        "10.0 %. CPU on the sweep's images: 2.50× less. On the camera-sized frames: 3.00× less "
        "(12.00 s → 4.00 s per frame)." in lines
    )
    assert lines[lines.index("Estimates that moved by more than 3 %:") + 2] == (
        "- img_1-x2 (angle phase): 40.0 → 36.0 px (-10.0 %; true 40.0 px: error +0.0 % → "
        "-10.0 %), passes 4 → 3"
    )
    assert "<details><summary>Every estimate, old and new</summary>" in lines
    # without camera frames the sweep's sentence keeps its trailing space, as the pages have it
    sweep = diameter.section(rows[:1], baseline="b", commit="c", load=((0,) * 3,) * 2, seconds=0)
    assert "largest 0.5 %. CPU on the sweep's images: 2.00× less. \n" in sweep
    assert "Estimates that moved" not in sweep and "$" not in sweep


# ----------------------------------------------------------------------------- bench_backends


def test_the_backends_stage_table_follows_the_targets_and_sums_the_stages(bench, monkeypatch):
    import argparse

    backends = _script("bench_backends")
    seconds = iter(
        [dict(zip(backends.STAGES, (9.0,) * 5, strict=True))]
        + [
            dict(zip(backends.STAGES, values, strict=True))
            for values in ((0.1, 1.0, 1.5, 0.3, 0.1), (0.1, 1.2, 1.7, 0.5, 0.1))
        ]
    )  # the warm-up round's nines are not counted
    monkeypatch.setattr(backends, "stage_seconds", lambda model, acquisition: next(seconds))
    rows = backends.stage_rows("m", None, None, argparse.Namespace(repeats=2))
    assert rows == ["| `m` | 0.10 (3%) | 1.10 (33%) | 1.60 (48%) | 0.40 (12%) | 0.10 (3%) | 3.30 |"]
    text = backends.report(
        shape=(8, 8), runtimes="", repeats=2, skipped={}, one_thread=["| one |"],
        two_thread=["| two |"], choice=[], load=((0,) * 3,) * 2, stages=rows,
    )  # fmt: skip
    lines = text.splitlines()
    start = lines.index("| two |")
    assert lines[start + 2] == (
        "Where the time of the camera frame goes, at 2 threads with `backend='auto'`: each "
        "stage of the path run on its own, one after the other, wall seconds, median of 2 "
        "rounds after a warm-up, and its share of their sum (reading, demosaicking and writing "
        "are left out: bench_read_raw times reading). The network and the estimate's passes use "
        "both threads; phase retrieval, post-processing and measurements run on one, so on two "
        "cores they weigh twice what their CPU time does:"
    )
    assert lines[start + 4 : start + 7] == [
        "| model | phase retrieval | diameter estimate | network | post-processing | "
        "measurements | sum (s) |",
        "|---|---:|---:|---:|---:|---:|---:|",
        rows[0],
    ]


def test_the_backends_section_renders_its_paragraphs_word_for_word(bench):
    backends = _script("bench_backends")
    scores = {
        "dmqpm-default": dict(sim_f1=0.975, sim_dice=0.991, real_f1=0.779, real_dice=0.895),
        "dmqpm-fast": dict(sim_f1=0.980, sim_dice=0.992, real_f1=0.780, real_dice=0.885),
    }
    choice = backends.choice_lines({"dmqpm-default": 5.22, "dmqpm-fast": 2.88}, scores, "x")
    text = backends.report(
        shape=(1024, 1224), runtimes="", repeats=2, skipped={"dmqpm-default": "not found"},
        one_thread=["| one |"], two_thread=["| two |"], choice=choice,
        load=((0.5, 1.25, 2.0), (3.1, 2.2, 1.05)),
    )  # fmt: skip
    assert "$" not in text
    lines = text.splitlines()
    assert lines[:4] == [
        "## Inference backends on the CPU (bench_backends)",
        "",
        "`dmqpm-default` skipped: not found",
        "",
    ]
    assert lines[4] == (
        "One simulated dense 1024×1224 frame; no runtime installed; one thread, process CPU "
        "seconds, median of 2 interleaved rounds after a warm-up. 'network': "
        "`predict_probabilities` at the model's scale (one padded tile); 'whole path': "
        "`segment_acquisition` with the defaults (diameter estimate by the `phase-only` network "
        "on the same backend, post-processing, measurements). Agreement is with torch on this "
        "frame; 'check' is the reference-field check of the backend layer (class and label "
        "agreement; it must reach 99.99 % with the same cell count), which decides whether "
        '`backend="auto"` uses the contender.'
    )
    assert lines[lines.index("| one |") + 2] == (
        "'whole path, diameter given': the same path with `diameter_px` set to the model's "
        "trained diameter, so no estimate runs and the frame is not resampled; 'whole path' adds "
        "the estimate but runs the network on the frame resampled for the estimated diameter (on "
        "this frame cells of about 28 px, 0.8× the trained size: fewer pixels), so the "
        "difference is not the estimate's cost (bench_diameter measures that). 'label "
        "agreement': pixels in the same cell as torch's (labels matched by largest overlap), and "
        "the cell counts."
    )
    assert lines[lines.index("| one |") + 4] == (
        "Issue 17 targets, whole path at 2 threads, median of 2 interleaved rounds, torch "
        "against `backend='auto'` (what it picked after its check): wall seconds, process CPU "
        "seconds (both threads), and the bound a perfect 2-thread split of the one-thread CPU "
        "time above would give (wall times on a machine shared with other sessions are longer "
        "than that bound); and the camera frame as a user opens it: `segment_file` with the "
        "defaults on the same frame written as the IMX250MZR's raw 12-bit mosaic (a 2448×2048 "
        "TIFF: reading, demosaicking, phase retrieval, the whole path, writing labels and "
        "tables), wall seconds, the model loaded:"
    )
    assert lines[lines.index("| two |") + 1 :] == [
        "",
        "### The model a CPU user gets",
        "",
        "Seconds per frame: the whole path above at one thread on what `backend='auto'` picks; "
        "accuracy: docs/results.md (automatic size, torch; held-out simulated fields and the 15 "
        "real Q-PHASE maps). Rule: the fastest model whose F1@0.5 is within 0.01 and whose "
        "foreground Dice is within 0.02 of the best on both sets.",
        "",
        "| model | whole path, s per frame (1 thread) | simulated Dice / F1@0.5 "
        "| real Dice / F1@0.5 |",
        "|---|---:|---|---|",
        "| `dmqpm-default` | 5.22 | 0.991 / 0.975 | 0.895 / 0.779 |",
        "| `dmqpm-fast` | 2.88 | 0.992 / 0.980 | 0.885 / 0.780 |",
        "",
        "The rule picks `dmqpm-fast`; the CLI and the widget pick `x` for angle images "
        "(**not the same**). Phase maps have one shipped model, `phase-only`.",
        "",
        "Load average (1, 5, 15 min) at the start 0.50, 1.25, 2.00 and the end 3.10, 2.20, 1.05 "
        "(other sessions share this machine; the 2-thread wall times suffer most from them).",
    ]
    same = backends.choice_lines({"dmqpm-fast": 2.88}, scores, "dmqpm-fast")[-1]
    assert same == (
        "The rule picks `dmqpm-fast`; the CLI and the widget pick `dmqpm-fast` for angle images "
        "(the same). Phase maps have one shipped model, `phase-only`."
    )
    assert backends.choice_lines({"a": 1.0}, scores, "x")[-1] == (
        "The rule picks no model fits the rule (or docs/results.md lacks the scores). Phase maps "
        "have one shipped model, `phase-only`."
    )


# ----------------------------------------------------------------------------- bench_inference


def test_the_inference_section_renders_its_paragraphs_word_for_word(bench):
    inference = _script("bench_inference")
    text = inference.report(
        where="CPU", skipped={"dmqpm-default": "not found"}, parameters={"dmqpm-fast": 765432},
        threads=2, device="cpu", repeats=3,
        latency={"dmqpm-fast": (["| latency |"], 3.25)}, scaling={"dmqpm-fast": ["| size |"]},
        frames=4, timelapse={"dmqpm-fast": (2.5, 0.4)}, networks=["| network |"],
    )  # fmt: skip
    assert "$" not in text
    paragraphs = text.split("\n\n")
    assert paragraphs[:3] == [
        "## Segmentation speed (CPU)",
        "`dmqpm-default` skipped: not found",
        "The shipped `dmqpm-fast` (765,432 parameters), whole `segment_acquisition` path on a "
        "simulated dense frame, 2 torch threads, device cpu, best and median of 3 after a "
        "warm-up; TTA (4 passes) only at 512².",
    ]
    assert paragraphs[4:] == [
        "1024×1224 without TTA against the ≤ 3 s target of issue 3: `dmqpm-fast` 3.25 s: "
        "**missed by 0.25 s**. Frames up to `whole_frame_px` run as one tile; post-processing "
        "and measurements are the same work for both models, the network is not.",
        "Cost against the frame size, `dmqpm-fast` (whole path, no TTA; linear growth = "
        "constant ms/MP):",
        "| size |",
        "Frames up to `whole_frame_px` (1.6 MP) run as one tile padded to the divisor; larger "
        "ones in 512² tiles at 25% overlap, so 'MP computed' exceeds the frame. 'network': "
        "`predict_probabilities` (normalization, tiles, blending); the rest of the whole path is "
        "post-processing and measurements. Where the network's ms per MP computed rises with the "
        "frame, the cost per pixel of the convolutions themselves grows with the tile on this "
        "machine.",
        "Time-lapse of 4 simulated 512² frames, one after the other:",
        "- `dmqpm-fast`: **2.50 frames per second** (0.40 s per frame)",
        "Network alone on the CPU, one 512² tile (median of 5), against an early-fusion network "
        "of the same widths (target ≤ 1.3×):",
        "| model | fusion | dual (ms) | early fusion (ms) | ratio | GFLOP/MP dual | early |\n"
        "|---|---|---:|---:|---:|---:|---:|\n| network |",
        "On CUDA the code uses bf16 autocast (fp16 where bf16 is not native), channels_last "
        "inputs and batches of tiles sized to the free memory; GPU numbers and the comparison "
        "with nnU-Net's default network are in the bench_nnunet section.",
        "",
    ]
    met = inference.report(
        where="cuda", skipped={}, parameters={"a": 1, "b": 2000}, threads=1, device="cuda:0",
        repeats=1, latency={"a": ([], 3.0), "b": ([], 0.5)}, scaling={}, frames=1,
        timelapse={}, networks=[],
    )  # fmt: skip
    assert "The shipped `a` (1 parameters) and `b` (2,000 parameters), whole" in met
    assert "issue 3: `a` 3.00 s: met; `b` 0.50 s: met. Frames" in met
    nothing = inference.report(
        where="CPU", skipped={"a": "gone"}, parameters={}, threads=1, device="", repeats=1,
        latency={}, scaling={}, frames=1, timelapse={}, networks=[],
    )  # fmt: skip
    assert nothing == "## Segmentation speed (CPU)\n\n`a` skipped: gone\n\n"


# ----------------------------------------------------------------------------- bench_tracking


def _tracking_scores(tra: float, errors: list[float]) -> dict:
    return {
        "tra": tra, "det": 1.0, "div_tp": 1.0, "div_fp": 0.0, "div_fn": 1.0,
        "errors_k": errors, "errors_pg": errors, "k": [0.03] * len(errors),
        "k_true": [0.03] * len(errors),
    }  # fmt: skip


#: The method section of a --quick page, word for word.
TRACKING_METHOD = """\
## What was run

- Time-lapses: `napari_dmqpm.simulation.simulate_growth`, 96x96 px at 0.627 µm/px,
  10 frames; 1 movie(s) per density and interval (model labels: at 10 and 30 min,
  first movie).
  Doubling times drawn in 15-30 h; cells move by a persistent random walk (0.1 µm/min) and a
  common drift (0.05 µm/min) that carries cells in and out of view.
- Labels: `truth` (the simulator's) and `phase-only` (the shipped model, CPU, automatic size).
- Linkers: `overlap` = nearest-overlap baseline; `lap-position` = laptrack on centroids
  (`mass_weight_px=0`); `lap-mass` = `track_labels` defaults (centroid + 10 px per unit of ln dry
  mass, divisions cost the halved mass, mass-conserving division check, gaps of up to 2 frames).
- TRA, DET: the CTC's AOGM-based measures from `py-ctcmetrics` (`evaluate_sequence`), mean over
  movies. Divisions: BC(0) counts from the same package (a division counts when found in the
  right frame with the right mother), summed over movies.
- Growth: tracks with >= 8 frames off the field edge with a trusted background
  (`background_ok`; the frames the fit uses),
  matched to the true cell covering >= 50 % of their pixels; error = |estimate - truth| / truth
  of the specific growth rate (Theil-Sen slope of ln mass, 1/h, against the cell's law) and
  of the growth rate (Theil-Sen slope of mass, pg/h, against the same fit to the true masses);
  "field median error" = the error of the median specific growth rate of the field.

"""
TRACKING_FIRST_NOTE = """\
- On the simulator's own labels every linker keeps identities (TRA >= 0.97, DET 1): the
  linkers differ in divisions. The overlap baseline never links a daughter to her mother
  (recall 0 by construction); laptrack finds most divisions at 1-10 min; the dry-mass terms
  (`lap-mass`) cut splits that do not conserve mass, so their division precision is higher
  than on position alone in most conditions, but still 0.15-1.0 (one cause seen: a cell
  entering beside another at the field edge, where mass is not judged). At 30 min,
  daughters move too far in one frame and recall drops to 0.3-0.6.
"""
TRACKING_LAST_NOTE = """\
- Not compared: trackastra and ultrack (docs/tracking.md says why: trackastra downloads its
  network's weights at run time, ultrack needs a commercial ILP solver;
  btrack, run on a subset, below); the simulator draws no mitotic rounding.
"""


def test_the_tracking_page_renders_its_paragraphs_word_for_word(bench, tmp_path, monkeypatch):
    import json

    tracking = _script("bench_tracking")
    memory = _script("bench_timelapse_memory")
    monkeypatch.setattr(tracking, "CACHE_DIR", tmp_path)
    monkeypatch.setattr(memory, "CACHE", tmp_path / "memory")
    monkeypatch.setattr(tracking, "_commit", lambda: "c0ffee1")
    monkeypatch.setattr(tracking, "_version", lambda package: "0.7.0")
    monkeypatch.setattr(tracking.platform, "processor", lambda: "cpu9")
    monkeypatch.setattr(tracking.os, "cpu_count", lambda: 3)
    monkeypatch.setattr(tracking.time, "strftime", lambda fmt, t=None: "2026-01-02 03:04 UTC")
    scale = {
        "n_frames": 200, "shape": [1024, 1224], "n_cells": 300, "labels_mib": 955.9,
        "n_tracks": 412, "seconds": 95.4, "cpu_s": 90.2, "peak_rss_mib": 2100.0,
        "rss_before_mib": 1010.0,
    }  # fmt: skip
    (tmp_path / "scale.json").write_text(json.dumps(scale))
    btrack = {"density": "sparse", "interval": 10.0, "seconds": {"btrack": 1.0}}
    btrack["truth|btrack"] = _tracking_scores(0.91, [0.02])
    (tmp_path / f"btrack-sparse-10min-0-v{tracking.CACHE_VERSION}.json").write_text(
        json.dumps(btrack)
    )
    record = {"density": "sparse", "interval": 30.0, "cpu_s": 90.0}
    record["truth|lap-mass"] = _tracking_scores(0.97, [0.01, 0.03])
    record["phase-only|lap-mass"] = _tracking_scores(0.93, [0.2])
    text = tracking.report({"a": record}, seconds=90.0, command="python b.py", quick=True)
    assert "$" not in text
    lines = text.splitlines()
    assert lines[2:6] == [
        "Generated by `python b.py`; do not edit by hand. 1.5 min of CPU time (cached per movie "
        "in .bench_cache/tracking/).",
        "",
        f"- Machine: cpu9, 3 cores; Python {tracking.platform.python_version()}, numpy "
        f"{tracking.np.__version__}",
        "- Commit: c0ffee1; date 2026-01-02 03:04 UTC",
    ]
    method = text[text.index("## What was run") : text.index("## Targets")]
    assert method == TRACKING_METHOD
    notes = text[text.index("## Reading the numbers") :]
    assert TRACKING_FIRST_NOTE in notes and TRACKING_LAST_NOTE in notes
    targets = lines.index("## Targets (issue #16), lap-mass")
    assert lines[targets + 2 : targets + 7] == [
        "- truth labels, sparse: lowest TRA over the intervals 0.970 (target >= 0.95): **met**",
        "- truth labels, confluent: lowest TRA over the intervals – (target >= 0.9): **missed**",
        "  - truth, sparse, 30 min: median growth-rate error 2.0 % over 2 tracks: met",
        "- phase-only labels, sparse: lowest TRA over the intervals 0.930 (target >= 0.95): "
        "**missed**",
        "- phase-only labels, confluent: lowest TRA over the intervals – (target >= 0.9): "
        "**missed**",
    ]
    assert lines[lines.index("## Scale") + 2] == (
        "`track_labels` on 200 frames of 1024x1224 px with 300 moving cells (synthetic disks, "
        "labels only, int32: 956 MiB), run with `--scale`: 412 tracks in 95 s (90 s CPU); peak "
        "resident memory of the process 2100 MiB, 1010 MiB of it before tracking (the labels "
        "stack itself). `track_labels` on an array in memory keeps one relabelled copy (same "
        "size) and the tables; `track_file` (`dmqpm track`, `segment --track`) reads and writes "
        "a labels file frame by frame: the next section segments and tracks such a movie from a "
        "file."
    )
    assert lines[lines.index(tracking.BTRACK_TITLE) + 2] == (
        "`python benchmarks/bench_tracking.py --btrack` (btrack 0.7.0, not a dependency): the "
        "simulator's labels at 10 min, movies sparse #0, sparse #1, confluent #0 of the run "
        "above, linked by btrack's Bayesian tracker (constant-velocity Kalman model and global "
        "hypothesis optimisation, the values of its example cell configuration, search radius "
        "50 px; centroids only) and by `lap-mass` again, on the same movies, at commit c0ffee1. "
        "Same measures as above; where the `lap-mass` rows differ from the tables above, those "
        "are older (their commit is in the header)."
    )
    full = tracking.report({"a": record}, seconds=90.0, command="c", quick=False)
    assert "- Time-lapses: `napari_dmqpm.simulation.simulate_growth`, 192x192 (sparse: " in full
    assert "$" not in full
    assert tracking.OLD_NOT_COMPARED == (
        "- Not compared: btrack, trackastra and ultrack (only laptrack, a LAP tracker with "
        "splitting\n  and gap closing in plain Python, is a dependency); the simulator draws no "
        "mitotic rounding.\n"
    )


# ----------------------------------------------------------------------- bench_timelapse_memory


def _memory(peak: float) -> dict:
    return {"peak": peak, "rss": peak - 10.0, "anon": peak - 20.0}


def test_the_timelapse_memory_section_renders_its_paragraphs_word_for_word(bench, monkeypatch):
    memory = _script("bench_timelapse_memory")
    monkeypatch.setattr(memory.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(memory.os, "cpu_count", lambda: 2)
    segment = {
        "n_frames": 200, "load": 6.71, "commit": "aaa1111", "n_cells": 109963, "n_tracks": 1061,
        "segment_s": 678.0, "segment_cpu_s": 312.0, "track_s": 40.2, "track_cpu_s": 19.6,
        "before": {"peak": 384.4}, "trace": [{"frame": 200, **_memory(1349.0)}],
        "after_track": _memory(1528.0),
    }  # fmt: skip
    track = {
        str(n): {"n_points": 550 * n, "n_tracks": 700, "s": 8.0, "cpu_s": 8.0,
                 "after": {"peak": 200.0 + n}, "before": {"rss": 100.0}}
        for n in (50, 200)
    }  # fmt: skip
    old_track = {"50": {"after": {"peak": 700.0}}, "200": {"after": {"peak": 2350.0}}}
    before = {"segment": {"commit": "bbb2222", "after_track": _memory(3656.0)}}
    result = {"segment": segment, "shape": [1024, 1224], "track_commit": "ccc3333",
              "track": track, "before": {**before, "track": old_track}}  # fmt: skip
    lines = memory.section(result)
    assert "$" not in "\n".join(lines)
    assert lines[2:7] == [
        "`python benchmarks/bench_timelapse_memory.py`, x86_64, 2 cores, OMP_NUM_THREADS=1, load "
        "6.7 when started; segmentation at commit aaa1111, linking alone at commit ccc3333.",
        "200 frames of 1024x1224 px (ssQPM), `dmqpm-fast` on the CPU (torch), automatic size; "
        "one process segments the file (`segment_file`) and then links it (`track_file`, as "
        "`dmqpm segment --track` does): 109,963 cells, 1,061 tracks.",
        "",
        "- Segmentation: 11.3 min wall (5.2 min CPU, 3.4 s per frame); linking 40 s wall (20 s "
        "CPU).",
        "- Resident memory after the imports and the model: 384 MiB.",
    ]
    assert (
        "The linking alone (`track_file` on the labels and cells table the segmentation wrote, "
        "cut to the first T frames), each in a fresh process:" in lines
    )
    assert lines[-1] == (
        "Per frame, the linking's peak grows by 1.00 MiB, about 1.9 kB per cell and frame: the "
        "per-cell tables, the links and laptrack's graph, which grow with the tracks; the labels "
        "are read and written one frame at a time. Before b9429af it grew by 11.0 MiB per "
        "frame: the labels stack, a relabelled copy and a copy for the CTC masks were held whole."
    )
    result["before"] = None
    assert memory.section(result)[-1].endswith("read and written one frame at a time.")
    failed = memory.section({"segment": {"error": "killed"}})
    assert failed == ["## Memory of a long time-lapse", "", "Segmentation failed: killed"]


# ---------------------------------------------------------------------- bench_growth_background


def test_the_growth_background_section_renders_its_paragraphs_word_for_word(bench, monkeypatch):
    from types import SimpleNamespace

    growth = _script("bench_growth_background")
    monkeypatch.setattr(growth.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(growth.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(growth.subprocess, "run", lambda *a, **k: SimpleNamespace(stdout="c0"))
    lines = growth.section({}, 150.0)
    assert "$" not in "\n".join(lines)
    assert lines[2] == (
        "`python benchmarks/bench_growth_background.py`: x86_64, 2 cores, commit c0, 2.5 min "
        "CPU. The movies of the tables below (first movie of each density and interval), "
        "`lap-mass`. Flagged: cells off the field edge with `background_ok` 0. Mass error: "
        "median |relative error| of the dry mass against the simulator's truth, trusted / "
        "flagged cells (true labels only). Growth error: median |relative error| of the "
        "specific growth rate (1/h), fitted on every frame off the edge (`all`, the fits "
        "before) or on the trusted frames only (`trusted`, as shipped; fewer than 3: no fit, "
        "NaN in the lineage table; in brackets: the tracks fitted)."
    )
    assert lines[-5:] == [
        "Reading (written for the run above; check it when it is regenerated):",
        "",
        "- At the shipped 2 px margin no cell of these movies is flagged, on true or model "
        "labels: the simulated fields keep enough background between cells. The choice below "
        "changes none of the other numbers on this page.",
        "- Where the background is cut (8 px), flagged masses are off by a median 3.7-20 % "
        "against 0.2-0.7 % for trusted ones. Fitting them (the old fits) gives 5.3-74 % growth "
        "error on the tracks they touch; leaving them out, 2.8-9.6 %. 3-14 of about 53 tracks "
        "keep fewer than 3 trusted frames: they get no rate (NaN; `n_fit_frames` says why) "
        "instead of a wrong one.",
        "- With almost no trusted frame (13 px), fitting everything gives 17-142 %; the rare "
        "track still fitted on 3 trusted frames is no better. The lineage table's "
        "`n_fit_frames` tells such tracks apart.",
    ]


# ----------------------------------------------------------------------------- bench_memory


def test_the_memory_section_renders_its_paragraph_word_for_word(bench, monkeypatch):
    import argparse

    memory = _script("bench_memory")
    monkeypatch.setattr(memory.os, "getloadavg", lambda: (3.14, 2.0, 1.0))
    monkeypatch.setattr(memory.os, "cpu_count", lambda: 2)
    lines = memory.section(argparse.Namespace(model="tiny"), ["| row |"])
    assert "$" not in "\n".join(lines)
    assert lines == [
        "## Memory of segment_file (bench_memory)",
        "",
        "`segment_file` with a random 3-stage network (`--model tiny`) on the CPU (default "
        "`InferenceConfig`, 512² tiles), each",
        "case in a fresh process. Peak: the process's peak resident memory (VmHWM:",
        "interpreter, torch, model and all of the work); before: its resident memory after the",
        "imports and loading the model. Targets: one 8192² ssQPM frame below 4 GB (4096 MiB);",
        "time-lapse memory flat in T. The file is opened lazily, frames above 4096² are cut in",
        "strips, and labels and rows are written frame by frame (`inference.segment`).",
        "Load average when started: 3.1 on 2 cores.",
        "",
        "| input (frames x size) | file MiB | peak MiB | before MiB | time s | cells |",
        "|---|---:|---:|---:|---:|---:|",
        "| row |",
    ]
    shipped = memory.section(argparse.Namespace(model="dmqpm-default"), [])
    assert shipped[2].startswith("`segment_file` with dmqpm-default on the CPU (default")


def test_the_tracking_diameter_section_renders_its_paragraphs_word_for_word(bench, monkeypatch):
    script = _script("bench_tracking_diameter")
    monkeypatch.setattr(script, "_truth_rows", lambda interval: None)
    records = {
        (interval, mode): {
            "used_diameter_px": (15.6, 15.6 if mode == "auto" else 16.1),
            "tra": 0.865 if mode == "auto" else 0.877,
            "det": 0.91 if mode == "auto" else 0.93,
            "errors_k": [0.5, 1.0, 1.5],
            "cpu_s": 60.0,
            "true_diameter_px": 24.7,
            "div_tp": 3,
            "div_fp": 1,
            "div_fn": 2,
        }
        for interval in script.INTERVALS
        for mode in ("auto", "true")
    }
    text = "\n".join(script.section(records))
    assert "$" not in text
    assert (
        "With the true diameter TRA changes by +0.012 to +0.012; the true labels of the same "
        "movies score 0.99-1.00. The confluent misses of the model's labels are not the "
        "diameter estimate's: DET stays at 0.91-0.93 with either diameter (cells missed, merged "
        "or split by the segmentation itself), and so do the growth errors (checked for the run "
        "above)."
    ) in text
    assert (
        f"{len(records):.1f} min CPU. Confluent movie #0 of the tables below, `phase-only`" in text
    )
