"""GPU throughput against the camera: run this first whenever a CUDA GPU is lent.

One command, under ten minutes on one GPU, that prints the "GPU (bench_gpu)" section of
docs/performance.md (``python benchmarks/run_all.py --only bench_gpu`` merges it in). It
measures, for each shipped model on 1224×1024 frames (the IMX250MZR super-pixel frame,
padded to the network's divisor):

1. the network alone on batches of frames, with CUDA events after a warm-up: fp32, fp32
   channels_last, bf16 and fp16 autocast (channels_last), ``torch.compile`` of the bf16 variant
   and ``torch.compile(mode="reduce-overhead")`` (CUDA graphs); milliseconds per frame, frames
   per second, peak memory, and the share of pixels whose class (argmax) equals fp32's;
2. host-to-device copies of one frame's input (4 angles + phase, float32) from pageable and
   from pinned memory;
3. the whole path of ``segment_acquisition`` per frame (normalisation, network, post-processing,
   measurements; the phase already retrieved), with the diameter given and with the automatic
   estimate, against the 13.3 ms a frame lasts at the camera's 75 fps.

Without CUDA it says so on stderr and exits with status 3 (``run_all`` runs it only when
named: ``--only bench_gpu``), so a CPU machine never overwrites a measured section.

Usage: ``python benchmarks/bench_gpu.py [--batches 1 4 8] [--iterations 20] [--no-compile]
[--models dmqpm-default dmqpm-fast]``
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

if not __package__:  # run as a file: the repository root makes `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.templates import render

FRAME = (1024, 1224)  # rows, columns of the IMX250MZR super-pixel frame
CAMERA_FPS = 75.0
MODELS = ("dmqpm-default", "dmqpm-fast")
BATCHES = (1, 4, 8)
ITERATIONS = 20


def padded(shape: tuple[int, int], divisor: int) -> tuple[int, int]:
    """``shape`` rounded up to a multiple of ``divisor`` (what the tiler feeds the network).

    Examples
    --------
    >>> padded((1024, 1224), 32)
    (1024, 1248)
    """
    return tuple(-(-side // divisor) * divisor for side in shape)  # type: ignore[return-value]


def cuda_milliseconds(function: Callable[[], object], iterations: int) -> list[float]:
    """Milliseconds of each of ``iterations`` calls, timed with CUDA events after 3 warm-ups."""
    for _ in range(3):
        function()
    torch.cuda.synchronize()
    times = []
    for _ in range(iterations):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        function()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return times


def frame_inputs(network, batch: int, shape: tuple[int, int], device) -> tuple:
    """Seeded inputs of a batch of frames: angles (B, 4, M, N) and phase (B, 1, M, N) or None."""
    generator = torch.Generator().manual_seed(0)
    angles = phase = None
    if network.config.inputs != "phase":
        angles = torch.rand(batch, 4, *shape, generator=generator).to(device)
    if network.config.inputs != "angles":
        phase = torch.rand(batch, 1, *shape, generator=generator).to(device)
    return angles, phase


def variants(network, *, compile_too: bool) -> dict[str, tuple[Callable, torch.dtype | None, bool]]:
    """Name -> (callable network, autocast dtype or None, channels_last)."""
    chosen = {
        "fp32": (network, None, False),
        "fp32, channels_last": (network, None, True),
        "bf16 autocast, channels_last": (network, torch.bfloat16, True),
        "fp16 autocast, channels_last": (network, torch.float16, True),
    }
    if compile_too:
        chosen["bf16 + torch.compile"] = (torch.compile(network), torch.bfloat16, True)
        graphs = torch.compile(network, mode="reduce-overhead")
        chosen["bf16 + compile, CUDA graphs"] = (graphs, torch.bfloat16, True)
    return chosen


def network_rows(name: str, args: argparse.Namespace) -> list[str]:
    """One table row per variant and batch size for one shipped model."""
    from napari_dmqpm.model.registry import load_model

    network = load_model(name, device="cuda").network.eval()
    shape = padded(FRAME, network.required_divisor)
    rows, reference = [], {}
    for label, (run, dtype, channels_last) in variants(network, compile_too=args.compile).items():
        if channels_last:
            network.to(memory_format=torch.channels_last)
        for batch in args.batches:
            angles, phase = frame_inputs(network, batch, shape, "cuda")
            if channels_last:
                angles = None if angles is None else angles.to(memory_format=torch.channels_last)
                phase = None if phase is None else phase.to(memory_format=torch.channels_last)
            autocast = torch.autocast("cuda", dtype=dtype) if dtype else contextlib.nullcontext()

            def forward(angles=angles, phase=phase, autocast=autocast, run=run):
                with torch.inference_mode(), autocast:
                    logits = run(angles=angles, phase=phase)
                return logits[0] if isinstance(logits, list) else logits

            torch.cuda.reset_peak_memory_stats()
            try:
                compile_start = time.perf_counter()
                classes = forward().float().argmax(1)
                first_s = time.perf_counter() - compile_start
                times = cuda_milliseconds(forward, args.iterations)
            except torch.cuda.OutOfMemoryError:  # (torch.OutOfMemoryError from torch 2.5)
                rows.append(f"| `{name}` | {label} | {batch} | out of memory | | | | |")
                torch.cuda.empty_cache()
                continue
            peak = torch.cuda.max_memory_allocated() / 2**30
            if label == "fp32":
                reference[batch] = classes
            agree = (classes == reference[batch]).float().mean().item() if batch in reference else 1
            per_frame = statistics.median(times) / batch
            rows.append(
                f"| `{name}` | {label} | {batch} | {per_frame:.2f} | {1e3 / per_frame:.0f} | "
                f"{peak:.2f} | {100 * agree:.3f} % | {first_s:.1f} |"
            )
            del angles, phase, classes
        network.to(memory_format=torch.contiguous_format)
    return rows


def transfer_rows(iterations: int) -> list[str]:
    """Host-to-device copy of one frame's input (5 float32 planes), pageable and pinned."""
    host = torch.rand(1, 5, *FRAME)
    pinned = host.pin_memory()
    rows = []
    for label, source in (("pageable", host), ("pinned, non_blocking", pinned)):
        times = cuda_milliseconds(lambda s=source: s.to("cuda", non_blocking=True), iterations)
        megabytes = source.numel() * 4 / 1e6
        ms = statistics.median(times)
        rows.append(f"| {label} | {megabytes:.0f} MB | {ms:.2f} | {megabytes / ms:.1f} GB/s |")
    return rows


def whole_path_rows(name: str, iterations: int) -> list[str]:
    """Wall milliseconds per frame of ``segment_acquisition`` on CUDA, given and auto size."""
    from napari_dmqpm.inference import InferenceConfig, segment_acquisition
    from napari_dmqpm.model.registry import load_model
    from napari_dmqpm.simulation import SimulationConfig, simulate_field

    model = load_model(name, device="cuda")
    field = simulate_field(SimulationConfig(shape=FRAME, density="dense"), rng=1)
    acquisition = field.to_acquisition()
    budget = 1e3 / CAMERA_FPS
    rows = []
    for label, diameter in (("diameter given", model.info.cell_diameter_px), ("auto", "auto")):
        config = InferenceConfig(device="cuda", diameter_px=diameter)
        list(segment_acquisition(acquisition, model, config=config))  # warm-up
        times = []
        for _ in range(max(3, iterations // 4)):
            torch.cuda.synchronize()
            start = time.perf_counter()
            list(segment_acquisition(acquisition, model, config=config))
            torch.cuda.synchronize()
            times.append(1e3 * (time.perf_counter() - start))
        ms = statistics.median(times)
        rows.append(f"| `{name}` | {label} | {ms:.1f} | {ms / budget:.1f}× |")
    return rows


def device_line() -> str:
    """The GPU, its memory, torch and CUDA versions, and bf16 support."""
    properties = torch.cuda.get_device_properties(0)
    (line,) = render(
        "gpu/device.md",
        name=properties.name,
        memory_gib=f"{properties.total_memory / 2**30:.0f}",
        capability=f"{properties.major}.{properties.minor}",
        torch=torch.__version__,
        cuda=torch.version.cuda,
        bf16=torch.cuda.is_bf16_supported(),
    )
    return line


def report(
    device: str,
    network: Sequence[str],
    transfer: Sequence[str],
    whole_path: Sequence[str],
    *,
    iterations: int,
    seconds: float,
) -> str:
    """The markdown section: prose from ``benchmarks/templates/gpu`` around the three tables.

    Parameters
    ----------
    device : str
        The device line (:func:`device_line`).
    network : sequence of str
        The rows of the network-alone table (:func:`network_rows`, all models).
    transfer : sequence of str
        The rows of the host-to-device table (:func:`transfer_rows`).
    whole_path : sequence of str
        The rows of the whole-path table (:func:`whole_path_rows`, all models).
    iterations : int
        The timed calls per case.
    seconds : float
        The wall time of the measurements.

    Returns
    -------
    str
        The section, lines joined by newlines, ending with an empty line.
    """
    lines = render(
        "gpu/network.md",
        device=device,
        columns=FRAME[1],
        rows=FRAME[0],
        iterations=iterations,
    )
    lines += [*network, "", *render("gpu/transfer.md"), *transfer, ""]
    budget = 1e3 / CAMERA_FPS
    lines += render("gpu/whole_path.md", budget=f"{budget:.1f}", fps=f"{CAMERA_FPS:.0f}")
    lines += [*whole_path, "", *render("gpu/measured.md", seconds=f"{seconds:.0f}"), ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--batches", nargs="+", type=int, default=list(BATCHES))
    parser.add_argument("--iterations", type=int, default=ITERATIONS)
    parser.add_argument(
        "--no-compile",
        dest="compile",
        action="store_false",
        help="skip torch.compile and CUDA graphs (saves their compile minutes)",
    )
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("bench_gpu: no CUDA device here; nothing was measured", file=sys.stderr)
        return 3
    started = time.perf_counter()
    network = [row for name in args.models for row in network_rows(name, args)]
    transfer = transfer_rows(args.iterations)
    whole_path = [row for name in args.models for row in whole_path_rows(name, args.iterations)]
    seconds = time.perf_counter() - started
    print(
        report(
            device_line(),
            network,
            transfer,
            whole_path,
            iterations=args.iterations,
            seconds=seconds,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
