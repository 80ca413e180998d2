"""DM-QPMNet against nnU-Net's default 2D network: speed, FLOPs, memory, accuracy, camera rate.

Three networks on the same random input (angles 0..4000 counts, phase 0..3 rad): nnU-Net's
default 2D ``PlainConvUNet`` (32 -> 512 features, 8 stages, 5 input channels; trained weights
from ``../runs/ablation/nnunet-default/best`` when that checkpoint exists), the shipped
DM-QPMNet (``weights/dmqpm-default``, its architecture read from the checkpoint) and an
early-fusion U-Net of DM-QPMNet's widths. For each, in a fresh interpreter (so its peak
resident memory is its own): forward GFLOP (``torch.utils.flop_counter``, counted as in
``bench_attention.py``), milliseconds per 512² tile (network alone, batch 1) and per megapixel,
the whole tiled prediction of a 1024×1224 frame (``predict_probabilities``: 50 % overlap,
Gaussian blending), peak memory, and the activation elements and kernels of one forward.
Accuracy (Dice, F1) on the held-out synthetic test set of ``benchmarks/results.py`` when the
nnU-Net checkpoint exists. Then the camera-rate analysis: what 75 fps at 1224×1024 needs.

Prints a markdown section (collected by ``benchmarks/run_all.py`` into docs/performance.md).

Usage: ``python benchmarks/bench_nnunet.py [--device auto] [--repeats 3] [--n-test 4]
[--threads 0] [--nnunet DIR] [--quick]``
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench_attention import _peak_mib, _rss_mib, count_gflop

ROOT = Path(__file__).resolve().parents[1]
NNUNET_CHECKPOINT = ROOT.parent / "runs" / "ablation" / "nnunet-default" / "best"
TILE = 512
FRAME = (1024, 1224)  # rows x columns of the IMX250MZR super-pixel frame
CAMERA_FPS = 75.0
#: H100 SXM dense bf16 tensor-core peak, TFLOP/s (NVIDIA datasheet; 1979 is with sparsity).
H100_BF16_TFLOPS = 989.4
#: H100 SXM HBM3 bandwidth, TB/s.
H100_HBM_TBPS = 3.35
#: Share of the peak that convolutions with 16 to 64 channels realistically reach.
UTILISATIONS = (0.2, 0.4)
#: Host-side cost of one eager kernel launch (PyTorch dispatch + CUDA launch), microseconds.
LAUNCH_US = 5.0
NAMES = ("nnU-Net default 2D", "DM-QPMNet (shipped)", "early fusion, same widths")


def specs(nnunet_dir: Path) -> dict[str, dict]:
    """How the child process builds each network: a checkpoint folder, a name or a config."""
    from napari_dmqpm.model import nnunet_default_2d_config
    from napari_dmqpm.model.registry import find_model, load_model

    shipped = load_model("dmqpm-default", device="cpu").network.config
    nnunet = {"checkpoint": str(nnunet_dir)} if (nnunet_dir / "config.json").is_file() else None
    early = dataclasses.replace(shipped, fusion="early")
    return {
        NAMES[0]: nnunet or {"config": nnunet_default_2d_config(5, 3).to_dict()},
        NAMES[1]: {"checkpoint": str(find_model("dmqpm-default").path)},
        NAMES[2]: {"config": early.to_dict()},
    }


def build(spec: dict):
    """The network of a spec, on the CPU, in eval mode."""
    import torch

    from napari_dmqpm.model import DMQPMNet, ModelConfig
    from napari_dmqpm.model.registry import load_model

    if "checkpoint" in spec:
        return load_model(spec["checkpoint"], device="cpu").network.eval()
    torch.manual_seed(0)
    return DMQPMNet(ModelConfig.from_dict(spec["config"])).eval()


def random_inputs(network, shape, *, batch=1, device="cpu"):
    """Angles (B, 4, M, N) in 0..4000 counts and phase (B, 1, M, N) in 0..3 rad, or None.

    Channels-last on CUDA, as ``predict_tiled`` sends them.
    """
    import torch

    generator = torch.Generator().manual_seed(0)
    angles = 4000 * torch.rand(batch, 4, *shape, generator=generator)
    phase = 3 * torch.rand(batch, 1, *shape, generator=generator)
    inputs = network.config.inputs
    layout = torch.channels_last if torch.device(device).type == "cuda" else torch.contiguous_format
    return (
        None if inputs == "phase" else angles.to(device).contiguous(memory_format=layout),
        None if inputs == "angles" else phase.to(device).contiguous(memory_format=layout),
    )


def count_elements_and_kernels(network, inputs) -> tuple[int, int]:
    """Elements written by the ops of one forward (activation traffic) and the op count.

    Views (outputs aliasing an input without writing it) are not counted: they launch no
    kernel and move no memory; in-place ops are.
    """
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    class Counter(TorchDispatchMode):
        elements, ops = 0, 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            returns = func._schema.returns
            if all(r.alias_info is None or r.alias_info.is_write for r in returns):
                Counter.ops += 1
                Counter.elements += sum(
                    t.numel() for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)
                )
            return out

    with torch.inference_mode(), Counter():
        network(*inputs)
    return Counter.elements, Counter.ops


def timed(call, device, repeats: int) -> float:
    """Median wall seconds of ``repeats`` calls after one warm-up (synchronised on CUDA)."""
    import statistics

    import torch

    sync = {"cuda": torch.cuda.synchronize, "mps": torch.mps.synchronize}.get(
        device.type, lambda: None
    )
    call()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_network(network, device, repeats: int) -> dict:
    """Milliseconds per tile (alone and batched) and per 1024×1224 frame, and peak memory.

    Peaks are the extra resident memory of this process since just before the first call
    (CPU; ``ru_maxrss``), the peak CUDA allocation, or the MPS driver's allocation.
    """
    import torch

    from napari_dmqpm.inference import InferenceConfig, predict_probabilities
    from napari_dmqpm.model import autocast_dtype
    from napari_dmqpm.model.device import choose_batch_size

    # batches only pay on an accelerator: one tile at a time on the CPU
    batch = choose_batch_size(network.config, (TILE, TILE), device=device)
    batch = 1 if device.type == "cpu" else batch
    angles, phase = random_inputs(network, FRAME)
    frame = {
        "angles": None if angles is None else angles[0].numpy(),
        "phase": None if phase is None else phase[0, 0].numpy(),
    }
    config = InferenceConfig(device=str(device), tile_size=TILE)
    dtype = autocast_dtype(device)

    def forward(inputs):
        cast = torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()
        with torch.inference_mode(), cast:
            network(*inputs)

    def peak_mib() -> float:
        if device.type == "cuda":
            value = torch.cuda.max_memory_allocated(device) / 2**20
            torch.cuda.reset_peak_memory_stats(device)
            return value
        if device.type == "mps":
            return torch.mps.driver_allocated_memory() / 2**20
        return max(_peak_mib() - before, 0.0)

    single = random_inputs(network, (TILE, TILE), device=device)
    before = _rss_mib()
    peak_mib()
    tile_s = timed(lambda: forward(single), device, repeats)
    tile_peak = peak_mib()
    batched = random_inputs(network, (TILE, TILE), batch=batch, device=device)
    batch_s = timed(lambda: forward(batched), device, repeats) / batch if batch > 1 else tile_s
    peak_mib()
    run = functools.partial(predict_probabilities, network, **frame, config=config)
    frame_s = timed(run, device, max(1, repeats - 1))
    return {
        "tile_ms": 1e3 * tile_s,
        "batch": batch,
        "batched_tile_ms": 1e3 * batch_s,
        "frame_ms": 1e3 * frame_s,
        "tile_peak_mib": tile_peak,
        "frame_peak_mib": peak_mib(),
    }


def measure(spec: dict, device_name: str, repeats: int, threads: int) -> dict:
    """One network in this process: size, cost, time per tile and per frame, peak memory."""
    import torch

    from napari_dmqpm.model import resolve_device
    from napari_dmqpm.model.device import estimate_tile_bytes

    if threads > 0:
        torch.set_num_threads(threads)
    device = resolve_device(device_name)
    network = build(spec).to(device)
    timings = time_network(network, device, repeats)  # first: the peaks are its own
    network = network.cpu()
    tile_inputs = random_inputs(network, (TILE, TILE))
    elements, kernels = count_elements_and_kernels(network, tile_inputs)
    return timings | {
        "parameters": network.n_parameters,
        "features": list(network.config.features),
        "fusion": network.config.fusion,
        "gflop_tile": count_gflop(network, tile_inputs),
        "elements_tile": elements,
        "kernels": kernels,
        "estimate_mib": estimate_tile_bytes(network.config, (TILE, TILE)) / 2**20,
        "device": str(device),
        "trained": "checkpoint" in spec,
        "divisor": network.required_divisor,
    }


def run_child(spec: dict, device: str, repeats: int, threads: int) -> dict:
    """:func:`measure` in a fresh interpreter."""
    case = json.dumps([spec, device, repeats, threads])
    command = [sys.executable, __file__, "--child", case]
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def evaluate(spec_by_name: dict[str, dict], n_per_density: int) -> dict[str, dict] | None:
    """Mean Dice and F1 of the two trained networks on the held-out synthetic test set."""
    if "checkpoint" not in spec_by_name[NAMES[0]]:
        return None
    import numpy as np
    import results

    from napari_dmqpm.inference import InferenceConfig
    from napari_dmqpm.model.registry import load_model

    cases = results.synthetic_cases(n_per_density)
    scores = {}
    for name in NAMES[:2]:
        model = load_model(spec_by_name[name]["checkpoint"], device="cpu")
        inference = InferenceConfig(device="cpu")
        segment = functools.partial(results.predict_labels, model, inference=inference)
        records = results.evaluate_method(segment, cases)["records"]
        budget = results.training_budget(model.checkpoint)
        scores[name] = (
            {key: float(np.mean([r[key] for r in records])) for key in ("dice", "f1")}
            | {"n": len(records), "tuned": "postprocessing_tuning" in model.checkpoint}
            | budget
        )
    return scores


def phase_retrieval_ms() -> float:
    """Wall milliseconds of the CPU phase retrieval (unwrapped) of one 1024×1224 frame."""
    from napari_dmqpm.phase import retrieve_phase
    from napari_dmqpm.simulation import SimulationConfig, simulate_field

    angles = simulate_field(SimulationConfig(shape=FRAME, density="sparse"), rng=0).angles
    start = time.perf_counter()
    retrieve_phase(angles)
    return 1e3 * (time.perf_counter() - start)


def _per_mp(ms: float, pixels: float) -> float:
    return ms / (pixels / 1e6)


def table(results_by_name: dict[str, dict], scores: dict | None, n_tiles: dict) -> list[str]:
    """The comparison table, one row per network."""
    lines = [
        "| network | features | parameters | GFLOP/MP | M activations/MP | ms per 512² tile "
        "| ms/MP (tile) "
        "| ms per tile, batched (B) | 1024×1224 frame ms (tiles) | ms/MP (frame) "
        "| peak MiB: tile / frame | estimated MiB per tile | Dice | F1 |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results_by_name.items():
        if "error" in r:
            lines.append(f"| {name} | failed: {r['error']} |" + " |" * 12)
            continue
        score = (scores or {}).get(name)
        missing = "not trained" if name == NAMES[0] else "-"
        dice, f1 = (f"{score[k]:.3f}" for k in ("dice", "f1")) if score else (missing, missing)
        cells = [
            name,
            "→".join(str(f) for f in (r["features"][0], r["features"][-1])),
            f"{r['parameters'] / 1e6:.2f} M",
            f"{_per_mp(r['gflop_tile'], TILE**2):.0f}",
            f"{_per_mp(r['elements_tile'], TILE**2) / 1e6:.0f}",
            f"{r['tile_ms']:.0f}",
            f"{_per_mp(r['tile_ms'], TILE**2):.0f}",
            f"{r['batched_tile_ms']:.0f} ({r['batch']})",
            f"{r['frame_ms']:.0f} ({n_tiles[name]})",
            f"{_per_mp(r['frame_ms'], FRAME[0] * FRAME[1]):.0f}",
            f"{r['tile_peak_mib']:.0f} / {r['frame_peak_mib']:.0f}",
            f"{r['estimate_mib']:.0f}",
            dice,
            f1,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def ratios(results_by_name: dict[str, dict]) -> list[str]:
    """nnU-Net default over DM-QPMNet, per megapixel, against the 5x goal."""
    nnunet, dual = results_by_name[NAMES[0]], results_by_name[NAMES[1]]
    if "error" in nnunet or "error" in dual:
        return ["Ratio: not measured (a network failed)."]
    tile = nnunet["tile_ms"] / dual["tile_ms"]
    frame = nnunet["frame_ms"] / dual["frame_ms"]
    flop = nnunet["gflop_tile"] / dual["gflop_tile"]
    verdict = "met" if min(tile, frame) >= 5 else "missed"
    floors = [frame_floor(r, 1)["floor_ms"] for r in (nnunet, dual)]
    on_h100 = " to ".join(f"{a / b:.1f}×" for a, b in zip(*floors, strict=True))
    return [
        f"nnU-Net's default network over DM-QPMNet: **{tile:.1f}×** the time per megapixel on a "
        f"512² tile, **{frame:.1f}×** on the tiled 1024×1224 frame, {flop:.1f}× the FLOPs, "
        f"{nnunet['elements_tile'] / dual['elements_tile']:.1f}× the activations; on an H100 "
        f"the floors below give {on_h100} (at {UTILISATIONS[0]:.0%} and {UTILISATIONS[1]:.0%} "
        f"utilisation). Goal ≥ 5× faster per megapixel: **{verdict}**."
    ]


def frame_floor(result: dict, n_tiles: int) -> dict:
    """Work of one 1024×1224 frame and the time it takes at least on an H100 SXM.

    ``gflop`` whole (padded to the divisor) and tiled; ``compute_ms`` at each utilisation of
    the dense bf16 peak; ``traffic_gb`` of bf16 activations (each element written and read
    once) and ``memory_ms`` over HBM; ``launch_ms`` of eager kernel launches; ``floor_ms`` =
    max(compute, memory) at each utilisation, whole frame.
    """
    divisor = result["divisor"]
    rows, cols = (-(-n // divisor) * divisor for n in FRAME)
    whole_mp, tile_mp = rows * cols / 1e6, TILE**2 / 1e6
    gflop_mp = result["gflop_tile"] / tile_mp
    gflop = {"whole": gflop_mp * whole_mp, "tiled": gflop_mp * n_tiles * tile_mp}
    traffic_gb = 2 * 2 * result["elements_tile"] / tile_mp * whole_mp / 1e9
    memory_ms = traffic_gb / H100_HBM_TBPS
    compute_ms = {
        (kind, share): gflop[kind] / (H100_BF16_TFLOPS * share)
        for kind in gflop
        for share in UTILISATIONS
    }
    return {
        "padded": (rows, cols),
        "gflop_mp": gflop_mp,
        "gflop": gflop,
        "compute_ms": compute_ms,
        "traffic_gb": traffic_gb,
        "memory_ms": memory_ms,
        "launch_ms": result["kernels"] * LAUNCH_US / 1e3,
        "floor_ms": [max(compute_ms["whole", u], memory_ms) for u in UTILISATIONS],
    }


def camera_rate(dual: dict, nnunet: dict, n_tiles: dict, retrieval_ms: float | None) -> list[str]:
    """What a 75 fps IMX250MZR camera (1224×1024) asks of DM-QPMNet (text with numbers)."""
    budget = 1e3 / CAMERA_FPS
    d = frame_floor(dual, n_tiles[NAMES[1]])
    low, high = UTILISATIONS
    floors = " and ".join(
        f"{f:.1f} ms at {u:.0%}" for f, u in zip(d["floor_ms"], UTILISATIONS, strict=True)
    )
    other = frame_floor(nnunet, n_tiles[NAMES[0]]) if "error" not in nnunet else None
    versus = (
        f" (nnU-Net's default: {other['gflop']['whole']:.0f} GFLOP, {other['traffic_gb']:.1f} GB,"
        f" floor {other['floor_ms'][1]:.1f}–{other['floor_ms'][0]:.1f} ms)"
        if other
        else ""
    )
    retrieval = (
        f"takes {retrieval_ms:.0f} ms on this CPU ({retrieval_ms / budget:.0f}× the budget)"
        if retrieval_ms is not None
        else "was not timed here (--quick; see bench_read_raw)"
    )
    return [
        f"### Camera rate: {CAMERA_FPS:.0f} fps at {FRAME[1]}×{FRAME[0]}",
        "",
        f"A {CAMERA_FPS:.0f} fps IMX250MZR leaves **{budget:.1f} ms per frame**. DM-QPMNet "
        f"(features {dual['features'][0]}..{dual['features'][-1]}, from the checkpoint) costs "
        f"{d['gflop_mp']:.0f} GFLOP per megapixel: **{d['gflop']['whole']:.0f} GFLOP** per "
        f"whole frame (padded to {d['padded'][0]}×{d['padded'][1]}), "
        f"{d['gflop']['tiled']:.0f} GFLOP as now run in {n_tiles[NAMES[1]]} overlapping "
        f"{TILE}² tiles ({d['gflop']['tiled'] / d['gflop']['whole']:.1f}× the work).",
        "",
        f"Assuming an H100 SXM at {H100_BF16_TFLOPS:.0f} TFLOP/s dense bf16 (tensor cores), of "
        f"which convolutions of {dual['features'][0]}–{dual['features'][2]} channels reach "
        f"{low:.0%}–{high:.0%}: the whole frame needs **{d['compute_ms']['whole', high]:.2f}–"
        f"{d['compute_ms']['whole', low]:.2f} ms** of compute "
        f"({d['compute_ms']['tiled', high]:.2f}–{d['compute_ms']['tiled', low]:.2f} ms tiled). "
        f"One forward writes {dual['elements_tile'] / (TILE**2 / 1e6) / 1e6:.0f} M activation "
        f"elements per megapixel: {d['traffic_gb']:.1f} GB of bf16 traffic per frame (each "
        f"written and read once), **{d['memory_ms']:.2f} ms** at {H100_HBM_TBPS} TB/s: the "
        "full-resolution layers with few channels are bound by memory, not by FLOPs. Floor "
        f"max(compute, memory): **{floors}** per frame{versus}, against the "
        f"{budget:.1f} ms budget. Eager PyTorch adds {dual['kernels']} kernel launches per "
        f"forward, ≈{d['launch_ms']:.1f} ms at {LAUNCH_US:.0f} µs each. Measured here on "
        f"{dual['device']}: {dual['frame_ms']:.0f} ms per tiled frame "
        f"({1e3 / dual['frame_ms']:.2f} fps).",
        "",
        *camera_needs(dual, d, retrieval),
    ]


def camera_needs(dual: dict, d: dict, retrieval: str) -> list[str]:
    """The list of what the code needs for camera rate, with the numbers of ``d``."""
    whole_mib = dual["estimate_mib"] * d["gflop"]["whole"] / d["gflop_mp"] / (TILE**2 / 1e6)
    input_mb = 5 * 4 * FRAME[0] * FRAME[1] / 1e6
    return [
        "What the code needs to get there (done: bf16 autocast, channels_last inputs, batched "
        "tiles sized to the free memory, `torch.inference_mode`, optional `torch.compile`):",
        "",
        "- **Whole frames instead of overlapping tiles** on a GPU: the network is fully "
        "convolutional and windowed attention costs the same per pixel at any size; a "
        f"{d['padded'][0]}×{d['padded'][1]} frame needs ≈{whole_mib / 1024:.1f} GiB "
        f"(`estimate_tile_bytes`) and saves {d['gflop']['tiled'] / d['gflop']['whole']:.1f}× "
        "the FLOPs and the CPU-side Gaussian blending of `predict_tiled` (numpy, per tile).",
        "- **Fewer full-resolution activations**: the memory floor comes from the stage-0 maps "
        "(both encoders, their merged skip, the last decoder stage); narrower stage-0 features "
        "or a stride-2 stem cut it proportionally.",
        "- **Batch frames** of a time-lapse (B frames per forward) for throughput; one frame "
        "per forward for latency.",
        '- **CUDA graphs** (`torch.compile(mode="reduce-overhead")`) to remove the '
        f"≈{d['launch_ms']:.1f} ms of launches, and inductor's fusion of InstanceNorm + "
        "LeakyReLU to cut the traffic that bounds these layers. InstanceNorm makes its input "
        "contiguous, undoing channels_last between convolutions: measure, or fuse it.",
        "- **Pinned host memory, non-blocking copies and a second CUDA stream**: the "
        f"{input_mb:.0f} MB float32 input of a frame (4 angles + phase) takes ≈"
        f"{input_mb / 25:.1f} ms over PCIe 4 at 25 GB/s from pinned memory, several times "
        "more from pageable memory; overlap it with the previous frame's compute (uint16 "
        "angles halve it).",
        f"- **Phase retrieval on the GPU**: unwrapping {retrieval}; it must move to the "
        "GPU (e.g. a DCT least-squares unwrap in torch) or be skipped.",
        "- **Post-processing off the critical path**: the watershed runs on the CPU "
        "(`bench_inference`); run it asynchronously or on every k-th frame, keep argmax and "
        "blending on the GPU, copy back only labels.",
        "",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 or mps")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls after a warm-up")
    parser.add_argument("--threads", type=int, default=0, help="torch threads; 0 = default")
    parser.add_argument("--n-test", type=int, default=4, help="test fields per density (Dice)")
    parser.add_argument("--nnunet", type=Path, default=NNUNET_CHECKPOINT, help="checkpoint")
    parser.add_argument("--quick", action="store_true", help="1 repeat, 1 test field, no phase")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(*json.loads(args.child))))
        return 0
    from napari_dmqpm.inference import plan_tiles
    from napari_dmqpm.model.registry import ModelNotFoundError

    heading = "## DM-QPMNet vs nnU-Net's default 2D network (bench_nnunet)\n"
    try:
        spec_by_name = specs(args.nnunet)
    except ModelNotFoundError as error:
        print(f"{heading}\nSkipped: {error}\n")
        return 0
    repeats = 1 if args.quick else args.repeats
    load = os.getloadavg()[0]
    measured = {}
    for name, spec in spec_by_name.items():
        measured[name] = run_child(spec, args.device, repeats, args.threads)
        print(f"{name}: {measured[name]}", file=sys.stderr, flush=True)
    n_tiles = {
        name: plan_tiles(FRAME, tile_size=TILE, divisor=r.get("divisor", 16)).n_tiles
        for name, r in measured.items()
    }
    scores = evaluate(spec_by_name, 1 if args.quick else args.n_test)
    device = next((r["device"] for r in measured.values() if "device" in r), args.device)
    trained = "trained" if scores else f"random (no checkpoint at `{args.nnunet}`)"
    lines = [
        heading,
        f"Device: {device}; torch threads: {args.threads or 'default'}; median of {repeats} "
        f"call(s) after a warm-up; load average {load:.1f} on {os.cpu_count()} cores when "
        f"started (other work inflates wall times). nnU-Net default: {trained} weights. GFLOP: "
        "forward, counted on a 512² tile. 'batched': the batch `choose_batch_size` picks on "
        "this device, per tile. Frame: `predict_probabilities`, 512² tiles at 50 % overlap. "
        "Peak: extra resident memory of the process over one 512² tile (batch 1) and over the "
        "frame (CPU), or peak CUDA allocation. Estimated: `estimate_tile_bytes`, which batch "
        "sizing on an accelerator assumes (float32 activations, ×1.5 margin). Activations: "
        "elements written by the ops of one forward (views excluded), the memory traffic "
        "that bounds small-channel layers on a GPU. Dice/F1: "
        + (
            f"mean over {next(iter(scores.values()))['n']} held-out synthetic fields "
            "(`benchmarks/results.py`), each network with its stored post-processing "
            + ", ".join(
                f"({name}: best checkpoint after {s['iterations']} training iterations of batch "
                f"{s['batch_size']} at {s['patch_size'][0]}², "
                f"thresholds {'tuned' if s['tuned'] else 'default'})"
                for name, s in scores.items()
            )
            + "."
            if scores
            else "need a trained nnU-Net default checkpoint (see `--nnunet`)."
        ),
        "",
        *table(measured, scores, n_tiles),
        "",
        *ratios(measured),
        "",
    ]
    dual = measured[NAMES[1]]
    if "error" not in dual:
        retrieval = None if args.quick else phase_retrieval_ms()
        lines += camera_rate(dual, measured[NAMES[0]], n_tiles, retrieval)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
