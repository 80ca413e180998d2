"""The automatic cell diameter on fields of mixed sizes: spread cells beside rounded mitotic ones.

Medium-density simulated fields with 60 % of the flat cells well spread and 30 % of all cells
mitotic (cell diameters spanning about 3.5x between the 10th and 90th percentile), at two
pixel sizes. Prints the estimate against the true median diameter. Quoted in docs/inference.md.

    python scripts/diameter_mixed_sizes.py
"""

import time

import numpy as np

from napari_dmqpm.inference import cell_diameters, estimate_diameter
from napari_dmqpm.model.registry import load_model
from napari_dmqpm.simulation import SimulationConfig, simulate_field


def main() -> None:
    for name in ("phase-only", "dmqpm-fast"):
        model = load_model(name, device="cpu")
        for pixel, side in ((0.627, 512), (0.35, 900)):
            for seed in (1, 2):
                config = SimulationConfig(
                    shape=(side, side),
                    density="medium",
                    pixel_size_um=pixel,
                    spread_fraction=0.6,
                    mitotic_fraction=0.3,
                )
                field = simulate_field(config, rng=seed)
                diameters = cell_diameters(field.labels, exclude_border=False)
                true, (low, high) = np.median(diameters), np.percentile(diameters, [10, 90])
                started = time.process_time()
                estimate = estimate_diameter(model, phase=field.phase, angles=field.angles)
                cpu = time.process_time() - started
                print(
                    f"{name} {pixel} µm seed {seed}: true median {true:.1f} px "
                    f"(p10-p90 {low:.1f}-{high:.1f}), estimate {estimate.diameter_px:.1f} px "
                    f"({estimate.diameter_px / true - 1:+.0%}), {estimate.n_cells} cells, "
                    f"{estimate.passes} passes, converged {estimate.converged}, CPU {cpu:.1f} s",
                    flush=True,
                )


if __name__ == "__main__":
    main()
