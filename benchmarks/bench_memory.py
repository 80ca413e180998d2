"""Peak memory of ``segment_file``: one 8192² ssQPM frame, and time-lapses of growing length.

Issue 5 targets: one 8192 x 8192 ssQPM frame (four angle images and the phase, float32, a
1.3 GB file) is segmented in less than 4 GB of peak resident memory, and the memory of a
time-lapse does not grow with the number of frames. Each case runs ``segment_file`` in a fresh
interpreter and reports that process's peak resident set size (``VmHWM``: interpreter,
torch, the model and all of the work), its resident size just before the call (imports and
the loaded model), and the wall time.

The 8192² frame is a cheap synthetic ssQPM frame: one simulated 1024² dense field (the
calibrated simulator: phantoms, optics, detector noise) tiled 8 x 8 with every tile mirrored
differently, written as the canonical ImageJ ``ssqpm-stack`` (I0, I45, I90, I135, phase;
uncompressed float32) tile by tile. The time-lapses are simulated 512² frames (cells drift
and deform) written with ``write_stack``.

Prints a markdown section (collected by ``benchmarks/run_all.py``); ``--out FILE`` also writes
it to a file. Usage: ``python benchmarks/bench_memory.py [--size 8192] [--frames 5 10 20]
[--model tiny|dmqpm-default] [--skip-large] [--out FILE]``. The default ``tiny`` model (a
random 3-stage network) runs the same data path with almost no network compute (8192²: about
15 minutes on a busy 2-core CPU); the shipped ``dmqpm-default`` adds its activations (about
1.2 GB for a batch of four 512² tiles) and takes about an hour there.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

if not __package__:  # run as a file: the repository root makes `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.templates import render

TILE = 1024


def _peak_mib() -> float:
    """Peak resident memory of this process image (VmHWM), in MiB.

    Not ``ru_maxrss``: that survives ``exec``, so a child would report its parent's size if
    the parent was larger when it forked. ``ru_maxrss`` is the fallback off Linux.
    """
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _rss_mib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def write_large_frame(path: Path, size: int) -> None:
    """A synthetic (5, size, size) float32 ssQPM stack, tiled from one simulated field."""
    import tifffile

    from napari_dmqpm.io.write import STACK_CHANNELS
    from napari_dmqpm.simulation import SimulationConfig, simulate_field

    field = simulate_field(SimulationConfig(shape=(TILE, TILE), density="dense"), rng=0)
    planes = np.concatenate([field.angles, field.phase[None]]).astype(np.float32)
    metadata = {"axes": "CYX", "Labels": list(STACK_CHANNELS), "unit": "um"}
    metadata |= {"wavelength_um": field.config.wavelength_um, "phase_unit": "rad"}
    resolution = (1.0 / field.config.pixel_size_um,) * 2
    offset, _ = tifffile.imwrite(
        path, shape=(5, size, size), dtype=np.float32, imagej=True, metadata=metadata,
        resolution=resolution, returnoffset=True,
    )  # fmt: skip
    n_tiles = -(-size // TILE)
    with open(path, "r+b") as handle:
        for channel, plane in enumerate(planes):
            for row in range(n_tiles):  # one band of rows at a time
                flips = [plane[:, ::-1] if (row + col) % 2 else plane for col in range(n_tiles)]
                band = np.concatenate(flips, axis=1)[:, :size]
                band = band[::-1] if row % 2 else band
                rows = min(TILE, size - row * TILE)
                handle.seek(offset + (channel * size + row * TILE) * size * 4)
                handle.write(np.ascontiguousarray(band[:rows]).tobytes())


def write_timelapse(path: Path, n_frames: int, size: int) -> None:
    """A simulated ``n_frames`` x size² ssQPM time-lapse, written with ``write_stack``."""
    from napari_dmqpm.io import write_stack
    from napari_dmqpm.simulation import SimulationConfig, simulate_timelapse

    config = SimulationConfig(shape=(size, size), density="dense")
    movie = simulate_timelapse(config, n_frames, rng=1, divide=False)
    write_stack(path, movie.to_acquisition())


def tiny_model(folder: Path) -> Path:
    """A random 3-stage DM-QPMNet checkpoint (same data path, almost no compute)."""
    import torch

    from napari_dmqpm.model import THREE_CLASS, DMQPMNet, HeadConfig, ModelConfig, save_checkpoint

    torch.manual_seed(0)
    distance = HeadConfig(name="distance", kind="sigmoid", channels=("distance",))
    config = ModelConfig(
        features=(4, 8, 16), strides=(1, 2, 2), fusion_stage=1, n_heads=2,
        heads=(THREE_CLASS, distance),
    )  # fmt: skip
    save_checkpoint(folder, DMQPMNet(config).eval())
    return folder


def measure(path: str, model: str, out_dir: str) -> dict:
    """In this (fresh) process: load the model, run segment_file, report memory and time."""
    from napari_dmqpm.inference import InferenceConfig, segment_file
    from napari_dmqpm.model.registry import load_model

    loaded = load_model(model, device="cpu")
    before = _rss_mib()
    start = time.perf_counter()
    result = segment_file(path, out_dir=out_dir, model=loaded, config=InferenceConfig(device="cpu"))
    seconds = time.perf_counter() - start
    return {
        "peak_mib": _peak_mib(),
        "before_mib": before,
        "seconds": seconds,
        "n_frames": result.n_frames,
        "n_cells": result.n_cells,
        "labels_mib": Path(result.labels_path).stat().st_size / 2**20,
    }


def run_child(path: Path, model: str, folder: Path) -> dict:
    out_dir = folder / f"out_{path.stem}"
    out_dir.mkdir()
    case = json.dumps([str(path), model, str(out_dir)])
    command = [sys.executable, __file__, "--child", case]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["failed"]
        return {"error": tail[0]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _row(name: str, path: Path, result: dict) -> str:
    size = f"{path.stat().st_size / 2**20:,.0f}"
    if "error" in result:
        return f"| {name} | {size} | failed: {result['error']} | | | |"
    per_frame = result["seconds"] / result["n_frames"]
    return (
        f"| {name} | {size} | **{result['peak_mib']:,.0f}** | {result['before_mib']:,.0f} "
        f"| {result['seconds']:,.1f} ({per_frame:,.1f} per frame) | {result['n_cells']:,} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=8192, help="side of the large frame")
    parser.add_argument("--frames", type=int, nargs="*", default=[5, 10, 20])
    parser.add_argument("--frame-size", type=int, default=512, help="side of time-lapse frames")
    parser.add_argument("--model", default="tiny", help="'tiny' or a registry name")
    parser.add_argument("--skip-large", action="store_true", help="only the time-lapses")
    parser.add_argument("--out", type=Path, help="also write the markdown here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(*json.loads(args.child))))
        return 0
    with tempfile.TemporaryDirectory(prefix="bench_memory_") as name:
        folder = Path(name)
        model = str(tiny_model(folder / "tiny")) if args.model == "tiny" else args.model
        rows = []
        if not args.skip_large:
            path = folder / f"frame_{args.size}.tif"
            write_large_frame(path, args.size)
            rows.append(_row(f"1 x {args.size}²", path, run_child(path, model, folder)))
            print(rows[-1], file=sys.stderr, flush=True)
        for n_frames in args.frames:
            path = folder / f"movie{len(rows)}_{n_frames}.tif"
            write_timelapse(path, n_frames, args.frame_size)
            name = f"{n_frames} x {args.frame_size}²"
            rows.append(_row(name, path, run_child(path, model, folder)))
            print(rows[-1], file=sys.stderr, flush=True)
    text = "\n".join(section(args, rows)) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


def section(args: argparse.Namespace, rows: list[str]) -> list[str]:
    """The markdown section: what was run, and the table of ``rows`` (:func:`_row`).

    Parameters
    ----------
    args : argparse.Namespace
        The command line; ``args.model`` names the model ("tiny": the random network).
    rows : list of str
        The table's rows, one per case.

    Returns
    -------
    list of str
        The section's lines.
    """
    model = render("memory/tiny.md")[0] if args.model == "tiny" else args.model
    return [
        "## Memory of segment_file (bench_memory)",
        "",
        *render(
            "memory/intro.md",
            model=model,
            load=f"{os.getloadavg()[0]:.1f}",
            cores=os.cpu_count(),
        ),
        "",
        "| input (frames x size) | file MiB | peak MiB | before MiB | time s | cells |",
        "|---|---:|---:|---:|---:|---:|",
        *rows,
    ]


if __name__ == "__main__":
    sys.exit(main())
