"""Segmentation speed of the shipped models: latency per frame, TTA, GFLOP, dual vs early fusion.

Each of ``dmqpm-default`` and ``dmqpm-fast`` (the strided stem) that is shipped is timed.

Times the whole core path behind ``dmqpm segment`` and the napari widget
(:func:`napari_dmqpm.inference.segment_acquisition`: normalization, Gaussian-blended tiles,
post-processing, measurements) on simulated frames of 512² and 1024×1224 (the IMX250MZR
super-pixel frame), without and with mirror TTA, on the CPU with all cores; the network alone
for the dual encoder against an early-fusion network of the same widths; and the forward GFLOP
per megapixel; the cost against the image size (256² to 2048², which should grow linearly:
milliseconds per megapixel at each size, with the network's share and the pixels it computes
once tiles overlap) and the frames per second over a short simulated
time-lapse. Prints a markdown section (collected by ``benchmarks/run_all.py``). The comparison
with nnU-Net's default network is ``bench_nnunet.py``.

Targets (issue 3): a 1024×1224 frame in ≤ 3 s on this 2-core CPU without TTA; the dual
encoder ≤ 1.3× the time of early fusion of the same widths.

Usage: ``python benchmarks/bench_inference.py [--device cpu] [--repeats 2] [--sizes 256 512
1024 2048] [--frames 5] [--quick]``
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from napari_dmqpm.inference import (
    InferenceConfig,
    frame_plan,
    predict_probabilities,
    segment_acquisition,
)
from napari_dmqpm.model import DMQPMNet
from napari_dmqpm.model.registry import ModelNotFoundError, load_model
from napari_dmqpm.simulation import SimulationConfig, simulate_field, simulate_timelapse

if not __package__:  # run as a file: the repository root makes `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_attention import count_gflop
from benchmarks.templates import render

SHAPES = ((512, 512), (1024, 1224))
SIZES = (256, 512, 1024, 2048)
REPEATS = 2
#: The shipped models timed, each where it is found.
MODELS = ("dmqpm-default", "dmqpm-fast")
N_FRAMES = 5


def best_and_median(function, repeats: int = REPEATS) -> tuple[float, float]:
    """Best and median wall seconds of ``repeats`` calls after one warm-up."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


@functools.cache
def dense_field(shape: tuple[int, int]):
    """The simulated dense frame every latency here is measured on (simulated once per shape)."""
    return simulate_field(SimulationConfig(shape=shape, density="dense"), rng=1)


def frame_latency(
    model, shape: tuple[int, int], *, tta: bool, device: str = "cpu", repeats: int = REPEATS
) -> tuple[float, float]:
    """Seconds to segment one simulated dense frame of ``shape`` with the whole core path."""
    acquisition = dense_field(shape).to_acquisition()
    config = InferenceConfig(device=device, tta=tta)
    return best_and_median(
        lambda: list(segment_acquisition(acquisition, model, config=config)), repeats
    )


def network_work(model, shape: tuple[int, int], config: InferenceConfig) -> tuple[int, float]:
    """Tiles and megapixels the network computes for a frame of ``shape`` (padding included)."""
    plan = frame_plan(model, shape, config=config)
    return plan.n_tiles, plan.n_tiles * plan.tile[0] * plan.tile[1] / 1e6


def size_scaling(model, sizes, *, device: str, repeats: int) -> list[str]:
    """Whole-path and network time per megapixel for square frames of each size."""
    config = InferenceConfig(device=device)
    lines = [
        "| frame | tiles | MP computed | whole path best (s) | ms per MP | network best (s) "
        "| network ms per MP computed |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for size in sizes:
        best, _ = frame_latency(model, (size, size), tta=False, device=device, repeats=repeats)
        field = dense_field((size, size))
        network, _ = best_and_median(
            lambda f=field: predict_probabilities(
                model, angles=f.angles, phase=f.phase, config=config
            ),
            repeats,
        )
        n_tiles, computed = network_work(model, (size, size), config)
        lines.append(
            f"| {size}² | {n_tiles} | {computed:.2f} | {best:.2f} "
            f"| {1e3 * best / (size * size / 1e6):.0f} | {network:.2f} "
            f"| {1e3 * network / computed:.0f} |"
        )
    return lines


def timelapse_fps(model, *, n_frames: int, device: str) -> tuple[float, float]:
    """Frames per second and seconds per frame over a simulated 512² time-lapse."""
    movie = simulate_timelapse(SimulationConfig(shape=(512, 512)), n_frames, rng=2)
    acquisition = movie.to_acquisition()
    config = InferenceConfig(device=device)
    list(segment_acquisition(acquisition, model, config=config, frames=[0]))  # warm-up
    start = time.perf_counter()
    list(segment_acquisition(acquisition, model, config=config))
    seconds = time.perf_counter() - start
    return n_frames / seconds, seconds / n_frames


def network_seconds(network: DMQPMNet, size: int = 512) -> float:
    """Median seconds of one forward pass of a (1, C, size, size) tile."""
    inputs = {
        "angles": torch.rand(1, 4, size, size) if network.config.inputs != "phase" else None,
        "phase": torch.rand(1, 1, size, size) if network.config.inputs != "angles" else None,
    }
    network.eval()
    with torch.inference_mode():
        return best_and_median(lambda: network(**inputs), repeats=5)[1]


def gflop_per_megapixel(network: DMQPMNet, size: int = 512) -> float:
    """Forward GFLOP of a size² tile, scaled to 10⁶ pixels (``bench_attention.count_gflop``,
    which also counts the CPU attention kernel)."""
    angles = torch.rand(1, 4, size, size) if network.config.inputs != "phase" else None
    phase = torch.rand(1, 1, size, size) if network.config.inputs != "angles" else None
    return count_gflop(network.cpu().eval(), (angles, phase)) * 1e6 / size**2


def latency_rows(name: str, loaded, args) -> tuple[list[str], float]:
    """Rows of the latency table for one model, and its 1024×1224 time without TTA."""
    rows = []
    for shape in SHAPES:
        for tta in (False, True) if shape == SHAPES[0] else (False,):
            best, median = frame_latency(
                loaded, shape, tta=tta, device=args.device, repeats=args.repeats
            )
            rows.append(
                f"| `{name}` | {shape[0]}×{shape[1]} | {'yes' if tta else 'no'} | {best:.2f} "
                f"| {median:.2f} |"
            )
    return rows, best


def dual_against_early(name: str) -> str:
    """The network alone against early fusion of the same widths, and the GFLOP of both."""
    dual = load_model(name, device="cpu").network
    early = DMQPMNet(dataclasses.replace(dual.config, fusion="early"))
    t_dual, t_early = network_seconds(dual), network_seconds(early)
    return (
        f"| `{name}` | {dual.config.attention} MHA at stage {dual.config.fusion_stage} "
        f"(H/{dual.config.stage_resolutions()[dual.config.fusion_stage]}) | {t_dual * 1e3:.0f} "
        f"| {t_early * 1e3:.0f} | **{t_dual / t_early:.2f}×** | {gflop_per_megapixel(dual):.0f} "
        f"| {gflop_per_megapixel(early):.0f} |"
    )


def report(
    *,
    where: str,
    skipped: Mapping[str, str],
    parameters: Mapping[str, int],
    threads: int,
    device: str,
    repeats: int,
    latency: Mapping[str, tuple[Sequence[str], float]],
    scaling: Mapping[str, Sequence[str]],
    frames: int,
    timelapse: Mapping[str, tuple[float, float]],
    networks: Sequence[str],
) -> str:
    """The markdown section from the measurements; only the heading and the skipped models
    when no model was found.

    Parameters
    ----------
    where : str
        The device in the heading ("CPU", "cuda", ...).
    skipped : mapping of str to str
        The models not found, with the error's text.
    parameters : mapping of str to int
        The parameter count of each model timed (in order).
    threads : int
        Torch threads.
    device : str
        The device the networks' parameters are on.
    repeats : int
        Timed runs after the warm-up.
    latency : mapping of str to (sequence of str, float)
        Per model, its latency table rows and its 1024×1224 best seconds (:func:`latency_rows`).
    scaling : mapping of str to sequence of str
        Per model, the table of :func:`size_scaling`.
    frames : int
        Frames of the time-lapse.
    timelapse : mapping of str to (float, float)
        Per model, frames per second and seconds per frame (:func:`timelapse_fps`).
    networks : sequence of str
        The rows of :func:`dual_against_early`.

    Returns
    -------
    str
        The section, ending with a newline.
    """
    lines = [f"## Segmentation speed ({where})", ""]
    for name, error in skipped.items():
        lines += [*render("inference/skipped.md", name=name, error=error), ""]
    if not parameters:
        return "\n".join(lines) + "\n"
    models = " and ".join(
        render("inference/model.md", name=name, parameters=f"{count:,}")[0]
        for name, count in parameters.items()
    )
    lines += [
        *render(
            "inference/intro.md", models=models, threads=threads, device=device, repeats=repeats
        ),
        "",
        "| model | frame | TTA | best (s) | median (s) |",
        "|---|---|---|---:|---:|",
    ]
    verdicts = []
    for name, (rows, best) in latency.items():
        lines += rows
        verdict = "met" if best <= 3.0 else render("inference/missed.md", by=f"{best - 3.0:.2f}")[0]
        verdicts += render("inference/verdict.md", name=name, best=f"{best:.2f}", verdict=verdict)
    lines += [
        "",
        *render(
            "inference/target.md",
            rows=SHAPES[-1][0],
            columns=SHAPES[-1][1],
            verdicts="; ".join(verdicts),
        ),
    ]
    for name, table in scaling.items():
        lines += ["", *render("inference/cost.md", name=name), "", *table]
    defaults = InferenceConfig()
    lines += [
        "",
        *render(
            "inference/tiles.md",
            whole_frame=f"{defaults.whole_frame_px / 1e6:.1f}",
            tile=defaults.tile_size,
            overlap=f"{defaults.overlap:.0%}",
        ),
        "",
        *render("inference/timelapse.md", frames=frames),
        "",
    ]
    for name, (fps, per_frame) in timelapse.items():
        lines += render(
            "inference/fps.md", name=name, fps=f"{fps:.2f}", per_frame=f"{per_frame:.2f}"
        )
    lines += [
        "",
        *render("inference/network.md"),
        "",
        "| model | fusion | dual (ms) | early fusion (ms) | ratio | GFLOP/MP dual | early |",
        "|---|---|---:|---:|---:|---:|---:|",
        *networks,
        "",
        *render("inference/cuda.md"),
        "",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu (default), auto, cuda or mps")
    parser.add_argument("--repeats", type=int, default=REPEATS, help="timed runs after warm-up")
    parser.add_argument("--sizes", type=int, nargs="*", default=list(SIZES), help="square sides")
    parser.add_argument("--frames", type=int, default=N_FRAMES, help="time-lapse frames")
    parser.add_argument("--quick", action="store_true", help="1 repeat, sizes 256 512, 3 frames")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.sizes, args.frames = 1, [256, 512], 3
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    loaded, skipped = {}, {}
    for name in MODELS:
        try:
            loaded[name] = load_model(name, device=args.device)
        except ModelNotFoundError as error:
            skipped[name] = str(error)
    latency = {name: latency_rows(name, model, args) for name, model in loaded.items()}
    scaling = {
        name: size_scaling(model, args.sizes, device=args.device, repeats=args.repeats)
        for name, model in loaded.items()
    }
    timelapse = {
        name: timelapse_fps(model, n_frames=args.frames, device=args.device)
        for name, model in loaded.items()
    }
    first = next(iter(loaded.values()), None)
    text = report(
        where="CPU" if args.device == "cpu" else args.device,
        skipped=skipped,
        parameters={name: model.network.n_parameters for name, model in loaded.items()},
        threads=torch.get_num_threads(),
        device=str(next(first.network.parameters()).device) if first else "",
        repeats=args.repeats,
        latency=latency,
        scaling=scaling,
        frames=args.frames,
        timelapse=timelapse,
        networks=[dual_against_early(name) for name in loaded],
    )
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
