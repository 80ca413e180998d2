"""DM-QPMNet against nnU-Net's default 2D network: speed, FLOPs, memory, accuracy, camera rate.

The networks on the same random input (angles 0..4000 counts, phase 0..3 rad): nnU-Net's
default 2D ``PlainConvUNet`` (32 -> 512 features, 8 stages, 5 input channels; trained weights
from ``../runs/ablation/nnunet-default/best`` when that checkpoint exists), the two shipped
DM-QPMNet models (``weights/dmqpm-default`` and, when shipped, ``weights/dmqpm-fast`` with its
strided stem; architectures read from the checkpoints) and an early-fusion U-Net of
``dmqpm-default``'s widths. For each, in a fresh interpreter (so its peak resident memory is
its own): forward GFLOP (``torch.utils.flop_counter``, counted as in ``bench_attention.py``),
milliseconds per 512² tile (network alone, batch 1) and per megapixel, the prediction of a
1024×1224 frame (``predict_probabilities`` with its defaults: a frame up to ``whole_frame_px``
is one tile padded to the network's divisor), peak memory, and the activation elements and
kernels of one forward. Accuracy (Dice, F1) of every trained network on the held-out synthetic
test set of ``benchmarks/results.py``. Then the camera-rate analysis: what 75 fps at 1224×1024
needs.

Prints a markdown section (collected by ``benchmarks/run_all.py`` into docs/performance.md).

Usage: ``python benchmarks/bench_nnunet.py [--device auto] [--repeats 3] [--n-test 4]
[--threads 0] [--nnunet DIR] [--quick]``
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import functools
import json
import math
import os
import re
import subprocess
import sys
import time
import warnings
from pathlib import Path

if not __package__:  # run as a file: the repository root makes `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_attention import _peak_mib, _rss_mib, count_gflop
from benchmarks.templates import render

ROOT = Path(__file__).resolve().parents[1]
NNUNET_CHECKPOINT = ROOT.parent / "runs" / "ablation" / "nnunet-default" / "best"
#: ``dmqpm-fast``'s architecture trained with nnU-Net's budget (train_ablation.py strided-stem).
STRIDED_CHECKPOINT = ROOT.parent / "runs" / "ablation" / "strided-stem" / "best"
#: nnU-Net's default network trained with ``dmqpm-fast``'s recipe and wall-clock budget.
NNUNET_WALL_CHECKPOINT = ROOT.parent / "runs" / "wall" / "nnunet-default" / "best"
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
NNUNET, SHIPPED, FAST, EARLY = (
    "nnU-Net default 2D",
    "DM-QPMNet (dmqpm-default)",
    "DM-QPMNet fast (dmqpm-fast)",
    "early fusion, dmqpm-default's widths",
)
#: Scored, not timed: the strided stem with nnU-Net's training budget.
STRIDED = "strided stem, nnU-Net's training budget"
NNUNET_WALL = "nnU-Net default 2D, dmqpm-fast's wall-clock budget"
#: Each trained nnU-Net default network a shipped model's Dice is held against.
NNUNETS = (NNUNET, NNUNET_WALL)
#: The shipped models, each compared with nnU-Net's default network.
OURS = (SHIPPED, FAST)
#: Where :data:`RECORDED_SCORES` come from.
RECORDED_AT = "docs/performance.md at e7a8166 (bench_nnunet run at 12e1ed4)"
_BUDGET = {"n": 16, "tuned": True, "batch_size": 2, "patch_size": [256, 256], "cpu_count": 2}
#: Dice and F1 of the trained networks whose checkpoints are not in the repository (training
#: runs outside it), as :data:`RECORDED_AT` states them; used only when the checkpoint folder
#: is missing, and marked as recorded in the text.
RECORDED_SCORES = {
    NNUNET: {"dice": 0.987, "f1": 0.966, "iterations": 800, "minutes": 15.0, "threads": 2,
             "planned_iterations": 1000, "budget_minutes": None, **_BUDGET},
    STRIDED: {"dice": 0.985, "f1": 0.942, "iterations": 925, "minutes": 3.0, "threads": 2,
              "planned_iterations": 1000, "budget_minutes": None, **_BUDGET},
    NNUNET_WALL: {"dice": 0.992, "f1": 0.972, "iterations": 1500, "minutes": 27.0, "threads": 2,
                  "planned_iterations": None, "budget_minutes": 50.0, **_BUDGET},
}  # fmt: skip


def specs(nnunet_dir: Path) -> dict[str, dict]:
    """How the child process builds each network: a checkpoint folder, a name or a config."""
    from napari_dmqpm.model import nnunet_default_2d_config
    from napari_dmqpm.model.registry import ModelNotFoundError, find_model, load_model

    shipped = load_model("dmqpm-default", device="cpu").network.config
    nnunet = {"checkpoint": str(nnunet_dir)} if (nnunet_dir / "config.json").is_file() else None
    early = dataclasses.replace(shipped, fusion="early")
    spec_by_name = {
        NNUNET: nnunet or {"config": nnunet_default_2d_config(5, 3).to_dict()},
        SHIPPED: {"checkpoint": str(find_model("dmqpm-default").path)},
    }
    with contextlib.suppress(ModelNotFoundError):
        spec_by_name[FAST] = {"checkpoint": str(find_model("dmqpm-fast").path)}
    return spec_by_name | {EARLY: {"config": early.to_dict()}}


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
    """Median seconds of ``repeats`` calls after one warm-up: process CPU time on the CPU
    (steady on a shared machine), wall time on an accelerator (synchronised)."""
    import statistics

    import torch

    clock = time.process_time if device.type == "cpu" else time.perf_counter

    sync = {"cuda": torch.cuda.synchronize, "mps": torch.mps.synchronize}.get(
        device.type, lambda: None
    )
    call()
    sync()
    times = []
    for _ in range(repeats):
        start = clock()
        call()
        sync()
        times.append(clock() - start)
    return statistics.median(times)


def time_network(network, device, repeats: int) -> dict:
    """Milliseconds per tile (alone and batched) and per 1024×1224 frame, and peak memory.

    Peaks are the extra resident memory of this process since just before the first call
    (CPU; ``ru_maxrss``), the peak CUDA allocation, or the MPS driver's allocation.
    """
    import torch

    from napari_dmqpm.inference import InferenceConfig, count_tiles, predict_probabilities
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
    config = InferenceConfig(device=str(device), tile_size=TILE, backend="torch")
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
        "frame_tiles": count_tiles(network, FRAME, config=config),
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


def evaluate(spec_by_name: dict[str, dict], n_per_density: int) -> dict[str, dict]:
    """Mean Dice and F1 of each trained network on the held-out synthetic test set."""
    import numpy as np

    from benchmarks import results
    from napari_dmqpm.inference import InferenceConfig
    from napari_dmqpm.model.registry import load_model

    cases = results.synthetic_cases(n_per_density)
    scores = {}
    for name in (n for n, spec in spec_by_name.items() if "checkpoint" in spec):
        model = load_model(spec_by_name[name]["checkpoint"], device="cpu")
        inference = InferenceConfig(device="cpu", backend="torch")
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


def table(results_by_name: dict[str, dict], scores: dict[str, dict]) -> list[str]:
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
        score = scores.get(name)
        missing = "not trained" if name == NNUNET else "-"
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
            f"{r['frame_ms']:.0f} ({r['frame_tiles']})",
            f"{_per_mp(r['frame_ms'], FRAME[0] * FRAME[1]):.0f}",
            f"{r['tile_peak_mib']:.0f} / {r['frame_peak_mib']:.0f}",
            f"{r['estimate_mib']:.0f}",
            dice,
            f1,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def equal_budget(scores: dict[str, dict]) -> list[str]:
    """Our architecture against nnU-Net's default network when both had one training budget.

    Two pairs, each where both were scored: the strided stem and nnU-Net's default with one
    number of iterations, and ``dmqpm-fast`` and nnU-Net's default with one wall-clock budget.
    """
    lines = []
    for ours, theirs, what, key, command in (
        (STRIDED, NNUNET, "training budget", "planned_iterations", "train_ablation.py"),
        (FAST, NNUNET_WALL, "wall-clock budget", "budget_minutes", "scripts/train.py"),
    ):
        if ours not in scores or theirs not in scores:
            continue
        a, b = scores[ours], scores[theirs]
        same = all(a[k] == b[k] for k in (key, "batch_size", "patch_size"))
        unit = "planned iterations" if key == "planned_iterations" else "min on this CPU"
        budget = (
            f"both {b[key]:g} {unit} of batch {b['batch_size']} at {b['patch_size'][0]}², best "
            f"checkpoints at {a['iterations']} and {b['iterations']} iterations"
            if same
            else f"{a[key]} and {b[key]} {unit}"
        )
        lines += [
            f"At one {what} ({budget}; thresholds {'tuned' if a['tuned'] else 'default'} / "
            f"{'tuned' if b['tuned'] else 'default'}), {ours} scores Dice {a['dice']:.3f}, F1 "
            f"{a['f1']:.3f} and nnU-Net's default network Dice {b['dice']:.3f}, F1 "
            f"{b['f1']:.3f} on the same {a['n']} fields (`{command}`).",
            "",
        ]
    return lines


def dice_at_least(ours: float, reference: float) -> bool:
    """Whether Dice ``ours`` is equal to or better than ``reference`` at the reported 3 decimals.

    The recorded scores (:data:`RECORDED_SCORES`) are known to 3 decimals only.

    Parameters
    ----------
    ours, reference : float
        The two Dice scores.

    Examples
    --------
    >>> dice_at_least(0.9918, 0.992), dice_at_least(0.9914, 0.992)
    (True, False)
    """
    return round(ours, 3) >= round(reference, 3)


def ratios(results_by_name: dict[str, dict], scores: dict[str, dict]) -> list[str]:
    """nnU-Net default over each shipped DM-QPMNet, per megapixel, against the 5x goal.

    The goal: at least 5x faster per megapixel than nnU-Net's default network on the tile and
    on the frame, with equal or better Dice on the synthetic test set than the best trained
    nnU-Net default network scored (its ablation budget or ``dmqpm-fast``'s wall clock).
    """
    nnunet = results_by_name[NNUNET]
    if "error" in nnunet:
        return ["Ratio: not measured (nnU-Net's default network failed)."]
    lines, met = [], []
    for name in (n for n in OURS if n in results_by_name and "error" not in results_by_name[n]):
        ours = results_by_name[name]
        tile = nnunet["tile_ms"] / ours["tile_ms"]
        frame = nnunet["frame_ms"] / ours["frame_ms"]
        floors = [frame_floor(r)["floor_ms"] for r in (nnunet, ours)]
        on_h100 = " to ".join(f"{a / b:.1f}×" for a, b in zip(*floors, strict=True))
        # the best-scoring trained nnU-Net default network is the reference
        references = sorted((scores[n]["dice"], n) for n in NNUNETS if n in scores)
        compared = name in scores and bool(references)
        if compared:
            best_dice, best_name = references[-1]
            accuracy = f"Dice {scores[name]['dice']:.3f} against {best_dice:.3f} ({best_name})"
        else:
            accuracy = "Dice not compared (a network is untrained)"
        if compared and min(tile, frame) >= 5 and dice_at_least(scores[name]["dice"], best_dice):
            met.append(name)
        lines.append(
            f"- nnU-Net's default network over **{name}**: **{tile:.1f}×** the time per megapixel "
            f"on a 512² tile, **{frame:.1f}×** on the 1024×1224 frame, "
            f"{nnunet['gflop_tile'] / ours['gflop_tile']:.1f}× the FLOPs, "
            f"{nnunet['elements_tile'] / ours['elements_tile']:.1f}× the activations; "
            f"{accuracy}. On an H100 the floors below give {on_h100} (at "
            f"{UTILISATIONS[0]:.0%} and {UTILISATIONS[1]:.0%} utilisation)."
        )
    verdict = f"**met** by {', '.join(met)}" if met else "**missed**"
    return [
        *lines,
        "",
        "Goal ≥ 5× faster per megapixel on this machine than nnU-Net's default network, with "
        f"Dice equal to or better than its best trained run: {verdict}.",
    ]


def frame_floor(result: dict) -> dict:
    """Work of one 1024×1224 frame and the time it takes at least on an H100 SXM.

    ``gflop`` whole (padded to the divisor) and in overlapping 512² tiles (how frames above
    ``whole_frame_px`` run); ``compute_ms`` at each utilisation of
    the dense bf16 peak; ``traffic_gb`` of bf16 activations (each element written and read
    once) and ``memory_ms`` over HBM; ``launch_ms`` of eager kernel launches; ``floor_ms`` =
    max(compute, memory) at each utilisation, whole frame.
    """
    from napari_dmqpm.inference import plan_tiles

    divisor = result["divisor"]
    rows, cols = (-(-n // divisor) * divisor for n in FRAME)
    whole_mp, tile_mp = rows * cols / 1e6, TILE**2 / 1e6
    gflop_mp = result["gflop_tile"] / tile_mp
    n_tiles = plan_tiles(FRAME, tile_size=TILE, divisor=divisor).n_tiles
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
        "n_tiles": n_tiles,
        "gflop_mp": gflop_mp,
        "gflop": gflop,
        "compute_ms": compute_ms,
        "traffic_gb": traffic_gb,
        "memory_ms": memory_ms,
        "launch_ms": result["kernels"] * LAUNCH_US / 1e3,
        "floor_ms": [max(compute_ms["whole", u], memory_ms) for u in UTILISATIONS],
    }


def camera_rate(results_by_name: dict[str, dict], retrieval_ms: float | None) -> list[str]:
    """What a 75 fps IMX250MZR camera (1224×1024) asks of DM-QPMNet (text with numbers).

    The analysis is of the fastest shipped model measured (``dmqpm-fast`` when shipped); the
    other networks' floors follow it for comparison.
    """
    budget = 1e3 / CAMERA_FPS
    measured = [n for n in (FAST, SHIPPED) if "error" not in results_by_name.get(n, {"error": 1})]
    if not measured:
        return []
    name, others = measured[0], [n for n in (NNUNET, *OURS) if n != measured[0]]
    ours = results_by_name[name]
    d = frame_floor(ours)
    low, high = UTILISATIONS
    floors = " and ".join(
        f"{f:.1f} ms at {u:.0%}" for f, u in zip(d["floor_ms"], UTILISATIONS, strict=True)
    )
    versus = "; ".join(
        f"{other}: {f['gflop']['whole']:.0f} GFLOP, {f['traffic_gb']:.1f} GB, floor "
        f"{f['floor_ms'][1]:.1f}–{f['floor_ms'][0]:.1f} ms"
        for other in others
        if "error" not in results_by_name.get(other, {"error": 1})
        for f in (frame_floor(results_by_name[other]),)
    )
    retrieval = (
        f"takes {retrieval_ms:.0f} ms on this CPU ({retrieval_ms / budget:.0f}× the budget)"
        if retrieval_ms is not None
        else "was not timed here (--quick; see bench_read_raw)"
    )
    return [
        *render(
            "nnunet/camera_rate.md",
            fps=f"{CAMERA_FPS:.0f}",
            columns=FRAME[1],
            rows=FRAME[0],
            budget=f"{budget:.1f}",
            name=name,
            first_features=ours["features"][0],
            last_features=ours["features"][-1],
            third_features=ours["features"][2],
            gflop_mp=f"{d['gflop_mp']:.0f}",
            gflop_whole=f"{d['gflop']['whole']:.0f}",
            padded_rows=d["padded"][0],
            padded_columns=d["padded"][1],
            gflop_tiled=f"{d['gflop']['tiled']:.0f}",
            n_tiles=d["n_tiles"],
            tile=TILE,
            tiled_ratio=f"{d['gflop']['tiled'] / d['gflop']['whole']:.1f}",
            tflops=f"{H100_BF16_TFLOPS:.0f}",
            low=f"{low:.0%}",
            high=f"{high:.0%}",
            compute_high=f"{d['compute_ms']['whole', high]:.2f}",
            compute_low=f"{d['compute_ms']['whole', low]:.2f}",
            m_elements=f"{ours['elements_tile'] / (TILE**2 / 1e6) / 1e6:.0f}",
            traffic_gb=f"{d['traffic_gb']:.1f}",
            memory_ms=f"{d['memory_ms']:.2f}",
            hbm=H100_HBM_TBPS,
            floors=floors,
            versus=versus,
            kernels=ours["kernels"],
            launch_ms=f"{d['launch_ms']:.1f}",
            launch_us=f"{LAUNCH_US:.0f}",
            device=ours["device"],
            frame_ms=f"{ours['frame_ms']:.0f}",
            frame_fps=f"{1e3 / ours['frame_ms']:.2f}",
        ),
        "",
        *camera_needs(ours, d, retrieval),
    ]


def camera_needs(ours: dict, d: dict, retrieval: str) -> list[str]:
    """The list of what the code needs for camera rate, with the numbers of ``d``."""
    whole_mib = ours["estimate_mib"] * d["gflop"]["whole"] / d["gflop_mp"] / (TILE**2 / 1e6)
    input_mb = 5 * 4 * FRAME[0] * FRAME[1] / 1e6
    needs = render(
        "nnunet/camera_needs.md",
        whole_gib=f"{whole_mib / 1024:.1f}",
        launch_ms=f"{d['launch_ms']:.1f}",
        input_mb=f"{input_mb:.0f}",
        input_ms=f"{input_mb / 25:.1f}",
        retrieval=retrieval,
    )
    return [*needs, ""]


# --- issue 17 item 4: the networks through each backend against the peak of the same run ---

#: Peak convolutions: (channels, side) of a stack of ``PEAK_DEPTH`` identical 3×3
#: convolutions (channels → channels, stride 1, padding 1, bias, batch 1); the fastest is the
#: backend's peak. A stack, so that a runtime's layout conversions at the graph's input and
#: output are paid once per ``PEAK_DEPTH`` layers, as inside a network.
PEAK_SHAPES = ((64, 64), (64, 128), (64, 256), (128, 64), (128, 128), (256, 64))
PEAK_DEPTH = 8
#: Layouts torch runs the peak convolution in (the runtimes pick their own blocked layout).
TORCH_LAYOUTS = ("NCHW", "channels_last")
#: Backends, in the order of the tables, with their names in the text.
BACKENDS = {"torch": "torch (oneDNN)", "openvino": "OpenVINO fp32", "onnxruntime": "ONNX Runtime"}
#: The networks timed through every backend.
BACKEND_NETWORKS = (NNUNET, SHIPPED, FAST)
#: Issue 17 item 4: the share of the peak each shipped network should reach ...
PEAK_SHARE = 0.6
#: ... and how much faster per megapixel than nnU-Net's default network, same backend.
SPEEDUPS = {SHIPPED: 3.0, FAST: 20.0}
#: Profiled forwards per network (alternating with the peak stack); medians are reported.
PROFILE_REPEATS = 5
#: Share of the forward under which layers without FLOPs are summed in the profile's table.
MINOR = 0.03
#: GFLOP of work per timed peak measurement (several calls of a small stack).
PEAK_GFLOP_PER_SAMPLE = 8.0


def conv_gflop(shape: tuple[int, int], depth: int = PEAK_DEPTH) -> float:
    """GFLOP of a stack of ``depth`` 3×3 convolutions (channels, side), batch 1.

    Parameters
    ----------
    shape : tuple of int
        Channels (in and out) and the side of the square map.
    depth : int
        Convolutions in the stack.
    """
    channels, side = shape
    return depth * 2 * channels * channels * 9 * side * side / 1e9


def _process_seconds(call, n: int = 1) -> float:
    """Process CPU seconds per call, over ``n`` calls."""
    start = time.process_time()
    for _ in range(n):
        call()
    return (time.process_time() - start) / n


def _peak_calls(backend: str, folder: Path) -> dict[str, tuple[float, object]]:
    """``label -> (GFLOP per call, call)`` of the peak convolutions on ``backend``."""
    import numpy as np
    import torch

    from napari_dmqpm.inference.backends.runtimes import open_session

    calls = {}
    for shape in PEAK_SHAPES:
        channels, side = shape
        torch.manual_seed(0)
        conv = torch.nn.Sequential(
            *(torch.nn.Conv2d(channels, channels, 3, padding=1) for _ in range(PEAK_DEPTH))
        ).eval()
        x = torch.rand(1, channels, side, side)
        label = f"{channels}→{channels}, {side}²"
        if backend == "torch":
            for layout in TORCH_LAYOUTS:
                fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
                module = copy.deepcopy(conv).to(memory_format=fmt)
                inputs = x.contiguous(memory_format=fmt)

                def call(module=module, inputs=inputs):
                    with torch.inference_mode():
                        module(inputs)

                calls[f"{label}, {layout}"] = (conv_gflop(shape), call)
            continue
        path = folder / f"conv-{channels}-{side}.onnx"
        if not path.is_file():
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    conv, (x,), str(path), dynamo=False, opset_version=17,
                    input_names=["x"], output_names=["y"],
                )  # fmt: skip
        session, feeds = open_session(backend, path), {"x": np.ascontiguousarray(x.numpy())}
        calls[label] = (conv_gflop(shape), lambda session=session, feeds=feeds: session(feeds))
    return calls


def _network_calls(backend: str, name: str, network, folder: Path) -> dict[str, object]:
    """``{"tile": call, "frame": call}``: one forward of ``network`` on ``backend``.

    The tile is 512², the frame 1024×1224 padded to the network's divisor (as
    ``predict_probabilities`` runs a frame up to ``whole_frame_px``: one padded tile).
    """
    import torch

    from napari_dmqpm.inference.backends import SessionNetwork
    from napari_dmqpm.inference.backends.export import export_onnx, input_names
    from napari_dmqpm.inference.backends.runtimes import open_session

    divisor = network.required_divisor
    frame = tuple(-(-n // divisor) * divisor for n in FRAME)
    if backend == "torch":
        run = network
    else:
        path = folder / f"network-{BACKEND_NETWORKS.index(name)}.onnx"
        if not path.is_file():
            export_onnx(network, path)
        run = SessionNetwork(open_session(backend, path), input_names(network), network)
    calls = {}
    for part, shape in (("tile", (TILE, TILE)), ("frame", frame)):
        inputs = random_inputs(network, shape)

        def call(inputs=inputs):
            with torch.inference_mode():
                run(*inputs)

        calls[part] = call
    return calls


def measure_backends(spec_by_name: dict[str, dict], repeats: int, backends: list[str]) -> dict:
    """Peak and networks through each backend, one thread, interleaved, in this process.

    Each round times, on every backend in turn, the peak convolutions and then each network
    on the 512² tile and on the frame; round 0 is a warm-up. Times are process CPU seconds
    (medians over the rounds); ONNX exports go to a temporary folder.

    Parameters
    ----------
    spec_by_name : dict
        How to build each network (:func:`specs`).
    repeats : int
        Timed rounds after the warm-up round.
    backends : list of str
        Backends to measure (``torch``, ``openvino``, ``onnxruntime``).

    Returns
    -------
    dict
        ``peaks[backend][label]`` (GFLOP/s), ``seconds[backend][network][part]``,
        ``gflop_tile[network]``, ``divisor[network]``, ``versions[backend]`` and
        ``profile[network]`` (:func:`profile_layers`, where OpenVINO is measured).
    """
    import statistics
    import tempfile

    import torch

    from napari_dmqpm.inference.backends.runtimes import runtime_version

    torch.set_num_threads(1)  # the runtimes' sessions follow torch's thread count
    names = [n for n in BACKEND_NETWORKS if n in spec_by_name]
    networks = {name: build(spec_by_name[name]) for name in names}
    gflop = {
        name: count_gflop(net, random_inputs(net, (TILE, TILE))) for name, net in networks.items()
    }
    with tempfile.TemporaryDirectory(prefix="bench_nnunet-") as tmp:
        folder = Path(tmp)
        peak_calls = {b: _peak_calls(b, folder) for b in backends}
        net_calls = {
            b: {n: _network_calls(b, n, networks[n], folder) for n in names} for b in backends
        }
        peak_samples = {b: {label: [] for label in peak_calls[b]} for b in backends}
        net_samples = {b: {n: {"tile": [], "frame": []} for n in names} for b in backends}
        for round_ in range(repeats + 1):
            for b in backends:
                for label, (work, call) in peak_calls[b].items():
                    n = max(1, round(PEAK_GFLOP_PER_SAMPLE / work))
                    seconds = _process_seconds(call, n)
                    if round_:
                        peak_samples[b][label].append(work / seconds)
                for name in names:
                    for part, call in net_calls[b][name].items():
                        seconds = _process_seconds(call)
                        if round_:
                            net_samples[b][name][part].append(seconds)
            print(f"backends: round {round_} done", file=sys.stderr, flush=True)
        profile, profile_peaks = {}, {}
        if "openvino" in backends:
            samples = peak_samples["openvino"]
            best = max(samples, key=lambda label: statistics.median(samples[label]))
            channels, side = (int(n) for n in re.findall(r"\d+", best)[1:3])
            for name in (n for n in (SHIPPED, FAST) if n in networks):
                # the peak stack profiled the same way, alternating with the network: medians
                peaks, profiles = [], []
                for _ in range(PROFILE_REPEATS):
                    peaks.append(profile_peak(folder, (channels, side)))
                    profiles.append(profile_layers(networks[name], folder))
                profile_peaks[name] = statistics.median(peaks)
                profile[name] = {
                    group: {
                        key: statistics.median(p.get(group, {}).get(key, 0.0) for p in profiles)
                        for key in ("ms", "gflop")
                    }
                    for group in profiles[0]
                }
    median = statistics.median
    return {
        "peaks": {b: {k: median(v) for k, v in s.items()} for b, s in peak_samples.items()},
        "seconds": {
            b: {n: {p: median(v) for p, v in parts.items()} for n, parts in s.items()}
            for b, s in net_samples.items()
        },
        "gflop_tile": gflop,
        "divisor": {name: net.required_divisor for name, net in networks.items()},
        "versions": {b: runtime_version(b) for b in backends},
        "profile": profile,
        "profile_peaks": profile_peaks,
        "profile_repeats": PROFILE_REPEATS,
        "repeats": repeats,
    }


def profile_layers(network, folder: Path) -> dict[str, dict[str, float]]:
    """Where one OpenVINO fp32 forward of a 512² tile spends its time, by kind of layer.

    One thread, OpenVINO's per-node counters (``PERF_COUNT``) of the third forward.
    Convolutions are grouped by their output channels, with their GFLOP (from the shapes of
    the compiled model); InstanceNorm is OpenVINO's ``MVN``; the other layers by their type.

    Parameters
    ----------
    network : DMQPMNet
        The network.
    folder : Path
        Where its ONNX export is written.

    Returns
    -------
    dict
        ``group -> {"ms", "gflop"}`` (``gflop`` 0 for groups that are not convolutions).
    """
    import numpy as np

    from napari_dmqpm.inference.backends.export import export_onnx

    path = folder / "profiled.onnx"
    export_onnx(network, path)
    feeds = {
        name: np.ascontiguousarray(t.numpy())
        for name, t in zip(("angles", "phase"), random_inputs(network, (TILE, TILE)), strict=True)
        if t is not None
    }
    return _profile_groups(path, feeds)


def profile_peak(folder: Path, shape: tuple[int, int]) -> float:
    """GFLOP/s of the convolutions of a peak stack by OpenVINO's per-layer counters.

    Parameters
    ----------
    folder : Path
        Where the stack's ONNX export is (written by the peak measurement).
    shape : tuple of int
        Its channels and side (:data:`PEAK_SHAPES`).
    """
    import numpy as np

    channels, side = shape
    x = np.random.default_rng(0).random((1, channels, side, side), dtype=np.float32)
    groups = _profile_groups(folder / f"conv-{channels}-{side}.onnx", {"x": x})
    convolutions = [g for g in groups.values() if g["gflop"]]
    return sum(g["gflop"] for g in convolutions) / (sum(g["ms"] for g in convolutions) / 1e3)


def _profile_groups(path: Path, feeds: dict) -> dict[str, dict[str, float]]:
    """Per-layer milliseconds and GFLOP of the third forward of ``path`` (see
    :func:`profile_layers`)."""
    import math

    import openvino

    compiled = openvino.Core().compile_model(
        str(path), "CPU",
        {"INFERENCE_NUM_THREADS": 1, "INFERENCE_PRECISION_HINT": "f32",
         "PERFORMANCE_HINT": "LATENCY", "PERF_COUNT": True},
    )  # fmt: skip
    request = compiled.create_infer_request()
    for _ in range(3):  # the counters of the last forward
        request.infer(feeds)
    ops = {op.get_friendly_name(): op for op in compiled.get_runtime_model().get_ops()}
    groups: dict[str, dict[str, float]] = {}
    for info in request.profiling_info:
        ms = info.real_time.total_seconds() * 1e3
        op, work = ops.get(info.node_name), 0.0
        if info.node_type in ("Convolution", "ConvolutionBackpropData") and op is not None:
            out = [d.get_length() for d in op.output(0).get_partial_shape()]
            weights = [d.get_length() for d in op.input(1).get_partial_shape()]
            if info.node_type == "Convolution":  # weights (out, in, kh, kw)
                work = 2 * math.prod(out) * math.prod(weights[1:]) / 1e9
                group = f"convolution → {out[1]} channels"
            else:  # transposed: weights (in, out, kh, kw), each input element to kh·kw outputs
                inputs = [d.get_length() for d in op.input(0).get_partial_shape()]
                work = 2 * math.prod(inputs) * math.prod(weights[1:]) / 1e9
                group = f"transposed convolution → {out[1]} channels"
        elif info.node_type == "MVN":
            group = "InstanceNorm (MVN)"
        else:  # OpenVINO's name of the layer type (Concat, Transpose, Reorder, ...)
            group = info.node_type
        entry = groups.setdefault(group, {"ms": 0.0, "gflop": 0.0})
        entry["ms"] += ms
        entry["gflop"] += work
    return groups


def _run_backend_child(spec_by_name: dict[str, dict], repeats: int, backends: list[str]) -> dict:
    """:func:`measure_backends` in a fresh interpreter (one thread from its start)."""
    case = json.dumps([spec_by_name, repeats, backends])
    environment = os.environ | {"OMP_NUM_THREADS": "1"}
    command = [sys.executable, __file__, "--backends-child", case]
    done = subprocess.run(
        command, capture_output=True, text=True, check=False, cwd=ROOT, env=environment
    )
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def installed_backends() -> list[str]:
    """The backends of :data:`BACKENDS` that can run here, torch first."""
    from napari_dmqpm.inference.backends import is_installed

    return [b for b in BACKENDS if is_installed(b)]


def backend_rows(run: dict) -> dict[tuple[str, str], dict[str, float]]:
    """Per (backend, network): ms/MP, GFLOP/s and % of the backend's peak, tile and frame,
    and nnU-Net's time per megapixel over this network's on the same backend.

    Parameters
    ----------
    run : dict
        What :func:`measure_backends` returned.
    """
    frame_mp = FRAME[0] * FRAME[1] / 1e6
    rows = {}
    for backend, by_name in run["seconds"].items():
        peak = max(run["peaks"][backend].values())
        for name, seconds in by_name.items():
            gflop_mp = run["gflop_tile"][name] / (TILE**2 / 1e6)
            divisor = run["divisor"][name]
            padded_mp = math.prod(-(-n // divisor) * divisor for n in FRAME) / 1e6
            gflop = {"tile": run["gflop_tile"][name], "frame": gflop_mp * padded_mp}
            mp = {"tile": TILE**2 / 1e6, "frame": frame_mp}
            row = {"gflop_mp": gflop_mp}
            for part in ("tile", "frame"):
                row[f"{part}_ms_mp"] = 1e3 * seconds[part] / mp[part]
                row[f"{part}_gflops"] = gflop[part] / seconds[part]
                row[f"{part}_share"] = row[f"{part}_gflops"] / peak
            rows[backend, name] = row
        if NNUNET in by_name:
            for name in by_name:
                for part in ("tile", "frame"):
                    rows[backend, name][f"{part}_speedup"] = (
                        rows[backend, NNUNET][f"{part}_ms_mp"]
                        / rows[backend, name][f"{part}_ms_mp"]
                    )
    return rows


def _reference_dice(name: str, scores: dict[str, dict]) -> tuple[bool, str]:
    """Whether ``name``'s Dice is at least the best trained nnU-Net default network's, in words."""
    references = sorted((scores[n]["dice"], n) for n in NNUNETS if n in scores)
    if name not in scores or not references:
        return False, "Dice not compared (a network is untrained)"
    best, which = references[-1]
    ours = scores[name]["dice"]
    return dice_at_least(ours, best), f"Dice {ours:.3f} against {best:.3f} ({which})"


def _verdict(met_on: list[str], missed_on: list[str]) -> str:
    """``**met**``, ``**missed**``, or which backends met it and which missed it."""
    if not missed_on:
        return "**met**"
    if not met_on:
        return "**missed**"
    return f"**met** on {', '.join(met_on)}, **missed** on {', '.join(missed_on)}"


def peak_verdicts(rows: dict, run: dict) -> list[str]:
    """Target (a): each shipped network at ≥ ``PEAK_SHARE`` of its backend's peak, tile and frame.

    Parameters
    ----------
    rows : dict
        :func:`backend_rows`.
    run : dict
        What :func:`measure_backends` returned (for the peaks).
    """
    lines = []
    backends = list(run["seconds"])
    for name in (n for n in OURS if any((b, n) in rows for b in backends)):
        met, missed, numbers = [], [], []
        for backend in (b for b in backends if (b, name) in rows):
            row = rows[backend, name]
            peak = max(run["peaks"][backend].values())
            (met if min(row["tile_share"], row["frame_share"]) >= PEAK_SHARE else missed).append(
                BACKENDS[backend]
            )
            numbers.append(
                f"{BACKENDS[backend]} {row['tile_share']:.0%} / {row['frame_share']:.0%} "
                f"({row['tile_gflops']:.0f} / {row['frame_gflops']:.0f} of {peak:.0f} GFLOP/s)"
            )
        lines += render(
            "nnunet/target_peak.md",
            name=name,
            share=f"{PEAK_SHARE:.0%}",
            verdict=_verdict(met, missed),
            numbers="; ".join(numbers),
        )
    return lines


def speedup_verdicts(rows: dict, run: dict, scores: dict[str, dict]) -> list[str]:
    """Target (b): each shipped network ≥ its ``SPEEDUPS`` per megapixel over nnU-Net's default
    network on the same backend (tile and frame), with equal or better Dice.

    Parameters
    ----------
    rows : dict
        :func:`backend_rows`.
    run : dict
        What :func:`measure_backends` returned.
    scores : dict
        Dice and F1 per network (:func:`evaluate`).
    """
    lines = []
    backends = [b for b in run["seconds"] if (b, NNUNET) in rows]
    for name in (n for n in OURS if any((b, n) in rows for b in backends)):
        dice_ok, dice = _reference_dice(name, scores)
        met, missed, numbers = [], [], []
        for backend in (b for b in backends if (b, name) in rows):
            row = rows[backend, name]
            fast = min(row["tile_speedup"], row["frame_speedup"]) >= SPEEDUPS[name]
            (met if fast and dice_ok else missed).append(BACKENDS[backend])
            numbers.append(
                f"{BACKENDS[backend]} {row['tile_speedup']:.1f}× / {row['frame_speedup']:.1f}×"
            )
        lines += render(
            "nnunet/target_speedup.md",
            name=name,
            speedup=f"{SPEEDUPS[name]:g}",
            verdict=_verdict(met, missed),
            numbers="; ".join(numbers),
            dice=dice,
        )
    return lines


def backend_table(rows: dict, scores: dict[str, dict]) -> list[str]:
    """One row per (network, backend): the numbers the verdicts rest on.

    Parameters
    ----------
    rows : dict
        :func:`backend_rows`.
    scores : dict
        Dice per network (:func:`evaluate`).
    """
    lines = [
        "| network | backend | GFLOP/MP | ms/MP (tile) | ms/MP (frame) | GFLOP/s: tile / frame "
        "| % of the backend's peak: tile / frame | nnU-Net's ms/MP over this: tile / frame "
        "| Dice |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in BACKEND_NETWORKS:
        for backend in BACKENDS:
            if (backend, name) not in rows:
                continue
            r = rows[backend, name]
            speedup = (
                f"{r['tile_speedup']:.1f}× / {r['frame_speedup']:.1f}×"
                if "tile_speedup" in r and name != NNUNET
                else "-"
            )
            dice = f"{scores[name]['dice']:.3f}" if name in scores else "-"
            cells = [
                name,
                BACKENDS[backend],
                f"{r['gflop_mp']:.0f}",
                f"{r['tile_ms_mp']:.0f}",
                f"{r['frame_ms_mp']:.0f}",
                f"{r['tile_gflops']:.0f} / {r['frame_gflops']:.0f}",
                f"{r['tile_share']:.0%} / {r['frame_share']:.0%}",
                speedup,
                dice,
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def peak_table(run: dict) -> list[str]:
    """The peak convolutions on each backend, GFLOP/s, the fastest in bold.

    Parameters
    ----------
    run : dict
        What :func:`measure_backends` returned.
    """
    lines = [
        f"| backend | stack of {PEAK_DEPTH} convolutions (3×3, batch 1) | GFLOP/s |",
        "|---|---|---:|",
    ]
    for backend, peaks in run["peaks"].items():
        best = max(peaks, key=peaks.get)
        for label, value in peaks.items():
            number = f"**{value:.0f}**" if label == best else f"{value:.0f}"
            lines.append(f"| {BACKENDS[backend]} | {label} | {number} |")
    return lines


def profile_lines(run: dict) -> list[str]:
    """Where OpenVINO's fp32 forward of each shipped network spends its time (a table).

    Parameters
    ----------
    run : dict
        What :func:`measure_backends` returned.
    """
    if not run.get("profile"):
        return []
    lines = []
    for name, groups in run["profile"].items():
        peak = run.get("profile_peaks", {}).get(name)
        reference = (
            f"the peak stack profiled the same way, {peak:.0f} GFLOP/s"
            if peak
            else "the peak above"
        )
        peak = peak or max(run["peaks"]["openvino"].values())
        total = sum(g["ms"] for g in groups.values())
        conv_ms = sum(g["ms"] for g in groups.values() if g["gflop"])
        conv_gflop = sum(g["gflop"] for g in groups.values())
        lines += [
            *render(
                "nnunet/profile.md",
                name=name,
                total_ms=f"{total:.0f}",
                conv_share=f"{conv_ms / total:.0%}",
                conv_gflops=f"{conv_gflop / (conv_ms / 1e3):.0f}",
                conv_peak=f"{conv_gflop / (conv_ms / 1e3) / peak:.0%}",
                reference=reference,
                profiles=run.get("profile_repeats", PROFILE_REPEATS),
                other_share=f"{1 - conv_ms / total:.0%}",
            ),
            "",
            "| layers | ms | share of the forward | GFLOP | GFLOP/s | % of that peak |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        small = {k: g for k, g in groups.items() if not g["gflop"] and g["ms"] < MINOR * total}
        groups = {k: g for k, g in groups.items() if k not in small}
        if small:
            groups[f"{len(small)} other kinds of layer, each under {MINOR:.0%}"] = {
                "ms": sum(g["ms"] for g in small.values()),
                "gflop": 0.0,
            }
        for group, g in sorted(groups.items(), key=lambda item: -item[1]["ms"]):
            rate = g["gflop"] / (g["ms"] / 1e3) if g["gflop"] and g["ms"] else None
            lines.append(
                f"| {group} | {g['ms']:.1f} | {g['ms'] / total:.0%} | "
                + (
                    f"{g['gflop']:.1f} | {rate:.0f} | {rate / peak:.0%} |"
                    if rate
                    else "- | - | - |"
                )
            )
        lines.append("")
    return lines


def backend_section(run: dict, scores: dict[str, dict], load: tuple[float, float]) -> list[str]:
    """The issue 17 item 4 subsection: peak, networks per backend, the two verdicts, profile.

    Parameters
    ----------
    run : dict
        What :func:`measure_backends` returned (or ``{"error": ...}``).
    scores : dict
        Dice per network (:func:`evaluate`).
    load : tuple of float
        One-minute load average when the run started and when it ended.
    """
    if "error" in run:
        return [
            "### Through each backend, against the peak",
            "",
            f"Not measured: {run['error']}",
            "",
        ]
    rows = backend_rows(run)
    peaks = {b: max(p.items(), key=lambda item: item[1]) for b, p in run["peaks"].items()}
    return [
        *render(
            "nnunet/backends.md",
            backends=", ".join(f"{BACKENDS[b]} {v}" for b, v in run["versions"].items()),
            repeats=run["repeats"],
            load_start=f"{load[0]:.1f}",
            load_end=f"{load[1]:.1f}",
            depth=PEAK_DEPTH,
            peaks="; ".join(
                f"{BACKENDS[b]} **{value:.0f} GFLOP/s** ({label})"
                for b, (label, value) in peaks.items()
            ),
        ),
        "",
        *peak_table(run),
        "",
        *backend_table(rows, scores),
        "",
        *peak_verdicts(rows, run),
        *speedup_verdicts(rows, run, scores),
        "",
        *profile_lines(run),
    ]


def _scores_text(scores: dict[str, dict]) -> str:
    """Where the Dice and F1 of the table come from, in words."""
    if not scores:
        return "need a trained nnU-Net default checkpoint (see `--nnunet`)."
    runs = ", ".join(
        f"({name}: best checkpoint after {s['iterations']} training iterations of batch "
        f"{s['batch_size']} at {s['patch_size'][0]}² ({s['minutes']:.0f} min on "
        f"{s['cpu_count']} CPU cores, {s['threads']} torch thread(s)), "
        f"thresholds {'tuned' if s['tuned'] else 'default'}"
        f"{'; recorded: ' + s['recorded'] if s.get('recorded') else ''})"
        for name, s in scores.items()
    )
    return (
        f"mean over {next(iter(scores.values()))['n']} held-out synthetic fields "
        f"(`benchmarks/results.py`), each network with its stored post-processing {runs}."
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 or mps")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls after a warm-up")
    parser.add_argument("--threads", type=int, default=0, help="torch threads; 0 = default")
    parser.add_argument("--n-test", type=int, default=4, help="test fields per density (Dice)")
    parser.add_argument("--nnunet", type=Path, default=NNUNET_CHECKPOINT, help="checkpoint")
    parser.add_argument(
        "--strided", type=Path, default=STRIDED_CHECKPOINT, help="strided stem, same budget"
    )
    parser.add_argument(
        "--nnunet-wall",
        type=Path,
        default=NNUNET_WALL_CHECKPOINT,
        help="nnU-Net default trained with dmqpm-fast's wall-clock budget",
    )
    parser.add_argument(
        "--backend-repeats", type=int, default=3, help="timed rounds through the backends"
    )
    parser.add_argument(
        "--backends", nargs="*", default=None, help="backends to compare (default: installed)"
    )
    parser.add_argument("--quick", action="store_true", help="1 repeat, 1 test field, no phase")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--backends-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(*json.loads(args.child))))
        return 0
    if args.backends_child:
        print(json.dumps(measure_backends(*json.loads(args.backends_child))))
        return 0
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
    scored = spec_by_name | {
        name: {"checkpoint": str(folder)}
        for name, folder in ((STRIDED, args.strided), (NNUNET_WALL, args.nnunet_wall))
        if (folder / "config.json").is_file()
    }
    scores = evaluate(scored, 1 if args.quick else args.n_test)
    if not args.quick:  # recorded scores are of the full test set only
        scores = {
            name: RECORDED_SCORES[name] | {"recorded": RECORDED_AT}
            for name in (NNUNET, STRIDED, NNUNET_WALL)
            if name not in scores
        } | scores
    backends = installed_backends() if args.backends is None else args.backends
    backend_load = [os.getloadavg()[0]]
    backend_run = _run_backend_child(
        spec_by_name, 1 if args.quick else args.backend_repeats, backends
    )
    backend_load.append(os.getloadavg()[0])
    device = next((r["device"] for r in measured.values() if "device" in r), args.device)
    trained = (
        "trained"
        if "checkpoint" in spec_by_name[NNUNET]
        else "random (its checkpoint is not on this machine; times do not depend on the weights)"
    )
    lines = [
        heading,
        *render(
            "nnunet/description.md",
            device=device,
            threads=args.threads or "default",
            repeats=repeats,
            clock="process CPU time" if device == "cpu" else "wall time",
            load=f"{load:.1f}",
            cores=os.cpu_count(),
            trained=trained,
            scores=_scores_text(scores),
        ),
        "",
        *table(measured, scores),
        "",
        *ratios(measured, scores),
        "",
        *equal_budget(scores),
        *backend_section(backend_run, scores, tuple(backend_load)),
    ]
    lines += camera_rate(measured, None if args.quick else phase_retrieval_ms())
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
