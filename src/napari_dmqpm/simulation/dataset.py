"""Write simulated fields to disk: canonical ssQPM stacks, label TIFFs and a manifest.

This is what ``dmqpm simulate`` runs. Field ``i`` depends only on ``(seed, i)``, so the same
seed writes byte-identical files, and a larger ``n`` extends a data set without changing the
fields already written.
"""

from __future__ import annotations

import json
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from napari_dmqpm.simulation.config import SimulationConfig
from napari_dmqpm.simulation.field import (
    SimulatedField,
    SimulatedTimelapse,
    simulate_field,
    simulate_timelapse,
)

__all__ = ["write_dataset", "write_growth_dataset"]

_PACKAGES = ("napari-dmqpm", "numpy", "scipy", "scikit-image", "tifffile")


def write_dataset(
    out_dir: str | Path,
    *,
    n: int,
    seed: int,
    config: SimulationConfig | None = None,
    density: str | float | None = None,
    shape: tuple[int, int] | None = None,
    n_frames: int = 1,
    overwrite: bool = False,
) -> list[Path]:
    """Simulate ``n`` fields and write them with their instance labels.

    Writes ``sim_0000.tif`` (the canonical ssQPM stack, CYX or TCYX float32, through
    :func:`napari_dmqpm.io.write_stack`), ``sim_0000_labels.tif`` (through
    :func:`napari_dmqpm.io.write_labels`), ... and ``dataset.json`` (config, seed, versions).

    Parameters
    ----------
    out_dir : str or Path
        Output folder, created when missing.
    n : int
        Number of fields (>= 1).
    seed : int
        Random seed (>= 0): the same seed writes identical files.
    config : SimulationConfig, optional
        Simulation parameters; the calibrated defaults when None.
    density : str or float, optional
        Overrides ``config.density`` ("sparse", "medium", "dense", "confluent" or a cover
        fraction; a string holding a number is accepted, as from the command line).
    shape : tuple of int, optional
        Overrides ``config.shape``: ``(rows, cols)``.
    n_frames : int, optional
        Time points per field; above 1 each file is a time-lapse.
    overwrite : bool, optional
        Replace existing files. Without it an existing file is an error, raised before
        anything is written.

    Returns
    -------
    list of Path
        The files written: stacks and labels in order, then ``dataset.json``.
    """
    for name, value, low in (("n", n, 1), ("seed", seed, 0), ("n_frames", n_frames, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}; got {name}={value!r}")
    config = SimulationConfig() if config is None else config
    if density is not None:
        config = config.replace(density=density)
    if shape is not None:
        config = config.replace(shape=tuple(shape))
    _check_memory(config.shape, n_frames)
    out_dir = Path(out_dir)
    targets = [
        (out_dir / f"sim_{i:04d}.tif", out_dir / f"sim_{i:04d}_labels.tif") for i in range(n)
    ]
    manifest = out_dir / "dataset.json"
    _check_free([p for pair in targets for p in pair] + [manifest], overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for index, (stack_path, labels_path) in enumerate(targets):
        written.extend(
            _write_one(stack_path, labels_path, config, (seed, index), n_frames, overwrite)
        )
    manifest.write_text(json.dumps(_manifest(config, seed, n, n_frames, written), indent=2) + "\n")
    return [*written, manifest]


#: Peak bytes per pixel of simulating one field (measured: 120), and per pixel and frame kept.
_BYTES_PER_PIXEL, _BYTES_PER_PIXEL_FRAME = 128, 24


def _check_memory(shape: tuple[int, int], n_frames: int) -> None:
    """ValueError before any work when one field would not fit in the memory budget."""
    from napari_dmqpm.io.limits import format_bytes, memory_budget

    pixels = int(shape[0]) * int(shape[1])
    needed = pixels * (_BYTES_PER_PIXEL + _BYTES_PER_PIXEL_FRAME * n_frames)
    budget, why = memory_budget()
    if needed > budget:
        raise ValueError(
            f"shape={tuple(shape)} with n_frames={n_frames} needs about {format_bytes(needed)} "
            f"of memory per field, more than {why}; choose a smaller shape"
        )


def _check_free(paths: list[Path], overwrite: bool) -> None:
    if overwrite:
        return
    existing = [str(p) for p in paths if p.exists()]
    if existing:
        raise FileExistsError(
            f"refusing to write over {len(existing)} existing file(s), e.g. {existing[0]}; "
            "choose another folder, or pass overwrite=True to replace them"
        )


def _write_one(
    stack_path: Path,
    labels_path: Path,
    config: SimulationConfig,
    seed: tuple[int, int],
    n_frames: int,
    overwrite: bool,
) -> list[Path]:
    from napari_dmqpm.io import write_labels, write_stack

    rng = np.random.default_rng(seed)
    result: SimulatedField | SimulatedTimelapse
    if n_frames == 1:
        result = simulate_field(config, rng=rng)
    else:
        result = simulate_timelapse(config, n_frames, rng=rng)
    stack = write_stack(stack_path, result.to_acquisition(), overwrite=overwrite)
    labels = write_labels(
        labels_path, result.labels, pixel_size_um=config.pixel_size_um, overwrite=overwrite
    )
    return [Path(stack), Path(labels)]


def _manifest(
    config: SimulationConfig, seed: int, n: int, n_frames: int, written: list[Path]
) -> dict:
    versions = {"python": platform.python_version()}
    for package in _PACKAGES:
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "unknown"
    return {
        "generator": "napari_dmqpm.simulation.write_dataset",
        "seed": int(seed),
        "n": int(n),
        "n_frames": int(n_frames),
        "field_seeds": "field i uses numpy.random.default_rng((seed, i))",
        "config": config.to_dict(),
        "files": [p.name for p in written],
        "versions": versions,
    }


def write_growth_dataset(
    out_dir: str | Path,
    *,
    n: int,
    seed: int,
    n_frames: int,
    frame_interval_min: float = 10.0,
    config: SimulationConfig | None = None,
    density: str | float | None = None,
    shape: tuple[int, int] | None = None,
    overwrite: bool = False,
) -> list[Path]:
    """Simulate ``n`` time-lapses of growing, dividing cells and write them with the truth.

    Per time-lapse ``i``: ``sim_000i.tif`` (the canonical stack, TCYX, with ImageJ's
    ``finterval``), ``sim_000i_labels.tif`` (labels by track), ``sim_000i_lineage.csv`` (the
    true lineage: track_id, parent, first and last frame, growth rate in 1/h, doubling time
    in h) and ``sim_000i_gt/TRA/`` (the lineage in the Cell Tracking Challenge layout); then
    ``dataset.json``. Time-lapse ``i`` depends only on ``(seed, i)``
    (:func:`~napari_dmqpm.simulation.timelapse.simulate_growth`).

    Parameters
    ----------
    out_dir : str or Path
        Output folder, created when missing.
    n, seed : int
        Number of time-lapses (>= 1) and random seed (>= 0).
    n_frames : int
        Time points per time-lapse (>= 2).
    frame_interval_min : float
        Minutes between frames.
    config, density, shape, overwrite
        As in :func:`write_dataset`.

    Returns
    -------
    list of Path
        The files and folders written, then ``dataset.json``.
    """
    from napari_dmqpm.inference.measure import write_table_csv
    from napari_dmqpm.io import write_labels, write_stack
    from napari_dmqpm.io.ctc import write_ctc
    from napari_dmqpm.simulation.timelapse import simulate_growth

    for name, value, low in (("n", n, 1), ("seed", seed, 0), ("n_frames", n_frames, 2)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}; got {name}={value!r}")
    config = SimulationConfig() if config is None else config
    config = config.replace(**{k: v for k, v in (("density", density), ("shape", shape)) if v})
    out_dir = Path(out_dir)
    names = [f"sim_{i:04d}" for i in range(n)]
    suffixes = (".tif", "_labels.tif", "_lineage.csv", "_gt")
    _check_free([out_dir / f"{name}{s}" for name in names for s in suffixes], overwrite)
    _check_free([out_dir / "dataset.json"], overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for index, name in enumerate(names):
        movie = simulate_growth(
            config, n_frames, frame_interval_min=frame_interval_min, rng=(seed, index)
        )
        stack, labels, lineage, gt = (out_dir / f"{name}{s}" for s in suffixes)
        write_stack(stack, movie.to_acquisition(), overwrite=overwrite)
        write_labels(labels, movie.labels, pixel_size_um=config.pixel_size_um, overwrite=overwrite)
        write_table_csv(lineage, movie.lineage, overwrite=overwrite)
        write_ctc(gt, movie.labels, movie.graph, ground_truth=True, overwrite=overwrite)
        written.extend([stack, labels, lineage, gt])
    manifest = _manifest(config, seed, n, n_frames, written)
    manifest.update(
        generator="napari_dmqpm.simulation.write_growth_dataset",
        frame_interval_min=float(frame_interval_min),
    )
    path = out_dir / "dataset.json"
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return [*written, path]
