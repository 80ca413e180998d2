"""The prose of docs/performance.md's generated parts, from benchmarks/templates, on fixed records.

Each test renders a page or section from made-up numbers (nothing is measured) and checks one
sentence word for word and that no ``$field`` of the templates is left unfilled.
"""

from __future__ import annotations

import re

#: The script under test (the ``bench`` fixture of conftest imports it).
BENCHMARK = "run_all"


def _unfilled(text: str) -> list[str]:
    return re.findall(r"\$\{?[A-Za-z_]\w*", text)


def test_the_performance_header_names_the_run_and_the_older_sections(bench):
    sections = ["## A (bench_a)\n\na\n", "## B (bench_b)\n\nb\n"]
    fields = dict(machine="CPU X, 2 cores", commit="abc1234", date="2026-12-06 08:00 UTC")
    fresh = bench.report(sections, **fields)
    assert fresh == (
        "# Performance\n\n"
        "Measured by `python benchmarks/run_all.py` (or `make bench`); do not edit by hand.\n\n"
        "- Machine: CPU X, 2 cores\n- Commit: abc1234\n- Date: 2026-12-06 08:00 UTC\n\n"
        "## A (bench_a)\n\na\n\n## B (bench_b)\n\nb\n"
    )
    kept = bench.report(sections, **fields, reran=["bench_a", "bench_b"], previous="no record")
    assert (
        "- Date: 2026-12-06 08:00 UTC\n- Sections re-run at that date: bench_a, bench_b; the "
        "others are older (no record).\n\n## A (bench_a)" in kept
    )
    assert not _unfilled(fresh) and not _unfilled(kept)


def test_the_attention_section_fills_its_prose_and_keeps_its_tables(bench):
    from benchmarks import bench_attention

    timing = {"seconds": 0.02, "cpu_seconds": 0.0125, "peak_mib": 40.4, "gflop": 1.234}
    fusion = [("global", 256, timing, {"error": "killed"})]
    network = [("early", 512, timing | {"gflop": None})]
    sizes = ["| network | parameters | GFLOP per megapixel |", "|---|---|---|"]
    text = bench_attention.report(fusion, network, sizes, threads="default", load=1.26, n_cores=2)
    lines = text.splitlines()
    assert text.startswith(
        "## Fusion attention (bench_attention)\n\n"
        "MHA fusion of the default DM-QPMNet at stage 2 (H/4, 96 channels, 4 heads), batch 1,\n"
        "torch threads: default. Queries x keys per head, with the size the float32 score\n"
        "matrices would take if materialised (torch's fused `scaled_dot_product_attention`\n"
        "never does). GFLOP: forward, by `torch.utils.flop_counter`. CPU ms: best process CPU\n"
        "time of the repeats (robust to other load on the machine); wall ms: best wall clock.\n"
        "Train = forward + backward. Peak: extra resident memory of a fresh process during\n"
        "the first call. Load average when started: 1.3 on\n2 cores.\n\n"
        "| variant | tile | queries x keys (naive scores) | GFLOP | infer CPU ms | infer wall ms"
        " | infer peak MiB | train CPU ms | train peak MiB |\n"
        "|---|---|---|---|---|---|---|---|---|\n| global | 256 |"
    )
    assert (
        "| global | 256 | 4096 x 4096 (0.25 GiB) | 1.23 | 12.5 | 20.0 | 40 | failed | failed |"
        in lines
    )
    assert (
        "\n\nWhole network, inference (`torch.inference_mode`), batch 1, threads: default:\n\n"
        "| variant | tile | GFLOP | CPU ms | wall ms | peak MiB |\n|---|---|---|---|---|---|\n"
        "| early | 512 | - | 12 | 20 | 40 |\n\n"
        "Network size (forward GFLOP counted on a 512x512 input):\n\n" in text
    )
    assert lines[-2:] == sizes and not _unfilled(text)
    alone = bench_attention.report(fusion, None, sizes, threads=1, load=0.0, n_cores=None)
    assert alone.splitlines()[-1].startswith("| global | 256 |") and not _unfilled(alone)


def test_the_raw_reading_section_says_whether_the_slowest_total_meets_the_target(bench):
    from benchmarks import bench_read_raw

    def stages(total: float) -> dict[str, float]:
        return {"decode": 0.1, "read_acquisition (total)": total}

    cases = {"TIFF": stages(0.5), "PNG": stages(1.25)}
    text = bench_read_raw.report(cases, machine="CPU Y, 2 cores", load=0.04)
    assert text.startswith(
        "## Reading a raw frame (bench_read_raw)\n\nA 2448 x 2048 raw mosaic -> superpixel "
        "demosaic (4 x 1024 x 1224) -> four-step phase retrieval (unwrapped, plane background). "
        "Median of 5 runs, seconds. Target: total <= 1.5 s. Unwrapping adds up the wraps along "
        "rows and columns where the wrapped phase has no residues (the synthetic frames: cells "
        "under a tilted reference, shot noise) and runs the reliability-guided unwrapper where "
        "it has (the real PNG, a scene with dark and unpolarized regions); both give the same "
        "map up to one whole turn (`phase.unwrap`).\n\n"
    )
    assert "\n\nMachine: CPU Y, 2 cores; load average 0.0 when the run ended\n\n" in text
    assert "| stage | TIFF | PNG |\n|---|---:|---:|\n| decode | 0.100 | 0.100 |\n" in text
    assert text.endswith(
        "| 0.500 | 1.250 |\n\nSlowest total 1.25 s (wall clock): meets the 1.5 s target. "
        "Other processes on the machine inflate wall-clock times; the CPU-time row does not "
        "count them.\n"
    )
    slow = bench_read_raw.report({"TIFF": stages(2.0)}, machine="m", load=1.0)
    assert "Slowest total 2.00 s (wall clock): MISSES the 1.5 s target." in slow
    assert not _unfilled(text) and not _unfilled(slow)


def test_the_gpu_section_fills_its_prose_around_made_up_rows(bench, monkeypatch):
    from types import SimpleNamespace

    from benchmarks import bench_gpu

    properties = SimpleNamespace(name="Fake GPU", total_memory=80 * 2**30, major=9, minor=0)
    monkeypatch.setattr(bench_gpu.torch.cuda, "get_device_properties", lambda index: properties)
    monkeypatch.setattr(bench_gpu.torch.cuda, "is_bf16_supported", lambda: True)
    monkeypatch.setattr(bench_gpu.torch.version, "cuda", "12.4")
    monkeypatch.setattr(bench_gpu.torch, "__version__", "2.9.0")
    device = bench_gpu.device_line()
    assert device == (
        "Device: Fake GPU, 80 GiB, compute capability 9.0; torch 2.9.0, CUDA 12.4; "
        "bf16 supported: True."
    )
    network = ["| `dmqpm-fast` | fp32 | 4 | 2.50 | 400 | 1.20 | 100.000 % | 0.3 |"]
    transfer = ["| pageable | 25 MB | 2.00 | 12.5 GB/s |"]
    whole_path = ["| `dmqpm-fast` | auto | 20.0 | 1.5× |"]
    text = bench_gpu.report(device, network, transfer, whole_path, iterations=7, seconds=61.4)
    assert text == (
        f"## GPU (bench_gpu)\n\n{device}\n\n"
        "Network alone on batches of 1224×1024 frames (padded to the divisor); median of 7 "
        "calls after 3 warm-ups, CUDA events. 'agree': pixels whose class equals fp32's at "
        "the same batch. 'first call': seconds of the first call (compilation included).\n\n"
        "| model | variant | batch | ms per frame | frames/s | peak GiB | agree "
        "| first call (s) |\n|---|---|---:|---:|---:|---:|---:|---:|\n"
        f"{network[0]}\n\n"
        "Host-to-device copy of one frame's input (angles + phase, float32):\n\n"
        f"| source | size | ms | rate |\n|---|---:|---:|---:|\n{transfer[0]}\n\n"
        "Whole path per frame (`segment_acquisition` on CUDA, phase given; wall time) against "
        "the camera's 13.3 ms per frame at 75 fps:\n\n"
        "| model | cell size | ms per frame | × camera budget |\n|---|---|---:|---:|\n"
        f"{whole_path[0]}\n\nMeasured in 61 s.\n"
    )
    assert not _unfilled(text)
