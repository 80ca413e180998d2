"""How long each sample (*File > Open Sample > ssQPM cell segmentation ...*) takes to make (< 2 s).

Times the sample-data functions the manifest points to (simulation, phase retrieval and
layer conversion; napari's own drawing is not included), in this process after one warm-up,
and the first call in a fresh interpreter (imports included). Prints a markdown section.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

from napari_dmqpm._napari import _sample_data

SAMPLES = {
    "sparse": _sample_data.sample_sparse,
    "confluent": _sample_data.sample_confluent,
    "timelapse": _sample_data.sample_timelapse,
}
REPEATS = 5


def cold_seconds(key: str) -> float:
    """Wall time of the first call in a fresh interpreter, imports included."""
    code = (
        "import time; t = time.perf_counter(); "
        "from napari_dmqpm._napari import _sample_data as s; "
        f"s.sample_{key}(); print(time.perf_counter() - t)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    rows = []
    for key, make in SAMPLES.items():
        layers = make()  # warm-up
        times = []
        for _ in range(REPEATS):
            start = time.perf_counter()
            make()
            times.append(time.perf_counter() - start)
        shape = layers[0][0].shape
        rows.append(
            f"| {key} | {shape} | {statistics.median(times):.2f} | {min(times):.2f} "
            f"| {cold_seconds(key):.2f} |"
        )
    print("## Sample data (target: each opens in under 2 s)\n")
    print(f"Median and best of {REPEATS} calls after a warm-up; 'first call' is a fresh")
    print("interpreter with its imports. napari's drawing of the layers is not included.\n")
    print("| sample | angles layer shape | median (s) | best (s) | first call (s) |")
    print("|---|---|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
