"""Segmentation speed of the shipped models: latency per frame, TTA, GFLOP, dual vs early fusion.

Times the whole core path behind ``dmqpm segment`` and the napari widget
(:func:`napari_dmqpm.inference.segment_acquisition`: normalization, Gaussian-blended tiles,
post-processing, measurements) on simulated frames of 512² and 1024×1224 (the IMX250MZR
super-pixel frame), without and with mirror TTA, on the CPU with all cores; the network alone
for the dual encoder against an early-fusion network of the same widths; and the forward GFLOP
per megapixel. Prints a markdown section (collected by ``benchmarks/run_all.py``).

Targets (issue 3): a 1024×1224 frame in ≤ 3 s on this 2-core CPU without TTA; the dual
encoder ≤ 1.3× the time of early fusion of the same widths.
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
import time

import torch

from napari_dmqpm.inference import InferenceConfig, segment_acquisition
from napari_dmqpm.model import DMQPMNet
from napari_dmqpm.model.registry import ModelNotFoundError, load_model
from napari_dmqpm.simulation import SimulationConfig, simulate_field

SHAPES = ((512, 512), (1024, 1224))
REPEATS = 2


def best_and_median(function, repeats: int = REPEATS) -> tuple[float, float]:
    """Best and median wall seconds of ``repeats`` calls after one warm-up."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def frame_latency(model, shape: tuple[int, int], *, tta: bool) -> tuple[float, float]:
    """Seconds to segment one simulated dense frame of ``shape`` with the whole core path."""
    field = simulate_field(SimulationConfig(shape=shape, density="dense"), rng=1)
    acquisition = field.to_acquisition()
    config = InferenceConfig(device="cpu", tta=tta)
    return best_and_median(lambda: list(segment_acquisition(acquisition, model, config=config)))


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
    """Forward GFLOP of a size² tile, scaled to 10⁶ pixels (torch's FlopCounterMode)."""
    from torch.utils.flop_counter import FlopCounterMode

    angles = torch.rand(1, 4, size, size) if network.config.inputs != "phase" else None
    phase = torch.rand(1, 1, size, size) if network.config.inputs != "angles" else None
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        network.eval()(angles=angles, phase=phase)
    return counter.get_total_flops() / 1e9 * 1e6 / size**2


def main() -> int:
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    print("## Segmentation speed (CPU)\n")
    try:
        loaded = load_model("dmqpm-default", device="cpu")
    except ModelNotFoundError as error:
        print(f"Skipped: {error}\n")
        return 0
    print(
        f"Shipped `dmqpm-default` ({loaded.network.n_parameters:,} parameters), whole "
        f"`segment_acquisition` path on a simulated dense frame, {torch.get_num_threads()} torch "
        f"threads, best and median of {REPEATS} after a warm-up; TTA (4 passes) only at 512².\n"
    )
    print("| frame | TTA | best (s) | median (s) |")
    print("|---|---|---:|---:|")
    for shape in SHAPES:
        for tta in (False, True) if shape == SHAPES[0] else (False,):
            best, median = frame_latency(loaded, shape, tta=tta)
            print(
                f"| {shape[0]}×{shape[1]} | {'yes' if tta else 'no'} | {best:.2f} | {median:.2f} |"
            )
    dual = loaded.network
    early = DMQPMNet(dataclasses.replace(dual.config, fusion="early"))
    t_dual, t_early = network_seconds(dual), network_seconds(early)
    print(
        "\nNetwork alone, one 512² tile (median of 5): "
        f"dual encoder with {dual.config.attention} MHA at stage {dual.config.fusion_stage} "
        f"{t_dual * 1e3:.0f} ms, early fusion of the same widths {t_early * 1e3:.0f} ms: "
        f"**{t_dual / t_early:.2f}×** (target ≤ 1.3×).\n"
    )
    print(
        f"Forward cost: {gflop_per_megapixel(dual):.0f} GFLOP per megapixel (dual), "
        f"{gflop_per_megapixel(early):.0f} (early fusion). On CUDA the code uses "
        "bf16 autocast (fp16 where bf16 is not native), channels_last and batched tiles; "
        "no GPU was available for these measurements.\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
