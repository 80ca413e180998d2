"""Cost of the fusion attention variants on 256^2 and 512^2 tiles: CPU time and peak memory.

Prints a markdown section (collected by ``benchmarks/run_all.py`` into docs/performance.md).
Each measurement runs in a fresh interpreter so that its peak resident memory (ru_maxrss, minus
the resident size just before the first call) belongs to that case alone. Times are the best
of ``--repeats`` calls after one warm-up call; process CPU time is reported next to wall time
because it stays meaningful when other work shares the machine.

Usage: ``python benchmarks/bench_attention.py [--tiles 256 512] [--repeats 5] [--threads 1]
[--no-network]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

if not __package__:  # run as a file: the repository root makes `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.templates import render

# name -> ModelConfig overrides; all are the default DM-QPMNet (MHA fusion at stage 2 = H/4)
VARIANTS = {
    "global": {"attention": "global"},
    "kv-reduced r=2": {"attention": "kv-reduced", "kv_reduction": 2},
    "kv-reduced r=4": {"attention": "kv-reduced", "kv_reduction": 4},
    "kv-reduced r=8": {"attention": "kv-reduced", "kv_reduction": 8},
    "windowed w=8": {"attention": "windowed", "window_size": 8},
    "windowed w=16": {"attention": "windowed", "window_size": 16},
    "concat (no attention)": {"fusion": "concat"},
}
NETWORK_VARIANTS = ("global", "kv-reduced r=4", "windowed w=8", "concat (no attention)", "early")
CONFIGS = {**VARIANTS, "early": {"fusion": "early"}}  # early: one 5-channel encoder, no fusion
MODES = ("fusion-infer", "fusion-train", "network-infer")


def _rss_mib() -> float:
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def count_gflop(module, inputs: tuple) -> float:
    """Forward GFLOP (multiply-add = 2) by torch's FlopCounterMode, CPU attention included."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

    def cpu_sdpa(query, key, value, *args, out_shape=None, **kwargs) -> int:
        return sdpa_flop_count(query, key, value)

    # torch counts the CUDA attention kernels but not the CPU flash kernel: add it
    mapping = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: cpu_sdpa}
    with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        module(*inputs)
    return counter.get_total_flops() / 1e9


def measure(variant: str, tile: int, mode: str, repeats: int, threads: int) -> dict:
    """Run one case in this process: best wall and CPU seconds, peak extra MiB, GFLOP."""
    import torch

    if threads > 0:
        torch.set_num_threads(threads)
    from napari_dmqpm.model import DMQPMNet, ModelConfig, build_fusion

    torch.manual_seed(0)
    config = ModelConfig(**CONFIGS[variant])
    if mode == "network-infer":
        module = DMQPMNet(config).eval()
        inputs = (torch.rand(1, 4, tile, tile), torch.randn(1, 1, tile, tile))
    else:
        module = build_fusion(config).train(mode == "fusion-train")
        stage = config.fusion_stage
        side = tile // config.stage_resolutions()[stage]
        shape = (1, config.features[stage], side, side)
        grad = mode == "fusion-train"
        inputs = tuple(torch.randn(shape, requires_grad=grad) for _ in range(2))

    def call() -> None:
        if mode == "fusion-train":
            module(*inputs).square().mean().backward()
        else:
            with torch.inference_mode():
                module(*inputs)

    before = _rss_mib()
    call()
    peak = _peak_mib() - before
    seconds, cpu_seconds = [], []
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        call()
        seconds.append(time.perf_counter() - start)
        cpu_seconds.append(time.process_time() - cpu_start)
    gflop = count_gflop(module, inputs) if mode != "fusion-train" else None
    return {
        "seconds": min(seconds),
        "cpu_seconds": min(cpu_seconds),
        "peak_mib": max(peak, 0.0),
        "gflop": gflop,
    }


def _run_child(variant: str, tile: int, mode: str, repeats: int, threads: int) -> dict:
    case = json.dumps([variant, tile, mode, repeats, threads])
    command = [sys.executable, __file__, "--child", case]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _tokens(tile: int, variant: str) -> str:
    side = tile // 4
    overrides = VARIANTS[variant]
    if "fusion" in overrides:
        return "-"
    if overrides["attention"] == "global":
        keys = side * side
    elif overrides["attention"] == "kv-reduced":
        keys = (side // overrides["kv_reduction"]) ** 2
    else:
        keys = overrides["window_size"] ** 2
    naive_gib = 4 * side * side * keys * 4 / 2**30  # 4 heads, float32 score matrix
    return f"{side * side} x {keys} ({naive_gib:.2f} GiB)"


def _format(result: dict, key: str, scale: float, digits: int) -> str:
    if "error" in result:
        return "failed"
    if result.get(key) is None:
        return "-"
    return f"{result[key] * scale:.{digits}f}"


def network_sizes() -> list[str]:
    """Parameters and forward GFLOP per megapixel (512x512 input) of the main configs."""
    import torch

    from napari_dmqpm.model import DMQPMNet, ModelConfig, build_nnunet_default_2d

    networks = {
        "DM-QPMNet default (MHA at stage 2, windowed w=8)": DMQPMNet(ModelConfig()),
        "same widths, concat at stage 2": DMQPMNet(ModelConfig(fusion="concat")),
        "same widths, early fusion (5 channels, one encoder)": DMQPMNet(
            ModelConfig(fusion="early")
        ),
        "same widths, phase only": DMQPMNet(ModelConfig(inputs="phase", fusion="early")),
        "nnU-Net default 2D (32->512, 8 stages, 5 channels)": build_nnunet_default_2d(),
    }
    tile = 512
    inputs = {
        "both": (torch.rand(1, 4, tile, tile), torch.randn(1, 1, tile, tile)),
        "phase": (None, torch.randn(1, 1, tile, tile)),
    }
    lines = ["| network | parameters | GFLOP per megapixel |", "|---|---|---|"]
    for name, net in networks.items():
        gflop = count_gflop(net.eval(), inputs[net.config.inputs])
        lines.append(f"| {name} | {net.n_parameters / 1e6:.2f} M | {gflop / (tile**2 / 1e6):.1f} |")
    return lines


def _row(cells: list) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def fusion_row(variant: str, tile: int, infer: dict, train: dict) -> str:
    """The fusion table's row of one variant and tile.

    Parameters
    ----------
    variant : str
        A key of ``VARIANTS``.
    tile : int
        The tile's side, px.
    infer, train : dict
        What :func:`measure` returned for the ``fusion-infer`` and ``fusion-train`` modes (or
        ``{"error": ...}`` for a case that failed).

    Returns
    -------
    str
        A markdown table row.
    """
    return _row(
        [variant, tile, _tokens(tile, variant), _format(infer, "gflop", 1, 2)]
        + [_format(infer, k, 1e3, 1) for k in ("cpu_seconds", "seconds")]
        + [_format(infer, "peak_mib", 1, 0), _format(train, "cpu_seconds", 1e3, 1)]
        + [_format(train, "peak_mib", 1, 0)]
    )


def network_row(variant: str, tile: int, result: dict) -> str:
    """The whole-network table's row of one variant and tile.

    Parameters
    ----------
    variant : str
        A name of ``NETWORK_VARIANTS``.
    tile : int
        The tile's side, px.
    result : dict
        What :func:`measure` returned for the ``network-infer`` mode (or ``{"error": ...}``).

    Returns
    -------
    str
        A markdown table row.
    """
    return _row(
        [variant, tile, _format(result, "gflop", 1, 1)]
        + [_format(result, k, 1e3, 0) for k in ("cpu_seconds", "seconds")]
        + [_format(result, "peak_mib", 1, 0)]
    )


def report(
    fusion: Sequence[tuple[str, int, dict, dict]],
    network: Sequence[tuple[str, int, dict]] | None,
    sizes: Sequence[str],
    *,
    threads: int | str,
    load: float,
    n_cores: int | None,
) -> str:
    """The markdown section: prose from ``benchmarks/templates/attention``, then the tables.

    Parameters
    ----------
    fusion : sequence of (str, int, dict, dict)
        ``(variant, tile, infer, train)`` per fusion case, in table order (see
        :func:`fusion_row`); may be empty (``--no-fusion``).
    network : sequence of (str, int, dict) or None
        ``(variant, tile, result)`` per whole-network case (see :func:`network_row`); None
        leaves out the whole-network part (``--no-network``).
    sizes : sequence of str
        The lines of :func:`network_sizes`' table; shown with ``network`` only.
    threads : int or str
        The torch threads, or ``"default"``.
    load : float
        The one-minute load average when the benchmark started.
    n_cores : int or None
        The machine's cores (``os.cpu_count()``).

    Returns
    -------
    str
        The section, lines joined by newlines (no final newline).
    """
    lines = render("attention/fusion.md", threads=threads, load=f"{load:.1f}", n_cores=n_cores)
    lines += [fusion_row(*case) for case in fusion]
    if network is not None:
        lines += ["", *render("attention/network.md", threads=threads)]
        lines += [network_row(*case) for case in network]
        lines += ["", *render("attention/sizes.md"), "", *sizes]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", type=int, nargs="*", default=[256, 512])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads; 0 = default")
    parser.add_argument("--no-network", action="store_true", help="skip whole-network timings")
    parser.add_argument("--no-fusion", action="store_true", help="skip the fusion-only table")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(*json.loads(args.child))))
        return 0
    load, n_cores = os.getloadavg()[0], os.cpu_count()
    fusion: list[tuple[str, int, dict, dict]] = []
    for tile in [] if args.no_fusion else args.tiles:
        for variant in VARIANTS:
            infer = _run_child(variant, tile, "fusion-infer", args.repeats, args.threads)
            train = _run_child(variant, tile, "fusion-train", args.repeats, args.threads)
            fusion.append((variant, tile, infer, train))
            print(fusion_row(*fusion[-1]), file=sys.stderr, flush=True)
    network: list[tuple[str, int, dict]] | None = None
    sizes: list[str] = []
    if not args.no_network:
        network = []
        for tile in args.tiles:
            for variant in NETWORK_VARIANTS:
                repeats = max(1, args.repeats - 2)
                result = _run_child(variant, tile, "network-infer", repeats, args.threads)
                network.append((variant, tile, result))
                print(network_row(*network[-1]), file=sys.stderr, flush=True)
        sizes = network_sizes()
    threads = args.threads or "default"
    print(report(fusion, network, sizes, threads=threads, load=load, n_cores=n_cores))
    return 0


if __name__ == "__main__":
    sys.exit(main())
